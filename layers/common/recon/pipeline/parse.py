"""Parse stage: raw statement files -> normalized Parquet, or quarantine with an error report.

Per raw object (docs/parse-stage.md):

1. The same bytes are parsed once per account (checksum). A quarantined statement is read again when the
   account's profile now resolves to another version (the user fixed the profile).
2. The account's profile (``Account.profile``: ``name`` or ``name@version``; uploaded under
   ``config/profiles/`` or built in) is resolved and handed to the parser; without one the format is
   detected from the content. An invalid profile quarantines the file with the profile's errors and alerts;
   other files and sources go on.
3. Accepted rows are marked against earlier statements of the account (``overlap_of``, recon.pipeline
   .overlap), the balance chain is checked against the neighbouring statements (recon.pipeline.chain), and
   the parser's Arrow table is written as Parquet (zstd) straight away: no per-row Python objects. A bank
   statement covering several days is also stored per booking day (``Statement.days``,
   recon.pipeline.statement_days), and the repository lists it for the run of each day it covers.
4. A rejected file is copied to ``quarantine/`` beside ``<file>.error.json`` (file, row, column, reason of
   every error, the format and profile tried, the row accounting) and an alert is published. A file whose
   own dates do not cover the date it is filed under is rejected too (a statement of another day), and so
   is a file that states an account number other than the account's declared ``number`` (a statement of
   another account: recon.pipeline.statement_account).
5. A newer upload replaces older versions of the same file (same raw key, or a quarantined file of the same
   account and days: ``recon.statement_versions``); they are marked ``superseded_by`` and no longer count for the day. An
   upload starts the day's run under a name derived from the day's statement versions, so a new version
   reconciles the day again and a re-delivered event does not.

``reparse_statement`` reads a stored statement's immutable raw object again with another profile version
and writes a new normalized object beside the old one; the Statement names the current one.
"""

from __future__ import annotations

import functools
import hashlib
import io
import json
import logging
import traceback
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from recon.domain import (
    Account,
    ControlTotal,
    Project,
    RowError,
    Source,
    Statement,
    StatementDay,
    StatementStatus,
)
from recon.keys import normalized_day_key, normalized_key, parse_raw_key, quarantine_key, raw_prefix
from recon.parsing import ParsedStatement, StatementParseError, detect_format, parse_statement
from recon.parsing.profiles import Profile
from recon.parsing.readers import pdf
from recon.ports import FunctionFailed, StoredDocument
from recon.reporting.masking import Masker, mask_digit_runs
from recon.statement_versions import ingest_order, supersedes
from recon.tables import table_to_parquet

from .chain import Balance, Balances, balances, chain_break, chain_total, with_chain
from .contracts import (
    ChannelTask,
    NextRun,
    ParseOutput,
    ReparseOutput,
    StartRunInput,
    StatementSummary,
)
from .overlap import (
    EARLIER_COLUMNS,
    IN_FILE_DUPLICATE,
    EarlierStatement,
    Supersession,
    count_marked,
    count_true,
    mark_superseded,
    overlaps,
    period_of,
)
from .profile_store import ProfileError, ProfileSpec, ProfileStore
from .projects import (
    business_dates_needing,
    load_project,
    statement_id_for,
    upload_execution_name,
)
from .run import audit
from .services import Services
from .statement_account import account_errors
from .statement_days import rows_by_day, splits_by_day
from .statement_view import retry_settled_view, view_errors

log = logging.getLogger(__name__)

_MAX_ERRORS_STORED = 200  # on the Statement and in the error report; the report says how many more there are
_MAX_ERRORS_ALERTED = 10
_CHAIN_LOOKBACK = 62  # statements searched on each side for the balance chain's neighbour


class StatementNotFound(LookupError):
    """No statement with that id."""


def _summary(statement: Statement) -> StatementSummary:
    return StatementSummary(
        statement_id=statement.statement_id,
        raw_key=statement.raw_key,
        status=statement.status.value,
        rows_read=statement.rows_read,
        rows_parsed=statement.rows_parsed,
        rows_skipped=statement.rows_skipped,
        rows_rejected=statement.rows_rejected,
        error=str(statement.errors[0]) if statement.errors else None,
        format=statement.format,
        profile=statement.profile,
        profile_version=statement.profile_version,
        rows_in_file_duplicate=statement.rows_in_file_duplicate,
        rows_overlapping=statement.rows_overlapping,
        blocked=chain_break(statement),
    )


def source_of_format(fmt: str) -> Source | None:
    """The source a format id belongs to, from its family prefix (None when the prefix does not say)."""
    prefix = fmt.split(".", 1)[0]
    return {"wechat": Source.WECHAT, "alipay": Source.ALIPAY, "erp": Source.ERP}.get(
        prefix, Source.BANK if prefix in ("camt", "mt940", "mt942", "bai2", "ofx", "bank") else None
    )


def _expectation_errors(account: Account, parsed: ParsedStatement, key: str) -> list[RowError]:
    """The file must be what the account expects: its source, and its format when the account names one."""
    errors = []
    found = source_of_format(parsed.format)
    if found is not None and found is not account.source:
        errors.append(
            RowError(
                file=key,
                row=0,
                reason=f"file is a {parsed.format} statement but account {account.account_id} "
                f"expects {account.source.value}",
            )
        )
    expected = account.format
    if expected and parsed.format != expected and not parsed.format.startswith(expected + "."):
        errors.append(
            RowError(
                file=key,
                row=0,
                reason=f"file is a {parsed.format} statement but account {account.account_id} "
                f"expects format {expected}",
            )
        )
    return errors


def _period_errors(period: tuple[date, date], key: str, *, statement_date: date) -> list[RowError]:
    """The file must cover the date it is filed under: ``period``, its own stated date and its rows' booked
    dates (``period_of``)."""
    start, end = period
    if start <= statement_date <= end:
        return []
    stated = f"{start}" if start == end else f"{start}..{end}"
    return [
        RowError(
            file=key,
            row=0,
            reason=f"statement is for {stated} (its own dates) but is filed for {statement_date}: "
            f"a statement of another day; deliver it under the date it covers",
        )
    ]


# --- reading ------------------------------------------------------------------------------------------------


@dataclass
class _Attempt:
    """One read of a raw object: the parse result (possibly partial) and everything that rejects it."""

    parsed: ParsedStatement | None
    errors: list[RowError]
    profile: str
    profile_version: str
    profile_problem: ProfileError | None = None

    @property
    def accepted(self) -> ParsedStatement | None:
        """The parse to accept, or None when anything rejects the file."""
        return None if self.errors else self.parsed


def _account_profile(svc: Services, account: Account) -> Profile | None:
    """The profile the account names (None: detect the format); raises ``ProfileError``."""
    if not account.profile:
        return None
    return ProfileStore(svc.store, svc.settings.data_bucket).resolve(ProfileSpec.parse(account.profile))


def _pdf_tables(svc: Services, base: dict[str, Any]) -> AbstractContextManager[None]:
    """Read the PDFs of the raw object ``base`` describes with the services' reader (default: in-process)."""
    reader = svc.pdf_tables
    if reader is None:
        return nullcontext()
    stored_at = StoredDocument(
        bucket=svc.settings.raw_bucket,
        key=base["raw_key"],
        version_id=base["raw_version_id"],
        sha256=base["checksum"],
    )
    return pdf.reading_with(functools.partial(reader.read, stored_at=stored_at))


def _read(
    svc: Services,
    *,
    project: Project,
    account: Account,
    statement_date: date,
    data: bytes,
    base: dict[str, Any],
    profile: Profile | ProfileError | None,
) -> _Attempt:
    """Read the raw object of the statement ``base`` describes, filed for ``statement_date``."""
    key: str = base["raw_key"]
    if isinstance(profile, ProfileError):
        error = RowError(file=profile.key or key, row=0, reason=str(profile))
        return _Attempt(None, [error], profile.name, profile.version or "", profile)
    try:
        with _pdf_tables(svc, base):
            parsed = parse_statement(
                data,
                filename=key,  # errors name the file by its S3 key
                raw_key=key,
                statement_id=base["statement_id"],
                source=account.source,
                account_id=account.account_id,
                currency=account.currency,
                timezone=project.timezone,
                profile=profile,
            )
    except FunctionFailed:
        raise  # the PDF extractor failed (throttled, timed out): the stage is retried, the file not quarantined
    except StatementParseError as exc:
        errors = list(exc.errors) or [RowError(file=key, row=0, reason=str(exc))]
        partial = exc.parsed
    except Exception as exc:  # a parser defect must not take the other files down: quarantine and alert
        # Masked as the report masks: a file name may carry the account number (an Alipay bill), and so may
        # the parser's message about it.
        masker = Masker.for_project(project)
        log.error(
            "parser failed",
            extra={
                "raw_key": masker.text(key),
                "traceback": masker.text("".join(traceback.format_exception(exc))),
            },
        )
        errors = [RowError(file=key, row=0, reason=f"internal parser error: {type(exc).__name__}: {exc}")]
        partial = None
    else:
        period = period_of(parsed.table, project.timezone, parsed.statement_date, statement_date)
        errors = [
            *_expectation_errors(account, parsed, key),
            *view_errors(svc, account, parsed, base, period=period),
            *account_errors(account, data, key),
            *_period_errors(period, key, statement_date=statement_date),
            *parsed.errors,
        ]
        partial = parsed
    name = partial.profile if partial else (profile.name if profile else "")
    version = partial.profile_version if partial else (str(profile.version) if profile else "")
    return _Attempt(partial, errors, name, version)


# --- accepting ----------------------------------------------------------------------------------------------


def _period(statement: Statement) -> tuple[date, date]:
    end = statement.period_end or statement.business_date
    return statement.period_start or end, end


def _earlier_statements(
    svc: Services,
    *,
    project: Project,
    account: Account,
    statement_id: str,
    first_parsed_at: datetime | None,
    period: tuple[date, date],
    replacing: frozenset[str],
) -> list[EarlierStatement]:
    """Accepted statements of the account, ingested before this one, whose period overlaps it (not the
    versions this one replaces: its rows are the corrected ones, not repeats)."""
    start, end = period
    mine = (first_parsed_at.astimezone(UTC).isoformat() if first_parsed_at else "", statement_id)
    found = []
    for other in svc.repo.list_account_statements(project.project_id, account.account_id, ending_from=start):
        other_start = _period(other)[0]
        if (
            other.statement_id == statement_id
            or other.statement_id in replacing
            or other.status is not StatementStatus.PARSED
            or other.parquet_key is None
            or other_start > end
            or ingest_order(other) >= mine
        ):
            continue
        found.append((other, other.parquet_key))
    found.sort(key=lambda pair: ingest_order(pair[0]))
    earlier = []
    for other, parquet_key in found:
        data = svc.store.get(svc.settings.data_bucket, parquet_key)
        parquet = pq.ParquetFile(io.BytesIO(data))
        columns = [c for c in EARLIER_COLUMNS if c in parquet.schema_arrow.names]
        start_o, end_o = _period(other)
        earlier.append(EarlierStatement(other.statement_id, start_o, end_o, parquet.read(columns=columns)))
    return earlier


def _chainable(other: Statement, *, currency: str, exclude: frozenset[str]) -> Balances | None:
    """The balances of an accepted statement that states them (None: it cannot take part in the chain)."""
    if other.status is not StatementStatus.PARSED or other.statement_id in exclude:
        return None
    return balances(other.control_totals, currency)


def _previous(
    svc: Services,
    statement: Statement,
    *,
    currency: str,
    replacing: frozenset[str],
    pending: Statement | None = None,
) -> tuple[Statement, Balance] | None:
    """The statement whose closing balance ``statement`` opens with: the account's accepted statement stating
    balances that ends last before ``statement``'s first day (``pending``: one being stored, in place of its
    stored record). A statement covering several days opens on its first day, so it is chained from the
    statement before that day, not from one ending inside its period.

    None when there is none, or when none closes the day before and ``statement`` starts inside another
    statement's period (a daily re-delivery of a day inside a weekly export): its opening is then a balance
    inside that statement, which states none, so there is nothing to compare and no break to report."""
    start = _period(statement)[0]
    exclude = replacing | {statement.statement_id}

    def listed(**window: Any) -> list[Statement]:
        stored = svc.repo.list_account_statements(
            statement.project_id, statement.account_id, limit=_CHAIN_LOOKBACK, **window
        )
        if pending is None:
            return stored
        return [*(o for o in stored if o.statement_id != pending.statement_id), pending]

    before = [
        o for o in listed(ending_to=start - timedelta(days=1), newest_first=True) if _period(o)[1] < start
    ]
    before.sort(key=lambda o: (_period(o)[1], o.statement_id), reverse=True)
    found = next(
        (
            (other, stated.closing)
            for other in before
            if (stated := _chainable(other, currency=currency, exclude=exclude)) is not None
        ),
        None,
    )
    if found is not None and _period(found[0])[1] == start - timedelta(days=1):
        return found  # it closes the day before: comparable, whatever else covers that day
    if any(
        _period(other)[0] < start <= _period(other)[1]
        and _chainable(other, currency=currency, exclude=exclude)
        for other in listed(ending_from=start)
    ):
        return None
    return found


def _next(
    svc: Services, statement: Statement, *, currency: str, replacing: frozenset[str]
) -> tuple[Statement, Balance] | None:
    """The account's statement stating balances that opens with ``statement``'s closing balance: the first
    to start after ``statement`` ends whose previous statement (``_previous``) is ``statement``."""
    end = _period(statement)[1]
    exclude = replacing | {statement.statement_id}
    for other in svc.repo.list_account_statements(
        statement.project_id, statement.account_id, ending_from=end + timedelta(days=1), limit=_CHAIN_LOOKBACK
    ):
        stated = _chainable(other, currency=currency, exclude=exclude)
        if stated is None or _period(other)[0] <= end:
            continue  # a statement overlapping this one opens inside its period, not after it
        previous = _previous(svc, other, currency=currency, replacing=replacing, pending=statement)
        if previous is None or previous[0].statement_id != statement.statement_id:
            return None  # another statement lies between them: that one is its neighbour
        return other, stated.opening
    return None


def _chain(
    svc: Services, project: Project, account: Account, statement: Statement, replacing: frozenset[str]
) -> Statement:
    """Check the statement's opening against the previous closing, and the next statement against it."""
    stated = balances(statement.control_totals, account.currency)
    if stated is None:
        return statement
    chain: ControlTotal | None = None
    previous = _previous(svc, statement, currency=account.currency, replacing=replacing)
    if previous is not None and previous[1].currency == stated.opening.currency:
        chain = chain_total(stated.opening, previous[1])
    statement = statement.model_copy(update={"control_totals": with_chain(statement.control_totals, chain)})
    reason = chain_break(statement)
    if reason and previous is not None:
        _alert_chain_break(svc, project, statement, previous[0], reason)

    following = _next(svc, statement, currency=account.currency, replacing=replacing)
    if following is not None and following[1].currency == stated.closing.currency:
        later = following[0]
        was = chain_break(later)
        updated = later.model_copy(
            update={
                "control_totals": with_chain(later.control_totals, chain_total(following[1], stated.closing))
            }
        )
        now = chain_break(updated)
        if updated != later:
            svc.repo.put_statement(updated)
            audit(
                svc,
                "system:parse",
                "statement.chain_restored" if was and not now else "statement.chain_checked",
                later.statement_id,
                previous_statement=statement.statement_id,
                ok=now is None,
            )
        if now and not was:
            _alert_chain_break(svc, project, updated, statement, now)
    return statement


def _alert_chain_break(
    svc: Services, project: Project, statement: Statement, previous: Statement, reason: str
) -> None:
    svc.alerts.publish(
        subject=f"[recon] balance chain break: {project.project_id} {statement.account_id}",
        message=f"{reason}.\nPrevious statement: {previous.statement_id} ({previous.raw_key}, covering up to "
        f"{_period(previous)[1]}).\nThe statement is kept and its rows are stored, but reconciliation of "
        f"account {statement.account_id} is blocked until the gap is closed: upload the missing statement, "
        "or re-parse the statements with a corrected profile.",
        attributes={"kind": "balance_chain_break"},
    )


def _mark_superseded(
    svc: Services, project: Project, account: Account, replaced: Supersession, *, by: str
) -> None:
    """Mark the rows of an earlier statement that this later delivery replaces (same key, other content):
    the match stage filters them and reconciles the later rows (recon.pipeline.overlap)."""
    older = svc.repo.get_statement(replaced.statement_id)
    if older is None or older.parquet_key is None:
        return
    bucket = svc.settings.data_bucket
    stored = pq.read_table(io.BytesIO(svc.store.get(bucket, older.parquet_key)))
    marked = mark_superseded(stored, by, replaced)
    svc.store.put(bucket, older.parquet_key, table_to_parquet(marked), content_type="application/x-parquet")
    update: dict[str, Any] = {"rows_overlapping": count_marked(marked)}
    filed = parse_raw_key(older.raw_key)
    if older.days and filed is not None:  # its days' objects carry the marks too: the runs read those
        update["days"] = _store_days(
            svc,
            project,
            account,
            whole=older.parquet_key,
            table=marked,
            period=(older.days[0].day, older.days[-1].day),
            filed_day=filed[2],
            rows_skipped=older.rows_skipped,
        )
    svc.repo.put_statement(older.model_copy(update=update))
    audit(
        svc,
        "system:parse",
        "statement.rows_superseded",
        older.statement_id,
        by_statement=by,
        rows=list(replaced.rows),
        by_rows=list(replaced.by_rows),
    )


def _accept(
    svc: Services,
    *,
    project: Project,
    account: Account,
    statement_date: date,
    base: dict[str, Any],
    parsed: ParsedStatement,
    replacing: frozenset[str],
) -> Statement:
    table = parsed.table
    period = period_of(table, project.timezone, parsed.statement_date, statement_date)
    earlier = _earlier_statements(
        svc,
        project=project,
        account=account,
        statement_id=base["statement_id"],
        first_parsed_at=base["parsed_at"],
        period=period,
        replacing=replacing,
    )
    table, superseded = overlaps(table, earlier, project.timezone)
    for replaced in superseded:
        _mark_superseded(svc, project, account, replaced, by=base["statement_id"])
    pkey = normalized_key(
        project.project_id,
        account.source.value,
        account.account_id,
        statement_date,
        base["statement_id"],
        profile=parsed.profile,
        profile_version=parsed.profile_version,
    )
    svc.store.put(
        svc.settings.data_bucket, pkey, table_to_parquet(table), content_type="application/x-parquet"
    )
    days = (
        _store_days(
            svc,
            project,
            account,
            whole=pkey,
            table=table,
            period=period,
            filed_day=statement_date,
            rows_skipped=parsed.rows_skipped,
        )
        if splits_by_day(account.source, period)
        else []
    )
    statement = Statement(
        **base,
        days=days,
        status=StatementStatus.PARSED,
        format=parsed.format,
        encoding=parsed.encoding,
        profile=parsed.profile,
        profile_version=parsed.profile_version,
        rows_read=parsed.rows_read,
        rows_parsed=table.num_rows,
        rows_skipped=parsed.rows_skipped,
        skipped_by_rule=parsed.skipped_by_rule,
        control_totals=parsed.control_totals,
        parquet_key=pkey,
        period_start=period[0],
        period_end=period[1],
        rows_in_file_duplicate=count_true(table, IN_FILE_DUPLICATE),
        rows_overlapping=count_marked(table),
    )
    return _chain(svc, project, account, statement, replacing)


def _store_days(
    svc: Services,
    project: Project,
    account: Account,
    *,
    whole: str,
    table: pa.Table,
    period: tuple[date, date],
    filed_day: date,
    rows_skipped: int,
) -> list[StatementDay]:
    """Store a bank statement's rows per covered day (recon.pipeline.statement_days), each read by the run
    that reads that day's statement; a day without entries has no object but is covered all the same."""
    days = []
    for day, rows in rows_by_day(table, project.timezone, period, filed_day):
        key = None
        if rows.num_rows:
            key = normalized_day_key(whole, project.project_id, account.source.value, account.account_id, day)
            svc.store.put(
                svc.settings.data_bucket, key, table_to_parquet(rows), content_type="application/x-parquet"
            )
        days.append(
            StatementDay(
                day=day,
                business_date=business_dates_needing(project, account, day)[0],
                parquet_key=key,
                rows=rows.num_rows,
                rows_skipped=rows_skipped if day == filed_day else 0,
            )
        )
    return days


# --- quarantine ---------------------------------------------------------------------------------------------


def _quarantine(
    svc: Services,
    *,
    project: Project,
    account: Account,
    statement_date: date,
    data: bytes,
    base: dict[str, Any],
    attempt: _Attempt,
) -> Statement:
    """Copy the file to quarantine/ beside an error report; the raw object itself is never touched."""
    settings = svc.settings
    raw_key: str = base["raw_key"]
    filename = raw_key.rsplit("/", 1)[-1]
    qkey = quarantine_key(project.project_id, account.account_id, statement_date, filename)
    parsed, errors = attempt.parsed, attempt.errors
    if parsed is not None:
        fmt, confidence = parsed.format, None
    elif attempt.profile_problem is None:
        fmt, confidence = detect_format(data, raw_key)
    else:
        fmt, confidence = "", None
    rows_read = parsed.rows_read if parsed else 0
    rows_skipped = parsed.rows_skipped if parsed else 0
    rows_rejected = rows_read - rows_skipped  # nothing from a quarantined file reaches matching
    report = {
        "file": raw_key,
        "raw_version_id": base["raw_version_id"],
        "checksum": base["checksum"],
        "size": base["size"],
        "statement_id": base["statement_id"],
        "project_id": project.project_id,
        "account_id": account.account_id,
        "statement_date": statement_date.isoformat(),
        "format": fmt,
        "format_confidence": confidence,
        "encoding": parsed.encoding if parsed else "",
        "profile": attempt.profile,
        "profile_version": attempt.profile_version,
        "accounting": {
            "rows_read": rows_read,
            "rows_parsed": 0,
            "rows_skipped": rows_skipped,
            "skipped_by_rule": parsed.skipped_by_rule if parsed else {},
            "rows_rejected": rows_rejected,
            "rows_valid_but_held": parsed.table.num_rows if parsed else 0,
            "rows_with_errors": len(parsed.errors) if parsed else 0,  # rows that failed validation
        },
        "control_totals": [{**t.model_dump(), "ok": t.ok} for t in (parsed.control_totals if parsed else [])],
        "errors": [e.model_dump() for e in errors[:_MAX_ERRORS_STORED]],
        "error_count": len(errors),
        "errors_not_listed": max(len(errors) - _MAX_ERRORS_STORED, 0),
    }
    svc.store.put(settings.data_bucket, qkey, data)
    svc.store.put(
        settings.data_bucket,
        qkey + ".error.json",
        json.dumps(report, ensure_ascii=False, indent=2).encode(),
        content_type="application/json",
    )
    lines = "\n".join(f"- {e}" for e in errors[:_MAX_ERRORS_ALERTED])
    more = f"\n... and {len(errors) - _MAX_ERRORS_ALERTED} more" if len(errors) > _MAX_ERRORS_ALERTED else ""
    problem = attempt.profile_problem
    if problem is not None:
        subject = f"[recon] invalid parsing profile {problem.name}: {project.project_id} {account.account_id}"
        kind = "profile_invalid"
    else:
        subject = f"[recon] statement quarantined: {project.project_id} {account.account_id}"
        kind = "statement_quarantined"
    svc.alerts.publish(
        subject=subject,
        message=f"File {raw_key} was quarantined ({len(errors)} error(s); format {fmt or 'unknown'}, profile "
        f"{attempt.profile or '-'}@{attempt.profile_version or '-'}); the run goes on with the other "
        f"sources.\n{lines}{more}\nError report: s3://{settings.data_bucket}/{qkey}.error.json",
        attributes={"kind": kind},
    )
    return Statement(
        **base,
        status=StatementStatus.QUARANTINED,
        format=fmt,
        encoding=parsed.encoding if parsed else "",
        profile=attempt.profile,
        profile_version=attempt.profile_version,
        rows_read=rows_read,
        rows_parsed=0,
        rows_skipped=rows_skipped,
        rows_rejected=rows_rejected,
        skipped_by_rule=parsed.skipped_by_rule if parsed else {},
        errors=errors[:_MAX_ERRORS_STORED],
        control_totals=parsed.control_totals if parsed else [],
        quarantine_key=qkey,
        # The slot it was delivered for: a newer upload covering that day replaces it (statement_versions).
        period_start=statement_date,
        period_end=statement_date,
    )


# --- ingestion ----------------------------------------------------------------------------------------------


def _process(
    svc: Services,
    *,
    project: Project,
    account: Account,
    statement_date: date,
    data: bytes,
    base: dict[str, Any],
    profile: Profile | ProfileError | None,
) -> tuple[Statement, list[Statement]]:
    """Read and settle a new upload; also returns the stored versions it replaces (not yet marked)."""
    attempt = _read(
        svc,
        project=project,
        account=account,
        statement_date=statement_date,
        data=data,
        base=base,
        profile=profile,
    )
    replaced = _replaced(svc, _provisional(project, statement_date, base, attempt))
    statement = _settle(
        svc,
        project=project,
        account=account,
        statement_date=statement_date,
        data=data,
        base=base,
        attempt=attempt,
        replacing=frozenset(s.statement_id for s in replaced),
    )
    return statement, replaced


def _provisional(
    project: Project, statement_date: date, base: dict[str, Any], attempt: _Attempt
) -> Statement:
    """What the statement will be stored as, as far as deciding which versions it replaces goes."""
    accepted = attempt.accepted
    if accepted is None:
        return Statement(
            **base,
            status=StatementStatus.QUARANTINED,
            period_start=statement_date,
            period_end=statement_date,
        )
    start, end = period_of(accepted.table, project.timezone, accepted.statement_date, statement_date)
    return Statement(
        **{**base, "profile": accepted.profile},
        status=StatementStatus.PARSED,
        period_start=start,
        period_end=end,
    )


def _replaced(svc: Services, statement: Statement) -> list[Statement]:
    """The day's current statements of the account that ``statement`` (a newer upload) replaces."""
    day = svc.repo.list_statements(statement.project_id, statement.account_id, statement.business_date)
    return [older for older in day if supersedes(statement, older)]


def _supersede(svc: Services, statement: Statement, replaced: list[Statement]) -> None:
    """Mark the replaced versions: their records stay for the audit trail, out of the day's files."""
    for older in replaced:
        svc.repo.put_statement(older.model_copy(update={"superseded_by": statement.statement_id}))
        audit(
            svc,
            "system:parse",
            "statement.superseded",
            older.statement_id,
            raw_key=older.raw_key,
            status=older.status.value,
            superseded_by=statement.statement_id,
            superseded_by_raw_key=statement.raw_key,
        )


def _settle(
    svc: Services,
    *,
    project: Project,
    account: Account,
    statement_date: date,
    data: bytes,
    base: dict[str, Any],
    attempt: _Attempt,
    replacing: frozenset[str] = frozenset(),
) -> Statement:
    """Accept the read, or quarantine the file when anything rejects it."""
    accepted = attempt.accepted
    if accepted is not None:
        return _accept(
            svc,
            project=project,
            account=account,
            statement_date=statement_date,
            base=base,
            parsed=accepted,
            replacing=replacing,
        )
    return _quarantine(
        svc,
        project=project,
        account=account,
        statement_date=statement_date,
        data=data,
        base=base,
        attempt=attempt,
    )


def _profile_or_problem(svc: Services, account: Account) -> Profile | ProfileError | None:
    try:
        return _account_profile(svc, account)
    except ProfileError as exc:
        return exc


def _label(profile: Profile | ProfileError | None) -> tuple[str, str]:
    if profile is None:
        return ("", "")
    if isinstance(profile, ProfileError):
        return (profile.name, profile.version or "")
    return (profile.name, str(profile.version))


def _may_retry(existing: Statement, account: Account) -> bool:
    """Same bytes again: only a file quarantined while the account names a profile is worth another read
    (its profile may have been fixed), or one quarantined for a view conflict the account's format has
    settled since; anything else gives the same result as before."""
    return (existing.status is StatementStatus.QUARANTINED and bool(account.profile)) or retry_settled_view(
        existing, account
    )


def ingest_object(
    svc: Services, *, project: Project, account: Account, statement_date: date, key: str, business_date: date
) -> Statement:
    """Parse one raw object once (by checksum); quarantine it with a full error report if it is bad."""
    settings = svc.settings
    head = svc.store.head(settings.raw_bucket, key)
    version_id = head.version_id if head else None
    data = svc.store.get(settings.raw_bucket, key, version_id=version_id)
    checksum = hashlib.sha256(data).hexdigest()
    existing = svc.repo.find_statement_by_checksum(project.project_id, account.account_id, checksum)
    profile = (
        None
        if existing is not None and not _may_retry(existing, account)
        else _profile_or_problem(svc, account)
    )
    if existing is not None:
        if not _may_retry(existing, account) or (
            _label(profile) == (existing.profile, existing.profile_version)
            and not retry_settled_view(existing, account)
        ):
            log.info(
                "statement already parsed",
                extra={
                    "raw_key": Masker.for_project(project).text(key),
                    "statement_id": existing.statement_id,
                },
            )
            if existing.superseded_by is None:  # finish what an interrupted ingestion began (idempotent)
                _supersede(svc, existing, _replaced(svc, existing))
            return existing
        # The same bytes, quarantined under another profile version: the user fixed the profile.
        base = _base_of(existing) | {"raw_key": key, "raw_version_id": version_id, "reparsed_at": svc.clock()}
    else:
        base = {
            "statement_id": statement_id_for(project.project_id, account.account_id, checksum),
            "project_id": project.project_id,
            "source": account.source,
            "account_id": account.account_id,
            "business_date": business_date,
            "raw_key": key,
            "raw_version_id": version_id,
            "checksum": checksum,
            "size": len(data),
            "parsed_at": svc.clock(),
        }
    statement, replaced = _process(
        svc,
        project=project,
        account=account,
        statement_date=statement_date,
        data=data,
        base=base,
        profile=profile,
    )
    svc.repo.put_statement(statement)
    _audit_statement(svc, statement, "statement")
    _supersede(svc, statement, replaced)
    return statement


def _base_of(statement: Statement) -> dict[str, Any]:
    """The identity of a stored statement, kept across re-parses."""
    return {
        "statement_id": statement.statement_id,
        "project_id": statement.project_id,
        "source": statement.source,
        "account_id": statement.account_id,
        "business_date": statement.business_date,
        "raw_key": statement.raw_key,
        "raw_version_id": statement.raw_version_id,
        "checksum": statement.checksum,
        "size": statement.size,
        "parsed_at": statement.parsed_at,
        "superseded_by": statement.superseded_by,
    }


def _audit_statement(svc: Services, statement: Statement, prefix: str, **extra: object) -> None:
    audit(
        svc,
        "system:parse",
        f"{prefix}.{statement.status.value}",
        statement.statement_id,
        raw_key=statement.raw_key,
        profile=statement.profile,
        profile_version=statement.profile_version,
        parquet_key=statement.parquet_key,
        rows_read=statement.rows_read,
        rows_in_file_duplicate=statement.rows_in_file_duplicate,
        rows_overlapping=statement.rows_overlapping,
        errors=len(statement.errors),
        chain_break=chain_break(statement),
        **extra,
    )


def reparse_statement(
    statement_id: str, profile_version: str | None, svc: Services, *, profile: str | None = None
) -> ReparseOutput:
    """Read a statement's raw object (the version it was read from) again with another profile version.

    The new normalized object is written beside the old one (its key names the profile version) and becomes
    current. A re-parse that fails leaves an accepted statement as it was (``rejected``); a quarantined one
    stays quarantined with the new error report. Re-run the business date afterwards to reconcile again.
    """
    current = svc.repo.get_statement(statement_id)
    if current is None:
        raise StatementNotFound(f"no statement {statement_id!r}")
    project = load_project(svc.store, svc.settings, current.project_id)
    account = project.account(current.account_id)
    parts = parse_raw_key(current.raw_key)
    if parts is None:
        raise ValueError(f"statement {statement_id} has no raw key in the raw/ layout: {current.raw_key!r}")
    statement_date = parts[2]
    name = profile or current.profile or (ProfileSpec.parse(account.profile).name if account.profile else "")
    previous = {
        "previous_profile": current.profile,
        "previous_profile_version": current.profile_version,
        "previous_parquet_key": current.parquet_key,
    }
    chosen: Profile | ProfileError
    try:
        spec = ProfileSpec.parse(f"{name}@{profile_version}" if profile_version else name)
        chosen = ProfileStore(svc.store, svc.settings.data_bucket).resolve(spec)
    except ProfileError as exc:
        chosen = exc
    if (
        not isinstance(chosen, ProfileError)
        and current.status is StatementStatus.PARSED
        and (chosen.name, str(chosen.version)) == (current.profile, current.profile_version)
    ):
        return ReparseOutput(
            statement_id=statement_id,
            status="unchanged",
            statement=_summary(current),
            parquet_key=current.parquet_key,
            **previous,
        )
    data = svc.store.get(svc.settings.raw_bucket, current.raw_key, version_id=current.raw_version_id)
    if hashlib.sha256(data).hexdigest() != current.checksum:
        raise ValueError(f"raw object of {statement_id} no longer has checksum {current.checksum}")
    base = _base_of(current) | {"reparsed_at": svc.clock()}
    if isinstance(chosen, ProfileError) and current.status is StatementStatus.PARSED:
        return _rejected(
            svc, current, [RowError(file=chosen.key or current.raw_key, row=0, reason=str(chosen))], previous
        )
    attempt = _read(
        svc,
        project=project,
        account=account,
        statement_date=statement_date,
        data=data,
        base=base,
        profile=chosen,
    )
    if current.status is StatementStatus.PARSED and attempt.accepted is None:
        # An accepted statement stays as it was when the new read fails.
        return _rejected(svc, current, attempt.errors, previous)
    statement = _settle(
        svc,
        project=project,
        account=account,
        statement_date=statement_date,
        data=data,
        base=base,
        attempt=attempt,
    )
    svc.repo.put_statement(statement)
    _audit_statement(svc, statement, "statement.reparse", **previous)
    return ReparseOutput(
        statement_id=statement_id,
        status="reparsed" if statement.status is StatementStatus.PARSED else "rejected",
        statement=_summary(statement),
        parquet_key=statement.parquet_key,
        errors=[str(e) for e in statement.errors[:_MAX_ERRORS_ALERTED]],
        **previous,
    )


def _rejected(
    svc: Services, current: Statement, errors: list[RowError], previous: dict[str, Any]
) -> ReparseOutput:
    audit(
        svc,
        "system:parse",
        "statement.reparse_rejected",
        current.statement_id,
        errors=[str(e) for e in errors[:_MAX_ERRORS_ALERTED]],
        error_count=len(errors),
    )
    return ReparseOutput(
        statement_id=current.statement_id,
        status="rejected",
        statement=_summary(current),
        parquet_key=current.parquet_key,
        errors=[str(e) for e in errors[:_MAX_ERRORS_STORED]],
        **previous,
    )


# --- stage entry points -------------------------------------------------------------------------------------


def _output(account: Account, statements: list[Statement]) -> ParseOutput:
    summaries = [_summary(s) for s in statements]
    return ParseOutput(
        account_id=account.account_id,
        source=account.source,
        statements=summaries,
        quarantined=sum(s.status is StatementStatus.QUARANTINED for s in statements),
        blocked=[s.blocked for s in summaries if s.blocked],
    )


def parse_channel(task: ChannelTask, svc: Services) -> ParseOutput:
    """Parse every raw file delivered for the task's account and statement date."""
    project = load_project(svc.store, svc.settings, task.project_id)
    account = project.account(task.account_id)
    objects = svc.store.list(
        svc.settings.raw_bucket, raw_prefix(task.project_id, task.account_id, task.statement_date)
    )
    statements = [
        ingest_object(
            svc,
            project=project,
            account=account,
            statement_date=task.statement_date,
            key=o.key,
            business_date=task.business_date,
        )
        for o in sorted(objects, key=lambda o: o.key)
    ]
    # A statement parsed earlier may have been blocked (or unblocked) since by a neighbour's arrival, or
    # replaced by a newer upload (then it is not one of the day's files).
    stored = [svc.repo.get_statement(s.statement_id) or s for s in statements]
    return _output(account, [s for s in stored if s.superseded_by is None])


def ingest_upload(bucket: str, key: str, svc: Services) -> ParseOutput | None:
    """An object arrived in the raw bucket: parse it now, and start the day's run once all inputs are in.

    A bank statement covering several days is reconciled on every day it covers whose inputs are all in,
    one day after the other: the upload starts the earliest, and each run starts the next when it ends,
    successfully or not (``upload_runs``). Run at once, a day would carry over the open items of the day
    before as they were before that day was run again with this file.
    Re-delivered events are harmless: the checksum finds the statement, and the execution name is derived
    from the business date and the versions of its statements (``upload_execution_name``), so the same
    inputs start the day at most once. A new version of a file (other bytes) makes another name: the day
    is reconciled again with it.
    """
    if bucket != svc.settings.raw_bucket:
        raise ValueError(f"event for bucket {bucket!r}, expected {svc.settings.raw_bucket!r}")
    parts = parse_raw_key(key)
    if parts is None:
        log.warning(
            "ignoring object outside the raw/<project>/<account>/<date>/<file> layout",
            extra={"key": mask_digit_runs(key)},
        )
        return None
    project_id, account_id, statement_date, _ = parts
    project = load_project(svc.store, svc.settings, project_id)
    account = project.account(account_id)
    business_dates = business_dates_needing(project, account, statement_date)
    statement = ingest_object(
        svc,
        project=project,
        account=account,
        statement_date=statement_date,
        key=key,
        business_date=business_dates[0],
    )
    # A statement covering several days is read by the run of each of them (recon.pipeline.statement_days).
    business_dates = sorted({*business_dates, *(d.business_date for d in statement.days)})
    ready = [
        (business_date, inputs)
        for business_date in business_dates
        if (inputs := _day_inputs(svc, project, business_date)) is not None
    ]
    if ready:
        first = upload_runs(project.project_id, ready)
        svc.workflow.start(
            name=first.name, payload=first.input.model_dump(mode="json", exclude_defaults=True)
        )
    return _output(account, [statement])


def upload_runs(project_id: str, days: list[tuple[date, list[Statement]]]) -> NextRun:
    """The runs an upload starts, as one chain in date order: the first day's run, whose input names the
    next day's run (``StartRunInput.then``), and so on; the state machine starts ``then`` when a run ends.

    Each run carries over the open items of the latest day before it, so a day must not start before the
    day before it has ended. Every name is ``upload_execution_name``: an event delivered again builds the
    same chain, and its first run, started already, starts nothing.
    """
    chain: NextRun | None = None
    after: list[date] = []
    for business_date, inputs in sorted(days, key=lambda day: day[0], reverse=True):
        run = StartRunInput(
            project_id=project_id,
            business_date=business_date,
            trigger="upload",
            then=chain,
            days_after=after,
        )
        chain = NextRun(name=upload_execution_name(project_id, business_date, inputs), input=run)
        after = [business_date, *after]
    if chain is None:
        raise ValueError("an upload chain needs at least one day")
    return chain


def _day_inputs(svc: Services, project: Project, business_date: date) -> list[Statement] | None:
    """The day's current statements once every account has one stored (None: inputs not complete yet).

    Checked after the upload's own statement is stored, so of files arriving together (events handled in
    any order, or at once) the one stored last sees them all and the day starts with every file.
    """
    inputs: list[Statement] = []
    for account in project.accounts:
        statements = svc.repo.list_statements(project.project_id, account.account_id, business_date)
        if not statements:
            return None
        inputs += statements
    return inputs


__all__ = [
    "StatementNotFound",
    "ingest_object",
    "ingest_upload",
    "parse_channel",
    "reparse_statement",
    "upload_runs",
]
