from __future__ import annotations

import csv
import io
import json
from datetime import UTC, datetime

from recon.domain import Project, Run, RunStatus
from recon.matching import match_transactions
from recon.reporting import cases_csv, matches_csv, render_report, summary_json, summary_text
from recon.reporting.export import CASE_COLUMNS, MATCH_COLUMNS
from recon.resolving import classify_findings, run_accounting

from .conftest import DAY, txn
from .test_matching import _day


def _results(project: Project):
    rows = _day(
        [
            txn("erp", "SO3", 19900, order_ref="SO3"),
            txn("wechat", "WX3", 18900, order_ref="SO3"),
            txn("erp", "SO4", 9900, order_ref="SO4"),
        ]
    )
    outcome = match_transactions(project, "demo-20261120", DAY, rows)
    cases = classify_findings(project, "demo-20261120", outcome)
    run = Run(
        run_id="demo-20261120",
        project_id="demo",
        project_version=1,
        business_date=DAY,
        status=RunStatus.SUCCEEDED,
        started_at=datetime(2026, 11, 21, 1, 30, tzinfo=UTC),
        sources=run_accounting(outcome, cases),
        match_groups=len(outcome.groups),
        cases_by_type={"AMOUNT_MISMATCH": 3, "MISSING_IN_CHANNEL": 1},
    )
    return outcome, cases, run


def test_matches_csv_one_row_per_member(project: Project) -> None:
    outcome, _, _ = _results(project)
    rows = list(csv.DictReader(io.StringIO(matches_csv(outcome.groups))))
    assert list(rows[0]) == MATCH_COLUMNS
    assert len(rows) == sum(len(g.members) for g in outcome.groups)
    wx = next(r for r in rows if r["txn_id"] == "WX1")
    assert wx == {
        **wx,
        "source": "wechat",
        "amount": "199.00",
        "currency": "CNY",
        "rule": "erp-channel-order",
    }
    partner = [r for r in rows if r["group_id"] == wx["group_id"]]
    assert {r["txn_id"] for r in partner} == {"SO1", "WX1"}


def test_cases_csv_names_counterparts_and_delta(project: Project) -> None:
    _, cases, _ = _results(project)
    rows = list(csv.DictReader(io.StringIO(cases_csv(cases))))
    assert list(rows[0]) == CASE_COLUMNS
    so3 = next(r for r in rows if r["txn_id"] == "SO3")
    assert so3["type"] == "AMOUNT_MISMATCH"
    assert (so3["counterpart_source"], so3["counterpart_txn_id"], so3["delta"]) == ("wechat", "WX3", "-10.00")
    so4 = next(r for r in rows if r["txn_id"] == "SO4")
    assert (so4["type"], so4["counterpart_txn_id"], so4["amount"]) == ("MISSING_IN_CHANNEL", "", "99.00")
    settlement = next(r for r in rows if r["source"] == "bank")
    assert settlement["counterpart_txn_id"] == "wechat-main@2026-11-20"


def test_report_and_summary_show_every_source_and_case(project: Project) -> None:
    outcome, cases, run = _results(project)
    html = render_report(project, run, outcome.groups, cases)
    for needle in [
        "AMOUNT_MISMATCH",
        "MISSING_IN_CHANNEL",
        "SO4",
        "wechat-main@2026-11-20",
        "All sources balance",
    ]:
        assert needle in html
    assert "<script" not in html
    text = summary_text(project, run, cases)
    assert "erp" in text and "OK" in text and "AMOUNT_MISMATCH" in text
    data = json.loads(summary_json(run, cases))
    assert data["balanced"] is True
    assert data["sources"]["erp"]["rows_in"] == data["sources"]["erp"]["rows_out"] == 5
    assert data["cases"] == len(cases)


def test_report_escapes_hostile_text(project: Project) -> None:
    outcome, cases, run = _results(project)
    run.error = "<script>alert(1)</script>"
    html = render_report(project, run, outcome.groups, cases)
    assert "<script>alert(1)</script>" not in html and "&lt;script&gt;" in html
