"""Parse statements: a Step Functions task for one account, or an S3 "Object Created" event via EventBridge."""

from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.parser.models import EventBridgeModel
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import BaseModel

from recon.pipeline.contracts import ChannelTask
from recon.pipeline.parse import ingest_upload, parse_channel
from recon.wiring import aws_services

logger = Logger()


class _S3Object(BaseModel):
    key: str


class _S3Bucket(BaseModel):
    name: str


class ObjectCreatedDetail(BaseModel):
    bucket: _S3Bucket
    object: _S3Object


@logger.inject_lambda_context
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any] | None:
    if event.get("detail-type") == "Object Created":
        detail = ObjectCreatedDetail.model_validate(EventBridgeModel.model_validate(event).detail)
        result = ingest_upload(detail.bucket.name, detail.object.key, aws_services())
        return result.model_dump(mode="json") if result else None
    task = ChannelTask.model_validate(event)
    return parse_channel(task, aws_services()).model_dump(mode="json")
