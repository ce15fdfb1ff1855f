"""One bank file covering five days, uploaded once, reconciles every day as if the bank had sent one
statement a day (recon.pipeline.statement_days), through the local pipeline (moto, our ASL, our handlers)."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from collections import Counter
from datetime import date, timedelta
from pathlib import Path

import pytest

from recon.domain import CaseType
from recon_local.demo_data import BANK_ACCOUNT, DemoDay, generate_day
from recon_local.local_run import LocalRunResult, run_local_days

REPO = Path(__file__).resolve().parents[2]
PROJECT_TEXT = (REPO / "local/recon_local/projects/demo.yaml").read_text("utf-8")
FIRST = date(2026, 11, 21)
DAYS = [FIRST + timedelta(days=n) for n in range(5)]  # longer than carry_over_days (2)
CAMT = "urn:iso:std:iso:20022:tech:xsd:camt.053.001.08"


def _one_camt(statements: list[bytes]) -> bytes:
    """The days' camt.053 documents as one document whose statements (<Stmt>) are the days' statements, as a
    bank's export of several days is."""
    ET.register_namespace("", CAMT)
    first = ET.fromstring(statements[0])
    body = first.find(f"{{{CAMT}}}BkToCstmrStmt")
    assert body is not None
    for other in statements[1:]:
        body.extend(ET.fromstring(other).iter(f"{{{CAMT}}}Stmt"))
    document: bytes = ET.tostring(first, encoding="utf-8")
    return b'<?xml version="1.0" encoding="UTF-8"?>\n' + document


def _write(folder: Path, days: list[DemoDay], *, one_bank_file: bool) -> list[Path]:
    folder.mkdir(parents=True)
    paths = []
    for day in days:
        for account_id, (name, content) in day.files.items():
            if account_id == BANK_ACCOUNT and one_bank_file:
                continue
            (folder / name).write_bytes(content)
            paths.append(folder / name)
    if one_bank_file:
        week = folder / "camt053_bank-cmb_20261122-20261126.xml"
        week.write_bytes(_one_camt([day.files[BANK_ACCOUNT][1] for day in days]))
        paths.append(week)
    return sorted(paths)


def _cases(result: LocalRunResult) -> Counter[tuple[str, tuple[tuple[str, str], ...]]]:
    return Counter(
        (c.type.value, tuple(sorted((m.source.value, m.txn_id) for m in c.members))) for c in result.cases
    )


def _settled(result: LocalRunResult) -> list[tuple[str, ...]]:
    """The day's settlement groups: the bank credit and the channel days it settles."""
    return sorted(
        tuple(sorted(f"{m.source.value}:{m.txn_id}" for m in g.members))
        for g in result.groups
        if g.rule.endswith("-settlement")
    )


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> tuple[list[LocalRunResult], list[LocalRunResult]]:
    days = [generate_day(d) for d in DAYS]
    base = tmp_path_factory.mktemp("multi-day")
    daily = run_local_days(
        PROJECT_TEXT, DAYS, _write(base / "daily", days, one_bank_file=False), base / "out-daily"
    )
    weekly = run_local_days(
        PROJECT_TEXT, DAYS, _write(base / "weekly", days, one_bank_file=True), base / "out-weekly"
    )
    return daily, weekly


def test_every_day_of_one_bank_file_is_reconciled_as_if_the_bank_sent_one_statement_a_day(
    runs: tuple[list[LocalRunResult], list[LocalRunResult]],
) -> None:
    daily, weekly = runs
    assert [w.execution_status for w in weekly] == ["SUCCEEDED"] * len(DAYS), [
        w.execution_error for w in weekly
    ]
    # The same cases every day as with one statement a day: each settlement credit matched on its own day, no
    # false 长款 (a later day's credit unexplained) or 短款 (a day's batch without its credit).
    assert [_cases(w) for w in weekly] == [_cases(d) for d in daily]
    assert [_settled(w) for w in weekly] == [_settled(d) for d in daily]
    for week in weekly:
        day = week.run.business_date
        # The bank file is among each day's files: no day waits for a statement or reports one missing.
        assert "no statement" not in (week.run.error or ""), (day, week.run.error)
        assert "awaiting" not in (week.run.error or ""), (day, week.run.error)
        assert not [o for o in week.open_items if o.rule.startswith("awaiting-statement")], day
        assert _settled(week), day
        bank_cases = {c.type for c in week.cases if any(m.source.value == "bank" for m in c.members)}
        assert CaseType.MISSING_IN_BANK not in bank_cases and CaseType.MISSING_IN_CHANNEL not in bank_cases


def test_rows_in_equal_rows_out_per_run_and_the_days_add_up_to_the_file(
    runs: tuple[list[LocalRunResult], list[LocalRunResult]],
) -> None:
    daily, weekly = runs
    bank_files = []
    for one_a_day, week in zip(daily, weekly, strict=True):
        summary = json.loads(week.outputs["summary.json"].read_text("utf-8"))
        for source in summary["sources"].values():
            assert source["rows_in"] == source["rows_out"], summary["sources"]
        # The run read that day's rows of the file, as many as the day's own statement holds.
        (bank,) = [f for f in summary["files"] if f["account_id"] == BANK_ACCOUNT]
        (own,) = [f for f in one_a_day.run.files if f.account_id == BANK_ACCOUNT]
        assert bank["rows_parsed"] == own.rows_parsed and bank["day"] == str(
            week.run.business_date + timedelta(1)
        )
        assert bank["rows_read"] == bank["rows_parsed"] + bank["rows_skipped"] + bank["rows_rejected"]
        bank_files.append(bank)
    # Every row of the file is counted by exactly one day's run.
    assert len({f["raw_key"] for f in bank_files}) == 1
    assert sum(f["rows_read"] for f in bank_files) == bank_files[0]["file_rows_read"]
