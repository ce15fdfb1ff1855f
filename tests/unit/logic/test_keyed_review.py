"""The keyed ERP ↔ channel pass on Review A's findings: failed payment attempts beside completed ones (A1),
ERP orders not paid while the channel took the money (A5), second payments already refunded (A11) and
conflicting repeats of one source id (A12)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from recon.domain import Case, CaseType, Project, Transaction, TxnStatus

from .conftest import txn
from .matching_support import Outcome, run
from .test_matching import demo_without_fee_schedule

T0 = datetime(2026, 11, 20, 2, 0, tzinfo=UTC)


@pytest.fixture
def project() -> Project:
    """The rows here carry no fee."""
    return demo_without_fee_schedule()


def _order(
    *rows: tuple[str, str, int, dict[str, Any]], order: str = "SO3", amount: int = 5990, **erp: Any
) -> list[Transaction]:
    """An ERP order and the channel rows given (source, txn_id, amount, other txn() fields), a minute
    apart."""
    out = [txn("erp", order, amount, order_ref=order, at=T0, **erp)]
    for i, (source, txn_id, part, extra) in enumerate(rows, start=1):
        out.append(
            txn(source, txn_id, part, **{"order_ref": order, "at": T0 + timedelta(minutes=i), **extra})
        )
    return out


def _keyed(out: Outcome) -> list[Case]:
    return [c for c in out.cases if c.rule == "erp-channel-order"]


# --- A1: a payment attempt that did not complete, then a payment that did -------------------------------
def test_an_abandoned_attempt_joins_the_order_without_money(project: Project) -> None:
    """s23: the customer starts paying with WeChat, abandons (CLOSED, REVOKED or NOTPAY), pays with Alipay.
    It was AMOUNT_MISMATCH "erp SO3 59.90 vs wechat WX3 + alipay AP3 119.80 (Δ 59.90)"."""
    for status in (TxnStatus.CLOSED, TxnStatus.REVERSED, TxnStatus.PENDING):
        out = run(project, _order(("wechat", "WX3", 5990, {"status": status}), ("alipay", "AP3", 5990, {})))
        assert _keyed(out) == []
        group = out.group_of("AP3")
        assert {m.txn_id for m in group.members} == {"SO3", "WX3", "AP3"}
        assert group.status.value == "auto" and group.confidence == 1.0
        assert group.explanation.endswith(
            f"; wechat WX3 {status.value}: an attempt that did not complete, no money moved (not counted)"
        )


def test_an_abandoned_attempt_does_not_hide_a_second_payment(project: Project) -> None:
    """Failed attempts are not payments: the two completed payments are still an order paid twice."""
    out = run(
        project,
        _order(
            ("wechat", "WX3", 5990, {"status": TxnStatus.CLOSED}),
            ("alipay", "AP3", 5990, {}),
            ("alipay", "AP3b", 5990, {}),
        ),
    )
    assert {m.txn_id for m in out.group_of("AP3").members} == {"SO3", "WX3", "AP3"}
    [case] = _keyed(out)
    assert case.type is CaseType.MISSING_IN_ERP and [m.txn_id for m in case.members] == ["AP3b"]


def test_an_attempt_beside_a_wrong_payment_is_named_in_the_case(project: Project) -> None:
    out = run(
        project, _order(("wechat", "WX3", 5990, {"status": TxnStatus.CLOSED}), ("alipay", "AP3", 5900, {}))
    )
    [case] = _keyed(out)
    assert case.type is CaseType.AMOUNT_MISMATCH and case.delta_minor == -90  # 59.00 − 59.90, not 118.90
    assert {m.txn_id for m in case.members} == {"SO3", "WX3", "AP3"}
    assert case.reason == (
        "Both sides know the transaction but the amounts differ: erp SO3 59.90 vs alipay AP3 59.00 "
        "(Δ -0.90). "
        "wechat WX3 closed: an attempt that did not complete, no money moved (not counted)."
    )


def test_a_key_whose_only_channel_rows_failed_is_still_a_status_mismatch(project: Project) -> None:
    out = run(
        project,
        _order(
            ("wechat", "WX3", 5990, {"status": TxnStatus.CLOSED}),
            ("alipay", "AP3", 5990, {"status": TxnStatus.CLOSED}),
        ),
    )
    [case] = _keyed(out)
    assert case.type is CaseType.STATUS_MISMATCH
    assert {m.txn_id for m in case.members} == {"SO3", "WX3", "AP3"}


# --- A5: an ERP order closed or never paid that the channel names --------------------------------------
def test_an_unpaid_order_the_channel_took_money_for_is_a_status_mismatch(project: Project) -> None:
    """s2: SO16 closed in the ERP, WeChat took 19.90. It was MISSING_IN_ERP ("the ERP does not have" the
    order), the ERP row filtered: the demo's erp-unpaid-orders filter ran before the key pass."""
    for status in (TxnStatus.CLOSED, TxnStatus.PENDING):
        out = run(project, _order(("wechat", "WX16", 1990, {}), order="SO16", amount=1990, status=status))
        [case] = _keyed(out)
        assert case.type is CaseType.STATUS_MISMATCH and case.delta_minor == 1990
        assert {m.txn_id for m in case.members} == {"SO16", "WX16"}
        assert case.reason == (
            "Both sides know the transaction but disagree on whether it happened: "
            f"erp SO16 is {status.value}, wechat WX16 is success."
        )
    # An ERP refund still pending that the channel paid out: the same.
    rows = [
        *_order(("wechat", "WX16", 1990, {}), order="SO16", amount=1990),
        txn("erp", "SO16#R1", -1990, order_ref="SO16", refund_ref="R1", status=TxnStatus.PENDING),
        txn("wechat", "WX16#R1", -1990, order_ref="SO16", refund_ref="R1"),
    ]
    assert run(project, rows).case_of("WX16#R1").type is CaseType.STATUS_MISMATCH


def test_an_unpaid_order_whose_payment_failed_too_is_one_group_without_money(project: Project) -> None:
    out = run(
        project,
        _order(
            ("wechat", "WX16", 1990, {"status": TxnStatus.CLOSED}),
            order="SO16",
            amount=1990,
            status=TxnStatus.CLOSED,
        ),
    )
    assert _keyed(out) == []
    group = out.group_of("WX16")
    assert {m.txn_id for m in group.members} == {"SO16", "WX16"} and group.status.value == "auto"
    assert group.explanation == (
        "order_ref, refund_ref equal; neither side kept any money (erp closed, channel closed)"
    )


def test_an_unpaid_order_no_channel_row_names_is_still_filtered(project: Project) -> None:
    out = run(project, [txn("erp", "SO17", 1990, order_ref="SO17", status=TxnStatus.PENDING)])
    placed = out.where("SO17")
    assert placed["disposition"] == "filtered" and placed["rule"] == "erp-unpaid-orders"


# --- A11: a second payment already refunded -------------------------------------------------------------
def test_a_second_payment_the_erp_booked_a_refund_for_is_not_to_be_refunded_again(project: Project) -> None:
    """s19: SO5 paid twice in WeChat; the second payment refunded in full, and the ERP booked that refund
    (matched by key). It said "refund the customer"."""
    refund_at = {"at": T0 + timedelta(hours=7)}
    rows = [
        *_order(("wechat", "WX5a", 1990, {}), ("wechat", "WX5b", 1990, {}), order="SO5", amount=1990),
        txn("erp", "SO5#R1", -1990, order_ref="SO5", refund_ref="R1", **refund_at),
        txn("wechat", "WX5b#R1", -1990, order_ref="SO5", refund_ref="R1", **refund_at),
    ]
    out = run(project, rows)
    assert out.where("WX5b#R1")["disposition"] == "matched"
    case = out.case_of("WX5b")
    assert case.type is CaseType.MISSING_IN_ERP and case.delta_minor == 1990
    assert "refund the customer:" not in case.reason
    assert case.reason == (
        "长款: the customer paid order SO5 twice; the second payment was refunded already, do not refund the "
        "customer again: wechat WX5b 19.90 is a second payment (refunded in full by wechat WX5b#R1 -19.90, "
        "and the ERP booked that refund against the order: the ERP shows the order refunded while the first "
        "payment is kept — correct the ERP's refund booking); wechat WX5a 19.90 paid it (matched to erp SO5 "
        "19.90)."
    )


# --- A12: one source id, two different rows --------------------------------------------------------------
def _duplicates_of(out: Outcome, txn_id: str) -> list[Case]:
    ids = {r["case_id"] for r in out.all_where(txn_id) if r["case_id"]}
    return [c for c in out.cases if c.case_id in ids and c.type is CaseType.DUPLICATE]


def test_a_repeat_with_a_different_amount_is_a_conflict_not_a_copy(project: Project) -> None:
    """s8: ERP SO4 exported as 9.90 and again as 8.90. It said the 8.90 row "repeats" the 9.90 one."""
    rows = [
        *_order(("wechat", "WX4", 990, {}), order="SO4", amount=990),
        txn("erp", "SO4", 890, order_ref="SO4", at=T0),
        txn("erp", "SO5", 1990, order_ref="SO5", at=T0),
        txn("erp", "SO5", 1990, order_ref="SO5", at=T0),
    ]
    out = run(project, rows)
    assert out.where("SO4")["disposition"] == "matched"  # the first occurrence is reconciled
    [conflict] = _duplicates_of(out, "SO4")
    assert conflict.type is CaseType.DUPLICATE and conflict.delta_minor == 890
    first_at = rows[0].raw_key + f" row {rows[0].row_number}"
    assert conflict.reason == (
        "The same source id appears more than once with different content; the rows conflict on the amount: "
        f"erp SO4 8.90 CNY success here, 9.90 CNY success in the first occurrence at {first_at}. Only the "
        "first occurrence is reconciled: check which one is right."
    )
    [copy] = _duplicates_of(out, "SO5")  # a true copy keeps its words
    assert copy.reason.startswith("The same source id appears more than once; only the first occurrence")
    assert "repeats the row at" in copy.reason


def test_an_unpaid_order_paid_and_refunded_in_full_is_one_group_without_money(project: Project) -> None:
    """s16: paid, cancelled and refunded in full the same day; the ERP shows the order closed. With the
    unpaid-orders filter after the key pass the payment alone would be a STATUS_MISMATCH; the refund gave
    the money back, so neither side keeps any."""
    rows = [
        *_order(("wechat", "WX7", 1990, {}), order="SO7", amount=1990, status=TxnStatus.CLOSED),
        txn("wechat", "WX7#R1", -1990, order_ref="SO7", refund_ref="R1", at=T0 + timedelta(minutes=30)),
    ]
    out = run(project, rows)
    assert [c for c in out.cases if "SO7" in c.reason] == []
    group = out.group_of("WX7")
    assert {m.txn_id for m in group.members} == {"SO7", "WX7", "WX7#R1"} and group.status.value == "auto"
    assert group.explanation == (
        "order_ref, refund_ref equal; neither side kept any money (erp closed, channel success); "
        "wechat WX7 19.90 refunded in full by wechat WX7#R1 -19.90"
    )
    # Refunded in part: the channel kept money the ERP says it has not, a STATUS_MISMATCH.
    rows[-1] = txn("wechat", "WX7#R1", -990, order_ref="SO7", refund_ref="R1", at=T0 + timedelta(minutes=30))
    assert run(project, rows).case_of("WX7").type is CaseType.STATUS_MISMATCH


# --- A7: cross-midnight, the channel first -----------------------------------------------------------------
def test_a_channel_payment_in_the_last_minutes_waits_for_the_erp_callback(project: Project) -> None:
    """s6: WeChat took the money at 23:59:59; the ERP's callback booked the order at 00:00:01, in the next
    day's export. With the demo's carry-over on ERP rows only it was MISSING_IN_ERP on the first day and
    MISSING_IN_CHANNEL on the second."""
    late = datetime(2026, 11, 20, 15, 59, 59, tzinfo=UTC)  # 23:59:59 Asia/Shanghai
    rows = [
        txn("wechat", "WX22", 4990, order_ref="SO22", at=late),
        txn("wechat", "WX23", 4990, order_ref="SO23", at=late - timedelta(hours=1)),
    ]
    out = run(project, rows)
    placed = out.where("WX22")
    assert placed["disposition"] == "open" and placed["rule"] == "erp-channel-order"
    assert out.case_of("WX23").type is CaseType.MISSING_IN_ERP  # earlier in the day: no waiting


# --- A14: a refund larger than the payment ----------------------------------------------------------------
def test_a_refund_larger_than_the_orders_payment_is_a_case(project: Project) -> None:
    """s1: 350.00 refunded on both sides for an order paid 299.00. It was matched silently."""
    at = {"at": T0 + timedelta(hours=5)}
    rows = [
        *_order(("wechat", "WX1", 29900, {}), order="SO1", amount=29900),
        txn("erp", "SO1#R1", -35000, order_ref="SO1", refund_ref="R1", **at),
        txn("wechat", "WX1#R1", -35000, order_ref="SO1", refund_ref="R1", **at),
    ]
    out = run(project, rows)
    case = out.case_of("WX1#R1")
    assert case.type is CaseType.OTHER and case.delta_minor == -5100
    assert {m.txn_id for m in case.members} == {"SO1#R1", "WX1#R1"}
    assert case.reason == (
        "The refund gives back more than the order was paid: erp SO1#R1 -350.00 and wechat WX1#R1 -350.00 "
        "against 299.00 paid for order SO1 (51.00 more)."
    )
    assert out.where("WX1")["disposition"] == "matched"
    # A full refund, or one whose payment is not in the run (an earlier day), is matched as before.
    for keep in (rows, rows[2:]):
        full = [r if r.amount_minor > 0 else r.model_copy(update={"amount_minor": -29900}) for r in keep]
        assert run(project, full).where("WX1#R1")["disposition"] == "matched"
    assert run(project, rows[2:]).where("WX1#R1")["disposition"] == "matched"
