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


def test_ids_read_back_to_their_hashes_and_sort_as_their_strings() -> None:
    """The partitioned merge sorts ids by the hash read back from them (``id_hashes``): that order must be
    the ids' string order, and anything not written by ``hex_ids`` must be refused, not misread."""
    import numpy as np
    import pyarrow as pa

    from recon.matching.hashing import content_order, hex_ids, id_hashes

    rng = np.random.default_rng(7)
    hashes = rng.integers(0, 2**63, 70_000, dtype=np.uint64) * np.uint64(2) + rng.integers(
        0, 2, 70_000
    ).astype(np.uint64)
    hashes[:4] = [0, 2**64 - 1, 0x0123456789ABCDEF, 0xFEDCBA9876543210]
    ids = pa.chunked_array([hex_ids("case", hashes[:40_000]), hex_ids("case", hashes[40_000:])])
    read = id_hashes(ids, "case")
    assert read is not None and (read == hashes).all()
    as_strings = sorted(range(len(hashes)), key=lambda i: str(ids[i]))
    assert content_order(read).tolist() == as_strings
    types = np.array(["b", "a"] * 35_000)
    by_type = sorted(range(len(hashes)), key=lambda i: (types[i], str(ids[i])))
    assert content_order(read, types).tolist() == by_type
    for refused in (
        ["case_0123456789abcdeF"],  # upper case
        ["case_0123456789abcde"],  # short
        ["mg_0123456789abcdef"],  # another prefix
        ["case_0123456789abcdeg"],
        [None],
    ):
        assert id_hashes(pa.array(refused, pa.string()), "case") is None, refused
    assert id_hashes(pa.array([], pa.string()), "mg") is not None
