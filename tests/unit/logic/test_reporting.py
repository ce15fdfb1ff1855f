from __future__ import annotations

import csv
import io
import json
from datetime import UTC, datetime, timedelta

from recon.domain import Project, ResultsDigest, Run, RunStatus, TxnStatus
from recon.reporting import cases_csv, render_report, summary_json, summary_text
from recon.reporting.export import CASE_COLUMNS, FILTERED_COLUMNS, MATCH_COLUMNS, OPEN_ITEM_COLUMNS
from recon.reporting.tabular import filtered_csv, matches_csv, open_items_csv
from recon.resolving import open_items, run_accounting
from tests.export_contract import FOUNDATION_CASE, FOUNDATION_MATCH

from .conftest import DAY, txn
from .matching_support import Outcome, run
from .test_matching import _day


def _results(project: Project) -> tuple[Outcome, Run]:
    rows = _day(
        [
            txn("erp", "SO3", 19900, order_ref="SO3"),
            txn("wechat", "WX3", 18900, order_ref="SO3"),
            txn("erp", "SO4", 9900, order_ref="SO4"),
            txn("erp", "SO6", 500, order_ref="SO6", status=TxnStatus.CLOSED),
        ]
    )
    out = run(project, rows)
    run_ = Run(
        run_id="demo-20261120",
        project_id="demo",
        project_version=1,
        business_date=DAY,
        status=RunStatus.SUCCEEDED,
        started_at=datetime(2026, 11, 21, 1, 30, tzinfo=UTC),
        sources=run_accounting(out.placed, DAY),
        match_groups=out.result.groups.num_rows,
        cases_by_type={"AMOUNT_MISMATCH": 3, "MISSING_IN_CHANNEL": 1},
    )
    return out, run_


def _rows(data: bytes | str) -> list[dict[str, str]]:
    text = data.decode("utf-8") if isinstance(data, bytes) else data
    return list(csv.DictReader(io.StringIO(text)))


def test_matches_csv_one_row_per_member_foundation_columns_first(project: Project) -> None:
    out, _ = _results(project)
    rows = _rows(matches_csv(out.placed))
    assert list(rows[0]) == MATCH_COLUMNS and MATCH_COLUMNS[:6] == FOUNDATION_MATCH
    assert len(rows) == out.dispositions()["matched"]
    wx = next(r for r in rows if r["txn_id"] == "WX1")
    assert wx == {
        **wx,
        "source": "wechat",
        "amount": "199.00",
        "currency": "CNY",
        "rule": "erp-channel-order",
        "status": "auto",
        "confidence": "1",
        "pass": "exact_key",
    }
    partner = [r for r in rows if r["group_id"] == wx["group_id"]]
    assert {r["txn_id"] for r in partner} == {"SO1", "WX1"}
    assert [r["group_id"] for r in rows] == sorted(r["group_id"] for r in rows)


def test_cases_csv_names_counterparts_delta_severity_reason_rule(project: Project) -> None:
    out, _ = _results(project)
    rows = _rows(cases_csv(out.cases))
    assert list(rows[0]) == CASE_COLUMNS and CASE_COLUMNS[:9] == FOUNDATION_CASE
    so3 = next(r for r in rows if r["txn_id"] == "SO3")
    assert so3["type"] == "AMOUNT_MISMATCH"
    assert (so3["counterpart_source"], so3["counterpart_txn_id"], so3["delta"]) == ("wechat", "WX3", "-10.00")
    assert (so3["severity"], so3["rule"]) == ("low", "erp-channel-order") and "189.00" in so3["reason"]
    so4 = next(r for r in rows if r["txn_id"] == "SO4")
    assert (so4["type"], so4["counterpart_txn_id"], so4["amount"]) == ("MISSING_IN_CHANNEL", "", "99.00")
    assert so4["reason"].startswith("短款")
    settlement = next(r for r in rows if r["source"] == "bank")
    assert settlement["counterpart_txn_id"] == "wechat-main@2026-11-20"


def test_filtered_and_open_items_csv(project: Project) -> None:
    out, _ = _results(project)
    filtered = _rows(filtered_csv(out.placed))
    assert list(filtered[0]) == FILTERED_COLUMNS
    assert filtered == [
        {
            "source": "erp",
            "account_id": "erp",
            "txn_id": "SO6",
            "amount": "5.00",
            "currency": "CNY",
            "rule": "erp-unpaid-orders",
        }
    ]
    carry = Project.model_validate(
        {
            **project.model_dump(mode="json"),
            "rules": [
                {
                    "kind": "key_match",
                    "name": "k",
                    "left": ["erp"],
                    "right": ["wechat"],
                    "carry_over": {"sources": ["erp"]},
                }
            ],
        }
    )
    later = run(carry, [txn("erp", "SO8", 1234, order_ref="SO8")], DAY)
    items = _rows(open_items_csv(later.placed, DAY + timedelta(days=1)))  # seen again a day later
    assert list(items[0]) == OPEN_ITEM_COLUMNS
    assert items == [
        {
            "source": "erp",
            "account_id": "erp",
            "txn_id": "SO8",
            "amount": "12.34",
            "currency": "CNY",
            "first_seen": "2026-11-20",
            "age_days": "1",
        }
    ]
    assert [(o.txn_id, o.age_days, o.rule) for o in open_items(later.placed, DAY)] == [("SO8", 0, "k")]


def test_report_and_summary_show_every_source_case_and_disposition(project: Project) -> None:
    out, run_ = _results(project)
    digest = ResultsDigest(
        run_id=run_.run_id, groups_by_rule={"erp-channel-order": 3}, sample_groups=out.groups
    )
    html = render_report(project, run_, digest, out.cases)
    for needle in [
        "AMOUNT_MISMATCH",
        "MISSING_IN_CHANNEL",
        "SO4",
        "wechat-main@2026-11-20",
        "All sources balance",
        "Open items",
    ]:
        assert needle in html
    assert "<script" not in html
    text = summary_text(project, run_, out.cases)
    assert "erp" in text and "OK" in text and "AMOUNT_MISMATCH" in text and "suggested" in text
    data = json.loads(summary_json(run_, out.cases))
    assert data["balanced"] is True
    assert data["sources"]["erp"]["rows_in"] == data["sources"]["erp"]["rows_out"] == 6
    assert data["cases"] == len(out.cases)
    assert data["dispositions"] == {"matched": 7, "suggested": 0, "case": 4, "filtered": 1, "open": 0}


def test_report_escapes_hostile_text(project: Project) -> None:
    out, run_ = _results(project)
    run_.error = "<script>alert(1)</script>"
    html = render_report(project, run_, ResultsDigest(run_id=run_.run_id), out.cases)
    assert "<script>alert(1)</script>" not in html and "&lt;script&gt;" in html
