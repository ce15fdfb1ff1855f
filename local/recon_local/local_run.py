"""Run the real pipeline (our ASL in moto's Step Functions, our handlers in-process) on local files."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

from recon.domain import Case, MatchGroup, OpenItem, Project, Run, Source
from recon.keys import project_config_key, raw_key, report_prefix, result_key
from recon.parsing import detect_format
from recon.pipeline.projects import run_id_for, statement_date_for

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
    """Give each file to the project's account of the source its content shows (account id prefix wins)."""
    assigned: dict[str, list[Path]] = {}
    for path in sorted(files):
        explicit = [a for a in project.accounts if path.name.startswith(f"{a.account_id}__")]
        if explicit:
            assigned.setdefault(explicit[0].account_id, []).append(path)
            continue
        fmt, confidence = detect_format(path.read_bytes(), path.name)
        source = _FORMAT_SOURCE.get(fmt.split(".", 1)[0], Source.BANK if confidence > 0 else None)
        candidates = project.accounts_of(source) if source else []
        if len(candidates) != 1:
            raise InputError(
                f"{path}: detected {fmt or 'an unknown format'}; cannot choose among "
                f"{[a.account_id for a in candidates] or 'no accounts'} — prefix the file name with "
                f"'<account_id>__' to assign it"
            )
        assigned.setdefault(candidates[0].account_id, []).append(path)
    return assigned


def run_local(
    project_text: str,
    business_date: date,
    files: list[Path],
    out_dir: Path,
    *,
    template: Path | None = None,
) -> LocalRunResult:
    project = Project.from_yaml(project_text)
    assigned = assign_inputs(project, files)
    out_dir.mkdir(parents=True, exist_ok=True)
    kwargs: dict[str, Any] = {"template_path": template} if template else {}
    with LocalCloud(**kwargs) as cloud:
        from recon.adapters.dynamodb import DynamoRunRepository
        from recon.adapters.s3 import S3ObjectStore

        store = S3ObjectStore()
        repo = DynamoRunRepository(cloud.table_name)
        store.put(cloud.data_bucket, project_config_key(project.project_id), project_text.encode("utf-8"))
        for account_id, paths in assigned.items():
            statement_date = statement_date_for(project, project.account(account_id), business_date)
            for path in paths:
                key = raw_key(project.project_id, account_id, statement_date, path.name)
                store.put(cloud.raw_bucket, key, path.read_bytes())
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
        outputs: dict[str, Path] = {}
        prefix = report_prefix(project.project_id, business_date, run_id)
        for name in OUTPUT_FILES:
            if cloud_has(store, cloud.data_bucket, prefix + name):
                target = out_dir / name
                target.write_bytes(store.get(cloud.data_bucket, prefix + name))
                outputs[name] = target
        groups, items = _results(store, cloud.data_bucket, project.project_id, business_date, run_id)
        return LocalRunResult(
            project=project,
            run=run,
            groups=groups,
            open_items=items,
            cases=repo.list_cases(run_id),
            execution_status=execution.status,
            execution_error=f"{execution.error}: {execution.cause}" if execution.error else None,
            outputs=outputs,
            emails=[_mail(m) for m in cloud.sent_emails()],
            alerts=cloud.published_alerts(),
            history_states=_entered_states(execution.history),
        )


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
