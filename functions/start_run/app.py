"""Start a reconciliation run: resolve the business date, record the run, list the channels to fetch."""

from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.typing import LambdaContext

from recon.pipeline.contracts import StartRunInput
from recon.pipeline.run import start_run
from recon.wiring import aws_services

logger = Logger()


@logger.inject_lambda_context
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    request = StartRunInput.model_validate(event)
    return start_run(request, aws_services()).model_dump(mode="json")
