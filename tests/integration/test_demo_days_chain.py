"""Consecutive demo days reconciled into one local store (moto, our ASL, our handlers): the bank statements
chain, so the second day's run is not blocked by a balance chain break, and the weekly sweep is filtered."""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

from recon.domain import Project
from recon.keys import project_config_key, raw_key
from recon.money import to_decimal
from recon.pipeline.chain import CHAIN
from recon.pipeline.projects import run_id_for
from recon_local.demo_data import BANK_ACCOUNT, generate_day
from recon_local.runtime import LocalCloud

REPO = Path(__file__).resolve().parents[2]
PROJECT_TEXT = (REPO / "local/recon_local/projects/demo.yaml").read_text("utf-8")
FIRST = date(2026, 11, 21)  # statements of Sunday 11-22 and Monday 11-23 (the weekly sweep)


def test_two_consecutive_demo_days_in_one_store_chain_their_bank_balances() -> None:
    from recon.adapters.dynamodb import DynamoRunRepository
    from recon.adapters.s3 import S3ObjectStore

    project = Project.from_yaml(PROJECT_TEXT)
    days = [generate_day(FIRST + timedelta(days=n)) for n in range(2)]
    with LocalCloud() as cloud:
        store = S3ObjectStore()
        repo = DynamoRunRepository(cloud.table_name)
        store.put(cloud.data_bucket, project_config_key(project.project_id), PROJECT_TEXT.encode("utf-8"))
        runs = []
        for day in days:
            for account_id, (name, content) in day.files.items():
                key = raw_key(project.project_id, account_id, day.statement_dates[account_id], name)
                store.put(cloud.raw_bucket, key, content)
            arn = cloud.start_execution(
                {
                    "project_id": project.project_id,
                    "business_date": day.business_date.isoformat(),
                    "trigger": "manual",
                },
                name=f"demo-{day.business_date:%Y%m%d}-chain",
            )
            assert cloud.wait(arn).status == "SUCCEEDED"
            run = repo.get_run(run_id_for(project.project_id, day.business_date))
            assert run is not None
            runs.append(run)
        second = days[1].business_date
        bank = repo.list_statements(project.project_id, BANK_ACCOUNT, second)
        cases = repo.list_cases(runs[1].run_id)

    assert all("chain" not in (run.error or "") for run in runs), [run.error for run in runs]
    # The check ran (the first day's statement is its neighbour) and held.
    chains = [t for st in bank for t in st.control_totals if t.name == CHAIN]
    assert len(chains) == 1 and chains[0].ok, chains
    assert chains[0].computed == f"{to_decimal(days[0].expected['bank_closing_minor'], 'CNY')} CNY"
    # The sweep on Monday's statement is filtered, never a case.
    planted = {(p.case_type, p.source, p.txn_id) for p in days[1].planted}
    bank_cases = {
        (c.type.value, m.source.value, m.txn_id) for c in cases for m in c.members if m.source.value == "bank"
    }
    assert bank_cases <= planted, bank_cases
