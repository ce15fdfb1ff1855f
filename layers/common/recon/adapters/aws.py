"""Lazily created, per-process cached boto3 clients and resources.

Nothing is created at import time: the first ``client("s3")`` creates the session and the client. This
matters for Lambda (no work before the first invocation needs it) and for moto, whose mock must be active
before a client is created (a client created earlier talks to real AWS). ``reset()`` drops the cache; tests
call it when they start a mock.

``Settings.aws_endpoint_url`` (environment ``AWS_ENDPOINT_URL``) points every client at a local endpoint
such as a moto server. When the full settings cannot be loaded (e.g. a tool that sets only some of the
``RECON_*`` variables) the ``AWS_ENDPOINT_URL`` environment variable is used directly.

boto3 is imported only in ``recon.adapters``; logic receives the ports, never a client.
"""

from __future__ import annotations

import os
import threading
from typing import TYPE_CHECKING, Any, Literal, overload

import boto3
from botocore.config import Config
from pydantic import ValidationError

from recon import __version__
from recon.settings import get_settings

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient, DynamoDBServiceResource
    from mypy_boto3_lambda import LambdaClient
    from mypy_boto3_s3 import S3Client, S3ServiceResource
    from mypy_boto3_ses import SESClient
    from mypy_boto3_sns import SNSClient
    from mypy_boto3_stepfunctions import SFNClient

_CONFIG = Config(
    retries={"mode": "standard", "max_attempts": 5},
    connect_timeout=5,
    read_timeout=30,
    user_agent_extra=f"recon/{__version__}",
)
# Per service, what differs from _CONFIG. Lambda: a synchronous invocation may run 15 minutes; a 30 s read
# timeout would give up on (and, retrying, re-invoke) a function that is still working.
_SERVICE_CONFIG = {"lambda": Config(retries={"mode": "standard", "max_attempts": 3}, read_timeout=900 + 5)}

_lock = threading.Lock()
_session: boto3.session.Session | None = None
_clients: dict[tuple[str, str | None, str | None], Any] = {}
_resources: dict[tuple[str, str | None, str | None], Any] = {}


def endpoint_url() -> str | None:
    """The endpoint override from the settings (None: the service's real endpoint)."""
    try:
        return get_settings().aws_endpoint_url or None
    except ValidationError:
        return os.environ.get("AWS_ENDPOINT_URL") or None


def _get_session() -> boto3.session.Session:
    global _session  # noqa: PLW0603 - the one per-process session, created on first use
    if _session is None:
        _session = boto3.session.Session()
    return _session


@overload
def client(service: Literal["s3"], region: str | None = None) -> S3Client: ...
@overload
def client(service: Literal["dynamodb"], region: str | None = None) -> DynamoDBClient: ...
@overload
def client(service: Literal["ses"], region: str | None = None) -> SESClient: ...
@overload
def client(service: Literal["sns"], region: str | None = None) -> SNSClient: ...
@overload
def client(service: Literal["stepfunctions"], region: str | None = None) -> SFNClient: ...
@overload
def client(service: Literal["lambda"], region: str | None = None) -> LambdaClient: ...
@overload
def client(service: str, region: str | None = None) -> Any: ...


def client(service: str, region: str | None = None) -> Any:
    """The process-wide client of ``service`` (created on first use; thread-safe)."""
    key = (service, region, endpoint_url())
    found = _clients.get(key)
    if found is not None:
        return found
    with _lock:
        if key not in _clients:
            _clients[key] = _get_session().client(
                service,  # type: ignore[call-overload]  # any service name; typed by the overloads above
                region_name=region,
                endpoint_url=key[2],
                config=_CONFIG.merge(_SERVICE_CONFIG[service]) if service in _SERVICE_CONFIG else _CONFIG,
            )
        return _clients[key]


@overload
def resource(service: Literal["dynamodb"], region: str | None = None) -> DynamoDBServiceResource: ...
@overload
def resource(service: Literal["s3"], region: str | None = None) -> S3ServiceResource: ...
@overload
def resource(service: str, region: str | None = None) -> Any: ...


def resource(service: str, region: str | None = None) -> Any:
    """The process-wide resource of ``service`` (created on first use; thread-safe)."""
    key = (service, region, endpoint_url())
    found = _resources.get(key)
    if found is not None:
        return found
    with _lock:
        if key not in _resources:
            _resources[key] = _get_session().resource(
                service,  # type: ignore[call-overload]
                region_name=region,
                endpoint_url=key[2],
                config=_CONFIG,
            )
        return _resources[key]


def reset() -> None:
    """Forget the session and every cached client/resource (tests: call after starting a mock)."""
    global _session  # noqa: PLW0603
    with _lock:
        _clients.clear()
        _resources.clear()
        _session = None


def error_code(exc: BaseException) -> str:
    """The AWS error code of a botocore ``ClientError`` ('' for anything else)."""
    response = getattr(exc, "response", None)
    if isinstance(response, dict):
        return str(response.get("Error", {}).get("Code", ""))
    return ""
