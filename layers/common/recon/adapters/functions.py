"""``FunctionInvoker`` on AWS Lambda: synchronous (RequestResponse) invocations of the stack's functions.

The client waits as long as a Lambda function may run (15 minutes): the shared client's 30 s read timeout
would give up on, and then re-invoke, a function that is still working. The caller's own timeout bounds
the wait. Every failure (the function raised or timed out, throttling after the retries, no permission)
is a ``FunctionFailed`` naming the function and Lambda's error type.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from recon import __version__
from recon.ports import FunctionFailed

from . import aws

if TYPE_CHECKING:
    from mypy_boto3_lambda import LambdaClient

_LAMBDA_MAX_SECONDS = 900
_CONFIG = Config(
    retries={"mode": "standard", "max_attempts": 3},
    connect_timeout=5,
    read_timeout=_LAMBDA_MAX_SECONDS + 5,
    user_agent_extra=f"recon/{__version__}",
)


class LambdaInvoker:
    """Invokes a function by name (or ARN) and returns its decoded JSON result."""

    def __init__(self, *, client: LambdaClient | None = None) -> None:
        self._client = client

    @property
    def client(self) -> LambdaClient:
        if self._client is None:  # created on first use, under the active credentials (or mock)
            self._client = boto3.client("lambda", endpoint_url=aws.endpoint_url(), config=_CONFIG)
        return self._client

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
