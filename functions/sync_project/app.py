"""A project file was written or deleted in the data bucket: keep its EventBridge schedule in step."""

from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.typing import LambdaContext

from recon.pipeline.contracts import S3ObjectEvent
from recon.pipeline.project_sync import sync_project
from recon.wiring import aws_services

logger = Logger()


@logger.inject_lambda_context
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    s3 = S3ObjectEvent.from_eventbridge(event)
    return sync_project(s3.bucket, s3.key, deleted=s3.deleted, svc=aws_services()).model_dump(mode="json")
