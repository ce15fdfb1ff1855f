"""``FunctionInvoker`` on AWS Lambda: synchronous (RequestResponse) invocations of the stack's functions.

The client (``aws.client("lambda")``) waits as long as a Lambda function may run (15 minutes); the caller's
own timeout bounds the wait. Every failure (the function raised or timed out, throttling after the
retries, no permission) is a ``FunctionFailed`` naming the function and Lambda's error type.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from botocore.exceptions import BotoCoreError, ClientError

from recon.ports import FunctionFailed

from . import aws

if TYPE_CHECKING:
    from mypy_boto3_lambda import LambdaClient


class LambdaInvoker:
    """Invokes a function by name (or ARN) and returns its decoded JSON result."""

    def __init__(self, *, client: LambdaClient | None = None) -> None:
        self._client = client

    @property
    def client(self) -> LambdaClient:
        return self._client or aws.client("lambda")  # the process-wide client, created on first use

    def invoke(self, function_name: str, payload: dict[str, Any]) -> Any:
        try:
            response = self.client.invoke(
                FunctionName=function_name,
                InvocationType="RequestResponse",
                Payload=json.dumps(payload).encode("utf-8"),
            )
            body = response["Payload"].read()
        except (BotoCoreError, ClientError) as exc:
            raise FunctionFailed(
                f"{function_name} could not be invoked: {aws.error_code(exc) or exc}"
            ) from exc
        result = json.loads(body or b"null")
        if response.get("FunctionError"):
            error = result if isinstance(result, dict) else {}
            raise FunctionFailed(
                f"{function_name} failed: {error.get('errorType', response['FunctionError'])}: "
                f"{error.get('errorMessage', '')}"
            )
        return result
