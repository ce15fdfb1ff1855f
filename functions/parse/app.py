"""Parse statements: a Step Functions task for one account, or an S3 "Object Created" event via EventBridge."""

from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.typing import LambdaContext

from recon.pipeline.contracts import ChannelTask, S3ObjectEvent
from recon.pipeline.parse import ingest_upload, parse_channel
from recon.wiring import aws_services

logger = Logger()


@logger.inject_lambda_context
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any] | None:
    if S3ObjectEvent.is_one(event):
        s3 = S3ObjectEvent.from_eventbridge(event)
        result = ingest_upload(s3.bucket, s3.key, aws_services())
        return result.model_dump(mode="json") if result else None
    task = ChannelTask.model_validate(event)
    return parse_channel(task, aws_services()).model_dump(mode="json")
