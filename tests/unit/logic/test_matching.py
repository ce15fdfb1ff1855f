"""The matching engine on hand-made days: every pass, the case taxonomy, evidence, confidence and the
one-place-per-row guarantee."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import yaml

from recon.domain import Case, CaseType, Project, Transaction, TxnStatus
from recon.matching import match_table
from recon.reporting.export import case_stakes

from .conftest import DAY, REPO, txn
from .matching_support import Outcome, run, table_of
from .test_partitioning import partitioned

T1 = DAY + timedelta(days=1)
DEMO = yaml.safe_load((REPO / "local/recon_local/projects/demo.yaml").read_text("utf-8"))


def project_with(*rules: dict, replace: bool = False, **settings: object) -> Project:
    """The demo project with extra rules (appended, or instead of the demo's rules)."""
    data = {**DEMO, **settings}
    data["rules"] = list(rules) if replace else [*DEMO["rules"], *rules]
    return Project.model_validate(data)


def demo_without_fee_schedule() -> Project:
    """The demo project without its fee schedule (most rows here carry no fee); fee tests set their own."""
    return project_with(
        *[{k: v for k, v in r.items() if k != "fee_rate_percent"} for r in DEMO["rules"]], replace=True
    )


@pytest.fixture
def project() -> Project:
    return demo_without_fee_schedule()


def _day(extra=()):
    rows = [
        txn("erp", "SO1", 19900, order_ref="SO1"),
        txn("wechat", "WX1", 19900, order_ref="SO1", fee=119),
        txn("erp", "SO2", 990, order_ref="SO2"),
        txn("alipay", "AP2", 990, order_ref="SO2", fee=6),
        txn("erp", "SO2#R1", -500, order_ref="SO2", refund_ref="R1"),
        txn("alipay", "AP2#R1", -500, order_ref="SO2", refund_ref="R1", fee=-3),
        txn(
            "bank",
            "B-WX",
            19900 - 119,
            value_date=T1,
            counterparty="财付通支付科技有限公司",
            memo="微信支付结算",
        ),
        txn(
            "bank",
            "B-AP",
            990 - 6 - 500 + 3,
            value_date=T1,
            counterparty="支付宝（中国）网络技术有限公司",
            memo="支付宝结算",
        ),
    ]
    return [*rows, *extra]


def test_clean_day_matches_three_ways_with_evidence(project: Project) -> None:
    out = run(project, _day())
    assert out.cases == [] and out.dispositions() == {"matched": 8}
    assert sorted(g.rule for g in out.groups) == [
        "alipay-settlement",
        "erp-channel-order",
        "erp-channel-order",
        "erp-channel-order",
        "wechat-settlement",
    ]
    settlement = out.group_of("B-WX")
    assert settlement.settles == ["wechat-main@2026-11-20"] and settlement.match_pass == "settlement"
    net = next(e for e in settlement.evidence if e.field == "net_total")
    assert net.equal and net.left == net.right == "197.81"
    pair = out.group_of("WX1")
    assert {m.txn_id for m in pair.members} == {"SO1", "WX1"}
    fields = {e.field: e for e in pair.evidence}
    assert fields["key"].left == "SO1" and fields["amount"].equal and fields["amount"].delta == "0.00"
    assert pair.confidence == 1.0 and pair.status.value == "auto" and pair.match_pass == "exact_key"
    refund = out.group_of("AP2#R1")
    assert {m.txn_id for m in refund.members} == {"SO2#R1", "AP2#R1"}
    assert next(e for e in refund.evidence if e.field == "key").left == "SO2/R1"


def test_planted_differences_are_each_classified(project: Project) -> None:
    rows = _day(
        [
            txn("erp", "SO3", 19900, order_ref="SO3"),  # channel charged less
            txn("wechat", "WX3", 18900, order_ref="SO3"),
            txn("erp", "SO4", 9900, order_ref="SO4"),  # never paid through a channel
            txn("alipay", "AP5", 4200, order_ref="SO5"),  # paid, never booked
            txn("erp", "SO1", 19900, order_ref="SO1"),  # exported twice
            txn("erp", "SO6", 500, order_ref="SO6", status=TxnStatus.CLOSED),  # filtered by rule
            txn("bank", "B-FEE", -2000, value_date=T1, memo="账户管理费"),  # filtered by rule
        ]
    )
    out = run(project, rows)
    assert out.types() == sorted(
        [
            "AMOUNT_MISMATCH",  # SO3 vs WX3
            "MISSING_IN_CHANNEL",  # SO4
            "MISSING_IN_ERP",  # AP5
            "DUPLICATE",  # SO1 again
            "AMOUNT_MISMATCH",  # both settlements now differ from the bank credits
            "AMOUNT_MISMATCH",
        ]
    )
    amount = out.case_of("WX3")
    assert amount.delta_minor == -1000 and {m.txn_id for m in amount.members} == {"SO3", "WX3"}
    assert "199.00" in amount.reason and "189.00" in amount.reason
    dup = next(c for c in out.cases if c.type is CaseType.DUPLICATE)
    assert [m.txn_id for m in dup.members] == ["SO1"] and [m.txn_id for m in dup.counterpart] == ["SO1"]
    first, second = out.all_where("SO1")
    assert (first["disposition"], second["disposition"]) == ("matched", "case")  # the first one is reconciled
    assert out.where("SO6")["rule"] == "erp-unpaid-orders" and out.where("SO6")["disposition"] == "filtered"
    assert out.where("B-FEE")["rule"] == "bank-fees-and-interest"
    assert out.case_of("SO4").reason.startswith("短款") and out.case_of("AP5").reason.startswith("长款")
    assert out.case_of("SO4").severity.value == "low"  # 99.00 < medium threshold 100.00
    assert out.case_of("WX1" if False else "SO3").rule == "erp-channel-order"


def test_missing_settlement_and_unexplained_credit(project: Project) -> None:
    rows = [r for r in _day() if r.txn_id != "B-WX"] + [
        txn("bank", "B-X", 123456, value_date=T1, counterparty="某某贸易有限公司", memo="货款")
    ]
    out = run(project, rows)
    missing = next(c for c in out.cases if c.type is CaseType.MISSING_IN_BANK)
    assert [m.txn_id for m in missing.members] == ["wechat-main@2026-11-20"]
    assert missing.members[0].is_aggregate and missing.delta_minor == -(19900 - 119)
    assert missing.reason.startswith("短款")
    unexplained = out.case_of("B-X")
    assert unexplained.type is CaseType.MISSING_IN_CHANNEL and unexplained.reason.startswith("长款")
    assert unexplained.severity.value == "medium"


def test_status_time_and_currency_mismatch(project: Project) -> None:
    base = _day()
    late = base[1].booked_at + timedelta(hours=30)
    rows = [
        *base,
        txn("erp", "SO7", 1000, order_ref="SO7"),
        txn("wechat", "WX7", 1000, order_ref="SO7", status=TxnStatus.REVERSED),
        txn("erp", "SO8", 2000, order_ref="SO8", at=base[1].booked_at),
        txn("wechat", "WX8", 2000, order_ref="SO8", at=late),
    ]
    out = run(project, rows)
    assert out.case_of("WX7").type is CaseType.STATUS_MISMATCH
    assert "reversed" in out.case_of("WX7").reason
    time_case = out.case_of("WX8")
    assert time_case.type is CaseType.TIME_MISMATCH and "1 d 6 h apart" in time_case.reason
    booked = next(e for e in time_case.evidence if e.field == "booked_at")
    assert not booked.equal and booked.delta == "1 d 6 h"  # both times: see test_reporting.py


def test_keyed_cases_put_the_channel_amount_at_stake(project: Project) -> None:
    """docs/matching.md, "Case types": a keyed STATUS_MISMATCH, TIME_MISMATCH or OTHER (currencies differ)
    is at stake for the channel amount, in the channel's currency. It was channel − ERP (0.00 where the
    amounts agree, and a difference across currencies for OTHER); the amount and fee cases keep theirs."""
    base = _day()
    late = base[1].booked_at + timedelta(hours=30)
    usd = {"currency": "USD"}
    rows = [
        *base,
        txn("erp", "SO7", 1990, order_ref="SO7"),
        txn("wechat", "WX7", 1990, order_ref="SO7", status=TxnStatus.REVERSED),  # revoked, ERP says paid
        txn("erp", "SO7#R1", -891, order_ref="SO7", refund_ref="R1"),
        txn("wechat", "WX7#R1", -891, order_ref="SO7", refund_ref="R1", status=TxnStatus.PENDING),
        txn("erp", "SO8", 9900, order_ref="SO8", at=base[1].booked_at),
        txn("wechat", "WX8", 9900, order_ref="SO8", at=late),
        txn("erp", "SO9", 1400, order_ref="SO9").model_copy(update=usd),  # booked in USD
        txn("wechat", "WX9", 9900, order_ref="SO9"),
        txn("erp", "SO3", 19900, order_ref="SO3"),
        txn("wechat", "WX3", 18900, order_ref="SO3"),
        # Several rows a side (summed): paid in two parts, both revoked; and parts in two currencies.
        txn("erp", "SO10", 3000, order_ref="SO10"),
        txn("wechat", "WX10a", 1000, order_ref="SO10", status=TxnStatus.REVERSED),
        txn("wechat", "WX10b", 2000, order_ref="SO10", status=TxnStatus.REVERSED),
        txn("erp", "SO11", 3000, order_ref="SO11"),
        txn("wechat", "WX11a", 1000, order_ref="SO11"),
        txn("wechat", "WX11b", 300, order_ref="SO11").model_copy(update=usd),
    ]
    out = run(project, [r for r in rows if r.source.value != "bank"])
    stakes = {
        txn_id: (
            out.case_of(txn_id).type.value,
            out.case_of(txn_id).delta_minor,
            out.case_of(txn_id).currency,
        )
        for txn_id in ("WX7", "WX7#R1", "WX8", "WX9", "WX3", "WX10a", "WX11a")
    }
    assert stakes == {
        "WX7": ("STATUS_MISMATCH", 1990, "CNY"),
        "WX7#R1": ("STATUS_MISMATCH", -891, "CNY"),  # a refund: the (negative) channel amount
        "WX8": ("TIME_MISMATCH", 9900, "CNY"),
        "WX9": ("OTHER", 9900, "CNY"),  # not 99.00 CNY − 14.00 USD = "85.00 USD"
        "WX3": ("AMOUNT_MISMATCH", -1000, "CNY"),
        "WX10a": ("STATUS_MISMATCH", 3000, "CNY"),
        "WX11a": ("OTHER", 1000, "CNY"),  # the channel rows in its first row's currency, not 1000 + 300
    }
    assert out.case_of("WX8").severity.value == "low" and out.case_of("SO10").severity.value == "low"
    # The amount at stake of each type is what the summary and the report add up (absolute, per currency).
    keyed = [c for c in out.cases if c.rule == "erp-channel-order"]
    assert {(s.case_type, s.currency, s.at_stake_minor) for s in case_stakes(keyed)} == {
        ("AMOUNT_MISMATCH", "CNY", 1000),
        ("OTHER", "CNY", 9900 + 1000),
        ("STATUS_MISMATCH", "CNY", 1990 + 891 + 3000),
        ("TIME_MISMATCH", "CNY", 9900),
    }


def test_one_order_paid_through_two_channels_names_each_payment_with_its_channel(project: Project) -> None:
    rows = [
        *[r for r in _day() if r.source.value != "bank"],
        txn("erp", "SO12", 9900, order_ref="SO12"),
        txn("wechat", "WX12", 6000, order_ref="SO12"),  # overpaid, and no part equals the order
        txn("alipay", "AP12", 5000, order_ref="SO12"),
    ]
    case = run(project, rows).case_of("AP12")
    assert case.type.value == "AMOUNT_MISMATCH" and case.delta_minor == 1100
    assert "wechat WX12 + alipay AP12" in case.reason  # was "wechat WX12 + AP12": the Alipay trade as WeChat


def _paid(
    *rows: tuple[str, str, int, dict[str, Any]], order: str = "SO12", amount: int = 9900
) -> list[Transaction]:
    """An ERP order and the channel rows given (source, txn_id, amount, other txn() fields), booked a minute
    apart in that order unless they say when."""
    t = datetime(2026, 11, 20, 2, 0, tzinfo=UTC)
    out = [txn("erp", order, amount, order_ref=order, at=t)]
    for i, (source, txn_id, part, extra) in enumerate(rows, start=1):
        out.append(txn(source, txn_id, part, **{"order_ref": order, "at": t + timedelta(minutes=i), **extra}))
    return out


def _keyed(out: Outcome) -> list[Case]:
    return [c for c in out.cases if c.rule == "erp-channel-order"]


def test_an_order_paid_twice_through_two_channels_matches_one_payment_and_reports_the_other(
    project: Project,
) -> None:
    """docs/matching.md, "Key passes": the ERP order is matched to the payment that equals it (the earliest
    booked); the second payment is MISSING_IN_ERP, 长款 of its amount. It was one AMOUNT_MISMATCH of the
    sum: "erp SO12 99.00 vs wechat WX12 + alipay AP12 198.00 (Δ 99.00)"."""
    out = run(project, _paid(("wechat", "WX12", 9900, {}), ("alipay", "AP12", 9900, {})))
    group = out.group_of("WX12")
    assert {m.txn_id for m in group.members} == {"SO12", "WX12"} and group.match_pass == "exact_key"
    assert group.confidence == 1.0 and group.status.value == "auto"
    [case] = _keyed(out)
    assert case.type is CaseType.MISSING_IN_ERP and case.delta_minor == 9900 and case.currency == "CNY"
    assert [m.txn_id for m in case.members] == ["AP12"]
    assert sorted(m.txn_id for m in case.counterpart) == ["SO12", "WX12"]
    assert case.reason == (
        "长款: the customer paid order SO12 twice; refund the customer: alipay AP12 99.00 is a second "
        "payment; wechat WX12 99.00 paid it (matched to erp SO12 99.00)."
    )
    assert [(s.case_type, s.surplus_minor, s.shortage_minor) for s in case_stakes([case])] == [
        ("MISSING_IN_ERP", 9900, 0)
    ]
    # The earliest booked payment pays the order, whichever the channel; at the same time, the lowest uid.
    out = run(project, _paid(("alipay", "AP12", 9900, {}), ("wechat", "WX12", 9900, {})))
    assert (
        out.where("AP12")["disposition"] == "matched" and out.case_of("WX12").type is CaseType.MISSING_IN_ERP
    )
    same = datetime(2026, 11, 20, 2, 5, tzinfo=UTC)
    out = run(project, _paid(("wechat", "WX12", 9900, {"at": same}), ("alipay", "AP12", 9900, {"at": same})))
    assert out.where("AP12")["disposition"] == "matched"  # alipay:… sorts before wechat:…
    assert out.case_of("WX12").type is CaseType.MISSING_IN_ERP


def test_an_order_paid_twice_through_one_channel_is_the_same_case(project: Project) -> None:
    out = run(
        project,
        _paid(("wechat", "WX12a", 9900, {}), ("wechat", "WX12b", 9900, {}), ("wechat", "WX12c", 9900, {})),
    )
    assert {m.txn_id for m in out.group_of("WX12a").members} == {"SO12", "WX12a"}
    again = [out.case_of(t) for t in ("WX12b", "WX12c")]
    assert [(c.type, c.delta_minor) for c in again] == [(CaseType.MISSING_IN_ERP, 9900)] * 2
    assert again[0].case_id != again[1].case_id  # a case per second payment


def test_a_split_payment_stays_one_group_and_may_itself_be_paid_again(project: Project) -> None:
    none: dict[str, Any] = {}
    for second in (("wechat", "WX12b", 4900, none), ("alipay", "AP12b", 4900, none)):  # 50 + 49, as today
        out = run(project, _paid(("wechat", "WX12a", 5000, none), second))
        group = out.group_of("WX12a")
        assert len(group.members) == 3 and _keyed(out) == []
    # Split in one channel account, then the whole order paid again through the other.
    out = run(
        project,
        _paid(("wechat", "WX12a", 5000, {}), ("wechat", "WX12b", 4900, {}), ("alipay", "AP12", 9900, {})),
    )
    assert {m.txn_id for m in out.group_of("WX12b").members} == {"SO12", "WX12a", "WX12b"}
    assert out.case_of("AP12").type is CaseType.MISSING_IN_ERP and out.case_of("AP12").delta_minor == 9900
    # A split across channels plus a repeat is not recognised as one payment: the repeat alone pays it.
    out = run(
        project,
        _paid(("wechat", "WX12a", 5000, {}), ("alipay", "AP12a", 4900, {}), ("alipay", "AP12b", 9900, {})),
    )
    assert {m.txn_id for m in out.group_of("AP12b").members} == {"SO12", "AP12b"}
    assert {out.case_of(t).type for t in ("WX12a", "AP12a")} == {CaseType.MISSING_IN_ERP}


def test_a_second_payment_refunded_in_full_rides_with_its_refund(project: Project) -> None:
    """The customer paid twice and was paid back the second payment: nothing is owed. The refund (its
    txn_id the payment's + "#…", as both channels write it) goes with the payment it refunds, and that
    payment never pays the order, even when it was the earlier one."""
    refund = {"refund_ref": "R1", "at": datetime(2026, 11, 21, 9, 0, tzinfo=UTC)}
    for first, second in (("WX12", "AP12"), ("AP12", "WX12")):
        sources = {"WX12": "wechat", "AP12": "alipay"}
        rows = _paid(
            (sources[first], first, 9900, {}),
            (sources[second], second, 9900, {}),
            (sources["AP12"], "AP12#R1", -9900, refund),
        )
        out = run(project, rows)
        group = out.group_of("WX12")
        assert {m.txn_id for m in group.members} == {"SO12", "WX12", "AP12", "AP12#R1"}
        assert group.match_pass == "exact_key" and group.status.value == "auto"
        assert _keyed(out) == [] and out.where("AP12#R1")["group_id"] == group.group_id
        assert [c.type for c in out.cases if c.rule == "no-counterpart"] == []  # not "refunded in full"
    # A partial refund does not give the second payment back: it stays a case, and so does the refund.
    out = run(
        project,
        _paid(
            ("wechat", "WX12", 9900, {}), ("alipay", "AP12", 9900, {}), ("alipay", "AP12#R1", -5000, refund)
        ),
    )
    assert out.case_of("AP12").type is CaseType.MISSING_IN_ERP
    assert (
        out.case_of("AP12#R1").type is CaseType.MISSING_IN_ERP and out.case_of("AP12#R1").delta_minor == -5000
    )


def test_a_double_payment_partitions_like_the_single_run(project: Project) -> None:
    refund = {"refund_ref": "R1", "at": datetime(2026, 11, 20, 9, 0, tzinfo=UTC)}
    rows = [
        *[r for r in _day() if r.source.value != "bank"],
        *_paid(("wechat", "WX12", 9900, {}), ("alipay", "AP12", 9900, {})),
        *_paid(
            ("alipay", "AP13", 500, {}),
            ("alipay", "AP13b", 500, {}),
            ("alipay", "AP13#R1", -500, refund),
            order="SO13",
            amount=500,
        ),
        *_paid(("wechat", "WX14a", 5000, {}), ("alipay", "AP14b", 4900, {}), order="SO14"),
    ]
    table = table_of(rows)
    single = run(project, table)
    assert {c.type for c in _keyed(single)} == {CaseType.MISSING_IN_ERP}
    expected = single.parquet()
    for n in (1, 2, 3):
        assert partitioned(project, table, n).parquet() == expected, n


def test_cross_midnight_within_time_tolerance_is_matched(project: Project) -> None:
    erp_at = datetime(2026, 11, 20, 15, 59, 58, tzinfo=UTC)  # 23:59:58 Asia/Shanghai
    rows = _day(
        [
            txn("erp", "SO9", 5000, order_ref="SO9", at=erp_at),
            txn("wechat", "WX9", 5000, order_ref="SO9", at=erp_at + timedelta(seconds=5)),
        ]
    )
    out = run(project, [r for r in rows if r.source.value != "bank"])
    group = out.group_of("WX9")
    assert group.status.value == "auto"
    assert next(e for e in group.evidence if e.field == "booked_at").delta == "5 s"


def test_amount_tolerances_absolute_and_percent() -> None:
    rule = {
        "kind": "key_match",
        "name": "tolerant",
        "left": ["erp"],
        "right": ["wechat"],
        "amount_tolerance": {"minor": 1, "percent": "0.5"},
    }
    project = project_with(rule, replace=True)
    rows = [
        txn("erp", "A", 10000, order_ref="A"),
        txn("wechat", "WA", 9950, order_ref="A"),  # 0.5 % of 100.00 = 0.50: within
        txn("erp", "B", 10000, order_ref="B"),
        txn("wechat", "WB", 9949, order_ref="B"),  # 0.51: beyond
        txn("erp", "C", 100, order_ref="C"),
        txn("wechat", "WC", 99, order_ref="C"),  # 0.5 % of 1.00 rounds down to 0: the absolute 0.01 wins
    ]
    out = run(project, rows)
    a = out.group_of("WA")
    assert a.match_pass == "key_tolerance" and a.confidence == 0.95 and a.status.value == "auto"
    assert out.case_of("WB").type is CaseType.AMOUNT_MISMATCH and out.case_of("WB").delta_minor == -51
    assert out.group_of("WC").match_pass == "key_tolerance"


def test_low_confidence_is_suggested_not_auto() -> None:
    rule = {
        "kind": "key_match",
        "name": "tolerant",
        "left": ["erp"],
        "right": ["wechat"],
        "amount_tolerance": {"minor": 100},
    }
    project = project_with(rule, replace=True, auto_match_min_confidence=0.97)
    out = run(project, [txn("erp", "A", 10000, order_ref="A"), txn("wechat", "WA", 9950, order_ref="A")])
    group = out.group_of("WA")
    assert group.confidence == pytest.approx(0.975) and group.status.value == "auto"
    out = run(project, [txn("erp", "B", 10000, order_ref="B"), txn("wechat", "WB", 9920, order_ref="B")])
    group = out.group_of("WB")
    assert group.confidence == pytest.approx(0.96) and group.status.value == "suggested"
    assert out.where("WB")["status"] == "suggested" and out.where("WB")["disposition"] == "matched"


def test_one_order_paid_by_two_payments_and_partial_refunds(project: Project) -> None:
    rows = [
        txn("erp", "SO1", 30000, order_ref="SO1"),
        txn("wechat", "WX1a", 20000, order_ref="SO1"),
        txn("wechat", "WX1b", 10000, order_ref="SO1"),
        txn("erp", "SO1#R1", -5000, order_ref="SO1", refund_ref="R1"),
        txn("wechat", "WX1#R1", -5000, order_ref="SO1", refund_ref="R1"),
        txn("erp", "SO1#R2", -2000, order_ref="SO1", refund_ref="R2"),
        txn("wechat", "WX1#R2", -2000, order_ref="SO1", refund_ref="R2"),
    ]
    out = run(project, rows)
    split = out.group_of("WX1a")
    assert {m.txn_id for m in split.members} == {"SO1", "WX1a", "WX1b"}
    assert out.where("WX1b")["group_id"] == split.group_id
    assert out.group_of("WX1#R2").group_id != out.group_of("WX1#R1").group_id
    assert out.types() == ["MISSING_IN_BANK"]  # no bank statement in this day


def test_channel_fee_off_the_schedule_is_a_fee_mismatch() -> None:
    rule = {
        "kind": "key_match",
        "name": "erp-wechat",
        "left": ["erp"],
        "right": ["wechat"],
        "fee_rate_percent": "0.6",
    }
    project = project_with(rule, replace=True)
    rows = [
        txn("erp", "A", 19900, order_ref="A"),
        txn("wechat", "WA", 19900, order_ref="A", fee=119),  # 119.4 -> 119
        txn("erp", "B", 19900, order_ref="B"),
        txn("wechat", "WB", 19900, order_ref="B", fee=199),  # 1 % charged
        txn("erp", "C", -5000, order_ref="C", refund_ref="R"),
        txn("wechat", "WC", -5000, order_ref="C", refund_ref="R", fee=-30),  # fee given back
    ]
    out = run(project, rows)
    assert out.where("WA")["disposition"] == "matched" and out.where("WC")["disposition"] == "matched"
    fee = out.case_of("WB")
    assert fee.type is CaseType.FEE_MISMATCH and fee.delta_minor == 80 and "0.6%" in fee.reason
    assert "by 0.80 (charged 1.99, scheduled 1.19): wechat WB 199.00 for erp B." in fee.reason


def test_settlement_fee_schedule_and_several_batches_in_one_credit() -> None:
    data = {
        **DEMO,
        "rules": [
            r if r["name"] != "wechat-settlement" else {**r, "fee_rate_percent": "0.6"} for r in DEMO["rules"]
        ],
    }
    project = Project.model_validate(data)
    rows = [
        txn("erp", "SO1", 19900, order_ref="SO1"),
        txn("wechat", "WX1", 19900, order_ref="SO1", fee=199),  # the channel overcharged its fee
        txn(
            "bank", "B-WX", 19900 - 119, value_date=T1, memo="微信支付结算"
        ),  # the bank credited the contract net
    ]
    out = run(project, rows)
    fee = out.case_of("B-WX")
    assert fee.type is CaseType.FEE_MISMATCH and fee.delta_minor == 80
    assert [m.txn_id for m in fee.counterpart] == ["wechat-main@2026-11-20"]

    lagged = project_with(
        {
            "kind": "settlement",
            "name": "alipay-by-value-date",
            "channel_account": "alipay-main",
            "bank_account": "bank-cmb",
            "lag_days": [1, 2],
            "group_by": "value_date",
            "memo_pattern": "支付宝",
        },
        replace=True,
    )
    rows = [
        txn("alipay", "AP1", 1000, order_ref="X1", value_date=DAY - timedelta(days=1)),
        txn("alipay", "AP2", 2000, order_ref="X2", value_date=DAY),
        txn("bank", "B-AP", 3000, value_date=T1, memo="支付宝批量结算"),  # one credit for two days
    ]
    out = run(lagged, rows)
    group = out.group_of("B-AP")
    assert group.settles == ["alipay-main@2026-11-19", "alipay-main@2026-11-20"]
    assert group.confidence == 0.95 and group.status.value == "auto"


def test_settlement_lag_outside_window_is_not_matched(project: Project) -> None:
    rows = [r for r in _day() if r.txn_id != "B-WX"] + [
        txn("bank", "B-WX-LATE", 19900 - 119, value_date=DAY + timedelta(days=3), memo="微信支付结算")
    ]
    out = run(project, rows)
    assert CaseType.MISSING_IN_BANK in {c.type for c in out.cases}
    # T+3 cannot settle this day (T+1), but it may settle a channel day not loaded yet: it stays open.
    late = out.where("B-WX-LATE")
    assert (late["disposition"], late["rule"]) == ("open", "wechat-settlement")


def test_mapping_extracts_the_order_number_from_a_bank_memo() -> None:
    project = project_with(
        {
            "kind": "mapping",
            "name": "order-from-memo",
            "sources": ["bank"],
            "field": "order_ref",
            "extract": r"订单号[:：]?(SO\d+)",
        },
        {
            "kind": "mapping",
            "name": "bank-sign",
            "sources": ["bank"],
            "when": [{"field": "memo", "op": "regex", "value": "^退款"}],
            "negate": True,
        },
        {"kind": "key_match", "name": "erp-bank", "left": ["erp"], "right": ["bank"]},
        replace=True,
    )
    rows = [
        txn("erp", "SO77", 5000, order_ref="SO77"),
        txn("bank", "B1", 5000, memo="转账 订单号：SO77 谢谢"),
        txn("erp", "SO78", 700, order_ref="SO78"),
        txn("bank", "B2", 700, memo="退款 订单号SO78"),  # the bank books it positive; the rule turns it
    ]
    out = run(project, rows)
    assert out.group_of("B1").rule == "erp-bank"
    wrong_sign = out.case_of("B2")
    assert wrong_sign.type is CaseType.AMOUNT_MISMATCH and wrong_sign.delta_minor == -1400


def test_window_pass_links_rows_without_a_key_and_suggests_ambiguity() -> None:
    project = project_with(
        {"kind": "key_match", "name": "keyed", "left": ["erp"], "right": ["wechat"]},
        {
            "kind": "window_match",
            "name": "window",
            "left": ["erp"],
            "right": ["wechat"],
            "time_window_hours": 1,
        },
        replace=True,
    )
    t = datetime(2026, 11, 20, 3, 0, tzinfo=UTC)
    rows = [
        # unique amount, no key on the channel side: a clear match
        txn("erp", "SO1", 12345, order_ref="SO1", at=t),
        txn("wechat", "WX1", 12345, at=t + timedelta(seconds=40)),
        # two orders of 99.00 a minute apart, two channel rows: time decides clearly
        txn("erp", "SO2", 9900, order_ref="SO2", at=t + timedelta(minutes=10)),
        txn("erp", "SO3", 9900, order_ref="SO3", at=t + timedelta(minutes=40)),
        txn("wechat", "WX2", 9900, at=t + timedelta(minutes=10, seconds=20)),
        txn("wechat", "WX3", 9900, at=t + timedelta(minutes=40, seconds=20)),
        # two orders at the same second and two payments at the same second: a coin toss
        txn("erp", "SO4", 1990, order_ref="SO4", at=t + timedelta(minutes=20)),
        txn("erp", "SO5", 1990, order_ref="SO5", at=t + timedelta(minutes=20)),
        txn("wechat", "WX4", 1990, at=t + timedelta(minutes=20, seconds=30)),
        txn("wechat", "WX5", 1990, at=t + timedelta(minutes=20, seconds=30)),
        # a mangled reference still says which order it is
        txn("erp", "SO6", 5000, order_ref="SO20261120006", at=t + timedelta(minutes=50)),
        txn("erp", "SO7", 5000, order_ref="SO20261120007", at=t + timedelta(minutes=50)),
        txn("wechat", "WX6", 5000, order_ref="so-20261120006 ", at=t + timedelta(minutes=50, seconds=5)),
    ]
    out = run(project, rows)
    one = out.group_of("WX1")
    assert (
        one.match_pass == "window"
        and one.status.value == "auto"
        and {m.txn_id for m in one.members} == {"SO1", "WX1"}
    )
    assert out.where("WX2")["group_id"] == out.where("SO2")["group_id"]
    assert out.where("WX3")["group_id"] == out.where("SO3")["group_id"]
    for wx in ("WX4", "WX5"):
        assert out.where(wx)["status"] == "suggested"
        assert "confirm" in out.group_of(wx).explanation
    assert (
        out.where("WX6")["group_id"] == out.where("SO6")["group_id"] and out.where("WX6")["status"] == "auto"
    )
    assert out.where("SO7")["disposition"] == "case"


def test_subset_sum_unique_is_matched_ambiguous_is_suggested() -> None:
    project = project_with(
        {
            "kind": "subset_sum",
            "name": "one-payment-many-orders",
            "left": ["erp"],
            "right": ["alipay"],
            "max_k": 3,
            "window_days": 1,
        },
        replace=True,
    )
    rows = [
        txn("erp", "A", 1234),
        txn("erp", "B", 2345),
        txn("erp", "C", 9999),
        txn("alipay", "P1", 3579),  # A + B only
    ]
    out = run(project, rows)
    group = out.group_of("P1")
    assert {m.txn_id for m in group.members} == {"P1", "A", "B"} and group.status.value == "auto"
    assert group.match_pass == "subset_sum" and out.where("C")["disposition"] == "case"

    rows = [
        txn("erp", "A", 1000),
        txn("erp", "B", 2000),
        txn("erp", "C", 3000),
        txn("alipay", "P2", 3000 + 2000 - 2000 + 0 + 1000 - 1000 + 0),
    ]
    rows = [
        txn("erp", "D", 1000),
        txn("erp", "E", 2000),
        txn("erp", "F", 1500),
        txn("erp", "G", 1500),
        txn("alipay", "P2", 3000),
    ]
    out = run(project, rows)
    assert out.where("P2")["status"] == "suggested"  # D+E or F+G


def test_in_file_duplicates_and_overlapping_statements(project: Project) -> None:
    rows = _day([txn("wechat", "WX1", 19900, order_ref="SO1", fee=119)])  # the parser flags the repeat
    table = table_of(rows)
    assert table["in_file_duplicate"].to_pylist().count(True) == 1
    overlap = [None] * table.num_rows
    overlap[2] = "st-earlier"
    table = table.append_column("overlap_of", pa_strings(overlap))
    out = run(project, table)
    dup = [p for p in out.placed.to_pylist() if p["txn_id"] == "WX1"]
    assert sorted(p["disposition"] for p in dup) == ["case", "matched"]
    assert out.placed.to_pylist()[2]["rule"] == "overlapping-statement"


def pa_strings(values):
    import pyarrow as pa

    return pa.array(values, pa.string())


def test_channel_refund_the_erp_never_booked(project: Project) -> None:
    rows = _day(
        [
            txn("erp", "SO2#R9", -300, order_ref="SO2", refund_ref="R9"),  # ERP refund never executed
            txn(
                "wechat", "WX9#R8", -200, order_ref="SO9", refund_ref="R8"
            ),  # refund of an order the ERP lacks
            txn(
                "alipay", "AP2#R7", -990, order_ref="SO2", refund_ref="R7"
            ),  # all of SO2, the ERP shows it paid
            txn("alipay", "AP2#R6", -100, order_ref="SO2", refund_ref="R6"),  # part of SO2, never booked
        ]
    )
    out = run(project, [r for r in rows if r.source.value != "bank"])
    erp = out.case_of("SO2#R9")
    assert erp.type is CaseType.MISSING_IN_CHANNEL and erp.reason.startswith("长款")
    unknown = out.case_of("WX9#R8")
    assert unknown.type is CaseType.MISSING_IN_ERP and unknown.reason.startswith("短款")
    refunded = out.case_of("AP2#R7")
    assert refunded.type is CaseType.STATUS_MISMATCH and "refunded it in full" in refunded.reason
    assert refunded.reason.endswith("(-9.90) refunds order SO2 in full; the ERP has not booked it.")
    partial = out.case_of("AP2#R6")
    assert partial.type is CaseType.MISSING_IN_ERP and partial.reason.startswith("短款")


def test_every_row_in_exactly_one_place_and_order_does_not_matter(project: Project) -> None:
    rows = _day(
        [
            txn("erp", "SO4", 9900, order_ref="SO4"),
            txn("wechat", "WX5", 500, order_ref="SO5"),
            txn("bank", "B-FEE", -2000, value_date=T1, memo="结息"),
        ]
    )
    a = run(project, rows)
    shuffled = list(rows)
    random.Random(3).shuffle(shuffled)
    b = run(project, shuffled)
    for out in (a, b):
        counts = out.dispositions()
        assert sum(counts.values()) == len(rows)
    key = lambda p: (p["txn_uid"], p["disposition"], p["group_id"], p["case_id"], p["rule"])  # noqa: E731
    assert sorted(map(key, a.placed.to_pylist())) == sorted(map(key, b.placed.to_pylist()))
    assert a.result.groups.equals(b.result.groups) and a.result.cases.equals(b.result.cases)
    assert a.parquet()[1:] == b.parquet()[1:]  # groups and cases: byte-identical
    assert run(project, rows).parquet() == a.parquet()  # the same input: byte-identical throughout


def test_rows_of_an_unknown_source_are_refused(project: Project) -> None:
    table = table_of(_day())
    bad = table.set_column(
        table.column_names.index("source"), "source", pa_strings(["erp"] * (table.num_rows - 1) + ["paypal"])
    )
    with pytest.raises(ValueError, match="paypal"):
        match_table(project, bad, DAY)


def test_rule_validation() -> None:
    with pytest.raises(ValueError, match="exactly one"):
        project_with({"kind": "mapping", "name": "m", "field": "order_ref"}, replace=True)
    with pytest.raises(ValueError, match="capture group"):
        project_with({"kind": "mapping", "name": "m", "extract": "SO\\d+"}, replace=True)
    with pytest.raises(ValueError, match="disjoint"):
        project_with({"kind": "key_match", "name": "k", "left": ["erp"], "right": ["erp"]}, replace=True)
    with pytest.raises(ValueError, match="not a bank account"):
        project_with(
            {"kind": "settlement", "name": "s", "channel_account": "wechat-main", "bank_account": "erp"},
            replace=True,
        )
    with pytest.raises(ValueError, match="integer"):
        project_with(
            {"kind": "filter", "name": "f", "when": [{"field": "memo", "op": "lt", "value": 3}]}, replace=True
        )
