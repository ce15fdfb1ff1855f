"""Fetch stage: make the account's statement for the date available in the raw bucket and log the attempt.

- Upload delivery: people or systems put files under ``raw/<project>/<account>/<date>/``; the fetcher
  records what is there (and that nothing is, if so: parse then reports the missing statement).
- API / SFTP delivery: the account's ``fetch`` connector pulls the files with the credentials of its
  Secrets Manager secret. Connectors return only verified files; their bytes are stored unchanged, once:
  a file whose checksum is already under the statement's raw prefix is not stored again (so not parsed
  again either). A statement that is not published yet raises ``BillNotReady`` for the state machine to
  retry; once the account's fetch window has closed it raises ``BillOverdue`` instead (no more retries, the
  channel is recorded failed and the run alerts).

Every attempt writes one fetch-log entry (channel, account, bill date, attempt, status, checksum, size,
duration), whatever its outcome. Secrets never reach the log, the entries, object metadata or messages.

This module must stay free of dataframe libraries: the fetch functions carry no pandas/pyarrow layer.
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from datetime import date, datetime, timedelta
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

from recon.domain import Account, Delivery
from recon.domain.account import AlipayFetch, Environment, FetchWindow, HttpsFetch, SftpFetch, WechatFetch
from recon.fetching.base import (
    BillNotReady,
    BillOverdue,
    Connector,
    CredentialsInvalid,
    FetchedBill,
    FetchError,
    ProviderRejected,
    ProviderUnavailable,
    RetryPolicy,
    VerificationError,
    load_credentials,
    redact_urls,
)
from recon.keys import raw_key, raw_prefix
from recon.ports import FetchLogEntry, StoredObject
from recon.settings import Settings

from .contracts import ChannelTask, FetchOutput
from .projects import load_project
from .services import Services

log = logging.getLogger(__name__)

_D = TypeVar("_D")


class ConnectorNotConfigured(Exception):
    """The account asks for a delivery (API, SFTP) this deployment has no connector configured for."""


def fetch_statements(task: ChannelTask, svc: Services) -> FetchOutput:
    """Fetch (or, for uploads, take stock of) the statement ``task`` needs; one fetch-log entry per call."""
    if task.delivery is Delivery.UPLOAD:
        return _record_uploads(task, svc)
    project = load_project(svc.store, svc.settings, task.project_id)
    account = project.account(task.account_id)
    if account.fetch is None or account.secret_id is None:
        raise ConnectorNotConfigured(
            f"account {task.account_id}: delivery {task.delivery.value!r} needs a provider connector "
            "(the account's `fetch` configuration)"
        )
    attempt = _FetchAttempt(svc, task)
    opens, closes = fetch_window(project.timezone, task.statement_date, account.fetch.window)
    now = svc.clock()
    if now < opens:
        message = (
            f"{account.account_id}: the {task.statement_date} statement is published from "
            f"{opens.isoformat()}; not asking the provider before then"
        )
        attempt.record("not_ready", detail=message)
        raise BillNotReady(message, code="WINDOW_NOT_OPEN")
    try:
        bills = _pull(account, account.secret_id, svc, task.statement_date)
        _check_bills(bills, task.statement_date)
    except BillNotReady as exc:
        if now >= closes:
            message = (
                f"{account.account_id}: the {task.statement_date} statement is still not available after the "
                f"fetch window closed at {closes.isoformat()} ({_describe(exc)})"
            )
            attempt.record("overdue", detail=message)
            raise BillOverdue(message, code=exc.code or "OVERDUE") from None
        attempt.record("not_ready", detail=_describe(exc))
        raise _as_state_machine_error(exc, BillNotReady) from None
    except ProviderUnavailable as exc:
        attempt.record("failed", detail=_describe(exc))
        raise _as_state_machine_error(exc, ProviderUnavailable) from None
    except Exception as exc:
        attempt.record("failed", detail=_describe(exc))
        raise
    try:
        keys, stored = _store(svc, task, bills)
    except Exception as exc:
        attempt.record("failed", bills=bills, detail=f"verified, but storing failed: {_describe(exc)}")
        raise
    status = "stored" if stored else "unchanged"
    attempt.record(status, bills=bills, keys=keys, detail=_files_detail(bills, keys, stored))
    log.info(
        "statement fetched",
        extra={
            "account_id": task.account_id,
            "bill_date": task.statement_date.isoformat(),
            "status": status,
            "files": len(bills),
            "stored": len(stored),
        },
    )
    return FetchOutput(account_id=task.account_id, source=task.source, status=status, raw_keys=keys)


def _as_state_machine_error(exc: FetchError, kind: type[FetchError]) -> FetchError:
    """The state machine retries by exact error name (the exception's class): a subclass such as WeChat
    Pay's ``NoBillForDate`` is raised as its retryable base."""
    if type(exc) is kind:
        return exc
    return kind(str(exc), code=exc.code or type(exc).__name__)


def fetch_window(timezone: str, bill_date: date, window: FetchWindow) -> tuple[datetime, datetime]:
    """When the provider publishes ``bill_date``'s statement and when waiting for it stops (aware)."""
    end_of_day = datetime.combine(
        bill_date + timedelta(days=1), datetime.min.time(), tzinfo=ZoneInfo(timezone)
    )
    return (
        end_of_day + timedelta(hours=window.opens_after_hours),
        end_of_day + timedelta(hours=window.closes_after_hours),
    )


# --- the fetch log ---------------------------------------------------------------------------------------


class _FetchAttempt:
    """Writes the one fetch-log entry of this invocation (attempt = previous entries + 1)."""

    def __init__(self, svc: Services, task: ChannelTask) -> None:
        self._svc = svc
        self._task = task
        self._started = time.monotonic()
        self.number = len(svc.repo.list_fetch_log(task.project_id, task.account_id, task.statement_date)) + 1

    def record(
        self,
        status: str,
        *,
        detail: str,
        bills: list[FetchedBill] | None = None,
        keys: list[str] | None = None,
        objects: list[StoredObject] | None = None,
    ) -> FetchLogEntry:
        one = bills[0] if bills and len(bills) == 1 else None
        size = sum(b.size for b in bills) if bills else sum(o.size for o in objects) if objects else None
        entry = FetchLogEntry(
            project_id=self._task.project_id,
            account_id=self._task.account_id,
            channel=self._task.source.value,
            bill_date=self._task.statement_date,
            attempt=self.number,
            status=status,
            at=self._svc.clock().isoformat(),
            raw_key=keys[0] if keys and len(keys) == 1 else None,
            checksum=one.checksum if one else None,
            size=size,
            duration_ms=int((time.monotonic() - self._started) * 1000),
            detail=detail[:1000],
        )
        self._svc.repo.put_fetch_log(entry)
        return entry


def _describe(exc: BaseException) -> str:
    """What went wrong, for the fetch log: the error type, code and message (URL queries removed)."""
    code = getattr(exc, "code", "")
    return redact_urls(f"{type(exc).__name__}{f' [{code}]' if code else ''}: {exc}")


def _files_detail(bills: list[FetchedBill], keys: list[str], stored: list[str]) -> str:
    parts = []
    for bill, key in zip(bills, keys, strict=True):
        state = "stored" if key in stored else f"already stored as {key.rsplit('/', 1)[-1]}"
        facts = "".join(f" {k}={v}" for k, v in sorted(bill.details.items()))
        parts.append(f"{bill.filename} sha256={bill.checksum} size={bill.size} {state}{facts}")
    return redact_urls("; ".join(parts))


def _record_uploads(task: ChannelTask, svc: Services) -> FetchOutput:
    attempt = _FetchAttempt(svc, task)
    objects = svc.store.list(
        svc.settings.raw_bucket, raw_prefix(task.project_id, task.account_id, task.statement_date)
    )
    status = "uploaded" if objects else "none_dropped"
    attempt.record(
        status,
        keys=[o.key for o in objects],
        objects=objects,
        detail=f"{len(objects)} file(s) delivered by upload",
    )
    return FetchOutput(
        account_id=task.account_id, source=task.source, status=status, raw_keys=[o.key for o in objects]
    )


# --- pulling: secret -> connector -> verified files ---------------------------------------------------------


def _pull(account: Account, secret_id: str, svc: Services, bill_date: date) -> list[FetchedBill]:
    """Fetch with the cached secret; after a credentials or verification failure, read the secret again
    (bypassing the cache) and, if it was rotated, try once more with the new version."""
    if svc.secrets is None:
        raise ConnectorNotConfigured("this deployment has no secrets provider for fetching")
    secret = svc.secrets.get_secret(secret_id)
    try:
        with open_connector(account, secret, svc) as connector:
            return connector.fetch(bill_date)
    except (ProviderRejected, CredentialsInvalid, VerificationError):
        fresh = svc.secrets.get_secret(secret_id, force_fetch=True)
        if fresh == secret:
            raise
        log.info("secret was rotated; retrying with its current version", extra={"secret_id": secret_id})
    with open_connector(account, fresh, svc) as connector:
        return connector.fetch(bill_date)


def retry_policy(settings: Settings) -> RetryPolicy:
    return RetryPolicy(
        attempts=settings.fetch_attempts,
        max_seconds=settings.fetch_backoff_max_seconds,
        timeout_seconds=settings.fetch_timeout_seconds,
    )


def provider_endpoint(fetch: AlipayFetch | WechatFetch, settings: Settings) -> str:
    """The gateway / base URL an Alipay or WeChat Pay account talks to (settings, or its custom endpoint)."""
    if fetch.environment is Environment.CUSTOM and fetch.endpoint:
        return fetch.endpoint
    if isinstance(fetch, AlipayFetch):
        if fetch.environment is Environment.SANDBOX:
            return settings.alipay_sandbox_gateway_url
        return settings.alipay_gateway_url
    return settings.wechatpay_base_url


@contextmanager
def open_connector(account: Account, secret: Mapping[str, str], svc: Services) -> Iterator[Connector]:
    """The account's connector, built from its fetch config, the secret and the settings (imports only the
    protocol the account needs)."""
    fetch = account.fetch
    secret_id = account.secret_id or ""
    retry = retry_policy(svc.settings)
    if isinstance(fetch, SftpFetch):
        from recon.fetching.bank import SftpBankConnector, SftpCredentials

        yield SftpBankConnector(
            fetch, load_credentials(SftpCredentials, secret, secret_id), retry=retry, sleep=svc.sleep
        )
    elif isinstance(fetch, HttpsFetch):
        from recon.fetching.bank import HttpsBankConnector, HttpsCredentials

        yield HttpsBankConnector(
            fetch, load_credentials(HttpsCredentials, secret, secret_id), retry=retry, sleep=svc.sleep
        )
    elif isinstance(fetch, AlipayFetch | WechatFetch):
        import httpx

        with httpx.Client(timeout=retry.timeout_seconds, follow_redirects=False) as http:
            if isinstance(fetch, AlipayFetch):
                yield _alipay(fetch, secret=secret, secret_id=secret_id, http=http, retry=retry, svc=svc)
            else:
                yield _wechat(fetch, secret=secret, secret_id=secret_id, http=http, retry=retry, svc=svc)
    else:
        raise ConnectorNotConfigured(f"account {account.account_id}: no fetch connector configured")


def _dataclass_credentials(cls: type[_D], secret: Mapping[str, str], secret_id: str) -> _D:
    """A provider's credentials dataclass from the secret; errors name fields, never values."""
    fields = {f.name: f for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    unknown = sorted(set(secret) - set(fields))
    missing = sorted(
        name
        for name, f in fields.items()
        if name not in secret
        and f.default is dataclasses.MISSING
        and f.default_factory is dataclasses.MISSING
    )
    if unknown or missing:
        raise CredentialsInvalid(
            f"secret {secret_id!r} is not a valid {cls.__name__}: "
            + "; ".join([*(f"{n}: missing" for n in missing), *(f"{n}: unexpected" for n in unknown)]),
            code="credentials",
        )
    try:
        return cls(**secret)
    except (TypeError, ValueError) as exc:
        raise CredentialsInvalid(
            f"secret {secret_id!r} is not a valid {cls.__name__}: {exc}", code="credentials"
        ) from None


class _AlipayBills:
    """Every configured Alipay bill type of the day (each one verified by the client)."""

    def __init__(self, client: Any, bill_types: list[str]) -> None:
        self._client = client
        self._bill_types = bill_types

    def fetch(self, bill_date: date) -> list[FetchedBill]:
        bills = []
        for bill_type in self._bill_types:
            bill: FetchedBill = self._client.fetch(bill_type, bill_date)
            # Alipay names the trade and the signcustomer zip of a day alike (<PID>0156_<date>.csv.zip).
            if bill_type not in bill.filename:
                bill = dataclasses.replace(bill, filename=f"{bill_type}_{bill.filename}")
            bills.append(bill)
        return bills


def _alipay(
    fetch: AlipayFetch,
    *,
    secret: Mapping[str, str],
    secret_id: str,
    http: Any,
    retry: RetryPolicy,
    svc: Services,
) -> Connector:
    from recon.fetching.alipay import AlipayBillClient, AlipayCredentials

    credentials = _dataclass_credentials(AlipayCredentials, secret, secret_id)
    try:
        client = AlipayBillClient(
            http, provider_endpoint(fetch, svc.settings), credentials, retry, sleep=svc.sleep, clock=svc.clock
        )
    except ValueError as exc:  # keys that do not load; the message names the problem, not the key
        raise CredentialsInvalid(f"secret {secret_id!r}: {exc}", code="credentials") from None
    return _AlipayBills(client, list(fetch.bill_types))


class _WechatBills:
    """The configured WeChat Pay trade bills and fund-flow bills of the day."""

    def __init__(self, client: Any, fetch: WechatFetch) -> None:
        self._client = client
        self._fetch = fetch

    def fetch(self, bill_date: date) -> list[FetchedBill]:
        tar_type = "GZIP" if self._fetch.gzip else None
        bills = [
            self._client.fetch_trade_bill(bill_date, bill_type, tar_type)
            for bill_type in self._fetch.bill_types
        ]
        bills += [
            self._client.fetch_fundflow_bill(bill_date, account_type, tar_type)
            for account_type in self._fetch.fundflow_accounts
        ]
        return bills


def _wechat(
    fetch: WechatFetch,
    *,
    secret: Mapping[str, str],
    secret_id: str,
    http: Any,
    retry: RetryPolicy,
    svc: Services,
) -> Connector:
    from recon.fetching.wechatpay import PlatformCertificateStore, WechatPayBillClient, WechatPayCredentials

    credentials = _dataclass_credentials(WechatPayCredentials, secret, secret_id)
    base_url = provider_endpoint(fetch, svc.settings)
    try:
        # Public-key mode verifies with the key from the secret; otherwise the platform certificates are
        # downloaded (and decrypted with the APIv3 key) on first use.
        store = (
            None
            if credentials.wechatpay_public_key_id
            else PlatformCertificateStore(
                http, base_url, credentials, retry=retry, clock=svc.clock, sleep=svc.sleep
            )
        )
        client = WechatPayBillClient(
            http, base_url, credentials, store, retry, clock=svc.clock, sleep=svc.sleep
        )
    except ValueError as exc:
        raise CredentialsInvalid(f"secret {secret_id!r}: {exc}", code="credentials") from None
    return _WechatBills(client, fetch)


def _check_bills(bills: list[FetchedBill], bill_date: date) -> None:
    if not bills:
        raise BillNotReady("the connector found no statement file")
    names = [b.filename for b in bills]
    if len(set(names)) != len(names):
        raise VerificationError(f"the connector returned two files under one name: {sorted(names)}")
    for bill in bills:
        if bill.bill_date != bill_date:
            raise VerificationError(
                f"asked for the {bill_date} statement, got {bill.filename} of {bill.bill_date}"
            )


# --- storing: once per checksum ----------------------------------------------------------------------------


def _store(svc: Services, task: ChannelTask, bills: list[FetchedBill]) -> tuple[list[str], list[str]]:
    """Put each bill under the raw prefix unless the same bytes are already there.

    Returns (the key holding each bill, the keys written now). A changed file under an existing name is
    stored as a new version of that key (the raw bucket is versioned: the earlier bytes stay).
    """
    bucket = svc.settings.raw_bucket
    existing = svc.store.list(bucket, raw_prefix(task.project_id, task.account_id, task.statement_date))
    keys: list[str] = []
    stored: list[str] = []
    for bill in bills:
        same = _already_stored(svc, bucket, existing, bill)
        if same is not None:
            keys.append(same)
            continue
        key = raw_key(task.project_id, task.account_id, task.statement_date, bill.filename)
        metadata = {"sha256": bill.checksum, "fetched-by": f"fetch-{task.source.value}"}
        metadata.update({f"fetch-{k.replace('_', '-').lower()}": v for k, v in bill.details.items()})
        svc.store.put(bucket, key, bill.data, content_type=bill.content_type, metadata=metadata)
        keys.append(key)
        stored.append(key)
    return keys, stored


def _already_stored(
    svc: Services, bucket: str, existing: list[StoredObject], bill: FetchedBill
) -> str | None:
    for obj in existing:
        if obj.size != bill.size:
            continue
        head = svc.store.head(bucket, obj.key)
        known = head.metadata.get("sha256") if head else None
        if known is None:  # an upload: no checksum recorded, compare the bytes
            known = hashlib.sha256(svc.store.get(bucket, obj.key)).hexdigest()
        if known == bill.checksum:
            return obj.key
    return None


__all__ = [
    "ConnectorNotConfigured",
    "fetch_statements",
    "fetch_window",
    "open_connector",
    "provider_endpoint",
]
