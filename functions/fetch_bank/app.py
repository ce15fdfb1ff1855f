"""Fetch bank statements for one account and date into the raw bucket, logging every attempt."""

from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.typing import LambdaContext

from recon.pipeline.contracts import ChannelTask
from recon.pipeline.fetch import fetch_statements
from recon.wiring import aws_services

logger = Logger()


@logger.inject_lambda_context
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    task = ChannelTask.model_validate(event)
    return fetch_statements(task, aws_services()).model_dump(mode="json")
