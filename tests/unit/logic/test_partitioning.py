"""Scale-out: a day matched over hash partitions (as a Distributed Map would, with every table crossing a
task boundary as Parquet) gives exactly the single run's result, byte for byte."""

from __future__ import annotations

import io
import random
from datetime import UTC, datetime, timedelta

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml

from recon.domain import Project, Transaction, TxnStatus
from recon.matching import match_partition, match_residual, match_table, merge_results, partition_inputs
from recon.matching.partition import Share, batches_from_json

from .conftest import DAY, REPO, txn
from .matching_support import Outcome, table_of

DEMO = yaml.safe_load((REPO / "local/recon_local/projects/demo.yaml").read_text("utf-8"))
RULES = [
    {
        "kind": "filter",
        "name": "erp-unpaid-orders",
        "sources": ["erp"],
        "when": [{"field": "status", "op": "in", "value": ["closed", "pending"]}],
    },
    {
        "kind": "filter",
        "name": "bank-fees",
        "sources": ["bank"],
        "when": [{"field": "memo", "op": "regex", "value": "管理费"}],
    },
    {
        "kind": "mapping",
        "name": "order-from-memo",
        "sources": ["bank"],
        "field": "order_ref",
        "extract": r"单号(SO\d+)",
    },
    {
        "kind": "key_match",
        "name": "erp-channel-order",
        "left": ["erp"],
        "right": ["wechat", "alipay"],
        "amount_tolerance": {"minor": 2},
        "time_tolerance_hours": 24,
        "carry_over": {"sources": ["erp"], "last_hours": 2},
    },
    {
        "kind": "filter",
        "name": "tiny",
        "sources": ["wechat"],
        "when": [{"field": "amount_minor", "op": "lt", "value": 3}],
    },
    {"kind": "key_match", "name": "erp-bank-order", "left": ["erp"], "right": ["bank"]},
    {
        "kind": "window_match",
        "name": "erp-channel-window",
        "left": ["erp"],
        "right": ["wechat", "alipay"],
        "time_window_hours": 0.5,
    },
    {
        "kind": "settlement",
        "name": "wechat-settlement",
        "channel_account": "wechat-main",
        "bank_account": "bank-cmb",
        "lag_days": [1, 2],
        "memo_pattern": "财付通",
    },
    {
        "kind": "subset_sum",
        "name": "alipay-combined",
        "left": ["erp"],
        "right": ["alipay"],
        "max_k": 3,
        "window_days": 1,
    },
]


def random_day(seed: int) -> list[Transaction]:
    rng = random.Random(seed)
    start = datetime(2026, 11, 19, 16, 0, tzinfo=UTC)
    rows: list[Transaction] = []
    for i in range(rng.randint(60, 160)):
        order = f"SO{seed:03d}{i:05d}"
        at = start + timedelta(seconds=rng.randint(0, 86_399))
        amount = rng.choice([990, 1990, 9900, 19900]) if rng.random() < 0.5 else rng.randint(100, 90_000)
        status = TxnStatus.CLOSED if rng.random() < 0.03 else TxnStatus.SUCCESS
        rows.append(txn("erp", order, amount, order_ref=order, at=at, status=status))
        fate = rng.random()
        channel = "wechat" if rng.random() < 0.6 else "alipay"
        cid = f"{channel[:2].upper()}{seed:03d}{i:05d}"
        paid_at = at + timedelta(seconds=rng.randint(1, 300))
        fee = amount * 6 // 1000
        if fate < 0.70:
            rows.append(txn(channel, cid, amount, order_ref=order, at=paid_at, fee=fee))
        elif fate < 0.78:
            rows.append(txn(channel, cid, amount, at=paid_at, fee=fee))  # no key: the window pass
        elif fate < 0.82:
            rows.append(txn(channel, cid, amount - rng.choice([1, 50]), order_ref=order, at=paid_at))
        elif fate < 0.85:
            rows.append(txn(channel, cid, amount, order_ref=order, at=paid_at, status=TxnStatus.CLOSED))
        elif fate < 0.88:
            rows.append(txn(channel, cid, amount, order_ref=order, at=paid_at))
            rows.append(txn(channel, cid, amount, order_ref=order, at=paid_at))  # delivered twice
        elif fate < 0.90:
            rows.append(txn("bank", f"B{seed}{i}", amount, memo=f"转账 单号{order}", at=paid_at))
        elif fate < 0.93 and i > 2:
            refund = -max(1, amount // 3)
            rows.append(txn("erp", f"{order}#R", refund, order_ref=order, refund_ref="R", at=paid_at))
            rows.append(txn(channel, f"{cid}#R", refund, order_ref=order, refund_ref="R", at=paid_at))
    for k in range(3):  # one alipay payment for several ERP orders, no key
        parts = [rng.randint(500, 5000) for _ in range(rng.randint(2, 3))]
        at = start + timedelta(hours=5 + k)
        for j, part in enumerate(parts):
            rows.append(txn("erp", f"C{seed}{k}{j}", part, at=at))
        rows.append(txn("alipay", f"APC{seed}{k}", sum(parts), at=at + timedelta(minutes=3)))
    paid = {
        r.txn_id: r.net_minor for r in rows if r.source.value == "wechat" and r.status is TxnStatus.SUCCESS
    }
    wechat_net = sum(paid.values())  # a row delivered twice is paid once
    rows.append(txn("bank", f"BW{seed}", wechat_net, value_date=DAY + timedelta(days=1), memo="财付通结算"))
    rows.append(txn("bank", f"BX{seed}", 777, value_date=DAY + timedelta(days=2), memo="财付通结算"))
    rows.append(txn("bank", f"BF{seed}", -300, value_date=DAY + timedelta(days=1), memo="账户管理费"))
    rng.shuffle(rows)
    return rows


def _parquet(table: pa.Table) -> pa.Table:
    """Across a task boundary (S3) and back."""
    sink = io.BytesIO()
    pq.write_table(table, sink)
    return pq.read_table(io.BytesIO(sink.getvalue()))


def partitioned(project: Project, table: pa.Table, n: int) -> Outcome:
    parts = [_parquet(p) for p in partition_inputs(project, table, DAY, n)]
    shares = [match_partition(project, p, DAY) for p in parts]
    moved = [
        Share(
            _parquet(s.placements),
            _parquet(s.groups),
            _parquet(s.cases),
            _parquet(s.residual),
            batches_from_json(s.batches_json()),
        )
        for s in shares
        if s.residual is not None
    ]
    rest = match_residual(
        project, [s.residual for s in moved if s.residual is not None], [s.batches or {} for s in moved], DAY
    )
    return Outcome(merge_results([*moved, rest], DAY), table)


@pytest.mark.parametrize("seed", [1, 2, 3, 4, 5, 6])
def test_partitioned_run_equals_the_single_run_byte_for_byte(seed: int) -> None:
    project = Project.model_validate({**DEMO, "rules": RULES})
    table = table_of(random_day(seed))
    single = Outcome(match_table(project, table, DAY), table)
    counts = single.dispositions()
    assert counts["matched"] > 0 and counts["case"] > 0 and counts["filtered"] > 0
    passes = set(single.result.groups["match_pass"].cast(pa.string()).to_pylist())
    assert {"exact_key", "window", "settlement"} <= passes
    expected = single.parquet()
    for n in (1, 2, 3, 7):
        got = partitioned(project, table, n)
        assert got.parquet() == expected, (seed, n)
        assert list(got.result.open_rows) == list(single.result.open_rows)


def test_partitions_keep_a_key_together() -> None:
    project = Project.model_validate({**DEMO, "rules": RULES})
    table = table_of(random_day(9))
    parts = partition_inputs(project, table, DAY, 4)
    assert sum(p.num_rows for p in parts) == table.num_rows
    homes: dict[str, set[int]] = {}
    for k, part in enumerate(parts):
        for ref in part["order_ref"].to_pylist():
            if ref:
                homes.setdefault(ref, set()).add(k)
    assert all(len(v) == 1 for v in homes.values())
    assert len({k for v in homes.values() for k in v}) > 1


def test_the_match_stage_plans_partitions_for_a_large_day_and_gives_the_same_results() -> None:
    """mode plan -> partition (each) -> residual, as the state machine's Distributed Map runs them, stores
    exactly what mode whole stores."""
    from recon.keys import RESULT_FILES, result_key
    from recon.pipeline.contracts import MatchInput, StartRunInput
    from recon.pipeline.match import match_run
    from recon.pipeline.run import start_run
    from recon.settings import Settings

    from .conftest import memory_services
    from .test_carry_over import _deliver

    project = Project.model_validate({**DEMO, "rules": RULES})
    rows = random_day(11)
    stored: dict[str, list[bytes]] = {}
    for mode in ("whole", "plan"):
        settings = Settings(
            raw_bucket="raw",
            data_bucket="data",
            table_name="t",
            match_partition_rows=50,
            match_rows_per_partition=40,
        )
        svc = memory_services("demo", project, settings=settings)
        for account in ("erp", "wechat-main", "alipay-main", "bank-cmb"):
            mine = [r for r in rows if r.account_id == account]
            _deliver(svc, DAY, account, mine)
        started = start_run(StartRunInput(project_id="demo", business_date=DAY), svc)
        ref = {"run_id": started.run_id, "project_id": "demo", "business_date": DAY}
        out = match_run(MatchInput(**ref, mode=mode), svc)
        if mode == "plan":
            assert (
                out.partitioned
                and out.partitions == -(-len(rows) // 40)
                and out.manifest_key.endswith("manifest.json")
            )
            for k in range(out.partitions):
                assert match_run(MatchInput(**ref, mode="partition", partition=k), svc).partition == k
            out = match_run(MatchInput(**ref, mode="residual"), svc)
        assert not out.partitioned and out.match_groups > 0
        stored[mode] = [
            svc.store.get("data", result_key("demo", DAY, started.run_id, name)) for name in RESULT_FILES
        ]
    assert stored["plan"] == stored["whole"]
