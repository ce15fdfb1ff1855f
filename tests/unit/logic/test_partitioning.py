"""Scale-out: a day matched over hash partitions (as a Distributed Map would, with every table crossing a
task boundary as Parquet) gives exactly the single run's result, byte for byte."""

from __future__ import annotations

import io
import json
import random
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml

from recon.domain import Project, Source, Statement, StatementStatus, Transaction, TxnStatus
from recon.matching import match_table, partition_inputs
from recon.pipeline.services import Services

from .conftest import DAY, REPO, txn
from .matching_support import Outcome, partitioned, table_of

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
            # 50 less: the channel's merchant discount, stated beside the settled amount (gross_minor)
            paid = txn(channel, cid, amount - rng.choice([1, 50]), order_ref=order, at=paid_at)
            rows.append(paid.model_copy(update={"gross_minor": amount}))
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
        elif fate < 0.95:
            # Paid, then refunded in full by the channel alone: a STATUS_MISMATCH whose counterpart is the
            # ERP payment, which the residual task of a partitioned run no longer holds.
            # (Alipay: the day's WeChat net below stays the one bank credit's.)
            rows.append(txn("alipay", cid, amount, order_ref=order, at=paid_at, fee=fee))
            rows.append(txn("alipay", f"{cid}#R", -amount, order_ref=order, refund_ref="R", at=paid_at))
        elif fate < 0.97 and i > 2:
            # Alipay refunded this order's refund M<order>; the ERP booked it on the order before, which
            # may be in another partition: one case, decided by the residual task. (Alipay: WeChat's
            # "tiny" filter would take an unkeyed refund.)
            cid = f"AP{seed:03d}{i:05d}"
            rows.append(txn("alipay", cid, amount, order_ref=order, at=paid_at, fee=fee))
            before = f"SO{seed:03d}{i - 1:05d}"
            refund = -max(1, amount // 4)
            rows.append(
                txn("erp", f"{before}#M", refund, order_ref=before, refund_ref=f"M{order}", at=paid_at)
            )
            rows.append(
                txn("alipay", f"{cid}#M", refund, order_ref=order, refund_ref=f"M{order}", at=paid_at)
            )
    # An order of 100.00 the channel settled at 90.00 after the merchant's 10.00 voucher.
    at = start + timedelta(hours=4)
    rows.append(txn("erp", f"SOD{seed}", 10000, order_ref=f"SOD{seed}", at=at))
    discounted = txn("wechat", f"WXD{seed}", 9000, order_ref=f"SOD{seed}", at=at + timedelta(seconds=5))
    rows.append(discounted.model_copy(update={"gross_minor": 10000}))
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


@pytest.mark.parametrize("seed", [1, 2, 3, 4, 5, 6])
def test_partitioned_run_equals_the_single_run_byte_for_byte(seed: int) -> None:
    project = Project.model_validate({**DEMO, "rules": RULES})
    table = table_of(random_day(seed))
    single = Outcome(match_table(project, table, DAY), table)
    counts = single.dispositions()
    assert counts["matched"] > 0 and counts["case"] > 0 and counts["filtered"] > 0
    passes = set(single.result.groups["match_pass"].cast(pa.string()).to_pylist())
    assert {"exact_key", "window", "settlement"} <= passes
    rules = set(single.result.cases["rule"].cast(pa.string()).to_pylist())
    assert "refund-on-another-order" in rules
    reasons = single.result.cases["reason"].cast(pa.string()).to_pylist()
    assert any("the merchant's own discount" in r for r in reasons)
    expected = single.parquet()
    for n in (1, 2, 3, 7):
        got = partitioned(project, table, n)
        assert got.parquet() == expected, (seed, n)
        assert list(got.result.open_rows) == list(single.result.open_rows)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_rows_carried_waiting_for_a_missing_statement_are_decided_alike_when_partitioned(seed: int) -> None:
    """Carried open items that an earlier run held for a statement it lacked (``awaiting``): the residual
    task keeps the young ones waiting and turns the old ones into cases naming the statement, exactly as the
    single run does."""
    project = Project.model_validate({**DEMO, "rules": RULES})
    today = table_of(random_day(seed))
    at = datetime(2026, 11, 18, 4, tzinfo=UTC)
    carried = table_of(
        [
            txn("erp", f"SOW{seed}1", 4200, order_ref=f"SOW{seed}1", at=at + timedelta(days=1)),
            txn("erp", f"SOW{seed}2", 4300, order_ref=f"SOW{seed}2", at=at),
            txn(
                "alipay", f"APW{seed}#R", -900, order_ref=f"SOW{seed}9", refund_ref="R", at=at
            ),  # (not "tiny")
        ]
    )
    first_seen = [DAY - timedelta(days=1), DAY - timedelta(days=2), DAY - timedelta(days=2)]
    awaiting = ["wechat-main@2026-11-19", "wechat-main@2026-11-18", "erp@2026-11-18"]
    carried = carried.append_column("first_seen", pa.array(first_seen, pa.date32()))
    carried = carried.append_column("awaiting", pa.array(awaiting, pa.string()))
    table = pa.concat_tables([today, carried], promote_options="permissive")
    single = Outcome(match_table(project, table, DAY), table)
    assert single.where(f"SOW{seed}1")["rule"] == "awaiting-statement:wechat-main"
    assert "the wechat-main bill of 2026-11-18, which never arrived" in single.case_of(f"SOW{seed}2").reason
    assert "the erp export of 2026-11-18, which never arrived" in single.case_of(f"APW{seed}#R").reason
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

    from .test_carry_over import _deliver

    project = Project.model_validate({**DEMO, "rules": RULES})
    rows = random_day(11)
    stored: dict[str, list[bytes]] = {}
    for mode in ("whole", "plan"):
        svc = _stage_services(project, rows_per_partition=40)
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
    # The amount before discounts crosses the stored objects and the partitions: the reason names it.
    cases = pq.read_table(io.BytesIO(stored["plan"][RESULT_FILES.index("cases.parquet")]))
    rules = cases["rule"].cast(pa.string()).to_pylist()
    assert "refund-on-another-order" in rules
    assert any("the merchant's own discount" in r for r in cases["reason"].cast(pa.string()).to_pylist())


def test_a_day_prepared_a_slice_at_a_time_gives_the_partitions_of_the_whole_day() -> None:
    """The plan task prepares a large file a slice at a time; its in-file duplicates are found over the
    whole file first. Every slice size gives the whole day's partitions, row for row."""
    import numpy as np

    from recon.matching.engine import in_file_duplicates
    from recon.matching.partition import prepare_slice, split_inputs

    project = Project.model_validate({**DEMO, "rules": RULES})
    table = table_of(random_day(12))
    flagged = np.asarray(table["in_file_duplicate"].to_numpy(zero_copy_only=False), bool)
    assert flagged.any()
    repeats, _ = in_file_duplicates(
        flagged, table["statement_id"], table["dedupe_key"], np.arange(table.num_rows)
    )
    assert len(repeats)
    expected = [p.combine_chunks() for p in split_inputs(project, table, DAY, 3)]
    for size in (1, 7, 50):
        got: list[list[pa.Table]] = [[], [], []]
        for start in range(0, table.num_rows, size):
            rows = table.slice(start, size)
            rows = rows.append_column("_pos", pa.array(range(start, start + rows.num_rows), pa.int64()))
            mine = repeats[(repeats >= start) & (repeats < start + size)] - start
            for k, part in prepare_slice(project, rows, DAY, 3, repeats=mine):
                got[k].append(part)
        for k in range(3):
            whole = pa.concat_tables(got[k]).combine_chunks()
            assert whole.to_pylist() == expected[k].to_pylist(), (size, k)


def _deliver_table(svc: Services, day: date, account: str, statement_id: str, table: pa.Table) -> None:
    """One statement object as the parse stage stores it (``table`` may be a version 1 table)."""
    from recon.domain import Statement, StatementStatus
    from recon.tables import table_to_parquet

    key = f"normalized/project=demo/account={account}/date={day}/{statement_id}.parquet"
    if "dedupe_key" in table.column_names:
        body = table_to_parquet(table)
    else:  # a version 1 object, stored before the dedupe columns existed
        sink = io.BytesIO()
        pq.write_table(table, sink)
        body = sink.getvalue()
    svc.store.put("data", key, body)
    svc.repo.put_statement(
        Statement(
            statement_id=statement_id,
            project_id="demo",
            source=table["source"][0].as_py(),
            account_id=account,
            business_date=day,
            raw_key=f"raw/demo/{account}/{day}/{statement_id}",
            checksum=statement_id,
            size=1,
            status=StatementStatus.PARSED,
            rows_read=table.num_rows,
            rows_parsed=table.num_rows,
            parquet_key=key,
        )
    )


def _second_day_rows() -> list[Transaction]:
    shift = timedelta(days=1)  # booked on the second day: its last hours are in flight, carried again
    return [
        r.model_copy(update={"booked_at": r.booked_at + shift, "value_date": r.value_date + shift})
        for r in random_day(13)
    ]


def _second_day(svc: Services, day: date, rows: list[Transaction]) -> None:
    """Several statement objects per account, in-file duplicates, an overlapping statement and a version
    1 object."""
    from recon.tables import TRANSACTION_SCHEMA

    for account in ("erp", "wechat-main", "alipay-main", "bank-cmb"):
        mine = [r for r in rows if r.account_id == account]
        halves = (mine[: len(mine) // 2], mine[len(mine) // 2 :])
        for j, half in enumerate(halves):
            statement_id = f"st-{account}-{j}"
            filed = [r.model_copy(update={"statement_id": statement_id}) for r in half]
            if account == "wechat-main" and j == 1:
                filed += filed[:3]  # delivered again in the same file: in-file duplicates
            table = table_of(filed)
            if account == "erp" and j == 1:
                # The second ERP statement repeats rows the first already delivered.
                marks = [f"st-{account}-0" if i % 5 == 0 else None for i in range(table.num_rows)]
                table = table.append_column("overlap_of", pa.array(marks, pa.string()))
            if account == "alipay-main" and j == 1:
                table = table.select(
                    [
                        f.name
                        for f in TRANSACTION_SCHEMA
                        if f.name not in ("dedupe_key", "in_file_duplicate", "gross_minor")
                    ]
                )
                table = pa.concat_tables([table, table.slice(0, 2)])  # repeats a version 1 reader flags
            _deliver_table(svc, day, account, statement_id, table)


def _stage_outputs(svc: Services, run_id: str, day: date) -> dict[str, bytes]:
    from recon.keys import INPUTS_FILE, RESULT_FILES, open_batches_key, open_items_key, result_key

    store = svc.store
    names = [*RESULT_FILES, INPUTS_FILE]
    out = {n: store.get("data", result_key("demo", day, run_id, n)) for n in names}
    out["open_items"] = store.get("data", open_items_key("demo", day))
    out["open_batches"] = store.get("data", open_batches_key("demo", day))
    run = svc.repo.get_run(run_id)
    assert run is not None
    out["files"] = json.dumps([f.model_dump(mode="json") for f in run.files]).encode()
    return out


@pytest.mark.parametrize(
    "quarantined",
    [None, "day", "day-before"],
    ids=["complete", "bank-quarantined", "bank-quarantined-the-day-before"],
)
def test_the_streamed_plan_and_residual_store_what_a_whole_run_stores(
    monkeypatch: pytest.MonkeyPatch, quarantined: str | None
) -> None:
    """A day with carried open items, several statement objects per account, in-file duplicates (one pair
    in a version 1 object), an overlapping statement and filters, partitioned with objects read a few
    rows at a time: results, inputs, open items, open batches and file accounting equal mode whole's,
    and no task of the partitioned run loads the whole day. With a quarantined bank statement too, the
    rows held for it (``awaiting-statement``) are the same; quarantined the day before, the carried rows
    held for it keep waiting for it (the snapshot's ``awaiting``) in the residual task as in the whole run."""
    from recon.pipeline import match as stage
    from recon.pipeline.contracts import MatchInput, StartRunInput
    from recon.pipeline.run import start_run

    from .test_carry_over import _deliver

    project = Project.model_validate({**DEMO, "rules": RULES})
    first_day, day = DAY, DAY + timedelta(days=1)
    stored: dict[str, dict[str, bytes]] = {}
    first_rows, second_rows = random_day(11), _second_day_rows()  # once: txn() counts calls
    for mode in ("whole", "plan"):
        svc = _stage_services(project, rows_per_partition=7)
        for account in ("erp", "wechat-main", "alipay-main", "bank-cmb"):
            _deliver(svc, first_day, account, [r for r in first_rows if r.account_id == account])
        started = start_run(StartRunInput(project_id="demo", business_date=first_day), svc)
        ref = {"run_id": started.run_id, "project_id": "demo", "business_date": first_day}
        if quarantined == "day-before":
            _quarantine_bank(svc, first_day)
        stage.match_run(MatchInput(**ref, mode="whole"), svc)  # leaves open items to carry
        _second_day(svc, day, second_rows)
        if quarantined == "day":
            _quarantine_bank(svc, day)
        started = start_run(StartRunInput(project_id="demo", business_date=day), svc)
        ref = {"run_id": started.run_id, "project_id": "demo", "business_date": day}
        if mode == "plan":
            with monkeypatch.context() as m:
                for name in ("_load_day", "_load_rows", "assemble", "previous_open_items", "read_parquet"):
                    m.setattr(stage, name, _refuse(name))
                out = stage.match_run(MatchInput(**ref, mode="plan"), svc)
                assert out.partitioned and out.partitions > 10
                for k in range(out.partitions):
                    stage.match_run(MatchInput(**ref, mode="partition", partition=k), svc)
                out = stage.match_run(MatchInput(**ref, mode="residual"), svc)
        else:
            out = stage.match_run(MatchInput(**ref, mode="whole"), svc)
        assert out.match_groups > 0
        stored[mode] = _stage_outputs(svc, started.run_id, day)
    inputs = json.loads(stored["whole"]["inputs.json"])["objects"]
    assert len(inputs) == 9 and inputs[-1][0].startswith("open-items/")  # 8 statements, then the carried
    result = pq.read_table(io.BytesIO(stored["whole"]["cases.parquet"]))
    assert "DUPLICATE" in result["type"].cast(pa.string()).to_pylist()
    placements = pq.read_table(io.BytesIO(stored["whole"]["placements.parquet"]))
    rules = set(placements["rule"].cast(pa.string()).to_pylist())
    assert {"overlapping-statement", "erp-unpaid-orders", "duplicate-source-id"} <= rules
    assert ("awaiting-statement:bank-cmb" in rules) is (quarantined is not None)  # ERP rows of erp-bank-order
    snapshot = pq.read_table(io.BytesIO(stored["whole"]["open_items"]))
    assert snapshot.num_rows  # the next day's carried rows
    # What the snapshot's rows wait for: the bank statement of the run that lacked it (the run of the day
    # before, for the rows it held that are one day old and keep waiting).
    waiting = {"day": {"bank-cmb@2026-11-21"}, "day-before": {"bank-cmb@2026-11-20"}}
    assert set(snapshot["awaiting"].to_pylist()) - {None} == waiting.get(quarantined or "", set())
    for name in stored["whole"]:
        assert stored["plan"][name] == stored["whole"][name], name


def _quarantine_bank(svc: Services, day: date) -> None:
    """A bank statement of ``day`` that the parse stage quarantined: the day's bank statement is missing."""
    svc.repo.put_statement(
        Statement(
            statement_id=f"st-bank-cmb-bad-{day}",
            project_id="demo",
            source=Source.BANK,
            account_id="bank-cmb",
            business_date=day,
            raw_key=f"raw/demo/bank-cmb/{day}/late.xml",
            checksum="bad",
            size=1,
            status=StatementStatus.QUARANTINED,
        )
    )


def _stage_services(project: Project, *, rows_per_partition: int) -> Services:
    """In-memory services whose match stage partitions any day above 50 rows."""
    from recon.settings import Settings

    from .conftest import memory_services

    settings = Settings(
        raw_bucket="raw",
        data_bucket="data",
        table_name="t",
        match_partition_rows=50,
        match_rows_per_partition=rows_per_partition,
    )
    return memory_services("demo", project, settings=settings)


def _refuse(name: str) -> Callable[..., object]:
    def refused(*args: object, **kwargs: object) -> object:
        raise AssertionError(f"a partitioned task called {name}: it would hold the whole day")

    return refused
