"""Group and case ids are content-derived: the same group or case keeps its id whatever other rows the
run (or the task: a partition, the residual) holds, e.g. when a late upload adds rows to a day that a
person is already reviewing."""

from __future__ import annotations

from .conftest import txn
from .matching_support import run
from .test_matching import _day, demo_without_fee_schedule


def test_ids_do_not_depend_on_the_other_rows_of_the_run() -> None:
    project = demo_without_fee_schedule()
    planted = [
        txn("erp", "SO3", 19900, order_ref="SO3"),  # AMOUNT_MISMATCH
        txn("wechat", "WX3", 18900, order_ref="SO3"),
        txn("erp", "SO4", 9900, order_ref="SO4"),  # MISSING_IN_CHANNEL
        txn("alipay", "AP5", 4200, order_ref="SO5"),  # MISSING_IN_ERP
    ]
    base = run(project, _day(planted))
    # The same rows plus a late pair and an orphan whose ids, keys and lineage are much longer than any
    # other row's (hashes of padded values would change every id).
    long_ref = "SO-" + "9" * 61
    more = run(
        project,
        _day(
            [
                *planted,
                txn("erp", long_ref, 700, order_ref=long_ref),
                txn("wechat", "WX-" + "8" * 70, 700, order_ref=long_ref),
                txn("alipay", "AP-" + "7" * 90, 1200, order_ref="SO-" + "6" * 80),
            ]
        ),
    )
    assert {g.group_id for g in base.groups} < {g.group_id for g in more.groups}
    assert {c.case_id for c in base.cases} < {c.case_id for c in more.cases}
    for txn_id in ("SO1", "WX1", "AP2#R1", "B-WX"):
        assert base.where(txn_id)["group_id"] == more.where(txn_id)["group_id"], txn_id
    for txn_id in ("SO3", "SO4", "AP5"):
        assert base.where(txn_id)["case_id"] == more.where(txn_id)["case_id"], txn_id
