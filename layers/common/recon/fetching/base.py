"""What every connector returns or raises. The fetch stage (``recon.pipeline.fetch``) turns these into raw
objects in S3, fetch-log entries and the state machine's retry decisions."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import date


@dataclass(frozen=True)
class FetchedBill:
    """One raw statement file exactly as the provider delivered it (bytes are stored unchanged)."""

    filename: str  # name to store it under, e.g. "20261121_trade.csv.zip"
    data: bytes
    bill_date: date
    content_type: str = "application/octet-stream"
    # Provider facts worth keeping in the fetch log (never secrets), e.g. {"bill_type": "trade"}.
    details: dict[str, str] = field(default_factory=dict)

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.data).hexdigest()

    @property
    def size(self) -> int:
        return len(self.data)


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


class ProviderUnavailable(FetchError):
    """Timeout, connection error, 5xx or rate limit after the client's own retries."""

    retryable = True


class ProviderRejected(FetchError):
    """The provider refused the request (bad credentials, bad parameters, no permission)."""


class VerificationError(FetchError):
    """A response or file failed verification (signature, certificate serial, timestamp, hash).

    Nothing from such a response is stored.
    """


@dataclass(frozen=True)
class RetryPolicy:
    """Client-side retries for transient errors: exponential backoff with full jitter."""

    attempts: int = 4
    base_seconds: float = 0.5
    max_seconds: float = 8.0
    timeout_seconds: float = 30.0
