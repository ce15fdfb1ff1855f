"""Match stage: load the run's normalized rows, apply the project's rules, store the outcome."""

from __future__ import annotations

from recon.domain import FileAccounting, Project, StatementStatus, Transaction
from recon.keys import results_prefix
from recon.matching import MatchOutcome, match_transactions
from recon.tables import from_parquet

from .contracts import MatchInput, MatchOutput, RunRef
from .projects import load_project, statement_date_for
from .run import audit
from .services import Services

OUTCOME_FILE = "outcome.json"


def outcome_key(ref: RunRef) -> str:
    return results_prefix(ref.project_id, ref.business_date, ref.run_id) + OUTCOME_FILE


def _load_rows(
    svc: Services, project: Project, ref: RunRef
) -> tuple[list[Transaction], list[FileAccounting]]:
    rows: list[Transaction] = []
    files: list[FileAccounting] = []
    for account in project.accounts:
        # Statements are filed under the business date they serve (a bank statement of T+1 serves T).
        for st in svc.repo.list_statements(project.project_id, account.account_id, ref.business_date):
            files.append(
                FileAccounting(
                    raw_key=st.raw_key,
                    source=st.source,
                    account_id=st.account_id,
                    status=st.status.value,
                    rows_read=st.rows_read,
                    rows_parsed=st.rows_parsed,
                    rows_skipped=st.rows_skipped,
                    rows_rejected=st.rows_rejected,
                    errors=[str(e) for e in st.errors[:20]],
                )
            )
            if st.status is StatementStatus.PARSED and st.parquet_key:
                rows.extend(from_parquet(svc.store.get(svc.settings.data_bucket, st.parquet_key)))
    return rows, files


def match_run(request: MatchInput, svc: Services) -> MatchOutput:
    project = load_project(svc.store, svc.settings, request.project_id)
    rows, files = _load_rows(svc, project, request)
    outcome = match_transactions(project, request.run_id, request.business_date, rows)
    svc.store.put(
        svc.settings.data_bucket,
        outcome_key(request),
        outcome.model_dump_json().encode(),
        content_type="application/json",
    )
    run = svc.repo.get_run(request.run_id)
    if run is not None:
        run.files = files
        run.quarantined_files = sum(f.status == StatementStatus.QUARANTINED.value for f in files)
        problems = [
            f"{c.account_id}: {c.error} {c.cause or ''}".strip() for c in request.channels if c.failed
        ]
        delivered = {f.account_id for f in files}
        problems += [
            f"{a.account_id}: no statement delivered for {statement_date_for(project, a, request.business_date)}"
            for a in project.accounts
            if a.account_id not in delivered
        ]
        if problems:
            run.error = "; ".join(problems)[:2000]
        svc.repo.put_run(run)
    audit(
        svc,
        "system:match",
        "run.matched",
        request.run_id,
        rows=len(rows),
        groups=len(outcome.groups),
        findings=len(outcome.findings),
        filtered=len(outcome.filtered),
    )
    return MatchOutput(
        run_id=request.run_id,
        project_id=request.project_id,
        business_date=request.business_date,
        match_groups=len(outcome.groups),
        residue_rows=sum(len(f.members) for f in outcome.findings),
    )


def load_outcome(svc: Services, ref: RunRef) -> MatchOutcome:
    return MatchOutcome.model_validate_json(svc.store.get(svc.settings.data_bucket, outcome_key(ref)))
