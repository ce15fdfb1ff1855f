from __future__ import annotations

from datetime import timedelta

from recon.domain import CaseType, Project, TxnStatus
from recon.matching import FindingKind, match_transactions
from recon.resolving import classify_findings, run_accounting

from .conftest import DAY, txn

T1 = DAY + timedelta(days=1)


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


def _run(project: Project, rows):
    outcome = match_transactions(project, "demo-20261120", DAY, rows)
    cases = classify_findings(project, "demo-20261120", outcome)
    return outcome, cases


def test_clean_day_matches_three_ways_with_evidence(project: Project) -> None:
    outcome, cases = _run(project, _day())
    assert cases == []
    rules = sorted(g.rule for g in outcome.groups)
    assert rules == [
        "alipay-settlement",
        "erp-channel-order",
        "erp-channel-order",
        "erp-channel-order",
        "wechat-settlement",
    ]
    settlement = next(g for g in outcome.groups if g.rule == "wechat-settlement")
    assert settlement.settles == ["wechat-main@2026-11-20"]
    assert [m.txn_id for m in settlement.members] == ["B-WX"]
    net = next(e for e in settlement.evidence if e.field == "net_total")
    assert net.equal and net.left == net.right == "197.81"
    pair = next(g for g in outcome.groups if any(m.txn_id == "WX1" for m in g.members))
    fields = {e.field: e for e in pair.evidence}
    assert fields["order_ref"].equal and fields["amount"].equal and fields["amount"].delta == "0.00"
    accounting = {a.source.value: a for a in run_accounting(outcome, cases)}
    assert accounting["bank"].matched == 2 and accounting["erp"].matched == 3
    assert all(a.balanced for a in accounting.values())


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
    outcome, cases = _run(project, rows)
    kinds = sorted(c.type.value for c in cases)
    assert kinds == sorted(
        [
            CaseType.AMOUNT_MISMATCH.value,  # SO3 vs WX3
            CaseType.MISSING_IN_CHANNEL.value,  # SO4
            CaseType.MISSING_IN_ERP.value,  # AP5
            CaseType.DUPLICATE.value,  # SO1 again
            CaseType.AMOUNT_MISMATCH.value,  # both settlements now differ from the bank credits
            CaseType.AMOUNT_MISMATCH.value,
        ]
    )
    amount = next(
        c for c in cases if c.type is CaseType.AMOUNT_MISMATCH and any(m.txn_id == "WX3" for m in c.members)
    )
    assert amount.delta_minor == -1000
    assert "199.00" in amount.reason and "189.00" in amount.reason
    dup = next(c for c in cases if c.type is CaseType.DUPLICATE)
    assert [m.txn_id for m in dup.members] == ["SO1"] and [m.txn_id for m in dup.counterpart] == ["SO1"]
    assert outcome.filtered == {
        "erp:erp:SO6": "erp-unpaid-orders",
        "bank:bank-cmb:B-FEE": "bank-fees-and-interest",
    }
    accounting = {a.source.value: a for a in run_accounting(outcome, cases)}
    assert accounting["erp"].rows_in == 7 and accounting["erp"].filtered == 1
    assert accounting["erp"].filtered_by_rule == {"erp-unpaid-orders": 1}
    assert all(a.balanced for a in accounting.values())


def test_missing_settlement_and_unexplained_credit(project: Project) -> None:
    rows = [r for r in _day() if r.txn_id != "B-WX"] + [
        txn("bank", "B-X", 123456, value_date=T1, counterparty="某某贸易有限公司", memo="货款")
    ]
    outcome, cases = _run(project, rows)
    by_type = {c.type: c for c in cases}
    missing = by_type[CaseType.MISSING_IN_BANK]
    assert [m.txn_id for m in missing.members] == ["wechat-main@2026-11-20"]
    assert missing.members[0].is_aggregate and missing.delta_minor == -(19900 - 119)
    unexplained = by_type[CaseType.MISSING_IN_CHANNEL]
    assert [m.txn_id for m in unexplained.members] == ["B-X"]
    assert "长款" in unexplained.reason
    assert all(a.balanced for a in run_accounting(outcome, cases))


def test_status_and_time_mismatch(project: Project) -> None:
    base = _day()
    late = base[1].booked_at + timedelta(hours=30)
    rows = [
        *base,
        txn("erp", "SO7", 1000, order_ref="SO7"),
        txn("wechat", "WX7", 1000, order_ref="SO7", status=TxnStatus.REVERSED),
        txn("erp", "SO8", 2000, order_ref="SO8", at=base[1].booked_at),
        txn("wechat", "WX8", 2000, order_ref="SO8", at=late),
    ]
    _, cases = _run(project, rows)
    types = {c.type for c in cases if any(m.txn_id in ("WX7", "WX8") for m in c.members)}
    assert types == {CaseType.STATUS_MISMATCH, CaseType.TIME_MISMATCH}


def test_deterministic_regardless_of_input_order(project: Project) -> None:
    rows = _day([txn("erp", "SO4", 9900, order_ref="SO4")])
    a = _run(project, rows)
    b = _run(project, list(reversed(rows)))
    assert a[0].model_dump_json() == b[0].model_dump_json()
    assert [c.model_dump_json() for c in a[1]] == [c.model_dump_json() for c in b[1]]


def test_settlement_lag_outside_window_is_not_matched(project: Project) -> None:
    rows = [r for r in _day() if r.txn_id != "B-WX"] + [
        txn("bank", "B-WX-LATE", 19900 - 119, value_date=DAY + timedelta(days=3), memo="微信支付结算")
    ]
    outcome, cases = _run(project, rows)
    assert {c.type for c in cases} == {CaseType.MISSING_IN_BANK, CaseType.MISSING_IN_CHANNEL}
    assert FindingKind.SETTLEMENT_MISSING in {f.kind for f in outcome.findings}


def test_every_row_in_exactly_one_place_is_enforced(project: Project) -> None:
    outcome, cases = _run(project, _day())
    outcome.filtered[outcome.groups[0].members[0].txn_uid] = "bogus"
    try:
        run_accounting(outcome, cases)
    except ValueError as exc:
        assert "more than one place" in str(exc)
    else:
        raise AssertionError("double placement not detected")


def test_missing_refunds_are_worded_the_other_way_round(project: Project) -> None:
    rows = _day(
        [
            txn("erp", "SO2#R9", -300, order_ref="SO2", refund_ref="R9"),  # ERP refund never executed
            txn("wechat", "WX9#R8", -200, order_ref="SO9", refund_ref="R8"),  # channel refund never booked
        ]
    )
    _, cases = _run(project, rows)
    erp = next(c for c in cases if any(m.txn_id == "SO2#R9" for m in c.members))
    assert erp.type is CaseType.MISSING_IN_CHANNEL and erp.reason.startswith("长款")
    channel = next(c for c in cases if any(m.txn_id == "WX9#R8" for m in c.members))
    assert channel.type is CaseType.MISSING_IN_ERP and channel.reason.startswith("短款")
