"""HTTP mechanics shared by the provider connectors: one attempt at a time, retried with backoff.

A connector turns what another attempt may fix (timeout, connection error, HTTP 5xx, rate limit) into
``TransientError``; ``retrying`` runs the whole operation again with exponential backoff and full jitter
and, when the attempts are spent, raises ``ProviderUnavailable``. Everything else propagates at once.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Callable, Mapping
from typing import TypeVar

import httpx

from .base import ProviderUnavailable, RetryPolicy

log = logging.getLogger(__name__)

T = TypeVar("T")

_jitter = secrets.SystemRandom()


class TransientError(Exception):
    """One attempt failed in a way a later attempt may not (never leaves this package)."""

    def __init__(self, message: str, *, code: str = "", retry_after: float | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.retry_after = retry_after


def backoff_seconds(
    policy: RetryPolicy,
    failed_attempts: int,
    *,
    retry_after: float | None = None,
    rand: Callable[[], float] = _jitter.random,
) -> float:
    """Full jitter: uniform in [0, min(max, base * 2**(n-1))]; a server's Retry-After is a floor."""
    ceiling = min(policy.max_seconds, policy.base_seconds * 2.0 ** (failed_attempts - 1))
    delay = rand() * ceiling
    if retry_after is not None:
        delay = max(delay, min(retry_after, policy.max_seconds))
    return delay


def retrying(
    operation: Callable[[], T],
    *,
    policy: RetryPolicy,
    sleep: Callable[[float], None],
    what: str,
) -> T:
    """Run ``operation`` up to ``policy.attempts`` times while it raises ``TransientError``."""
    attempts = max(1, policy.attempts)
    for attempt in range(1, attempts + 1):
        try:
            return operation()
        except TransientError as exc:
            if attempt == attempts:
                raise ProviderUnavailable(
                    f"{what}: {exc} (gave up after {attempts} attempts)", code=exc.code
                ) from exc
            delay = backoff_seconds(policy, attempt, retry_after=exc.retry_after)
            log.warning(
                "%s: attempt %d/%d failed (%s); retrying in %.2fs", what, attempt, attempts, exc, delay
            )
            sleep(delay)
    raise AssertionError("unreachable")  # the loop returns or raises


def send(
    http: httpx.Client,
    method: str,
    url: str | httpx.URL,
    *,
    policy: RetryPolicy,
    headers: Mapping[str, str] | None = None,
    content: bytes | None = None,
    follow_redirects: bool = False,
) -> httpx.Response:
    """Send one request with the policy's timeout, never the client's default auth.

    Timeouts and connection errors become ``TransientError``; HTTP 5xx and 429 do too. The caller
    interprets every other status.
    """
    request = httpx.Request(
        method,
        url,
        headers=dict(headers or {}),
        content=content,
        extensions={"timeout": httpx.Timeout(policy.timeout_seconds).as_dict()},
    )
    target = f"{method} {request.url.host}{request.url.path}"
    try:
        response = http.send(request, auth=None, follow_redirects=follow_redirects)
    except httpx.TimeoutException as exc:
        raise TransientError(f"{target} timed out ({type(exc).__name__})", code="TIMEOUT") from exc
    except httpx.TransportError as exc:
        raise TransientError(f"{target} failed: {type(exc).__name__}: {exc}", code="CONNECTION") from exc
    if response.status_code == 429 or response.status_code >= 500:
        raise TransientError(
            f"{target} answered HTTP {response.status_code}: {_snippet(response.content)}",
            code=f"HTTP_{response.status_code}",
            retry_after=_retry_after(response),
        )
    return response


def _retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("Retry-After", "").strip()
    return float(value) if value.isdigit() else None


def _snippet(body: bytes, limit: int = 200) -> str:
    text = body[:limit].decode("utf-8", "replace")
    return text + ("…" if len(body) > limit else "")
