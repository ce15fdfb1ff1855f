"""What every connector returns or raises. The fetch stage (``recon.pipeline.fetch``) turns these into raw
objects in S3, fetch-log entries and the state machine's retry decisions."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date
from typing import Protocol, TypeVar

from pydantic import BaseModel, ValidationError

_M = TypeVar("_M", bound=BaseModel)

# A file name we store under raw/<project>/<account>/<date>/: one path segment, no control characters.
_SAFE_FILENAME = re.compile(r"[^/\\\x00-\x1f]{1,255}")


@dataclass(frozen=True)
class FetchedBill:
    """One raw statement file exactly as the provider delivered it (bytes are stored unchanged)."""

    filename: str  # name to store it under, e.g. "20261121_trade.csv.zip"
    data: bytes
    bill_date: date
    content_type: str = "application/octet-stream"
    # Provider facts worth keeping in the fetch log (never secrets), e.g. {"bill_type": "trade"}.
    details: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not _SAFE_FILENAME.fullmatch(self.filename) or self.filename in (".", ".."):
            raise ValueError(f"unsafe statement file name {self.filename!r}")

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.data).hexdigest()

    @property
    def size(self) -> int:
        return len(self.data)


class Connector(Protocol):
    """Pulls the statement files of one account for one bill date.

    Returns only files that passed every verification the channel offers; raises ``BillNotReady`` when the
    provider has not published them yet, another ``FetchError`` otherwise.
    """

    def fetch(self, bill_date: date) -> list[FetchedBill]: ...


class FetchError(Exception):
    """A fetch failed. ``retryable`` says whether trying again later can help."""

    retryable = False

    def __init__(self, message: str, *, code: str = "") -> None:
        super().__init__(message)
        self.code = code


class BillNotReady(FetchError):
    """The provider has not generated the bill yet (Alipay before ~09:00 next day, WeChat before 10:00).

    The state machine retries within the channel's window, then alerts. Not a failure.
    """

    retryable = True


class BillOverdue(FetchError):
    """The bill is still not there after the account's fetch window closed.

    Not retried: the state machine records the channel as failed and the run's report alerts.
    """


class ProviderUnavailable(FetchError):
    """Timeout, connection error, 5xx or rate limit after the client's own retries."""

    retryable = True


class ProviderRejected(FetchError):
    """The provider refused the request (bad credentials, bad parameters, no permission)."""


class VerificationError(FetchError):
    """A response or file failed verification (signature, certificate serial, timestamp, hash, host key).

    Nothing from such a response is stored.
    """


class CredentialsInvalid(FetchError):
    """The secret does not hold the credentials this connector needs (names the fields, never values)."""


@dataclass(frozen=True)
class RetryPolicy:
    """Client-side retries for transient errors: exponential backoff with full jitter."""

    attempts: int = 4
    base_seconds: float = 0.5
    max_seconds: float = 8.0
    timeout_seconds: float = 30.0


def load_credentials(model: type[_M], secret: Mapping[str, object], secret_id: str) -> _M:
    """Validate a secret's JSON into a credentials model; errors name fields, never values."""
    try:
        return model.model_validate(dict(secret))
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or '(secret)'}: {e['msg']}" for e in exc.errors()
        )
        raise CredentialsInvalid(
            f"secret {secret_id!r} is not a valid {model.__name__}: {problems}", code="credentials"
        ) from None


_URL_QUERY = re.compile(r"(https?://[^\s?#'\"]+)[?#][^\s'\"]*")


def redact_urls(text: str) -> str:
    """Drop query strings and fragments from URLs in a message (signed download URLs carry tokens)."""
    return _URL_QUERY.sub(r"\1?…", text)
