"""A statement that is missing (quarantined or not delivered) is a gap in our input, not in the money: rows
whose counterpart would be in it stay open under ``awaiting-statement:<account>`` instead of becoming
MISSING cases, and a later run with the statement places them."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pyarrow as pa
import pytest

from recon.domain import CaseType, Project
from recon.matching import match_table
from recon.pipeline.match import assemble, open_snapshot

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


# --- held across runs: a row waits for the statement of the day that lacked it -----------------------------
D1, D2, D3 = DAY, DAY + timedelta(days=1), DAY + timedelta(days=2)


def without_key_carry_over() -> Project:
    """The demo rules (no fee schedule) without the key rule's carry-over entries: nothing but the missing
    statement keeps a row open (carry_over_days stays 2)."""
    rules = [r.model_dump(mode="json") for r in demo_without_fee_schedule().rules]
    for rule in rules:
        if rule["kind"] == "key_match":
            rule["carry_over"] = []
    return Project.model_validate({**demo_without_fee_schedule().model_dump(mode="json"), "rules": rules})


def next_day(
    project: Project,
    before: Outcome | None,
    rows: list,
    day: date,
    unavailable: frozenset[str] = frozenset(),
    *,
    before_unavailable: frozenset[str] = frozenset(),
) -> Outcome:
    """A run as the match stage does it: today's rows, then the open items the run before left (its
    snapshot, with first_seen and what each row awaits)."""
    carried = open_snapshot(before.rows, before.result, before_unavailable) if before is not None else None
    table = assemble([table_of(rows)] if rows else [], carried)
    batches = before.result.next_batches() if before is not None else {}
    result = match_table(project, table, day, unavailable=unavailable, carried_batches=batches)
    assert result.placements.num_rows == table.num_rows
    return Outcome(result, table)


WECHAT = frozenset({"wechat-main"})


def _wechat_missing_day() -> list:
    """D1 without the WeChat bill: SO1 (paid by WeChat) and the WeChat credit wait; Alipay matches."""
    return [r for r in _day() if r.account_id != "wechat-main"]


def _complete_day(day: date) -> list:
    """A later day whose statements are all there and explain each other (nothing for SO1): an order, its
    WeChat payment and the T+1 credit (in the bank statement this day's run reads)."""
    n = f"{day:%d}"
    noon = datetime(day.year, day.month, day.day, 4, tzinfo=UTC)  # 12:00 Asia/Shanghai
    return [
        txn("erp", f"SO{n}", 1000, order_ref=f"SO{n}", at=noon),
        txn("wechat", f"WX{n}", 1000, order_ref=f"SO{n}", at=noon),
        txn("bank", f"B-WX{n}", 1000, value_date=day + timedelta(days=1), memo="微信支付结算", at=noon),
    ]


@pytest.mark.parametrize("rules", ["no key carry-over", "demo"])
def test_a_row_held_for_a_missing_bill_waits_for_that_bill_on_later_runs(rules: str) -> None:
    """D1 lacks the WeChat bill; D2's statements are all there, but none is D1's bill: SO1 still waits for it
    (was a 短款 on D2, or held by the key rule's carry-over with no word of the bill). On D3 (carry_over_days
    2) it is the 短款 its side implies, and the reason names the bill that never came and what to do."""
    project = without_key_carry_over() if rules != "demo" else demo_without_fee_schedule()
    day1 = next_day(project, None, _wechat_missing_day(), D1, WECHAT)
    assert day1.where("SO1")["rule"] == "awaiting-statement:wechat-main"
    snapshot = open_snapshot(day1.rows, day1.result, WECHAT)
    assert dict(zip(snapshot["txn_id"].to_pylist(), snapshot["awaiting"].to_pylist(), strict=True)) == {
        "SO1": "wechat-main@2026-11-20",
        "B-WX": "wechat-main@2026-11-20",
    }

    day2 = next_day(project, day1, _complete_day(D2), D2, before_unavailable=WECHAT)
    held = day2.where("SO1")
    assert (held["disposition"], held["rule"], held["first_seen"]) == (
        "open",
        "awaiting-statement:wechat-main",
        D1,
    )
    assert day2.cases == []
    assert day2.where("B-WX")["rule"] == "awaiting-statement:wechat-main"  # the settlement's own wait
    again = open_snapshot(day2.rows, day2.result)
    assert dict(zip(again["txn_id"].to_pylist(), again["awaiting"].to_pylist(), strict=True))["SO1"] == (
        "wechat-main@2026-11-20"
    )

    day3 = next_day(project, day2, _complete_day(D3), D3)
    case = day3.case_of("SO1")
    assert case.type is CaseType.MISSING_IN_CHANNEL
    assert case.reason == (
        "短款: the ERP booked this order but the channel never received the money: erp SO1 (199.00) has no "
        "counterpart. It stayed open since 2026-11-20 waiting for the wechat-main bill of 2026-11-20, which "
        "never arrived, and is now past the carry-over limit of 2 day(s): deliver the wechat-main bill of "
        "2026-11-20 and re-run that day and the days after it; its counterpart may be there."
    )
    assert "wechat-main@2026-11-20" in day3.case_of("B-WX").reason  # the settlement credit's own case
    assert day3.result.open_rows.size == 0


def test_a_channel_refund_held_for_a_missing_erp_export_waits_for_it() -> None:
    """The other side: a WeChat refund held because the ERP export of D1 was missing waits on D2 (the ERP's
    export of D2 is there) and is a MISSING_IN_ERP on D3 naming the export."""
    project = without_key_carry_over()
    refund = txn("wechat", "WX7#R1", -2500, order_ref="SO7", refund_ref="R1")
    day1 = next_day(project, None, [refund], D1, frozenset({"erp"}))
    assert day1.where("WX7#R1")["rule"] == "awaiting-statement:erp"
    day2 = next_day(project, day1, _complete_day(D2), D2, before_unavailable=frozenset({"erp"}))
    assert day2.where("WX7#R1")["rule"] == "awaiting-statement:erp"
    day3 = next_day(project, day2, _complete_day(D3), D3)
    case = day3.case_of("WX7#R1")
    assert case.type is CaseType.MISSING_IN_ERP
    assert case.reason.startswith("短款: the channel paid out a refund the ERP has not booked")
    assert "waiting for the erp export of 2026-11-20, which never arrived" in case.reason
    assert "deliver the erp export of 2026-11-20 and re-run that day" in case.reason


def test_a_row_waiting_for_two_missing_bills_names_both() -> None:
    """D1 and D2 both lack the WeChat bill: SO1 waits for either (its payment may be in D2's bill too)."""
    project = without_key_carry_over()
    day1 = next_day(project, None, _wechat_missing_day(), D1, WECHAT)
    erp_only = [r for r in _complete_day(D2) if r.source.value == "erp"]
    day2 = next_day(project, day1, erp_only, D2, WECHAT, before_unavailable=WECHAT)
    snapshot = open_snapshot(day2.rows, day2.result, WECHAT)
    waits = dict(zip(snapshot["txn_id"].to_pylist(), snapshot["awaiting"].to_pylist(), strict=True))
    assert waits["SO1"] == "wechat-main@2026-11-20,wechat-main@2026-11-21"
    assert waits["SO21"] == "wechat-main@2026-11-21"
    day3 = next_day(project, day2, _complete_day(D3), D3, before_unavailable=WECHAT)
    assert day3.where("SO21")["rule"] == "awaiting-statement:wechat-main"  # one day old: still waits
    assert (
        "waiting for the wechat-main bill of 2026-11-20 and the wechat-main bill of 2026-11-21, which never "
        "arrived, and is now past the carry-over limit of 2 day(s): deliver the wechat-main bill of "
        "2026-11-20 "
        "and the wechat-main bill of 2026-11-21 and re-run 2026-11-20 and 2026-11-21 and the days after them"
    ) in day3.case_of("SO1").reason


def test_a_held_row_is_placed_by_a_later_bill_or_by_the_late_bill_rerunning_its_day() -> None:
    """Waiting does not stop a row from matching: the payment in D2's bill (after midnight) takes SO1; and
    when D1's bill arrives, D1 runs again and places it (nothing carried)."""
    project = without_key_carry_over()
    day1 = next_day(project, None, _wechat_missing_day(), D1, WECHAT)
    after_midnight = datetime(2026, 11, 20, 16, 0, 5, tzinfo=UTC)  # 00:00:05 of D2, Asia/Shanghai
    late_payment = txn("wechat", "WX1", 19900, order_ref="SO1", fee=119, at=after_midnight)
    day2 = next_day(project, day1, [*_complete_day(D2), late_payment], D2, before_unavailable=WECHAT)
    assert day2.where("SO1")["disposition"] == "matched"
    rerun = next_day(project, None, _day(), D1)
    assert rerun.cases == [] and rerun.result.open_rows.size == 0
    assert open_snapshot(rerun.rows, rerun.result).num_rows == 0


def test_a_row_waiting_for_a_bank_statement_names_the_statement_and_the_run_that_reads_it() -> None:
    """A bank statement is dated after the run that reads it (T+1 here): the reason names the statement's
    date and the day to re-run."""
    rules = [r.model_dump(mode="json") for r in without_key_carry_over().rules]
    by_bank = {"kind": "key_match", "name": "erp-bank-order", "left": ["erp"], "right": ["bank"]}
    project = Project.model_validate(
        {**without_key_carry_over().model_dump(mode="json"), "rules": [*rules, by_bank]}
    )
    order = txn("erp", "SO8", 3000, order_ref="SO8")
    day1 = next_day(project, None, [order], D1, frozenset({"bank-cmb"}))
    assert day1.where("SO8")["rule"] == "awaiting-statement:bank-cmb"
    day2 = next_day(project, day1, _complete_day(D2), D2, before_unavailable=frozenset({"bank-cmb"}))
    assert day2.where("SO8")["rule"] == "awaiting-statement:bank-cmb"
    day3 = next_day(project, day2, _complete_day(D3), D3)
    assert (
        "waiting for the bank-cmb statement of 2026-11-21, which never arrived, and is now past the "
        "carry-over "
        "limit of 2 day(s): deliver the bank-cmb statement of 2026-11-21 and re-run 2026-11-20 and the days "
        "after it"
    ) in day3.case_of("SO8").reason
