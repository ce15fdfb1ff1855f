"""Settlement across runs, a treasury lead's review: a credit waiting for a missing channel bill (B10), a
payout later than the rule's lags (B13) and a reversal in a later run than its credit (B9). Each spans two
or more business days, the next run carrying what the one before left (``MatchResult.next_batches``)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from recon.domain import CaseLink, CaseType, Project, Transaction, TxnType
from recon.keys import open_batches_key
from recon.matching import match_table
from recon.matching.partition import batches_from_json
from recon.matching.settlement import batches_to_json
from recon.reporting.export import CaseMoney, case_money

from .conftest import DAY, memory_services
from .matching_support import Outcome, partitioned, run, table_of
from .test_carry_over import _deliver as deliver
from .test_carry_over import _run_day as run_day
from .test_settlement_lags import WECHAT_MEMO
from .test_settlement_review import credit, next_day, project, sale, settlement_cases

D1, D2, D3, D4, D5 = (DAY + timedelta(days=k) for k in range(5))


def with_carry_over(days: int) -> Project:
    return project([1]).model_copy(update={"carry_over_days": days})


def first_day(p: Project, rows: list[Transaction], day: date, unavailable: frozenset[str]) -> Outcome:
    table = table_of(rows)
    result = match_table(p, table, day, unavailable=unavailable)
    assert result.placements.num_rows == table.num_rows
    return Outcome(result, table, f"{p.project_id}-{day:%Y%m%d}")


# --- B10: a credit waiting for a missing channel bill ---------------------------------------------------------
def test_a_credit_waiting_for_a_missing_bill_waits_up_to_the_carry_over_limit_and_then_names_the_bill() -> (
    None
):
    """Day 1's WeChat bill is missing, its payout W1 arrives: W1 waits for the bill. The next runs have their
    own bills, not day 1's: W1 keeps waiting until the project's limit (3 days), not 1 day, and its case then
    says which bill never arrived and the real limit."""
    p = with_carry_over(3)
    day1 = first_day(p, [credit("W1", 1000, D2)], D1, frozenset({"wechat-main"}))
    assert day1.where("W1")["rule"] == "awaiting-statement:wechat-main"
    day2 = next_day(p, day1, [*sale("2", 500, D2), credit("W2", 500, D3)], D2)
    assert (day2.where("W1")["disposition"], day2.where("W1")["rule"]) == (
        "open",
        "awaiting-statement:wechat-main",
    )
    assert day2.group_of("W2").settles == ["wechat-main@2026-11-21"]
    assert day2.cases == []
    day3 = next_day(p, day2, [*sale("3", 700, D3), credit("W3", 700, D4)], D3)
    assert day3.where("W1")["disposition"] == "open" and day3.cases == []
    day4 = next_day(p, day3, [*sale("4", 300, D4), credit("W4", 300, D5)], D4)
    case = day4.case_of("W1")
    assert (case.type, case.delta_minor, case.currency) == (CaseType.MISSING_IN_CHANNEL, 1000, "CNY")
    assert case.reason == (
        "长款: money arrived in the bank that no channel settlement explains: bank W1 10.00 CNY (value date "
        "2026-11-21) can only settle wechat-main@2026-11-20 (T+1), and no run since the credit arrived had "
        "that bill. It stayed open since 2026-11-20 and is now past the carry-over limit of 3 day(s): deliver "
        "the wechat-main bill of 2026-11-20 and re-run that day, or find what else the credit pays."
    )
    assert [m.txn_id for c in day4.cases for m in c.members] == ["W1"]


def test_a_credit_early_for_its_day_waits_for_that_days_missing_bill_too() -> None:
    """W9 (value date D3) may pay day 2, which the run of day 1 has not loaded; day 2's bill is then missing:
    W9 waits for it on the runs after, until the limit."""
    p = with_carry_over(3)
    day1 = run(p, [*sale("1", 1000, D1), credit("W1", 1000, D2), credit("W9", 1234, D3)], D1)
    assert day1.where("W9")["disposition"] == "open"
    erp_only = [r for r in sale("2", 500, D2) if r.source.value == "erp"]
    day2 = next_day(p, day1, erp_only, D2, unavailable=frozenset({"wechat-main"}))
    assert day2.where("W9")["rule"] == "awaiting-statement:wechat-main"
    day3 = next_day(p, day2, [*sale("3", 700, D3), credit("W3", 700, D4)], D3)
    assert day3.where("W9")["rule"] == "awaiting-statement:wechat-main" and settlement_cases(day3) == []
    day4 = next_day(p, day3, [*sale("4", 300, D4), credit("W4", 300, D5)], D4)
    assert "can only settle wechat-main@2026-11-21 (T+1)" in day4.case_of("W9").reason


def test_a_credit_held_for_a_missing_bill_is_matched_when_the_bill_arrives() -> None:
    """The bill of day 1 arrives after the run of day 2: day 1 runs again with it (statement versions), and
    day 2 after it; the credit settles day 1 and nothing is a case."""
    p = with_carry_over(3)
    day1 = first_day(p, [credit("W1", 1000, D2)], D1, frozenset({"wechat-main"}))
    day2_rows = [*sale("2", 500, D2), credit("W2", 500, D3)]
    day2 = next_day(p, day1, day2_rows, D2)
    assert day2.where("W1")["disposition"] == "open"  # still waiting for the bill
    again1 = run(p, [*sale("1", 1000, D1), credit("W1", 1000, D2)], D1)
    assert again1.group_of("W1").settles == ["wechat-main@2026-11-20"]
    again2 = next_day(p, again1, day2_rows, D2)
    assert again2.cases == [] and again2.group_of("W2").settles == ["wechat-main@2026-11-21"]


def test_a_carried_row_decided_before_the_limit_does_not_say_it_is_past_the_limit() -> None:
    """A credit that may settle a channel day not loaded yet waits for it; that day's bill does not explain
    it: it is unexplained after 1 day of a 3-day limit, and its reason no longer claims the limit passed."""
    p = with_carry_over(3)
    early = credit("W9", 1234, D3)  # value date D3: T+1 of D2, a day the run of D1 has not loaded
    day1 = run(p, [*sale("1", 1000, D1), credit("W1", 1000, D2), early], D1)
    assert day1.where("W9")["disposition"] == "open"
    day2 = next_day(p, day1, [*sale("2", 500, D2), credit("W2", 500, D3)], D2)
    reason = day2.case_of("W9").reason
    assert "past the carry-over limit" not in reason
    assert reason.endswith(
        "It stayed open since 2026-11-20; the statements read since do not explain it (decided before the "
        "carry-over limit of 3 day(s))."
    )


# --- B13: a payout later than the rule's lags ---------------------------------------------------------------
@pytest.mark.parametrize("day2_paid", [True, False], ids=["day-2-paid", "day-2-unpaid"])
def test_a_payout_later_than_the_lags_is_one_time_mismatch_naming_the_earlier_missing_case(
    day2_paid: bool,
) -> None:
    """Lag [1]: day 1's payout comes T+2. The run of day 1 read the T+1 statement and reported the day
    MISSING_IN_BANK; the run of day 2 reads the credit. Before: a 长款 for the credit (or, day 2 unpaid, an
    AMOUNT_MISMATCH of day 2 against day 1's payout). Now: one TIME_MISMATCH linking the credit and day 1,
    naming the earlier case to close."""
    p = project([1])
    day1 = run(p, sale("1", 1000, D1), D1)
    (missing,) = [c for c in day1.cases if c.type is CaseType.MISSING_IN_BANK]
    assert missing.reason == (
        "短款: the channel settled this day but no matching bank credit arrived: wechat-main@2026-11-20 net "
        "10.00 (T+1) has no credit on bank-cmb. If the payout arrives later, a run of the next 2 day(s) that "
        "reads it links it to this case and closes it (TIME_MISMATCH; an AMOUNT_MISMATCH of the difference "
        "if it is off the net and its memo names the day)."
    )
    late = credit("L1", 1000, D3)  # T+2 of day 1, and its memo names no day
    day2 = next_day(p, day1, [*sale("2", 500, D2), *([credit("W2", 500, D3)] if day2_paid else []), late], D2)
    case = day2.case_of("L1")
    assert (case.type, case.delta_minor, case.currency) == (CaseType.TIME_MISMATCH, 1000, "CNY")
    assert [m.txn_id for m in case.counterpart] == ["wechat-main@2026-11-20"]
    assert case.reason == (
        "The payout of wechat-main@2026-11-20 (net 10.00 CNY) arrived late: bank L1 10.00 CNY with value date "
        "2026-11-22 is T+2, 1 day(s) later than the rule's T+1. The run of 2026-11-20 reported the day "
        f"MISSING_IN_BANK (case {missing.case_id}) because no credit had arrived by then: this credit pays it, "
        "nothing is missing — that case is closed automatically (one in review is only noted). If the channel "
        "pays this late regularly, add 2 to the rule's lag_days."
    )
    found = sorted((t, d) for t, _, d, _ in settlement_cases(day2))
    assert found == ([] if day2_paid else [("MISSING_IN_BANK", -500)]) + [("TIME_MISMATCH", 1000)]
    assert not [c for c in day2.cases if c.type in (CaseType.MISSING_IN_CHANNEL, CaseType.AMOUNT_MISMATCH)]


def test_a_late_payout_past_the_carry_over_limit_is_not_linked() -> None:
    """Day 1 is remembered for carry_over_days (2) runs: a payout T+4 is an unexplained credit, as before."""
    p = project([1])
    day1 = run(p, sale("1", 1000, D1), D1)
    day2 = next_day(p, day1, [*sale("2", 500, D2), credit("W2", 500, D3)], D2)
    day3 = next_day(p, day2, [*sale("3", 700, D3), credit("W3", 700, D4)], D3)
    assert day3.result.decided_batches["wechat-settlement"][0].ref == "wechat-main@2026-11-21"
    day4 = next_day(p, day3, [*sale("4", 300, D4), credit("W4", 300, D5), credit("L1", 1000, D5)], D4)
    assert day4.case_of("L1").type is CaseType.MISSING_IN_CHANNEL


# --- D1: a late payout off the day's net, its memo naming the day ------------------------------------------------
@pytest.mark.parametrize(
    ("amount", "word", "how", "side"),
    [(990, "短款", "short", "shortage"), (1015, "长款", "over", "surplus")],
    ids=["short", "over"],
)
@pytest.mark.parametrize("day2_paid", [True, False], ids=["day-2-paid", "day-2-unpaid"])
def test_a_late_payout_off_the_net_whose_memo_names_the_day_is_one_amount_mismatch_closing_the_earlier_case(
    amount: int, word: str, how: str, side: str, day2_paid: bool
) -> None:
    """Lag [1]: day 1 (net 10.00) was reported MISSING_IN_BANK; its payout comes T+2, off the net beyond the
    tolerance, its memo naming 20261120 (as WeChat Pay and Alipay do). Before: an unexplained 长款 for the whole
    credit beside day 1's open 短款 (both at stake). Now: one AMOUNT_MISMATCH (the money differs, and it is
    late), at stake only the difference, closing day 1's case; day 2 is decided on its own."""
    p = project([1])
    day1 = run(p, sale("1", 1000, D1), D1)
    (missing,) = [c for c in day1.cases if c.type is CaseType.MISSING_IN_BANK]
    late = credit("L1", amount, D3, memo=f"{WECHAT_MEMO} 20261120")
    day2 = next_day(p, day1, [*sale("2", 500, D2), *([credit("W2", 500, D3)] if day2_paid else []), late], D2)
    case = day2.case_of("L1")
    delta = amount - 1000
    than = "short of" if delta < 0 else "over"
    assert (case.type, case.delta_minor, case.currency) == (CaseType.AMOUNT_MISMATCH, delta, "CNY")
    assert [(m.txn_id, m.amount_minor) for m in case.counterpart] == [("wechat-main@2026-11-20", 1000)]
    assert case.closes == [CaseLink(case_id=missing.case_id, business_date=D1)]
    gap = f"{abs(delta) / 100:.2f}"
    assert case.reason == (
        f"{word}: the payout of wechat-main@2026-11-20 arrived late and {gap} CNY {how}: bank L1 "
        f"{amount / 100:.2f} CNY (its memo names 2026-11-20) with value date 2026-11-22 is T+2, 1 day(s) later "
        f"than the rule's T+1, and the day's net is 10.00 CNY (Δ {delta / 100:.2f} CNY). The run of 2026-11-20 "
        f"reported the day MISSING_IN_BANK (case {missing.case_id}) because no credit had arrived by then: this "
        "credit pays the day but for the Δ — that case is closed automatically (one in review is only noted) "
        f"and only the Δ is at stake: ask the channel why the payout is {gap} CNY {than} the bill's net (fees, "
        "refunds or an adjustment the bill does not show). If the channel pays this late regularly, add 2 to "
        "the rule's lag_days."
    )
    # The money: only the difference is at stake, in its direction (the earlier 短款 is closed, not added).
    assert case_money(case) == CaseMoney(abs(delta), side, abs(delta))
    found = sorted((t, d) for t, _, d, _ in settlement_cases(day2))
    assert found == sorted([("AMOUNT_MISMATCH", delta), *([] if day2_paid else [("MISSING_IN_BANK", -500)])])
    assert not [c for c in day2.cases if c.type is CaseType.MISSING_IN_CHANNEL]
    # Day 1 is linked: no longer remembered, so no later credit is taken as its payout again.
    remembered = day2.result.decided_batches.get("wechat-settlement", [])
    assert "wechat-main@2026-11-20" not in [b.ref for b in remembered]


@pytest.mark.parametrize(
    "memo", [WECHAT_MEMO, f"{WECHAT_MEMO} 20261119"], ids=["memo-names-no-day", "memo-names-another-day"]
)
def test_a_late_credit_off_the_net_is_not_linked_on_its_amount_alone(memo: str) -> None:
    """Without a memo naming day 1, a credit off its net beyond the tolerance is not day 1's payout: an
    unexplained 长款 as before, and day 1's case stays (remembered, not consumed)."""
    p = project([1])
    day1 = run(p, sale("1", 1000, D1), D1)
    day2 = next_day(
        p, day1, [*sale("2", 500, D2), credit("W2", 500, D3), credit("L1", 990, D3, memo=memo)], D2
    )
    case = day2.case_of("L1")
    assert (case.type, case.delta_minor, case.closes) == (CaseType.MISSING_IN_CHANNEL, 990, [])
    remembered = day2.result.decided_batches["wechat-settlement"]
    assert [(b.ref, b.decided) for b in remembered if b.decided == "missing"] == [
        ("wechat-main@2026-11-20", "missing")
    ]


def test_a_late_payout_off_the_net_three_days_later_is_linked_within_the_carry_over_limit() -> None:
    """Lag [1], carry-over 2: day 1's payout arrives T+3 (value date D4) on the run of day 3, days 2 and 3
    paid on time: one AMOUNT_MISMATCH naming day 1's case, T+3 and 2 days late."""
    p = project([1])
    day1 = run(p, sale("1", 1000, D1), D1)
    (missing,) = [c for c in day1.cases if c.type is CaseType.MISSING_IN_BANK]
    day2 = next_day(p, day1, [*sale("2", 500, D2), credit("W2", 500, D3)], D2)
    assert settlement_cases(day2) == []
    late = credit("L1", 900, D4, memo=f"{WECHAT_MEMO} 2026-11-20")
    day3 = next_day(p, day2, [*sale("3", 700, D3), credit("W3", 700, D4), late], D3)
    case = day3.case_of("L1")
    assert (case.type, case.delta_minor) == (CaseType.AMOUNT_MISMATCH, -100)
    assert case.closes == [CaseLink(case_id=missing.case_id, business_date=D1)]
    assert "with value date 2026-11-23 is T+3, 2 day(s) later than the rule's T+1" in case.reason
    assert [c.type for c in day3.cases] == [CaseType.AMOUNT_MISMATCH]


# --- B9: a reversal in a later run than its credit ------------------------------------------------------------
@pytest.mark.parametrize("txn_type", [TxnType.ADJUSTMENT, TxnType.TRANSFER])
def test_a_reversal_in_a_later_run_is_linked_to_its_credit_and_the_day_is_unpaid_again(
    txn_type: TxnType,
) -> None:
    p = project([1])
    day1 = run(p, [*sale("1", 1000, D1), credit("R1", 1000, D2)], D1)
    assert day1.group_of("R1").settles == ["wechat-main@2026-11-20"]
    reversal = credit("R1R", -1000, D3, memo=f"冲正 {WECHAT_MEMO} R1", txn_type=txn_type)
    day2 = next_day(p, day1, [*sale("2", 500, D2), credit("W2", 500, D3), reversal], D2)
    case = day2.case_of("R1R")
    assert (case.type, case.delta_minor, case.currency) == (CaseType.MISSING_IN_BANK, -1000, "CNY")
    assert [(m.txn_id, m.amount_minor) for m in case.counterpart] == [
        ("R1", 1000),
        ("wechat-main@2026-11-20", 1000),
    ]
    assert case.reason == (
        "短款: the bank reversed (冲正) a settlement credit an earlier run matched: bank R1R -10.00 CNY (value "
        "date 2026-11-22) reverses bank R1 10.00 CNY (value date 2026-11-21), which settled "
        "wechat-main@2026-11-20 (net 10.00 CNY) in the run of 2026-11-20. That day is unpaid again: ask the "
        "bank why the payout was reversed and the channel when it will be paid again."
    )
    assert day2.group_of("W2").settles == ["wechat-main@2026-11-21"]
    assert [m.txn_id for c in day2.cases for m in c.members] == ["R1R"]


def test_a_reversal_names_the_credit_it_reverses_among_equal_ones() -> None:
    """Two earlier credits of the same amount: the reversal's memo names R1, the earlier one."""
    p = project([1])
    day1 = run(p, [*sale("1", 1000, D1), credit("R1", 1000, D2)], D1)
    day2 = next_day(p, day1, [*sale("2", 1000, D2), credit("R2", 1000, D3)], D2)
    reversal = credit("RR", -1000, D4, memo=f"{WECHAT_MEMO} 冲正 原交易 R1", txn_type=TxnType.ADJUSTMENT)
    day3 = next_day(p, day2, [*sale("3", 700, D3), credit("W3", 700, D4), reversal], D3)
    assert "wechat-main@2026-11-20" in day3.case_of("RR").reason
    assert [m.txn_id for m in day3.case_of("RR").counterpart] == ["R1", "wechat-main@2026-11-20"]
    remembered = day3.result.decided_batches["wechat-settlement"]
    assert [(b.ref, b.credit) for b in remembered if b.decided == "settled"] == [
        ("wechat-main@2026-11-21", "R2"),  # still paid; a reversal of R2 would be linked to it
        ("wechat-main@2026-11-22", "W3"),
    ]


# --- partitioned = single, and the stored batches ----------------------------------------------------------------
@pytest.mark.parametrize(
    ("late", "kinds"),
    [
        ([credit("L1", 1000, D3)], ["TIME_MISMATCH"]),
        # Off the net: linked by its memo; a credit as far off without one is an unexplained 长款.
        (
            [credit("L1", 990, D3, memo=f"{WECHAT_MEMO} 20261120"), credit("X1", 995, D3)],
            ["AMOUNT_MISMATCH", "MISSING_IN_CHANNEL"],
        ),
    ],
    ids=["exact", "off-the-net"],
)
def test_later_days_partitioned_equal_the_single_run(late: list[Transaction], kinds: list[str]) -> None:
    """Day 1 unpaid; day 2 brings day 1's late payout and its own; day 3 the reversal of day 2's payout.
    Each later day, partitioned, gives the single run's bytes and batches (open and decided)."""
    p = project([1])
    day1 = run(p, sale("1", 1000, D1), D1)
    day2 = next_day(p, day1, [*sale("2", 500, D2), credit("W2", 500, D3), *late], D2)
    reversal = credit("W2R", -500, D4, memo=f"冲正 {WECHAT_MEMO} W2", txn_type=TxnType.ADJUSTMENT)
    day3 = next_day(p, day2, [*sale("3", 700, D3), credit("W3", 700, D4), reversal], D3)
    assert sorted(c.type.value for c in day2.cases) == kinds
    assert [c.type.value for c in day3.cases] == ["MISSING_IN_BANK"]
    for before, single, day in ((day1, day2, D2), (day2, day3, D3)):
        for n in (1, 2, 3):
            got = partitioned(p, single.rows, n, day=day, carried=before.result.next_batches())
            assert got.parquet() == single.parquet(), (day, n)
            assert batches_to_json(got.result.next_batches()) == batches_to_json(single.result.next_batches())


# --- through the match and resolve stages ------------------------------------------------------------------
def test_the_stages_carry_the_settled_day_to_the_run_that_reads_its_reversal() -> None:
    """batches.json carries the settled day to the next run, which links the reversal; the decided day is
    no open item (open_items.csv, the run's count)."""
    p = project([1])
    p = p.model_copy(update={"accounts": [a for a in p.accounts if a.account_id != "alipay-main"]})
    svc = memory_services("demo", p, clock=lambda: datetime(2026, 11, 25, 1, 30, tzinfo=UTC))
    sale1, sale2 = sale("1", 1000, D1), sale("2", 500, D2)
    for day, rows in ((D1, sale1), (D2, sale2)):
        deliver(svc, day, "erp", [r for r in rows if r.source.value == "erp"])
        deliver(svc, day, "wechat-main", [r for r in rows if r.source.value == "wechat"])
    deliver(svc, D1, "bank-cmb", [credit("R1", 1000, D2)], statement_date=D2)
    reversal = credit("R1R", -1000, D3, memo=f"冲正 {WECHAT_MEMO} R1", txn_type=TxnType.ADJUSTMENT)
    deliver(svc, D2, "bank-cmb", [credit("W2", 500, D3), reversal], statement_date=D3)
    first = run_day(svc, D1)
    assert first["cases.csv"] == [] and first["open_items.csv"] == [] and first["run"].open_items == 0
    stored = batches_from_json(svc.store.get("data", open_batches_key("demo", D1)).decode())
    assert [(b.ref, b.decided, b.credit) for b in stored["wechat-settlement"]] == [
        ("wechat-main@2026-11-20", "settled", "R1")
    ]
    second = run_day(svc, D2)
    assert [(r["type"], r["txn_id"], r["delta"]) for r in second["cases.csv"]] == [
        ("MISSING_IN_BANK", "R1R", "-10.00")
    ]
    assert second["open_items.csv"] == [] and second["run"].balanced
