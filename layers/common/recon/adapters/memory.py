"""In-memory fakes of every port, with the semantics of the AWS adapters (no boto3).

They store what the AWS adapters store - models as their JSON, object metadata as it goes over the wire - so
masking, ordering, versioning and ``replace_results`` behave the same. The contract tests in
``tests/integration/adapters`` run the same assertions against both. Each fake is thread-safe.
"""

from __future__ import annotations

import itertools
import json
import threading
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from recon.domain import AuditEvent, Case, CaseStatus, MatchGroup, Run, Statement, StatementStatus
from recon.ports import (
    CaseTransition,
    CaseUpdate,
    FetchLogEntry,
    FunctionFailed,
    NotificationClaim,
    SecretUnavailable,
    StoredObject,
)
from recon.statement_versions import current_statements

from ._shared import (
    account_sort_date,
    alert_attributes,
    alert_message,
    alert_subject,
    also_filed_for,
    check_recipients,
    check_results,
    decode_metadata,
    encode_item,
    encode_metadata,
    execution_arn,
    execution_name,
    fetch_log_from_json,
    fetch_log_sort_key,
    fetch_log_to_json,
    merge_case,
    retire_case,
    sortable_instant,
)
from .errors import ObjectNotFoundError

# --- object store ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Version:
    version_id: str | None
    body: bytes
    content_type: str
    metadata: dict[str, str]


class MemoryObjectStore:
    """Buckets of keys; each put adds a version (``versioned=False``: replaces it and reports no version)."""

    def __init__(self, *, versioned: bool = True) -> None:
        self.versioned = versioned
        self._objects: dict[tuple[str, str], list[_Version]] = {}
        self._lock = threading.Lock()

    def put(
        self,
        bucket: str,
        key: str,
        body: bytes,
        *,
        content_type: str = "application/octet-stream",
        metadata: dict[str, str] | None = None,
    ) -> StoredObject:
        wire = encode_metadata(metadata)
        version = _Version(uuid.uuid4().hex if self.versioned else None, bytes(body), content_type, wire)
        with self._lock:
            versions = self._objects.setdefault((bucket, key), [])
            if not self.versioned:
                versions.clear()
            versions.append(version)
        return StoredObject(
            key=key, size=len(body), version_id=version.version_id, metadata=decode_metadata(wire)
        )

    def put_stream(
        self,
        bucket: str,
        key: str,
        chunks: Iterable[bytes],
        *,
        content_type: str = "application/octet-stream",
    ) -> StoredObject:
        return self.put(bucket, key, b"".join(chunks), content_type=content_type)

    def get(self, bucket: str, key: str, *, version_id: str | None = None) -> bytes:
        with self._lock:
            versions = self._objects.get((bucket, key), [])
            if version_id is None:
                if versions:
                    return versions[-1].body
            else:
                for version in versions:
                    if version.version_id == version_id:
                        return version.body
        raise ObjectNotFoundError(bucket, key, version_id)

    def head(self, bucket: str, key: str) -> StoredObject | None:
        with self._lock:
            versions = self._objects.get((bucket, key))
            if not versions:
                return None
            latest = versions[-1]
        return StoredObject(
            key=key,
            size=len(latest.body),
            version_id=latest.version_id,
            metadata=decode_metadata(latest.metadata),
        )

    def versions(self, bucket: str, key: str) -> list[str | None]:
        """Version ids of a key, oldest first (test helper)."""
        with self._lock:
            return [v.version_id for v in self._objects.get((bucket, key), [])]

    def content_type(self, bucket: str, key: str) -> str | None:
        with self._lock:
            versions = self._objects.get((bucket, key))
            return versions[-1].content_type if versions else None

    def list(self, bucket: str, prefix: str) -> list[StoredObject]:
        with self._lock:
            found = [
                StoredObject(key=k, size=len(versions[-1].body))
                for (b, k), versions in self._objects.items()
                if b == bucket and k.startswith(prefix) and versions
            ]
        # S3 lists in UTF-8 byte order, which is code point order.
        return sorted(found, key=lambda o: o.key)


# --- repository --------------------------------------------------------------------------------------------


@dataclass
class _RunResults:
    groups: dict[str, str] = field(default_factory=dict)  # group id -> JSON
    cases: dict[str, str] = field(default_factory=dict)  # case id -> JSON
    # Reviewed cases a re-run no longer found, kept closed (``retire_case``): get_case finds them, the
    # run's case list does not.
    retired: dict[str, str] = field(default_factory=dict)


def _fits(kind: str, ident: str, payload: str) -> str:
    """The payload, after the DynamoDB adapter's item size check (keys approximated by ``ident``)."""
    encode_item({"pk": ident, "sk": ident, "type": kind}, payload)
    return payload


class MemoryRunRepository:
    """``RunRepository`` in dictionaries of JSON strings, ordered like the DynamoDB adapter's queries.

    Records that would not fit into a DynamoDB item (400 KB, even compressed) raise ``ItemTooLargeError``.
    """

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self._runs: dict[str, str] = {}
        self._statements: dict[tuple[str, str, date], dict[str, str]] = {}
        self._checksums: dict[tuple[str, str, str], tuple[tuple[str, str, date], str]] = {}
        # (project, account, business date) -> statement id -> where the statement is stored: a statement
        # covering several days is listed for the business date of each (recon.pipeline.statement_days).
        self._also_filed: dict[tuple[str, str, date], dict[str, tuple[str, str, date]]] = {}
        self._results: dict[str, _RunResults] = {}
        self._audit: dict[str, dict[str, str]] = {}
        self._claims: dict[tuple[str, str], NotificationClaim] = {}
        self._fetch_log: dict[tuple[str, str, date], dict[str, str]] = {}

    # runs

    def put_run(self, run: Run) -> None:
        with self._lock:
            self._runs[run.run_id] = _fits("run", run.run_id, run.model_dump_json())

    def get_run(self, run_id: str) -> Run | None:
        with self._lock:
            data = self._runs.get(run_id)
        return Run.model_validate_json(data) if data else None

    def list_runs(self, project_id: str, limit: int = 50) -> list[Run]:
        with self._lock:
            runs = [Run.model_validate_json(d) for d in self._runs.values()]
        mine = [r for r in runs if r.project_id == project_id]
        mine.sort(key=lambda r: (r.business_date.isoformat(), r.run_id), reverse=True)
        return mine[: max(limit, 0)]

    # statements

    def put_statement(self, statement: Statement) -> None:
        where = (statement.project_id, statement.account_id, statement.business_date)
        with self._lock:
            payload = _fits("statement", statement.statement_id, statement.model_dump_json())
            self._statements.setdefault(where, {})[statement.statement_id] = payload
            for day in also_filed_for(statement):
                self._also_filed.setdefault((*where[:2], day), {})[statement.statement_id] = where
            if statement.status != StatementStatus.DUPLICATE:
                marker = (statement.project_id, statement.account_id, statement.checksum)
                self._checksums[marker] = (where, statement.statement_id)

    def find_statement_by_checksum(self, project_id: str, account_id: str, checksum: str) -> Statement | None:
        with self._lock:
            marker = self._checksums.get((project_id, account_id, checksum))
            data = self._statements.get(marker[0], {}).get(marker[1]) if marker else None
        return Statement.model_validate_json(data) if data else None

    def list_statements(
        self, project_id: str, account_id: str, business_date: date, *, include_superseded: bool = False
    ) -> list[Statement]:
        day = (project_id, account_id, business_date)
        with self._lock:
            stored = dict(self._statements.get(day, {}))
            for statement_id, where in self._also_filed.get(day, {}).items():
                stored.setdefault(statement_id, self._statements[where][statement_id])
        statements = [Statement.model_validate_json(stored[k]) for k in sorted(stored)]
        # A statement whose covered days changed since (a re-parse) is no longer listed for the day.
        statements = [s for s in statements if s.filed_for(business_date)]
        return statements if include_superseded else current_statements(statements)

    def get_statement(self, statement_id: str) -> Statement | None:
        with self._lock:
            found = next(
                (by_id[statement_id] for by_id in self._statements.values() if statement_id in by_id), None
            )
        return Statement.model_validate_json(found) if found else None

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
        with self._lock:
            payloads = [
                payload
                for (project, account, _), by_id in self._statements.items()
                if (project, account) == (project_id, account_id)
                for payload in by_id.values()
            ]
        found = []
        for payload in payloads:
            statement = Statement.model_validate_json(payload)
            ending = account_sort_date(statement)
            if statement.status is StatementStatus.DUPLICATE or statement.superseded_by:
                continue
            if (ending_from is None or ending >= ending_from) and (ending_to is None or ending <= ending_to):
                found.append(statement)
        found.sort(key=lambda st: (account_sort_date(st), st.statement_id), reverse=newest_first)
        return found if limit is None else found[: max(limit, 0)]

    # results

    def replace_results(
        self, run_id: str, groups: list[MatchGroup], cases: list[Case]
    ) -> list[CaseTransition]:
        check_results(run_id, groups, cases)
        transitions: list[CaseTransition] = []
        with self._lock:
            old = self._results.get(run_id, _RunResults())
            new = _RunResults(
                groups={g.group_id: _fits("group", g.group_id, g.model_dump_json()) for g in groups}
            )
            for case in cases:
                previous = old.cases.get(case.case_id) or old.retired.get(case.case_id)
                stored = Case.model_validate_json(previous) if previous else None
                kept, change = merge_case(stored, case)
                new.cases[case.case_id] = _fits("case", case.case_id, kept.model_dump_json())
                transitions += [change] if change else []
            for case_id, data in sorted({**old.retired, **old.cases}.items()):
                if case_id in new.cases:
                    continue
                stored = Case.model_validate_json(data)
                if case_id in old.retired:
                    new.retired[case_id] = data  # retired by an earlier attempt: stays as it was
                elif retired := retire_case(stored, run_id):
                    new.retired[case_id] = _fits("case", case_id, retired[0].model_dump_json())
                    transitions.append(retired[1])
            self._results[run_id] = new
        return sorted(transitions, key=lambda t: t.case_id)

    def list_match_groups(self, run_id: str) -> list[MatchGroup]:
        with self._lock:
            groups = dict(self._results.get(run_id, _RunResults()).groups)
        return [MatchGroup.model_validate_json(groups[k]) for k in sorted(groups)]

    def list_cases(self, run_id: str) -> list[Case]:
        with self._lock:
            cases = dict(self._results.get(run_id, _RunResults()).cases)
        return [Case.model_validate_json(cases[k]) for k in sorted(cases)]

    def get_case(self, case_id: str) -> Case | None:
        with self._lock:
            for run_id in sorted(self._results, reverse=True):
                data = self._results[run_id].cases.get(case_id) or self._results[run_id].retired.get(case_id)
                if data:
                    return Case.model_validate_json(data)
        return None

    def update_case(
        self, run_id: str, case_id: str, *, if_status: CaseStatus, changes: CaseUpdate
    ) -> Case | None:
        with self._lock:
            results = self._results.get(run_id)
            data = results.cases.get(case_id) if results else None
            if results is None or data is None:
                return None
            case = Case.model_validate_json(data)
            if case.status is not if_status:
                return None
            updated = case.model_copy(update=changes.fields())
            results.cases[case_id] = _fits("case", case_id, updated.model_dump_json())
        return updated

    def set_case_status(self, case_id: str, status: CaseStatus | str) -> None:
        """Simulate a reviewer changing a case's status (test helper; the review API owns this in AWS)."""
        with self._lock:
            for results in self._results.values():
                if case_id in results.cases:
                    case = Case.model_validate_json(results.cases[case_id])
                    case = case.model_copy(update={"status": CaseStatus(status)})
                    results.cases[case_id] = case.model_dump_json()
                    return
        raise KeyError(case_id)

    # audit

    def append_audit(self, event: AuditEvent) -> None:
        sk = f"{sortable_instant(event.at)}#{event.event_id}"
        with self._lock:
            payload = _fits("audit", event.subject + sk, event.model_dump_json())
            self._audit.setdefault(event.subject, {}).setdefault(sk, payload)

    def list_audit(self, subject: str) -> list[AuditEvent]:
        with self._lock:
            events = dict(self._audit.get(subject, {}))
        return [AuditEvent.model_validate_json(events[k]) for k in sorted(events)]

    # notification claims

    def claim_notification(
        self, claim: NotificationClaim, *, stale_before: datetime
    ) -> NotificationClaim | None:
        where = (claim.subject, claim.key)
        with self._lock:
            held = self._claims.get(where)
            renewable = held is not None and (
                (claim.execution is not None and held.execution == claim.execution)
                or sortable_instant(held.at) < sortable_instant(stale_before)  # as DynamoDB compares
            )
            if held is None or renewable:
                self._claims[where] = claim
                return None
            return held

    # fetch log

    def put_fetch_log(self, entry: FetchLogEntry) -> None:
        with self._lock:
            where = (entry.project_id, entry.account_id, entry.bill_date)
            self._fetch_log.setdefault(where, {})[fetch_log_sort_key(entry)] = fetch_log_to_json(entry)

    def list_fetch_log(self, project_id: str, account_id: str, bill_date: date) -> list[FetchLogEntry]:
        with self._lock:
            entries = dict(self._fetch_log.get((project_id, account_id, bill_date), {}))
        return [fetch_log_from_json(entries[k]) for k in sorted(entries)]

    def stored_texts(self) -> list[str]:
        """Every stored record as text (tests check that nothing sensitive is stored)."""
        with self._lock:
            texts = list(self._runs.values())
            texts += [t for s in self._statements.values() for t in s.values()]
            texts += [str(m) for m in self._checksums.items()]
            texts += [
                t
                for r in self._results.values()
                for t in itertools.chain(r.groups.values(), r.cases.values(), r.retired.values())
            ]
            texts += [t for a in self._audit.values() for t in a.values()]
            texts += [str(c) for c in self._claims.values()]
            texts += [t for f in self._fetch_log.values() for t in f.values()]
        return texts


# --- notifications and workflow ----------------------------------------------------------------------------


@dataclass(frozen=True)
class SentMail:
    message_id: str
    sender: str
    to: list[str]
    subject: str
    html: str
    text: str


class MemoryMailer:
    """Keeps sent messages in ``sent``."""

    def __init__(self) -> None:
        self.sent: list[SentMail] = []

    def send(self, *, sender: str, to: list[str], subject: str, html: str, text: str) -> str:
        recipients = check_recipients(sender, to)
        mail = SentMail(uuid.uuid4().hex, sender, recipients, " ".join(subject.split()), html, text)
        self.sent.append(mail)
        return mail.message_id


@dataclass(frozen=True)
class PublishedAlert:
    message_id: str
    subject: str
    message: str
    attributes: dict[str, str]


class MemoryAlertPublisher:
    """Keeps published alerts in ``published`` (subject and attributes as SNS would receive them)."""

    def __init__(self) -> None:
        self.published: list[PublishedAlert] = []

    def publish(self, *, subject: str, message: str, attributes: dict[str, str] | None = None) -> str:
        alert = PublishedAlert(
            uuid.uuid4().hex, alert_subject(subject), alert_message(message), alert_attributes(attributes)
        )
        self.published.append(alert)
        return alert.message_id


@dataclass(frozen=True)
class StartedExecution:
    arn: str
    name: str
    payload: dict[str, Any]


FAKE_STATE_MACHINE_ARN = "arn:aws:states:us-east-1:123456789012:stateMachine:recon"


class MemoryWorkflowStarter:
    """Records executions by (sanitised) name; starting a name again returns the first execution's ARN."""

    def __init__(
        self, state_machine_arn: str = "arn:aws:states:us-east-1:123456789012:stateMachine:recon"
    ) -> None:
        self.state_machine_arn = state_machine_arn
        self.executions: dict[str, StartedExecution] = {}
        self._lock = threading.Lock()

    def start(self, *, name: str, payload: dict[str, Any]) -> str:
        exec_name = execution_name(name)
        with self._lock:
            if exec_name not in self.executions:
                arn = execution_arn(self.state_machine_arn, exec_name)
                self.executions[exec_name] = StartedExecution(arn, exec_name, dict(payload))
            return self.executions[exec_name].arn


@dataclass
class StoredSchedule:
    name: str
    expression: str
    timezone: str
    payload: dict[str, Any]
    description: str


class MemoryScheduleManager:
    """Schedules kept in a dict by name, with the same upsert/delete semantics as EventBridge Scheduler."""

    def __init__(self) -> None:
        self.schedules: dict[str, StoredSchedule] = {}

    def upsert(
        self, *, name: str, expression: str, timezone: str, payload: dict[str, Any], description: str
    ) -> None:
        self.schedules[name] = StoredSchedule(name, expression, timezone, dict(payload), description)

    def delete(self, name: str) -> bool:
        return self.schedules.pop(name, None) is not None


# --- secrets -----------------------------------------------------------------------------------------------


class MemorySecrets:
    """``SecretsProvider`` over a dict, with the cache semantics of the Powertools adapter.

    A value read once is served from the cache until ``force_fetch``; ``rotate`` changes the stored value
    without touching the cache, like a rotation in Secrets Manager seen from a warm Lambda. ``reads`` counts
    backend reads per id.
    """

    def __init__(self, secrets: dict[str, dict[str, str]] | None = None) -> None:
        self._stored = {k: dict(v) for k, v in (secrets or {}).items()}
        self._cache: dict[str, dict[str, str]] = {}
        self.reads: dict[str, int] = {}
        self._lock = threading.Lock()

    def put(self, secret_id: str, value: dict[str, str]) -> None:
        with self._lock:
            self._stored[secret_id] = dict(value)

    rotate = put

    def get_secret(self, secret_id: str, *, force_fetch: bool = False) -> dict[str, str]:
        with self._lock:
            if not force_fetch and secret_id in self._cache:
                return dict(self._cache[secret_id])
            if secret_id not in self._stored:
                raise SecretUnavailable(f"secret {secret_id!r} could not be read (ResourceNotFoundException)")
            self.reads[secret_id] = self.reads.get(secret_id, 0) + 1
            self._cache[secret_id] = dict(self._stored[secret_id])
            return dict(self._cache[secret_id])


# --- functions ---------------------------------------------------------------------------------------------


class MemoryFunctionInvoker:
    """``FunctionInvoker`` over Python callables by function name. Payload and result go through JSON, as
    over the wire; an unknown name or a raising callable is a ``FunctionFailed``. ``calls`` records them."""

    def __init__(self, functions: dict[str, Callable[[dict[str, Any]], Any]] | None = None) -> None:
        self.functions = dict(functions or {})
        self.calls: list[tuple[str, dict[str, Any]]] = []

    def invoke(self, function_name: str, payload: dict[str, Any]) -> Any:
        event = json.loads(json.dumps(payload))
        self.calls.append((function_name, event))
        function = self.functions.get(function_name)
        if function is None:
            raise FunctionFailed(f"{function_name} could not be invoked: ResourceNotFoundException")
        try:
            return json.loads(json.dumps(function(event)))
        except Exception as exc:
            raise FunctionFailed(f"{function_name} failed: {type(exc).__name__}: {exc}") from exc
