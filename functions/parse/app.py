"""Parse statements: a Step Functions task for one account, an S3 "Object Created" event via EventBridge, or
an operator's re-parse request (``{"reparse_statement": "<id>", "profile_version": "<v>"}``)."""

from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.typing import LambdaContext

from recon.pipeline.contracts import ChannelTask, ReparseRequest, S3ObjectEvent
from recon.pipeline.parse import ingest_upload, parse_channel, reparse_statement
from recon.wiring import aws_services

logger = Logger()


@logger.inject_lambda_context
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any] | None:
    if S3ObjectEvent.is_one(event):
        s3 = S3ObjectEvent.from_eventbridge(event)
        result = ingest_upload(s3.bucket, s3.key, aws_services())
        return result.model_dump(mode="json") if result else None
    if ReparseRequest.is_one(event):
        request = ReparseRequest.model_validate(event)
        return reparse_statement(
            request.reparse_statement, request.profile_version, aws_services(), profile=request.profile
        ).model_dump(mode="json")
    task = ChannelTask.model_validate(event)
    return parse_channel(task, aws_services()).model_dump(mode="json")
