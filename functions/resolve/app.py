"""Classify what matching left over into cases and account for every row."""

from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.typing import LambdaContext

from recon.pipeline.contracts import RunRef
from recon.pipeline.resolve import resolve_run
from recon.wiring import aws_services

logger = Logger()


@logger.inject_lambda_context
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    ref = RunRef.model_validate(event)
    return resolve_run(ref, aws_services()).model_dump(mode="json")
