"""长款 / 短款 of every case type, from the merchant's books (docs/matching.md, "Case types";
``recon.reporting.export.case_money``): the cases come from the engine, as a run makes them. Before, only
MISSING_* cases had a direction: the demo day's 短款 was 29.90 where the money short is 49.90, and a
DUPLICATE (a row exported twice, no money moved) added 199.71 to the amount at stake."""

from __future__ import annotations

from datetime import timedelta

import pytest

from recon.domain import Case, CaseType, Project, TxnStatus
from recon.matching import context, keyed, residue
from recon.reporting import export
from recon.reporting.export import case_money, case_stakes, stake_totals

from .conftest import DAY, txn
from .matching_support import run
from .test_channel_review import _gross, _misbooked
from .test_keyed_review import T0, _order
from .test_matching import DEMO, T1, _day, demo_without_fee_schedule, project_with
from .test_settlement_review import credit, next_day, sale
from .test_settlement_review import project as settling

D1, D2, D3 = (DAY + timedelta(days=k) for k in range(3))


@pytest.fixture
def keyed_project() -> Project:
    """The keyed rows here carry no fee."""
    return demo_without_fee_schedule()


def _money(case: Case) -> tuple[str, str, int]:
    m = case_money(case)
    return m.word, case.type.value, m.at_stake_minor + m.aside_minor


def test_the_rule_names_read_are_the_engines() -> None:
    assert export.UNMATCHED_RULE == context.UNMATCHED_RULE
    assert export.REFUNDS_PAID_ORDER_RULE == residue.REFUNDS_PAID_ORDER_RULE
    assert export.REFUND_OTHER_ORDER_RULE == residue.REFUND_OTHER_ORDER_RULE


def test_amount_mismatches_are_short_or_long_by_what_the_money_shows_less_what_the_books_expect(
    keyed_project: Project,
) -> None:
    rows = [
        *_order(("wechat", "WX1", 18900, {}), order="SO1", amount=19900),  # WeChat collected 10.00 less
        *_order(("alipay", "AP2", 10500, {}), order="SO2", amount=10000),  # 5.00 more
        *_order(("wechat", "WX3#R", -6000, {"refund_ref": "R"}), order="SO3", amount=-5000, refund_ref="R"),
    ]
    out = run(keyed_project, rows)
    assert _money(out.case_of("WX1")) == ("短款", "AMOUNT_MISMATCH", 1000)
    assert _money(out.case_of("AP2")) == ("长款", "AMOUNT_MISMATCH", 500)
    assert _money(out.case_of("WX3#R")) == ("短款", "AMOUNT_MISMATCH", 1000)  # refunded 10.00 more


def test_an_amount_difference_that_is_the_merchants_discount_is_a_booking_not_money_short(
    keyed_project: Project,
) -> None:
    """WeChat settled 189.00 of an order of 199.00 less its 免充值券 of 10.00 (the merchant's own discount):
    the reason says the settlement is not short, yet it was counted 短款 10.00 at stake. The case carries the
    discount as evidence (not read from the reason); a difference the discount does not explain stays 短款."""
    rows = [
        *_order(("wechat", "WX1", 18900, {}), order="SO1", amount=19900),
        *_order(("alipay", "AP2#R", -14450, {"refund_ref": "R"}), order="SO2", amount=-14950, refund_ref="R"),
        *_order(("wechat", "WX3", 18900, {}), order="SO3", amount=20500),  # 6.00 more than the discount
    ]
    rows[1], rows[3], rows[5] = _gross(rows[1], 19900), _gross(rows[3], -14950), _gross(rows[5], 19900)
    out = run(keyed_project, rows)
    voucher, refund, other = out.case_of("WX1"), out.case_of("AP2#R"), out.case_of("WX3")
    assert _money(voucher) == ("not at stake: merchant discount to book", "AMOUNT_MISMATCH", 1000)
    assert _money(refund) == ("not at stake: merchant discount to book", "AMOUNT_MISMATCH", 500)
    assert _money(other) == ("短款", "AMOUNT_MISMATCH", 1600)
    (discount,) = [e for e in voucher.evidence if e.field == keyed.MERCHANT_DISCOUNT]
    assert (discount.left, discount.delta) == ("免充值券 10.00 CNY", "-10.00")
    assert export.evidence_line(discount) == "merchant_discount: 免充值券 10.00 CNY"
    assert not [e for e in other.evidence if e.field == keyed.MERCHANT_DISCOUNT]
    (totals,) = stake_totals([voucher, refund, other])
    assert (totals.at_stake_minor, totals.shortage_minor, totals.not_at_stake_minor) == (1600, 1600, 1500)
    assert export.MERCHANT_DISCOUNT == keyed.MERCHANT_DISCOUNT


def test_a_bank_credit_below_the_channels_net_is_short(project: Project) -> None:
    short = [r for r in _day() if r.txn_id != "B-AP"] + [
        txn("bank", "B-AP", 990 - 6 - 500 + 3 - 100, value_date=T1, memo="支付宝结算")
    ]
    out = run(project, short)
    assert _money(out.case_of("B-AP")) == ("短款", "AMOUNT_MISMATCH", 100)


def test_status_mismatches_are_short_when_the_books_expect_money_that_never_moved(
    keyed_project: Project,
) -> None:
    rows = [
        *_order(("wechat", "WX1", 5990, {"status": TxnStatus.REVERSED}), order="SO1"),  # ERP paid
        *_order(("alipay", "AP2", 2990, {}), order="SO2", amount=2990, status=TxnStatus.CLOSED),  # ERP unpaid
        *_order(
            ("wechat", "WX3#R", -1000, {"refund_ref": "R", "status": TxnStatus.FAILED}),
            order="SO3",
            amount=-1000,
            refund_ref="R",
        ),  # the ERP booked a refund the channel did not pay out: the customer is still owed
    ]
    out = run(keyed_project, rows)
    assert _money(out.case_of("WX1")) == ("短款", "STATUS_MISMATCH", 5990)
    assert _money(out.case_of("AP2")) == ("长款", "STATUS_MISMATCH", 2990)
    assert _money(out.case_of("WX3#R")) == ("长款", "STATUS_MISMATCH", 1000)
    refunded = run(
        keyed_project,
        [
            *_order(("wechat", "WX9", 2990, {}), order="SO9", amount=2990),
            txn("wechat", "WX9#R1", -2990, order_ref="SO9", refund_ref="R1", at=T0 + timedelta(hours=1)),
        ],
    )  # the channel refunded in full an order the ERP shows paid: the money left
    assert _money(refunded.case_of("WX9#R1")) == ("短款", "STATUS_MISMATCH", 2990)


def test_fee_mismatches_a_fee_above_the_schedule_is_short() -> None:
    rule = {"kind": "key_match", "name": "k", "left": ["erp"], "right": ["wechat"], "fee_rate_percent": "0.6"}
    rows = [
        txn("erp", "A", 19900, order_ref="A"),
        txn("wechat", "WA", 19900, order_ref="A", fee=199),  # 1.99 charged, 1.19 scheduled
        txn("erp", "B", 19900, order_ref="B"),
        txn("wechat", "WB", 19900, order_ref="B", fee=59),  # 0.60 less than scheduled
    ]
    out = run(project_with(rule, replace=True), rows)
    assert _money(out.case_of("WA")) == ("短款", "FEE_MISMATCH", 80)
    assert _money(out.case_of("WB")) == ("长款", "FEE_MISMATCH", 60)


def test_over_refund_is_short_duplicate_and_a_row_that_did_not_complete_are_not_at_stake(
    keyed_project: Project,
) -> None:
    at = T0 + timedelta(hours=5)
    rows = [
        *_order(("wechat", "WX1", 29900, {}), order="SO1", amount=29900),
        txn("erp", "SO1#R1", -35000, order_ref="SO1", refund_ref="R1", at=at),
        txn("wechat", "WX1#R1", -35000, order_ref="SO1", refund_ref="R1", at=at),
        *_order(("wechat", "WX2", 1990, {}), order="SO2", amount=1990),
        txn("erp", "SO2", 1990, order_ref="SO2", at=T0 + timedelta(hours=6)),  # exported twice
        txn("alipay", "AP7", 880, order_ref="SO7", status=TxnStatus.CLOSED),  # never completed
    ]
    out = run(keyed_project, rows)
    assert _money(out.case_of("WX1#R1")) == ("短款", "OTHER", 5100)
    duplicate = next(c for c in out.cases if c.type is CaseType.DUPLICATE)
    assert _money(duplicate) == ("not at stake: data defect", "DUPLICATE", 1990)
    assert case_money(duplicate).at_stake_minor == 0
    assert _money(out.case_of("AP7")) == ("not at stake: no money moved", "OTHER", 880)
    (totals,) = stake_totals(out.cases)
    assert (totals.at_stake_minor, totals.shortage_minor, totals.not_at_stake_minor) == (
        5100,
        5100,
        1990 + 880,
    )


def test_missing_cases_keep_their_direction_and_a_bank_debit_nothing_explains_is_short(
    project: Project,
) -> None:
    rows = [r for r in _day() if r.txn_id != "B-WX"] + [
        txn("erp", "SO40", 9900, order_ref="SO40"),
        txn("erp", "SO41#R9", -500, order_ref="SO41", refund_ref="R9"),
        txn("alipay", "AP50", 5990, order_ref="SO50"),
        txn("bank", "B-X", 123456, value_date=T1, counterparty="某公司", memo="货款"),
        txn("bank", "B-D", -7000, value_date=T1, counterparty="某公司", memo="扣款"),
    ]
    out = run(project, rows)
    assert _money(out.case_of("SO40")) == ("短款", "MISSING_IN_CHANNEL", 9900)
    assert _money(out.case_of("SO41#R9")) == ("长款", "MISSING_IN_CHANNEL", 500)
    assert _money(out.case_of("AP50")) == ("长款", "MISSING_IN_ERP", 5990)
    assert _money(out.case_of("B-X")) == ("长款", "MISSING_IN_CHANNEL", 123456)
    assert _money(out.case_of("B-D")) == ("短款", "OTHER", 7000)
    missing = next(c for c in out.cases if c.type is CaseType.MISSING_IN_BANK)
    assert _money(missing) == ("短款", "MISSING_IN_BANK", 19900 - 119)


def test_a_late_payout_is_the_money_of_the_earlier_short_not_at_stake_again() -> None:
    """Day 1 reports the unpaid day 短款 10.00; day 2's credit pays it (TIME_MISMATCH): the same money."""
    p = settling([1])
    day1 = run(p, sale("1", 1000, D1), D1)
    (missing,) = [c for c in day1.cases if c.type is CaseType.MISSING_IN_BANK]
    assert _money(missing) == ("短款", "MISSING_IN_BANK", 1000)
    day2 = next_day(p, day1, [*sale("2", 500, D2), credit("W2", 500, D3), credit("L1", 1000, D3)], D2)
    late = day2.case_of("L1")
    assert _money(late) == ("not at stake: already reported", "TIME_MISMATCH", 1000)
    (stake,) = case_stakes([late])
    assert (stake.at_stake_minor, stake.not_at_stake_minor) == (0, 1000)


def test_a_timing_difference_and_other_currencies_have_no_direction(keyed_project: Project) -> None:
    rows = [
        *_order(("wechat", "WX8", 2000, {"at": T0 + timedelta(hours=30)}), order="SO8", amount=2000),
        *_order(("wechat", "WX9", 1400, {}), order="SO9", amount=9900),
    ]
    rows[-1] = rows[-1].model_copy(update={"currency": "USD"})
    out = run(keyed_project, rows)
    assert _money(out.case_of("WX8")) == ("", "TIME_MISMATCH", 2000)  # amounts agree: nothing is missing
    assert case_money(out.case_of("WX8")).at_stake_minor == 2000
    assert _money(out.case_of("WX9")) == ("", "OTHER", 1400)  # 99.00 CNY against 14.00 USD: not comparable


@pytest.mark.parametrize(("channel", "word", "directed"), [(-5000, "", 0), (-6000, "短款", 1000)])
def test_a_refund_on_another_order_is_a_booking_error_only_its_difference_is_money(
    project: Project, channel: int, word: str, directed: int
) -> None:
    out = run(project, _misbooked(refund=-5000, channel_refund=channel))
    money = case_money(out.case_of("SO1#R1"))
    assert (money.word, money.at_stake_minor, money.directed_minor) == (word, -channel, directed)


def test_a_settlement_fee_mismatch_is_the_credit_less_the_bills_net() -> None:
    """The bank credited gross − the contract's fees (1.19), the bill states 1.99: the credit is 0.80 more
    than the bill's net, money the books (at the bill's net) do not explain."""
    data = {
        **DEMO,
        "rules": [
            r if r["name"] != "wechat-settlement" else {**r, "fee_rate_percent": "0.6"} for r in DEMO["rules"]
        ],
    }
    rows = [
        txn("erp", "SO1", 19900, order_ref="SO1"),
        txn("wechat", "WX1", 19900, order_ref="SO1", fee=199),
        txn("bank", "B-WX", 19900 - 119, value_date=T1, memo="微信支付结算"),
    ]
    out = run(Project.model_validate(data), rows)
    assert _money(out.case_of("B-WX")) == ("长款", "FEE_MISMATCH", 80)
