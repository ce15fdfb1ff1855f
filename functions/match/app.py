"""Match a run's normalized transactions with the project's rules."""

from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.typing import LambdaContext

from recon.pipeline.contracts import MatchInput
from recon.pipeline.match import match_run
from recon.wiring import aws_services

logger = Logger()


@logger.inject_lambda_context
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    request = MatchInput.model_validate(event)
    return match_run(request, aws_services()).model_dump(mode="json")
