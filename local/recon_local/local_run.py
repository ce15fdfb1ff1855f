"""Run the real pipeline (our ASL in moto's Step Functions, our handlers in-process) on local files.

One local cloud serves every business date of an invocation, so consecutive days carry over (open items,
statements, results) as they do in AWS; a new invocation starts from an empty cloud.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pyarrow.compute as pc

from recon.domain import Account, Case, MatchGroup, OpenItem, Project, Run, Source, StatementStatus
from recon.keys import project_config_key, raw_key, report_prefix, result_key
from recon.parsing import ParsedStatement, StatementParseError, detect_format, parse_statement
from recon.pipeline.overlap import booked_dates, period_of
from recon.pipeline.projects import run_id_for, statement_date_for
from recon.pipeline.statement_account import same_account, stated_accounts
from recon.pipeline.statement_days import splits_by_day
from recon.ports import ObjectStore, RunRepository
from recon.reporting.masking import Masker

from .runtime import LocalCloud

OUTPUT_FILES = (
    "report.html",
    "matches.csv",
    "cases.csv",
    "filtered.csv",
    "open_items.csv",
    "summary.json",
)


class InputError(ValueError):
    """An input file cannot be assigned to one of the project's accounts."""


@dataclass
class LocalRunResult:
    project: Project
    run: Run
    groups: list[MatchGroup]
    cases: list[Case]
    execution_status: str
    execution_error: str | None
    outputs: dict[str, Path]
    emails: list[dict[str, Any]] = field(default_factory=list)
    alerts: list[dict[str, Any]] = field(default_factory=list)
    history_states: list[str] = field(default_factory=list)
    open_items: list[OpenItem] = field(default_factory=list)


_FORMAT_SOURCE = {"wechat": Source.WECHAT, "alipay": Source.ALIPAY, "erp": Source.ERP}


def assign_inputs(project: Project, files: list[Path]) -> dict[str, list[Path]]:
    """Give each file to the project's account of the source its content shows (account id prefix wins); of
    several accounts of that source, to the one whose declared number the file states."""
    assigned: dict[str, list[Path]] = {}
    for path in sorted(files):
        explicit = [a for a in project.accounts if path.name.startswith(f"{a.account_id}__")]
        if explicit:
            assigned.setdefault(explicit[0].account_id, []).append(path)
            continue
        data = path.read_bytes()
        fmt, confidence = detect_format(data, path.name)
        source = _FORMAT_SOURCE.get(fmt.split(".", 1)[0], Source.BANK if confidence > 0 else None)
        candidates = project.accounts_of(source) if source else []
        if len(candidates) > 1 and source is not None:
            candidates = _stating(candidates, data, path.name, source) or candidates
        if len(candidates) != 1:
            # Say why in a finance user's words: "cannot choose among no accounts" told nobody that the
            # file was empty (a failed download) or no statement at all.
            deliver = "prefix its name with '<account_id>__' to deliver it to that account"
            if source is not None and candidates:
                ids = ", ".join(a.account_id for a in candidates)
                why = f"a {fmt} file, and the project has several {source.value} accounts ({ids}); {deliver}"
            else:
                if not data.strip():
                    why = "the file is empty, not a statement"
                elif source is None:
                    why = "not a statement recon can read (its content matches no known format)"
                else:
                    why = f"a {fmt} file, but the project has no {source.value} account"
                why += (
                    f"; remove it, or {deliver} (a file that cannot be read is then quarantined, naming why)"
                )
            raise InputError(f"{path}: {why}")
        assigned.setdefault(candidates[0].account_id, []).append(path)
    return assigned


def _stating(accounts: list[Account], data: bytes, name: str, source: Source) -> list[Account]:
    """Of several accounts of a source, the one whose declared number the file states (none: cannot tell)."""
    stated = stated_accounts(data, name, source)
    found = [
        a
        for a in accounts
        if a.number is not None
        and stated
        and all(same_account(n, a.number.get_secret_value(), source) for n in stated)
    ]
    return found if len(found) == 1 else []


@dataclass(frozen=True)
class FiledInput:
    """Where a local file is delivered: its account and the statement date it is filed under."""

    path: Path
    account_id: str
    statement_date: date
    note: str = ""  # a warning for the user (a statement no run of the invocation reads)


@dataclass(frozen=True)
class StatedDates:
    """What a statement's content says about its day: the date it is of, and the days it covers."""

    of: date
    first: date
    last: date


def stated_dates(project: Project, account: Account, path: Path) -> StatedDates | None:
    """The day a statement is of, read from its content: the date it states for itself (bank statements),
    else the day most of its rows were booked (bills, ERP exports); None when nothing says."""
    parsed: ParsedStatement | None
    try:
        parsed = parse_statement(
            path.read_bytes(),
            filename=path.name,
            raw_key=path.name,
            statement_id="local",
            source=account.source,
            account_id=account.account_id,
            currency=account.currency,
            timezone=project.timezone,
        )
    except StatementParseError as exc:
        parsed = exc.parsed  # the parse stage will quarantine it; its dates still say where it belongs
    except Exception:  # unreadable here: the parse stage reports it properly
        return None
    if parsed is None or (parsed.statement_date is None and parsed.table.num_rows == 0):
        return None
    first, last = period_of(parsed.table, project.timezone, parsed.statement_date, date.min)
    if parsed.statement_date is not None:
        return StatedDates(parsed.statement_date, first, last)
    days = pc.value_counts(booked_dates(parsed.table, project.timezone)).to_pylist()
    most = max(days, key=lambda d: (d["counts"], -d["values"].toordinal()))["values"]
    return StatedDates(most, first, last)


def _date_named(name: str) -> date | None:
    try:
        return date.fromisoformat(name)
    except ValueError:
        return None


def _folder_date(path: Path) -> date | None:
    """A sub-folder named YYYY-MM-DD holds statements of that date (the raw bucket's layout)."""
    return _date_named(path.parent.name)


def file_inputs(project: Project, files: list[Path], business_dates: list[date]) -> list[FiledInput]:
    """The statement date each input is filed under.

    The expected date (the file's sub-folder named YYYY-MM-DD, else, for one business date, the date that
    day's run reads from the account) when the file covers it; otherwise the date its content says it is
    of, or, for a bank statement covering several days, the first of them a run of the invocation reads
    (recon.pipeline.statement_days: each covered day's run reads that day's rows). A statement of a day no
    run of the invocation reads is filed under its own date (a run of its day would read it) and carries a
    note; it is not reconciled by these runs.
    """
    filed = []
    for account_id, paths in assign_inputs(project, files).items():
        account = project.account(account_id)
        read = {statement_date_for(project, account, d): d for d in business_dates}
        for path in paths:
            expected = _folder_date(path) or (
                statement_date_for(project, account, business_dates[0]) if len(business_dates) == 1 else None
            )
            own = stated_dates(project, account, path)
            covered = (
                [d for d in sorted(read) if own.first <= d <= own.last]
                if own is not None and splits_by_day(account.source, (own.first, own.last))
                else []
            )
            if own is not None and (expected is None or not own.first <= expected <= own.last):
                # A bank statement covering several days the runs read is filed under the first of them:
                # that day's run parses it, and each covered day's run reads its own day's rows.
                statement_date: date | None = covered[0] if covered and expected is None else own.of
            else:
                statement_date = expected
            if statement_date is None:
                raise InputError(
                    f"{path}: cannot tell which day this {account_id} statement is of; put it in a sub-folder "
                    "named by its statement date (YYYY-MM-DD), or run one business date"
                )
            note = ""
            if statement_date not in read:
                wanted = ", ".join(f"{d} (for {b})" for d, b in sorted(read.items()))
                note = (
                    f"{path.name}: {account_id} statement of {statement_date}, filed under that date; the runs "
                    f"read {account_id}'s statements of {wanted}, so these runs do not reconcile it"
                )
            filed.append(FiledInput(path, account_id, statement_date, note))
    return filed


def input_files(folder: Path) -> list[Path]:
    """The files of ``folder`` and of its sub-folders named YYYY-MM-DD (statements of that date)."""
    found = []
    for path in sorted(folder.iterdir()):
        if path.name.startswith("."):
            continue
        if path.is_file():
            found.append(path)
        elif path.is_dir() and _date_named(path.name) is not None:
            found += [p for p in sorted(path.iterdir()) if p.is_file() and not p.name.startswith(".")]
    return found


def business_days(first: date, last: date | None) -> list[date]:
    """``first`` .. ``last`` (inclusive), in order."""
    last = last or first
    if last < first:
        raise InputError(f"--to {last} is before --date {first}")
    return [first + timedelta(days=n) for n in range((last - first).days + 1)]


def run_local(
    project_text: str,
    business_date: date,
    files: list[Path],
    out_dir: Path,
    *,
    template: Path | None = None,
) -> LocalRunResult:
    """One business date; outputs straight into ``out_dir``."""
    return run_local_days(project_text, [business_date], files, out_dir, template=template)[0]


def run_local_days(
    project_text: str,
    business_dates: list[date],
    files: list[Path],
    out_dir: Path,
    *,
    template: Path | None = None,
    filed: list[FiledInput] | None = None,
) -> list[LocalRunResult]:
    """Deliver every file once, then run each business date in order in the same local cloud (carry-over
    from one day to the next as in AWS). Outputs go to ``out_dir`` for one date, else ``out_dir/<date>/``."""
    project = Project.from_yaml(project_text)
    if filed is None:
        filed = file_inputs(project, files, business_dates)
    out_dir.mkdir(parents=True, exist_ok=True)
    kwargs: dict[str, Any] = {"template_path": template} if template else {}
    results = []
    with LocalCloud(**kwargs) as cloud:
        from recon.adapters.dynamodb import DynamoRunRepository
        from recon.adapters.s3 import S3ObjectStore

        store = S3ObjectStore()
        repo = DynamoRunRepository(cloud.table_name)
        store.put(cloud.data_bucket, project_config_key(project.project_id), project_text.encode("utf-8"))
        for item in filed:
            key = raw_key(project.project_id, item.account_id, item.statement_date, item.path.name)
            store.put(cloud.raw_bucket, key, item.path.read_bytes())
        emails_seen = alerts_seen = 0
        for business_date in business_dates:
            arn = cloud.start_execution(
                {
                    "project_id": project.project_id,
                    "business_date": business_date.isoformat(),
                    "trigger": "manual",
                },
                name=f"{project.project_id}-{business_date:%Y%m%d}-manual",
            )
            execution = cloud.wait(arn)
            run_id = run_id_for(project.project_id, business_date)
            run = repo.get_run(run_id)
            if run is None:
                raise RuntimeError(f"execution {execution.status}: {execution.error} {execution.cause}")
            day_dir = out_dir if len(business_dates) == 1 else out_dir / business_date.isoformat()
            day_dir.mkdir(parents=True, exist_ok=True)
            outputs: dict[str, Path] = {}
            prefix = report_prefix(project.project_id, business_date, run_id)
            for name in OUTPUT_FILES:
                if cloud_has(store, cloud.data_bucket, prefix + name):
                    target = day_dir / name
                    target.write_bytes(store.get(cloud.data_bucket, prefix + name))
                    outputs[name] = target
            outputs.update(
                copy_error_reports(
                    store, cloud.data_bucket, repo, project, business_date=business_date, day_dir=day_dir
                )
            )
            groups, items = _results(store, cloud.data_bucket, project.project_id, business_date, run_id)
            emails, alerts = cloud.sent_emails(), cloud.published_alerts()
            results.append(
                LocalRunResult(
                    project=project,
                    run=run,
                    groups=groups,
                    open_items=items,
                    cases=repo.list_cases(run_id),
                    execution_status=execution.status,
                    execution_error=f"{execution.error}: {execution.cause}" if execution.error else None,
                    outputs=outputs,
                    emails=[_mail(m) for m in emails[emails_seen:]],
                    alerts=alerts[alerts_seen:],
                    history_states=_entered_states(execution.history),
                )
            )
            emails_seen, alerts_seen = len(emails), len(alerts)
    return results


def copy_error_reports(
    store: ObjectStore,
    bucket: str,
    repo: RunRepository,
    project: Project,
    *,
    business_date: date,
    day_dir: Path,
) -> dict[str, Path]:
    """Each of the day's quarantined files' error report (``<quarantine key>.error.json``: file, row, column,
    reason) as ``quarantine/<account>/<file>.error.json``, masked as the other outputs are, so whoever ran
    the day sees why without the data bucket."""
    masker = Masker.for_project(project)
    copied: dict[str, Path] = {}
    for account in project.accounts:
        for st in repo.list_statements(project.project_id, account.account_id, business_date):
            if st.status is not StatementStatus.QUARANTINED or not st.quarantine_key:
                continue
            key = st.quarantine_key + ".error.json"
            if not cloud_has(store, bucket, key):
                continue
            name = f"quarantine/{account.account_id}/{masker.text(key.rsplit('/', 1)[-1])}"
            target = day_dir / name
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(masker.data(store.get(bucket, key)))
            copied[name] = target
    return copied


def _results(
    store: Any, bucket: str, project_id: str, business_date: date, run_id: str
) -> tuple[list[MatchGroup], list[OpenItem]]:
    """Every match group (the repository keeps only the suggested ones) and the open items."""
    import io

    import pyarrow.parquet as pq

    from recon.resolving import groups_from_tables, open_items

    def table(name: str) -> Any:
        key = result_key(project_id, business_date, run_id, name)
        return pq.read_table(io.BytesIO(store.get(bucket, key))) if cloud_has(store, bucket, key) else None

    placements, groups, cases = table("placements.parquet"), table("groups.parquet"), table("cases.parquet")
    if placements is None or groups is None or cases is None:
        return [], []
    from recon.matching import with_identity
    from recon.pipeline.contracts import RunRef
    from recon.pipeline.match import load_identity

    ref = RunRef(run_id=run_id, project_id=project_id, business_date=business_date)
    placed = with_identity(placements, load_identity(store, bucket, ref), groups, cases)
    return groups_from_tables(run_id, groups, placed), open_items(placed, business_date)


def _mail(message: dict[str, Any]) -> dict[str, Any]:
    """SES messages as moto stores them, flattened to from / to / subject / text / html."""
    destinations = message.get("destinations") or []
    if isinstance(destinations, dict):
        destinations = [
            a for key in ("ToAddresses", "CcAddresses", "BccAddresses") for a in destinations.get(key, [])
        ]
    return {
        "from": message.get("source"),
        "to": list(destinations),
        "subject": message.get("subject"),
        "text": message.get("text") or "",
        "html": message.get("html") or message.get("body") or "",
    }


def cloud_has(store: Any, bucket: str, key: str) -> bool:
    return store.head(bucket, key) is not None


def _entered_states(history: list[dict[str, Any]]) -> list[str]:
    names = []
    for event in history:
        details = event.get("stateEnteredEventDetails")
        if details:
            names.append(str(details.get("name")))
    return names


def dump_json(data: object) -> str:
    return json.dumps(data, ensure_ascii=False, indent=2, default=str)
