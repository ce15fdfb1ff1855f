"""Settlement batches ↔ bank credits, the review's defects (Review B): a pending entry settling a batch, a
credit of another currency, an AMOUNT_MISMATCH with another day's credit, a batch waiting for a missing
statement turned 短款 by a later one, and a day with a negative net called 短款."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pyarrow as pa
import pytest

from recon.domain import CaseType, Project, Transaction, TxnStatus, TxnType
from recon.matching import match_table

from .conftest import DAY, txn
from .matching_support import Outcome, run, table_of
from .test_settlement_lags import DEMO, WECHAT_MEMO

D1, D2, D3, D4 = (DAY + timedelta(days=k) for k in range(4))


def project(wechat_lags: list[int]) -> Project:
    """Orders by key; WeChat Pay settles into bank-cmb after ``wechat_lags`` days; carry-over 2 days."""
    return Project.model_validate(
        {
            **DEMO,
            "carry_over_days": 2,
            "rules": [
                {
                    "kind": "key_match",
                    "name": "erp-channel-order",
                    "left": ["erp"],
                    "right": ["wechat", "alipay"],
                    "time_tolerance_hours": 24,
                },
                {
                    "kind": "settlement",
                    "name": "wechat-settlement",
                    "channel_account": "wechat-main",
                    "bank_account": "bank-cmb",
                    "lag_days": wechat_lags,
                    "memo_pattern": "财付通|微信支付",
                },
            ],
        }
    )


def sale(n: str, amount: int, day: date) -> list[Transaction]:
    at = datetime(day.year, day.month, day.day, 2, 0, tzinfo=UTC)
    return [
        txn("erp", f"SO{n}", amount, order_ref=f"SO{n}", at=at),
        txn("wechat", f"WX{n}", amount, order_ref=f"SO{n}", at=at),
    ]


def credit(txn_id: str, amount: int, value_date: date, **update: object) -> Transaction:
    row = txn("bank", txn_id, amount, value_date=value_date, memo=WECHAT_MEMO)
    return row.model_copy(update=update) if update else row


def next_day(
    p: Project, before: Outcome, rows: list[Transaction], day: date, unavailable: frozenset[str] = frozenset()
) -> Outcome:
    """The run of ``day``: its rows, plus the rows and batches the run before left open."""
    carried = before.rows.take(pa.array(before.result.open_rows, pa.int64()))
    if "first_seen" not in carried.column_names:
        carried = carried.append_column("first_seen", pa.array([before.result.business_date] * len(carried)))
    table = pa.concat_tables(
        [table_of(rows).append_column("first_seen", pa.array([day] * len(rows), pa.date32())), carried],
        promote_options="permissive",
    )
    result = match_table(p, table, day, carried_batches=before.result.next_batches(), unavailable=unavailable)
    assert result.placements.num_rows == table.num_rows
    return Outcome(result, table, f"{p.project_id}-{day:%Y%m%d}")


def settlement_cases(out: Outcome) -> list[tuple[str, str, int, str]]:
    return sorted(
        (c.type.value, c.currency, c.delta_minor, c.reason)
        for c in out.cases
        if c.rule.endswith("settlement")
    )


# --- B6: a pending (PDNG) entry ---------------------------------------------------------------------------
def test_a_pending_credit_does_not_settle_the_batch_and_its_booked_entry_does() -> None:
    """The T+1 statement shows the payout pending, the next one booked (value date a day later): the batch
    waits with the pending entry open, the booked entry settles it and the pending one is filtered."""
    p = project([1])
    pending = credit("P1", 1000, D2, status=TxnStatus.PENDING)
    day1 = run(p, [*sale("1", 1000, D1), pending], D1)
    assert day1.where("P1")["disposition"] == "open"
    assert day1.where("P1")["rule"] == "pending-entry:wechat-settlement"
    assert [b.ref for b in day1.result.open_batches["wechat-settlement"]] == ["wechat-main@2026-11-20"]
    assert settlement_cases(day1) == []

    booked = credit("P1", 1000, D3, txn_uid="bank:bank-cmb:P1-booked", statement_id="st-bank-2")
    day2 = next_day(p, day1, [*sale("2", 500, D2), booked], D2)
    rows = {(r["txn_uid"], r["disposition"], r["rule"]) for r in day2.all_where("P1")}
    assert rows == {
        ("bank:bank-cmb:P1-booked", "matched", "wechat-settlement"),
        ("bank:bank-cmb:P1", "filtered", "pending-entry-booked"),
    }
    assert day2.group_of("P1").settles == ["wechat-main@2026-11-20"]
    assert not [c for c in day2.cases if c.type is CaseType.MISSING_IN_CHANNEL]


def test_a_pending_credit_never_booked_leaves_the_batch_missing_and_says_so() -> None:
    p = project([1])
    day1 = run(p, [*sale("1", 1000, D1), credit("P1", 1000, D2, status=TxnStatus.PENDING)], D1)
    day2 = next_day(p, day1, sale("2", 500, D2), D2)
    day3 = next_day(p, day2, sale("3", 700, D3), D3)
    missing = [c for c in day3.cases if c.type is CaseType.MISSING_IN_BANK]
    assert next(c.reason for c in missing if "2026-11-20" in c.reason).endswith(
        "Bank entry P1 is only pending, never booked."
    )
    assert day3.case_of("P1").type is CaseType.OTHER  # did not complete (pending): residue


# --- B2: currencies -----------------------------------------------------------------------------------------
@pytest.mark.parametrize("amount", [1000, 790])
def test_a_credit_in_another_currency_never_settles_nor_mismatches_a_batch(amount: int) -> None:
    out = run(project([1]), [*sale("1", 1000, D1), credit("U1", amount, D2, currency="USD")], D1)
    assert out.where("U1")["disposition"] == "case"
    other = out.case_of("U1")
    assert other.type is CaseType.OTHER and other.currency == "USD" and other.delta_minor == amount
    assert "another currency" in other.reason and "CNY" in other.reason
    missing = [c for c in out.cases if c.type is CaseType.MISSING_IN_BANK]
    assert [(c.currency, c.delta_minor) for c in missing] == [("CNY", -1000)]
    assert "U1" in missing[0].reason and "USD" in missing[0].reason
    assert not [c for c in out.cases if c.type is CaseType.AMOUNT_MISMATCH]


# --- B5: an AMOUNT_MISMATCH pairs a batch with its own day's credit --------------------------------------------
@pytest.mark.parametrize("memo", [f"{WECHAT_MEMO} 1900000109 20261121", WECHAT_MEMO])
def test_an_amount_mismatch_takes_the_credit_of_its_own_day_not_the_first_batch_in_day_order(
    memo: str,
) -> None:
    """Lags [1, 2]: day 1 never paid, day 2 paid T+1 short by 1; the credit is within both days' lags."""
    p = project([1, 2])
    day1 = run(p, sale("1", 1000, D1), D1)
    short = credit("W2", 499, D3, memo=memo)
    day2 = next_day(p, day1, [*sale("2", 500, D2), short], D2)
    day3 = next_day(p, day2, sale("3", 700, D3), D3)
    found = [
        (c.type.value, c.delta_minor)
        for out in (day2, day3)
        for c in out.cases
        if c.rule == "wechat-settlement"
    ]
    assert sorted(found) == [("AMOUNT_MISMATCH", -1), ("MISSING_IN_BANK", -1000)]
    assert "wechat-main@2026-11-21" in day3.case_of("W2").reason


def test_a_credit_whose_memo_names_another_day_is_not_this_days_amount_mismatch() -> None:
    """Lag [1]: day 1 paid T+2 (memo names day 1), day 2 never paid: day 2 is MISSING_IN_BANK and the credit
    day 1's late payout (TIME_MISMATCH, test_settlement_late), not an AMOUNT_MISMATCH of day 2."""
    p = project([1])
    day1 = run(p, sale("1", 1000, D1), D1)
    late = credit("W1", 1000, D3, memo=f"{WECHAT_MEMO} 1900000109 20261120")
    day2 = next_day(p, day1, [*sale("2", 500, D2), late], D2)
    assert [(c.type.value, c.delta_minor) for c in day2.cases if c.rule == "wechat-settlement"] == [
        ("MISSING_IN_BANK", -500),
        ("TIME_MISMATCH", 1000),
    ]
    assert "wechat-main@2026-11-20" in day2.case_of("W1").reason


# --- B4: a batch waiting for a missing statement ---------------------------------------------------------------
def test_a_batch_waiting_for_a_missing_statement_keeps_waiting_until_the_carry_over_limit() -> None:
    p = project([1])
    rows = table_of(sale("1", 1000, D1))  # the bank statement day 1 needs is missing
    day1 = Outcome(match_table(p, rows, D1, unavailable=frozenset({"bank-cmb"})), rows)
    waiting = day1.result.open_batches["wechat-settlement"]
    assert [(b.ref, b.awaiting) for b in waiting] == [("wechat-main@2026-11-20", "2026-11-21")]
    # The next statement arrives (it holds day 2's credit), the one day 1 needed never did.
    day2 = next_day(p, day1, [*sale("2", 500, D2), credit("W2", 500, D3)], D2)
    assert not [c for c in day2.cases if c.type is CaseType.MISSING_IN_BANK]
    assert [b.ref for b in day2.result.open_batches["wechat-settlement"]] == ["wechat-main@2026-11-20"]
    assert day2.group_of("W2").settles == ["wechat-main@2026-11-21"]
    # At the carry-over limit it is a case that says why.
    day3 = next_day(p, day2, [*sale("3", 700, D3), credit("W3", 700, D4)], D3)
    missing = [c for c in day3.cases if c.type is CaseType.MISSING_IN_BANK]
    assert [c.delta_minor for c in missing] == [-1000]
    assert missing[0].reason.endswith("The bank-cmb statement of 2026-11-21 it needed never arrived.")
    assert day3.result.open_batches == {}


# --- B7: a day whose net is negative or zero ----------------------------------------------------------------------
def _refund_day(day: date) -> list[Transaction]:
    at = datetime(day.year, day.month, day.day, 2, 0, tzinfo=UTC)
    return [
        *sale("N", 50, day),
        txn("erp", "RF1", -199, order_ref="SO0", refund_ref="RF1", at=at),
        txn("wechat", "WXR1", -199, order_ref="SO0", refund_ref="RF1", at=at),
    ]


def test_a_negative_day_is_no_shortage_and_the_next_payout_settles_both_days() -> None:
    p = project([1])
    day1 = run(p, _refund_day(D1), D1)
    assert settlement_cases(day1) == []
    assert [(b.ref, b.net) for b in day1.result.open_batches["wechat-settlement"]] == [
        ("wechat-main@2026-11-20", -149)
    ]
    day2 = next_day(p, day1, [*sale("2", 1000, D2), credit("W2", 851, D3)], D2)
    group = day2.group_of("W2")
    assert group.settles == ["wechat-main@2026-11-20", "wechat-main@2026-11-21"]
    assert "deducted from this payout" in group.explanation
    assert settlement_cases(day2) == [] and day2.result.open_batches == {}


def test_a_negative_day_never_deducted_is_not_a_shortage() -> None:
    p = project([1])
    day1 = run(p, _refund_day(D1), D1)
    day2 = next_day(p, day1, [*sale("2", 1000, D2), credit("W2", 1000, D3)], D2)
    day3 = next_day(p, day2, [*sale("3", 700, D3), credit("W3", 700, D4)], D3)
    assert [(t, d) for t, _, d, _ in settlement_cases(day3)] == [("OTHER", -149)]
    assert "No payout was due" in settlement_cases(day3)[0][3]
    assert not [c for c in day3.cases if c.type is CaseType.MISSING_IN_BANK]


def test_a_day_whose_net_is_zero_expects_no_credit() -> None:
    at = datetime(2026, 11, 20, 2, 0, tzinfo=UTC)
    rows = [*sale("1", 199, D1), txn("wechat", "WXR1", -199, order_ref="SO1", refund_ref="RF1", at=at)]
    out = run(project([1]), rows, D1)
    assert settlement_cases(out) == [] and out.result.open_batches == {}


# --- B9: a reversal of the settlement credit ------------------------------------------------------------------
@pytest.mark.parametrize("txn_type", [TxnType.ADJUSTMENT, TxnType.TRANSFER])
def test_a_reversed_settlement_credit_leaves_the_day_unpaid_in_one_case_with_the_reversal(
    txn_type: TxnType,
) -> None:
    """camt RvslInd (parsed as an adjustment) or 冲正 in the memo: the credit and its reversal cancel, and the
    day they paid is 短款, one case naming both."""
    memo = f"冲正 {WECHAT_MEMO} 1900000109 20261120"
    reversal = credit("R1R", -1000, D2, memo=memo, txn_type=txn_type)
    out = run(project([1]), [*sale("1", 1000, D1), credit("R1", 1000, D2), reversal], D1)
    case = out.case_of("R1")
    assert out.where("R1R")["case_id"] == case.case_id
    assert (case.type, case.delta_minor) == (CaseType.MISSING_IN_BANK, -1000)
    assert "reversed (冲正) by R1R" in case.reason and "wechat-main@2026-11-20" in case.reason
    assert not [g for g in out.groups if g.rule == "wechat-settlement"]
    assert len([c for c in out.cases if c.rule == "wechat-settlement"]) == 1


# --- B8: a payout split into two bank lines --------------------------------------------------------------------
def test_a_payout_split_into_two_bank_lines_settles_the_day_with_both() -> None:
    out = run(project([1]), [*sale("1", 1000, D1), credit("S1", 600, D2), credit("S2", 400, D2)], D1)
    group = out.group_of("S1")
    assert out.where("S2")["group_id"] == group.group_id
    assert group.settles == ["wechat-main@2026-11-20"] and group.confidence == 0.95
    assert "several credits" in group.explanation
    assert [c for c in out.cases if c.rule == "wechat-settlement"] == []
