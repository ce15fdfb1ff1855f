"""The small interfaces logic depends on. AWS adapters and in-memory fakes implement them."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any, Protocol

from .domain import AuditEvent, Case, CaseLink, CaseStatus, MatchGroup, Run, Statement
from .pdf_tables import PdfRow


@dataclass(frozen=True)
class StoredObject:
    key: str
    size: int
    version_id: str | None = None
    metadata: dict[str, str] = field(default_factory=dict)


class ObjectStore(Protocol):
    """S3-like object storage."""

    def put(
        self,
        bucket: str,
        key: str,
        body: bytes,
        *,
        content_type: str = "application/octet-stream",
        metadata: dict[str, str] | None = None,
    ) -> StoredObject: ...

    def put_stream(
        self,
        bucket: str,
        key: str,
        chunks: Iterable[bytes],
        *,
        content_type: str = "application/octet-stream",
    ) -> StoredObject:
        """One object whose body is the concatenation of ``chunks``, stored without holding it whole (S3: a
        multipart upload); nothing is stored if iterating ``chunks`` raises."""
        ...

    def get(self, bucket: str, key: str, *, version_id: str | None = None) -> bytes: ...

    def head(self, bucket: str, key: str) -> StoredObject | None: ...

    def list(self, bucket: str, prefix: str) -> list[StoredObject]: ...


@dataclass(frozen=True)
class FetchLogEntry:
    """One attempt of a fetcher to obtain one statement."""

    project_id: str
    account_id: str
    channel: str
    bill_date: date
    attempt: int
    status: str  # stored | unchanged | not_ready | failed | none_dropped
    at: str
    raw_key: str | None = None
    checksum: str | None = None
    size: int | None = None
    duration_ms: int | None = None
    detail: str = ""


@dataclass(frozen=True)
class NotificationClaim:
    """A report stage's claim to send one notification (``recon.reporting.notices``): the first to store it
    sends, so two executions racing for the same day and content e-mail once."""

    subject: str  # the day's notification subject (``notification_subject``)
    key: str  # what is claimed: the content as the notification that follows a given one (``claim_key``)
    execution: str | None  # the workflow execution that claims it (None: unknown, never a retry)
    run_id: str
    at: datetime


@dataclass(frozen=True)
class CaseTransition:
    """A case status the system changed against a person's decision while storing a run's results
    (``RunRepository.replace_results``); the caller records it as an audit event ``action`` on the case."""

    action: str  # "case.reopened": its difference changed | "case.not_found": the re-run no longer finds it
    before: Case
    after: Case

    @property
    def case_id(self) -> str:
        return self.after.case_id


@dataclass(frozen=True)
class CaseUpdate:
    """What the system sets on a stored case of another run (``RunRepository.update_case``)."""

    status: CaseStatus
    explained_by: CaseLink | None
    system_note: str

    def fields(self) -> dict[str, Any]:
        return {"status": self.status, "explained_by": self.explained_by, "system_note": self.system_note}


class RunRepository(Protocol):
    """Runs, statements, match groups, cases, audit events and fetch logs.

    DynamoDB implements it today; an Aurora MySQL adapter can implement the same interface later.
    """

    def put_run(self, run: Run) -> None: ...

    def get_run(self, run_id: str) -> Run | None: ...

    def list_runs(self, project_id: str, limit: int = 50) -> list[Run]: ...

    def put_statement(self, statement: Statement) -> None: ...

    def find_statement_by_checksum(
        self, project_id: str, account_id: str, checksum: str
    ) -> Statement | None: ...

    def list_statements(
        self, project_id: str, account_id: str, business_date: date, *, include_superseded: bool = False
    ) -> list[Statement]:
        """The statements filed for the account and business date that count for the day: a version a
        newer upload superseded (``recon.statement_versions``) is left out unless ``include_superseded``."""
        ...

    def get_statement(self, statement_id: str) -> Statement | None: ...

    def list_account_statements(
        self,
        project_id: str,
        account_id: str,
        *,
        ending_from: date | None = None,
        ending_to: date | None = None,
        newest_first: bool = False,
        limit: int | None = None,
    ) -> list[Statement]:
        """The account's statements (any status but ``duplicate``, not superseded) whose ``period_end`` (else
        business date) lies in [ending_from, ending_to], ordered by that date and then statement id."""
        ...

    def replace_results(
        self, run_id: str, groups: list[MatchGroup], cases: list[Case]
    ) -> list[CaseTransition]:
        """Store a run's results, replacing what an earlier attempt of the same run stored (idempotent).

        A case already stored under the same deterministic id keeps its review state (in_review, resolved)
        only while its difference is the same (``adapters._shared.merge_case``): a changed one is stored
        open with ``changed_since_review``. A reviewed case the run no longer finds is kept, closed, out of
        the run's case list (``get_case`` finds it). Returns those transitions, by case id; a repeated call
        returns none.
        """
        ...

    def list_match_groups(self, run_id: str) -> list[MatchGroup]: ...

    def list_cases(self, run_id: str) -> list[Case]: ...

    def get_case(self, case_id: str) -> Case | None: ...

    def update_case(
        self, run_id: str, case_id: str, *, if_status: CaseStatus, changes: CaseUpdate
    ) -> Case | None:
        """Set ``changes`` on the case ``case_id`` of run ``run_id`` (any run: a later run closes an earlier
        run's case) only while its status is ``if_status``, atomically (a person's decision taken meanwhile
        wins). The case as stored after the update; None when there is no such case or its status differs.
        """
        ...

    def append_audit(self, event: AuditEvent) -> None: ...

    def list_audit(self, subject: str) -> list[AuditEvent]: ...

    def claim_notification(
        self, claim: NotificationClaim, *, stale_before: datetime
    ) -> NotificationClaim | None:
        """Store ``claim`` atomically unless another claim holds its (subject, key); None when stored.

        A held claim is replaced, and the call returns None, when it was made by the same (known) execution
        (a retry: its claim is renewed) or before ``stale_before`` (its attempt ended without recording
        what it sent). Otherwise nothing is stored and the holding claim is returned.
        """
        ...

    def put_fetch_log(self, entry: FetchLogEntry) -> None: ...

    def list_fetch_log(self, project_id: str, account_id: str, bill_date: date) -> list[FetchLogEntry]: ...


class Mailer(Protocol):
    def send(self, *, sender: str, to: list[str], subject: str, html: str, text: str) -> str: ...


class AlertPublisher(Protocol):
    def publish(self, *, subject: str, message: str, attributes: dict[str, str] | None = None) -> str: ...


class ScheduleManager(Protocol):
    """One recurring schedule per project (EventBridge Scheduler in AWS)."""

    def upsert(
        self, *, name: str, expression: str, timezone: str, payload: dict[str, Any], description: str
    ) -> None:
        """Create the schedule, or update it in place when it exists (idempotent)."""
        ...

    def delete(self, name: str) -> bool:
        """Remove the schedule; False when there was none."""
        ...


class WorkflowStarter(Protocol):
    def start(self, *, name: str, payload: dict[str, Any]) -> str:
        """Start (or find, for the same name) a workflow execution; returns its id."""
        ...


class SecretUnavailable(Exception):
    """A secret could not be read (missing, no permission, not a JSON object of strings).

    The message names the secret id only, never any part of its value.
    """


class SecretsProvider(Protocol):
    """Read-only access to JSON secrets (Secrets Manager in AWS), cached for ``max_age`` seconds."""

    def get_secret(self, secret_id: str, *, force_fetch: bool = False) -> dict[str, str]:
        """The secret's JSON object; ``force_fetch`` bypasses the cache (after a rotation)."""
        ...


@dataclass(frozen=True)
class StoredDocument:
    """Where bytes being parsed were read from: the object (and version) and the SHA-256 (hex) of its bytes."""

    bucket: str
    key: str
    version_id: str | None
    sha256: str


class PdfTableReader(Protocol):
    """PDF statement -> its table rows (``recon.pdf_tables``): in this process, or in another function."""

    def read(self, data: bytes, *, stored_at: StoredDocument) -> list[PdfRow]:
        """The rows of ``data``, read from ``stored_at`` (the upload itself or, unpacked, a member of it);
        raises ``recon.pdf_tables.PdfRefusal`` for a document that cannot be read."""
        ...


class FunctionFailed(Exception):
    """A function could not be invoked, or its invocation ended in an error (raised, timed out)."""


class FunctionInvoker(Protocol):
    """Synchronous invocation of another function of the stack (AWS Lambda)."""

    def invoke(self, function_name: str, payload: dict[str, Any]) -> Any:
        """The function's JSON result; raises ``FunctionFailed``."""
        ...
