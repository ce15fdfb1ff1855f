"""ERP ↔ channel findings of the payments-operations review: a merchant-funded discount named in the amount
case (A9), and a refund the ERP booked on another order than the channel's (A13)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from recon.domain import Case, CaseType, Project, Transaction, TxnStatus
from recon.reporting.export import cases_csv

from .conftest import txn
from .matching_support import Outcome, run, table_of
from .test_matching import demo_without_fee_schedule

T0 = datetime(2026, 11, 20, 2, 0, tzinfo=UTC)


@pytest.fixture
def project() -> Project:
    """The rows here carry no fee."""
    return demo_without_fee_schedule()


def _gross(row: Transaction, gross: int) -> Transaction:
    return row.model_copy(update={"gross_minor": gross})


def _keyed(out: Outcome) -> list[Case]:
    return [c for c in out.cases if c.rule == "erp-channel-order"]


# --- A9: a merchant-funded discount ------------------------------------------------------------------------
def test_a_wechat_voucher_difference_is_named_in_the_amount_case(project: Project) -> None:
    """ERP 100.00, WeChat settled 90.00 of an order of 100.00 (免充值券 10.00). The reason used to say only
    "erp SO1 100.00 vs wechat WX1 90.00 (Δ -10.00)": the reader had to find the voucher in the bill."""
    rows = [
        txn("erp", "SO1", 10000, order_ref="SO1", at=T0),
        _gross(txn("wechat", "WX1", 9000, order_ref="SO1", at=T0 + timedelta(seconds=3)), 10000),
    ]
    [case] = _keyed(run(project, rows))
    assert case.type is CaseType.AMOUNT_MISMATCH and case.delta_minor == -1000
    assert case.reason == (
        "Both sides know the transaction but the amounts differ: erp SO1 100.00 vs wechat WX1 90.00 "
        "(Δ -10.00). The difference is the merchant's own discount: the channel settled 90.00 CNY = order "
        "100.00 CNY less a merchant discount (免充值券) of 10.00 CNY. The ERP books the order before the "
        "discount: book the 10.00 CNY discount against order SO1 (or book the order at what the customer "
        "paid); the settlement is not short."
    )


def test_an_alipay_refund_less_its_share_of_the_discount_is_named(project: Project) -> None:
    """Alipay gives back 144.50 of a 149.50 refund: the merchant's 5.00 share of its 商家优惠."""
    at = T0 + timedelta(hours=2)
    rows = [
        txn("erp", "SO2#R1", -14950, order_ref="SO2", refund_ref="R1", at=at),
        _gross(txn("alipay", "AP2#R1", -14450, order_ref="SO2", refund_ref="R1", at=at), -14950),
    ]
    [case] = _keyed(run(project, rows))
    assert case.type is CaseType.AMOUNT_MISMATCH and case.delta_minor == 500
    assert case.reason.endswith(
        "The difference is the merchant's own discount: the channel refunded 144.50 CNY = refund 149.50 CNY "
        "less the merchant discount's share (商家优惠) of 5.00 CNY. The ERP books the refund before the "
        "discount: book the 5.00 CNY share of the discount against refund SO2/R1 (or book the refund at "
        "what the customer got back); the settlement is not short."
    )


def test_a_discount_beside_an_abandoned_attempt_is_named_too(project: Project) -> None:
    """A key with several channel rows (the customer gave up on WeChat, then paid with Alipay and a 商家优惠):
    the counted channel rows' amounts before discounts are summed."""
    rows = [
        txn("erp", "SO5", 10000, order_ref="SO5", at=T0),
        txn("wechat", "WX5", 10000, order_ref="SO5", at=T0 + timedelta(seconds=2), status=TxnStatus.CLOSED),
        _gross(txn("alipay", "AP5", 9000, order_ref="SO5", at=T0 + timedelta(seconds=9)), 10000),
    ]
    [case] = _keyed(run(project, rows))
    assert case.type is CaseType.AMOUNT_MISMATCH and case.delta_minor == -1000
    assert (
        "The difference is the merchant's own discount: the channel settled 90.00 CNY = order 100.00 CNY less a "
        "merchant discount (商家优惠) of 10.00 CNY." in case.reason
    )
    assert case.reason.endswith(
        "wechat WX5 closed: an attempt that did not complete, no money moved (not counted)."
    )


def test_a_difference_other_than_the_discount_is_said_as_before(project: Project) -> None:
    """ERP 105.00 against an order of 100.00 settled at 90.00: the discount does not explain it."""
    rows = [
        txn("erp", "SO3", 10500, order_ref="SO3", at=T0),
        _gross(txn("wechat", "WX3", 9000, order_ref="SO3", at=T0 + timedelta(seconds=3)), 10000),
    ]
    [case] = _keyed(run(project, rows))
    assert case.reason == (
        "Both sides know the transaction but the amounts differ: erp SO3 105.00 vs wechat WX3 90.00 "
        "(Δ -15.00)."
    )


def test_rows_written_before_the_amount_before_discounts_read_as_before(project: Project) -> None:
    """A normalized object of schema version 2 has no gross_minor: the reason is the plain one."""
    rows = [
        txn("erp", "SO4", 10000, order_ref="SO4", at=T0),
        txn("wechat", "WX4", 9000, order_ref="SO4", at=T0 + timedelta(seconds=3)),
    ]
    table = table_of(rows).drop_columns(["gross_minor"])
    [case] = _keyed(run(project, table))
    assert case.reason.endswith("(Δ -10.00).")


def test_merchant_discounts_can_be_accepted_as_matched(project: Project) -> None:
    """``merchant_discount: match`` (default ``case``): a difference that is exactly the channel's merchant
    discount is a match group whose explanation names the discount; any other difference stays a case."""
    rules = [
        {**r, "merchant_discount": "match"} if r["kind"] == "key_match" else r
        for r in project.model_dump(mode="json")["rules"]
    ]
    accepting = Project.model_validate({**project.model_dump(mode="json"), "rules": rules})
    rows = [
        txn("erp", "SO1", 10000, order_ref="SO1", at=T0),
        _gross(txn("wechat", "WX1", 9000, order_ref="SO1", at=T0 + timedelta(seconds=3)), 10000),
        txn("erp", "SO3", 10500, order_ref="SO3", at=T0),
        _gross(txn("wechat", "WX3", 9000, order_ref="SO3", at=T0 + timedelta(seconds=3)), 10000),
    ]
    out = run(accepting, rows)
    group = out.group_of("WX1")
    assert {m.txn_id for m in group.members} == {"SO1", "WX1"}
    assert group.status.value == "auto" and group.confidence == 1.0
    assert group.explanation.endswith(
        "; the channel settled 90.00 CNY = 100.00 CNY less a merchant discount (免充值券) of 10.00 CNY"
    )
    assert out.case_of("WX3").type is CaseType.AMOUNT_MISMATCH
    assert _keyed(run(project, rows[:2]))[0].type is CaseType.AMOUNT_MISMATCH  # the default: a case
    at = T0 + timedelta(hours=2)
    refund = [
        txn("erp", "SO2#R1", -14950, order_ref="SO2", refund_ref="R1", at=at),
        _gross(txn("alipay", "AP2#R1", -14450, order_ref="SO2", refund_ref="R1", at=at), -14950),
    ]
    assert (
        run(accepting, refund)
        .group_of("AP2#R1")
        .explanation.endswith(
            "; the channel refunded 144.50 CNY = 149.50 CNY less the merchant discount's share (商家优惠) of "
            "5.00 CNY"
        )
    )


# --- A13: a refund booked on the wrong order ---------------------------------------------------------------
def _misbooked(*, refund: int = -5000, channel_refund: int = -5000) -> list[Transaction]:
    """Orders SO1 and SO2, each paid 100.00 through WeChat; the channel refunded R1 on SO2, the ERP booked
    R1 on SO1."""
    at = T0 + timedelta(hours=3)
    return [
        txn("erp", "SO1", 10000, order_ref="SO1", at=T0),
        txn("wechat", "WX1", 10000, order_ref="SO1", at=T0 + timedelta(seconds=2)),
        txn("erp", "SO2", 10000, order_ref="SO2", at=T0 + timedelta(minutes=1)),
        txn("wechat", "WX2", 10000, order_ref="SO2", at=T0 + timedelta(minutes=1, seconds=2)),
        txn("erp", "SO1#R1", refund, order_ref="SO1", refund_ref="R1", at=at),
        txn("wechat", "WX2#50001", channel_refund, order_ref="SO2", refund_ref="R1", at=at),
    ]


def test_a_refund_booked_on_another_order_is_one_case_naming_both(project: Project) -> None:
    """It was two unlinked cases: 长款 MISSING_IN_CHANNEL for the ERP's refund and 短款 MISSING_IN_ERP for
    the channel's, 100.00 at stake for a booking error."""
    out = run(project, _misbooked())
    erp_case, channel_case = out.case_of("SO1#R1"), out.case_of("WX2#50001")
    assert erp_case.case_id == channel_case.case_id
    assert [c.type for c in out.cases if c.type is not CaseType.MISSING_IN_BANK] == [CaseType.OTHER]
    assert erp_case.type is CaseType.OTHER and erp_case.rule == "refund-on-another-order"
    assert [m.txn_id for m in erp_case.members] == ["SO1#R1", "WX2#50001"]
    assert erp_case.delta_minor == -5000
    assert erp_case.reason == (
        "The ERP booked refund R1 on order SO1 (erp SO1#R1 -50.00 CNY); the channel refunded it on order "
        "SO2 (wechat WX2#50001 -50.00 CNY): correct the ERP booking — move refund R1 from order SO1 to "
        "order SO2."
    )
    assert out.where("WX1")["disposition"] == "matched" and out.where("WX2")["disposition"] == "matched"
    # cases.csv: each member's counterpart is the other row
    lines = [line.split(",")[2:8] for line in cases_csv([erp_case]).splitlines()[1:]]
    assert lines == [
        ["erp", "SO1#R1", "-50.00", "CNY", "wechat", "WX2#50001"],
        ["wechat", "WX2#50001", "-50.00", "CNY", "erp", "SO1#R1"],
    ]


def test_a_refund_on_another_order_with_another_amount_says_both(project: Project) -> None:
    out = run(project, _misbooked(refund=-5000, channel_refund=-6000))
    case = out.case_of("SO1#R1")
    assert case.case_id == out.case_of("WX2#50001").case_id
    assert case.reason.endswith(
        "order SO2. The amounts differ too: erp -50.00 CNY, channel -60.00 CNY (Δ -10.00 CNY)."
    )


def test_a_refund_on_another_order_that_refunds_it_in_full_says_so(project: Project) -> None:
    """The channel's refund gives SO2 back in full: it was the STATUS_MISMATCH "The ERP shows the order paid
    but the channel refunded it in full" beside a MISSING_IN_CHANNEL for the ERP's refund."""
    out = run(project, _misbooked(refund=-10000, channel_refund=-10000))
    case = out.case_of("WX2#50001")
    assert case.case_id == out.case_of("SO1#R1").case_id and case.type is CaseType.OTHER
    assert case.reason.endswith(
        "order SO2. The channel's refund gives back order SO2 in full, which the ERP still shows paid."
    )


def test_the_channel_refund_id_in_the_erp_links_the_refund_too(project: Project) -> None:
    """An ERP that records the channel's refund id (微信退款单号) as its refund number."""
    rows = _misbooked()
    rows[4] = rows[4].model_copy(update={"refund_ref": "50001"})
    out = run(project, rows)
    assert out.case_of("SO1#R1").case_id == out.case_of("WX2#50001").case_id


def test_refunds_sharing_a_number_ambiguously_stay_apart(project: Project) -> None:
    """Two ERP refunds with the channel's refund number: which one is misbooked is not known."""
    rows = _misbooked()
    rows.append(txn("erp", "SO3#R1", -5000, order_ref="SO3", refund_ref="R1", at=T0 + timedelta(hours=4)))
    out = run(project, rows)
    assert out.case_of("WX2#50001").type is CaseType.MISSING_IN_ERP
    assert {out.case_of(t).type for t in ("SO1#R1", "SO3#R1")} == {CaseType.MISSING_IN_CHANNEL}
