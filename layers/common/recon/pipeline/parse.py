"""Parse stage: raw statement files -> normalized Parquet, or quarantine with an error report."""

from __future__ import annotations

import hashlib
import json
import logging
from datetime import date

from recon.domain import Account, Project, RowError, Source, Statement, StatementStatus
from recon.keys import normalized_key, parse_raw_key, quarantine_key, raw_prefix
from recon.parsing import ParsedStatement, StatementParseError, parse_statement
from recon.tables import to_parquet

from .contracts import ChannelTask, ParseOutput, StartRunInput, StatementSummary
from .projects import business_dates_needing, load_project, statement_date_for, statement_id_for
from .run import audit
from .services import Services

log = logging.getLogger(__name__)

_MAX_ERRORS_STORED = 200


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
    )


def _source_of(fmt: str) -> Source | None:
    prefix = fmt.split(".", 1)[0]
    return {"wechat": Source.WECHAT, "alipay": Source.ALIPAY, "erp": Source.ERP}.get(
        prefix, Source.BANK if prefix in ("camt", "mt940", "bai2", "ofx", "bank") else None
    )


def ingest_object(
    svc: Services, *, project: Project, account: Account, statement_date: date, key: str, business_date: date
) -> Statement:
    """Parse one raw object once (by checksum); quarantine it with a full error report if it is bad."""
    settings = svc.settings
    head = svc.store.head(settings.raw_bucket, key)
    data = svc.store.get(settings.raw_bucket, key)
    checksum = hashlib.sha256(data).hexdigest()
    existing = svc.repo.find_statement_by_checksum(project.project_id, account.account_id, checksum)
    if existing is not None:
        log.info("statement already parsed", extra={"raw_key": key, "statement_id": existing.statement_id})
        return existing
    statement_id = statement_id_for(project.project_id, account.account_id, checksum)
    filename = key.rsplit("/", 1)[-1]
    base = {
        "statement_id": statement_id,
        "project_id": project.project_id,
        "source": account.source,
        "account_id": account.account_id,
        "business_date": business_date,
        "raw_key": key,
        "raw_version_id": head.version_id if head else None,
        "checksum": checksum,
        "size": len(data),
        "parsed_at": svc.clock(),
    }
    parsed: ParsedStatement | None = None
    errors: list[RowError]
    try:
        parsed = parse_statement(
            data,
            filename=key,  # errors name the file by its S3 key
            raw_key=key,
            statement_id=statement_id,
            source=account.source,
            account_id=account.account_id,
            currency=account.currency,
            timezone=project.timezone,
        )
        errors = list(parsed.errors)
        found = _source_of(parsed.format)
        if found is not None and found is not account.source:
            errors.insert(
                0,
                RowError(
                    file=key,
                    row=1,
                    reason=f"file is a {parsed.format} statement but account {account.account_id} "
                    f"expects {account.source.value}",
                ),
            )
    except StatementParseError as exc:
        errors = list(exc.errors) or [RowError(file=key, row=0, reason=str(exc))]

    if parsed is not None and not errors:
        pkey = normalized_key(
            project.project_id, account.source.value, account.account_id, statement_date, statement_id
        )
        svc.store.put(
            settings.data_bucket, pkey, to_parquet(parsed.transactions), content_type="application/x-parquet"
        )
        statement = Statement(
            **base,
            status=StatementStatus.PARSED,
            format=parsed.format,
            encoding=parsed.encoding,
            profile=parsed.profile,
            profile_version=parsed.profile_version,
            rows_read=parsed.rows_read,
            rows_parsed=len(parsed.transactions),
            rows_skipped=parsed.rows_skipped,
            skipped_by_rule=parsed.skipped_by_rule,
            control_totals=parsed.control_totals,
            parquet_key=pkey,
        )
    else:
        statement = _quarantine(
            svc,
            project=project,
            account=account,
            statement_date=statement_date,
            data=data,
            filename=filename,
            base=base,
            parsed=parsed,
            errors=errors,
        )
    svc.repo.put_statement(statement)
    audit(
        svc,
        "system:parse",
        f"statement.{statement.status.value}",
        statement.statement_id,
        raw_key=key,
        rows_read=statement.rows_read,
        errors=len(statement.errors),
    )
    return statement


def _quarantine(
    svc: Services,
    *,
    project: Project,
    account: Account,
    statement_date: date,
    data: bytes,
    filename: str,
    base: dict[str, object],
    parsed: ParsedStatement | None,
    errors: list[RowError],
) -> Statement:
    """Copy the file to quarantine/ beside an error report; the raw object itself is never touched."""
    settings = svc.settings
    qkey = quarantine_key(project.project_id, account.account_id, statement_date, filename)
    svc.store.put(settings.data_bucket, qkey, data)
    report = {
        "file": base["raw_key"],
        "checksum": base["checksum"],
        "format": parsed.format if parsed else None,
        "errors": [e.model_dump() for e in errors[:_MAX_ERRORS_STORED]],
        "error_count": len(errors),
    }
    svc.store.put(
        settings.data_bucket,
        qkey + ".error.json",
        json.dumps(report, ensure_ascii=False, indent=2).encode(),
        content_type="application/json",
    )
    rows_read = parsed.rows_read if parsed else 0
    rows_skipped = parsed.rows_skipped if parsed else 0
    rows_rejected = rows_read - rows_skipped  # nothing from a quarantined file reaches matching
    lines = "\n".join(f"- {e}" for e in errors[:10])
    more = f"\n... and {len(errors) - 10} more" if len(errors) > 10 else ""
    svc.alerts.publish(
        subject=f"[recon] statement quarantined: {project.project_id} {account.account_id}",
        message=f"File {base['raw_key']} was quarantined ({len(errors)} error(s)); the run goes on with the "
        f"other sources.\n{lines}{more}\nError report: s3://{settings.data_bucket}/{qkey}.error.json",
        attributes={"kind": "statement_quarantined"},
    )
    return Statement(
        **base,
        status=StatementStatus.QUARANTINED,
        format=parsed.format if parsed else "",
        encoding=parsed.encoding if parsed else "",
        profile=parsed.profile if parsed else "",
        profile_version=parsed.profile_version if parsed else "",
        rows_read=rows_read,
        rows_parsed=0,
        rows_skipped=rows_skipped,
        rows_rejected=rows_rejected,
        skipped_by_rule=parsed.skipped_by_rule if parsed else {},
        errors=errors[:_MAX_ERRORS_STORED],
        control_totals=parsed.control_totals if parsed else [],
        quarantine_key=qkey,
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
    return ParseOutput(
        account_id=account.account_id,
        source=account.source,
        statements=[_summary(s) for s in statements],
        quarantined=sum(s.status is StatementStatus.QUARANTINED for s in statements),
    )


def ingest_upload(bucket: str, key: str, svc: Services) -> ParseOutput | None:
    """An object arrived in the raw bucket: parse it now, and start the day's run once all inputs are in.

    Re-delivered events are harmless: the checksum finds the statement, and the execution name is fixed
    per project and business date, so the run is started at most once.
    """
    if bucket != svc.settings.raw_bucket:
        raise ValueError(f"event for bucket {bucket!r}, expected {svc.settings.raw_bucket!r}")
    parts = parse_raw_key(key)
    if parts is None:
        log.warning(
            "ignoring object outside the raw/<project>/<account>/<date>/<file> layout", extra={"key": key}
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
    for business_date in business_dates:
        if _inputs_complete(svc, project, business_date):
            svc.workflow.start(
                name=f"{project.project_id}-{business_date:%Y%m%d}-upload",
                payload=StartRunInput(
                    project_id=project.project_id, business_date=business_date, trigger="upload"
                ).model_dump(mode="json"),
            )
    return ParseOutput(
        account_id=account.account_id,
        source=account.source,
        statements=[_summary(statement)],
        quarantined=int(statement.status is StatementStatus.QUARANTINED),
    )


def _inputs_complete(svc: Services, project: Project, business_date: date) -> bool:
    for account in project.accounts:
        statement_date = statement_date_for(project, account, business_date)
        if not svc.store.list(
            svc.settings.raw_bucket, raw_prefix(project.project_id, account.account_id, statement_date)
        ):
            return False
    return True


__all__ = ["ingest_object", "ingest_upload", "parse_channel"]
