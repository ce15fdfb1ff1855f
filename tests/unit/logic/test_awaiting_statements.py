"""A statement that is missing (quarantined or not delivered) is a gap in our input, not in the money: rows
whose counterpart would be in it stay open under ``awaiting-statement:<account>`` instead of becoming
MISSING cases, and a later run with the statement places them."""

from __future__ import annotations

from datetime import timedelta

import pyarrow as pa
import pytest

from recon.domain import CaseType, Project
from recon.matching import match_table

from .conftest import DAY, txn
from .matching_support import Outcome, table_of
from .test_matching import _day, demo_without_fee_schedule


@pytest.fixture(name="project")
def demo_project() -> Project:
    return demo_without_fee_schedule()


def run_without(project: Project, rows: list, unavailable: set[str]) -> Outcome:
    table = table_of(rows)
    result = match_table(project, table, DAY, unavailable=frozenset(unavailable))
    assert result.placements.num_rows == table.num_rows
    return Outcome(result, table)


def test_a_quarantined_channel_holds_its_orders_and_its_bank_credit_open(project: Project) -> None:
    rows = [r for r in _day([txn("erp", "SO4", 9900, order_ref="SO4")]) if r.account_id != "wechat-main"]
    out = run_without(project, rows, {"wechat-main"})
    # Alipay is complete: its orders, refund and settlement still match.
    assert out.group_of("AP2").rule == "erp-channel-order"
    assert out.group_of("B-AP").rule == "alipay-settlement"
    # No case blames the money for the missing WeChat bill: SO1 (paid by WeChat), SO4 (which channel is
    # unknown) and the WeChat settlement credit wait for it.
    assert out.cases == []
    for txn_id in ("SO1", "SO4", "B-WX"):
        placed = out.where(txn_id)
        assert placed["disposition"] == "open", txn_id
        assert placed["rule"] == "awaiting-statement:wechat-main", txn_id
    assert out.dispositions() == {"matched": 5, "open": 3}


def test_the_same_day_with_every_statement_has_the_cases(project: Project) -> None:
    """The control: without the hold the same rows are MISSING cases (the test above can fail)."""
    rows = [r for r in _day([txn("erp", "SO4", 9900, order_ref="SO4")]) if r.account_id != "wechat-main"]
    out = run_without(project, rows, set())
    assert out.case_of("SO1").type is CaseType.MISSING_IN_CHANNEL
    assert out.case_of("B-WX").type is CaseType.MISSING_IN_CHANNEL


def test_a_missing_bank_statement_keeps_the_batches_waiting(project: Project) -> None:
    rows = [r for r in _day() if r.source.value != "bank"]
    out = run_without(project, rows, {"bank-cmb"})
    assert not [c for c in out.cases if c.type is CaseType.MISSING_IN_BANK]
    waiting = {rule: [b.ref for b in batches] for rule, batches in out.result.open_batches.items()}
    assert waiting == {
        "alipay-settlement": ["alipay-main@2026-11-20"],
        "wechat-settlement": ["wechat-main@2026-11-20"],
    }
    control = run_without(project, rows, set())
    assert sorted(c.type.value for c in control.cases) == ["MISSING_IN_BANK", "MISSING_IN_BANK"]


def test_a_missing_erp_export_holds_the_channel_rows(project: Project) -> None:
    rows = [r for r in _day() if r.source.value != "erp"]
    out = run_without(project, rows, {"erp"})
    assert not [c for c in out.cases if c.type is CaseType.MISSING_IN_ERP]
    assert out.where("WX1")["rule"] == "awaiting-statement:erp"
    assert out.group_of("B-WX").rule == "wechat-settlement"  # the channel ↔ bank leg does not need the ERP


def test_held_rows_are_placed_when_the_statement_arrives(project: Project) -> None:
    """Day 1 waits for the WeChat bill; day 2 carries the held rows and matches them with it."""
    rows = [r for r in _day() if r.account_id != "wechat-main"]
    day1 = run_without(project, rows, {"wechat-main"})
    held = day1.rows.take(pa.array(day1.result.open_rows))
    assert sorted(held["txn_id"].to_pylist()) == ["B-WX", "SO1"]
    held = held.append_column("first_seen", pa.array([DAY] * held.num_rows, pa.date32()))
    payment = txn("wechat", "WX1", 19900, order_ref="SO1", fee=119)
    today = table_of([payment])
    today = today.append_column("first_seen", pa.nulls(today.num_rows, pa.date32()))
    table = pa.concat_tables([today, held], promote_options="permissive")
    day2 = match_table(project, table, DAY + timedelta(days=1))
    out = Outcome(day2, table)
    assert out.group_of("WX1").rule == "erp-channel-order"
    assert out.where("SO1")["disposition"] == "matched"
