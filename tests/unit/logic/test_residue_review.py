"""Review A fixes: a corrected ERP re-export replaces the rows it changes (A3); residue case ids do not
depend on the file name or row number (A10); an order paid and refunded in full with the ERP order closed
(A4); the full-refund STATUS_MISMATCH names its counterpart (A16); a zero-amount ERP order (A15)."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

import pyarrow as pa

from recon.domain import Project, Transaction, TxnStatus
from recon.pipeline.overlap import EarlierStatement, mark_overlaps, mark_superseded, supersessions

from .conftest import txn
from .matching_support import run
from .test_matching import DEMO, _day, demo_without_fee_schedule, project_with

# --- A3: a corrected re-export --------------------------------------------------------------------------


def _export(rows: list[tuple[str, int, str]], *, overlap_of: list[str | None] | None = None) -> pa.Table:
    """An ERP export: (order number, amount in fen, status), one row each, all booked on 20 November."""
    columns: dict[str, Any] = {
        "dedupe_key": pa.array([r[0] for r in rows], pa.string()),
        "amount_minor": pa.array([r[1] for r in rows], pa.int64()),
        "status": pa.array([r[2] for r in rows], pa.string()),
        "booked_at": pa.array(
            [datetime(2026, 11, 20, 4, tzinfo=UTC)] * len(rows), pa.timestamp("us", tz="UTC")
        ),
        "row_number": pa.array(range(2, 2 + len(rows)), pa.int32()),
    }
    if overlap_of is not None:
        columns["overlap_of"] = pa.array(overlap_of, pa.string())
        columns["overlap_row"] = pa.array([None] * len(rows), pa.int32())
    return pa.table(columns)


DAY = date(2026, 11, 20)


def test_a_changed_row_of_a_redelivered_export_replaces_the_earlier_row_and_an_identical_one_repeats() -> (
    None
):
    morning = _export([("SO1", 19900, "success"), ("SO2", 1990, "pending"), ("SO3", 5000, "success")])
    evening = _export([("SO1", 18900, "success"), ("SO2", 1990, "success"), ("SO3", 5000, "success")])
    earlier = [EarlierStatement("st-morning", DAY, DAY, morning)]

    marked = mark_overlaps(evening, earlier, "Asia/Shanghai")
    # The corrected amount and the new status are the current truth: not repeats, they count.
    assert marked.column("overlap_of").to_pylist() == [None, None, "st-morning"]
    assert marked.column("overlap_row").to_pylist() == [None, None, 4]

    replaced = supersessions(evening, earlier, "Asia/Shanghai")
    assert [(s.statement_id, s.rows, s.by_rows) for s in replaced] == [("st-morning", (2, 3), (2, 3))]
    # The stale rows of the earlier export are filtered as delivered again by the later one.
    stale = mark_superseded(morning, "st-evening", replaced[0])
    assert stale.column("overlap_of").to_pylist() == ["st-evening", "st-evening", None]
    assert stale.column("overlap_row").to_pylist() == [2, 3, None]
    assert stale.num_rows == morning.num_rows

    # A third delivery pairs with the rows that count now: the evening's SO1 (a repeat), not the stale one.
    night = _export([("SO1", 18900, "success")])
    now = [
        EarlierStatement("st-morning", DAY, DAY, stale),
        EarlierStatement("st-evening", DAY, DAY, marked),
    ]
    assert mark_overlaps(night, now, "Asia/Shanghai").column("overlap_of").to_pylist() == ["st-evening"]
    assert supersessions(night, now, "Asia/Shanghai") == []


def test_a_statement_without_content_columns_pairs_by_key_alone() -> None:
    """An older stored object read without the content columns: compared by key, as before."""
    keys_only = _export([("SO1", 19900, "success")]).select(["dedupe_key", "booked_at", "row_number"])
    evening = _export([("SO1", 18900, "success")])
    earlier = [EarlierStatement("st-old", DAY, DAY, keys_only)]
    assert mark_overlaps(evening, earlier, "Asia/Shanghai").column("overlap_of").to_pylist() == ["st-old"]
    assert supersessions(evening, earlier, "Asia/Shanghai") == []


# --- A10: residue case ids ------------------------------------------------------------------------------


def _residue_rows() -> list[Transaction]:
    return [
        txn("erp", "SO4", 9900, order_ref="SO4"),  # MISSING_IN_CHANNEL
        txn("alipay", "AP5", 4200, order_ref="SO5"),  # MISSING_IN_ERP
        txn("wechat", "WX6", 1990, order_ref="SO6", status=TxnStatus.CLOSED),  # OTHER
        txn("erp", "SO7", 2990, order_ref="SO7"),
        txn("wechat", "WX7", 2990, order_ref="SO7"),
        txn("wechat", "WX7#R1", -2990, order_ref="SO7", refund_ref="R1"),  # STATUS_MISMATCH
        txn("erp", "SO8", 990, order_ref="SO8"),
        txn("erp", "SO8", 990, order_ref="SO8"),  # DUPLICATE: a copy
        txn("erp", "SO8", 890, order_ref="SO8"),  # DUPLICATE: conflicts on the amount
    ]


def _redelivered(rows: list[Transaction]) -> list[Transaction]:
    """The same rows from files under other names, one row further down (a row was added above)."""
    return [
        r.model_copy(
            update={"raw_key": r.raw_key.replace("/file", "/renamed.csv"), "row_number": r.row_number + 1}
        )
        for r in rows
    ]


def test_residue_case_ids_do_not_depend_on_file_name_or_row_number() -> None:
    project = demo_without_fee_schedule()
    rows = _residue_rows()
    base = run(project, _day(rows))
    moved = run(project, _day(_redelivered(rows)))
    cases = {c.type.value for c in base.cases}
    assert {"MISSING_IN_CHANNEL", "MISSING_IN_ERP", "OTHER", "STATUS_MISMATCH"} <= cases
    for txn_id in ("SO4", "AP5", "WX6", "WX7#R1"):
        assert base.where(txn_id)["case_id"], txn_id
        assert base.where(txn_id)["case_id"] == moved.where(txn_id)["case_id"], txn_id
    # DUPLICATE cases (recon.matching.keyed.duplicates) keep their ids too, each repeat its own.
    duplicates = sorted(c.case_id for c in base.cases if c.type.value == "DUPLICATE")
    assert len(duplicates) == 2
    assert duplicates == sorted(c.case_id for c in moved.cases if c.type.value == "DUPLICATE")
    # Every residue case still has its own id.
    ids = [c.case_id for c in base.cases]
    assert len(ids) == len(set(ids))


# --- A4: paid and refunded in full, the ERP order closed ------------------------------------------------


def _unpaid_filtered_first() -> Project:
    """The demo rules with the unpaid-orders filter run before the key pass (as a project may order them):
    the closed ERP order is filtered before any channel row is compared with it."""
    rules = [{k: v for k, v in r.items() if k != "fee_rate_percent"} for r in DEMO["rules"]]
    unpaid = [r for r in rules if r["name"] == "erp-unpaid-orders"]
    return project_with(*unpaid, *[r for r in rules if r["name"] != "erp-unpaid-orders"], replace=True)


def test_payment_refunded_in_full_for_a_closed_erp_order_filtered_first_says_nothing_untrue() -> None:
    """A project that filters unpaid ERP orders before its key rule: the payment and its full refund stay a
    长款 and a 短款 of the same amount (the demo, which filters after the key rule, makes them one group);
    neither says the ERP shows the order paid."""
    rows = [
        txn("erp", "SO7", 1990, order_ref="SO7", status=TxnStatus.CLOSED),
        txn("wechat", "WX7", 1990, order_ref="SO7"),
        txn("wechat", "WX7#R1", -1990, order_ref="SO7", refund_ref="R1"),
    ]
    out = run(_unpaid_filtered_first(), _day(rows))
    assert out.where("SO7")["disposition"] == "filtered"
    payment, refund = out.case_of("WX7"), out.case_of("WX7#R1")
    assert payment.type.value == refund.type.value == "MISSING_IN_ERP"
    assert payment.delta_minor == -refund.delta_minor == 1990
    assert "paid but" not in refund.reason and "shows the order paid" not in refund.reason


def test_a_full_refund_of_a_closed_erp_order_never_says_the_erp_shows_it_paid() -> None:
    """order_known: a closed ERP order does not show the order paid (the refund alone stays: its payment was
    matched elsewhere)."""
    rows = [
        txn("erp", "SO8", 1990, order_ref="SO8", status=TxnStatus.CLOSED),
        txn("wechat", "WX8#R1", -1990, order_ref="SO8", refund_ref="R1"),
    ]
    out = run(_unpaid_filtered_first(), _day(rows))
    case = out.case_of("WX8#R1")
    assert case.type.value != "STATUS_MISMATCH" and "shows the order paid" not in case.reason


# --- A16: the full-refund STATUS_MISMATCH names its counterpart ----------------------------------------


def test_full_refund_status_mismatch_has_the_erp_payment_as_counterpart() -> None:
    rows = [
        txn("erp", "SO9", 2990, order_ref="SO9"),
        txn("wechat", "WX9", 2990, order_ref="SO9"),
        txn("wechat", "WX9#R1", -2990, order_ref="SO9", refund_ref="R1"),
    ]
    out = run(demo_without_fee_schedule(), _day(rows))
    case = out.case_of("WX9#R1")
    assert case.type.value == "STATUS_MISMATCH" and "refunds order SO9 in full" in case.reason
    assert [(c.source.value, c.txn_id, c.amount_minor) for c in case.counterpart] == [("erp", "SO9", 2990)]
    assert case.rule == "refunds-paid-order"


# --- A15: a zero-amount order ---------------------------------------------------------------------------


def test_an_unmatched_zero_amount_row_is_filtered_not_a_case() -> None:
    rows = [
        txn("erp", "SO0", 0, order_ref="SO0"),  # was a 0.00 短款 MISSING_IN_CHANNEL
        txn("alipay", "AP0", 0, order_ref="SO00"),
        txn("wechat", "WX0", 0, order_ref="SO000", fee=1),  # a fee was charged: money moved, still a case
    ]
    out = run(demo_without_fee_schedule(), _day(rows))
    for txn_id in ("SO0", "AP0"):
        placed = out.where(txn_id)
        assert (placed["disposition"], placed["rule"]) == ("filtered", "zero-amount"), txn_id
    assert out.where("WX0")["disposition"] == "case"
