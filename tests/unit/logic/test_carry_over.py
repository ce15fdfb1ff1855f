"""Carry-over: rows that may still be in flight stay open, are offered to later runs, age visibly, and
become MISSING cases once older than the project's ``carry_over_days`` — over consecutive days, in the
engine and through the match and resolve stages (open-items snapshots in the object store)."""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, date, datetime, timedelta

import pytest
import yaml

from recon.domain import CaseType, Project, Statement, StatementStatus, Transaction
from recon.keys import open_items_key, report_prefix
from recon.matching import match_table
from recon.pipeline.contracts import MatchInput, RunRef, StartRunInput
from recon.pipeline.match import match_run
from recon.pipeline.projects import run_id_for
from recon.pipeline.resolve import resolve_run
from recon.pipeline.run import start_run
from recon.pipeline.services import Services
from recon.tables import table_to_parquet

from .conftest import DAY, REPO, memory_services, txn
from .matching_support import Outcome, run, table_of

DEMO = yaml.safe_load((REPO / "local/recon_local/projects/demo.yaml").read_text("utf-8"))
D1, D2, D3, D4 = (DAY + timedelta(days=k) for k in range(4))


def local_midnight(d: date) -> datetime:
    """00:00 Asia/Shanghai of d, in UTC."""
    return datetime(d.year, d.month, d.day, tzinfo=UTC) - timedelta(hours=8)


def carry_project(**extra: object) -> Project:
    data = {
        **DEMO,
        "carry_over_days": 2,
        "rules": [
            {
                "kind": "key_match",
                "name": "erp-channel-order",
                "left": ["erp"],
                "right": ["wechat", "alipay"],
                "time_tolerance_hours": 24,
                "carry_over": {"sources": ["erp"], "last_hours": 1},
            },
            {
                "kind": "settlement",
                "name": "wechat-settlement",
                "channel_account": "wechat-main",
                "bank_account": "bank-cmb",
                "lag_days": [1, 2],
                "memo_pattern": "财付通|微信支付",
            },
        ],
        **extra,
    }
    return Project.model_validate(data)


def test_an_order_paid_after_midnight_is_carried_and_matched_the_next_day() -> None:
    project = carry_project()
    late_order = txn("erp", "SO9", 5000, order_ref="SO9", at=local_midnight(D2) - timedelta(seconds=2))
    early_order = txn("erp", "SO8", 7000, order_ref="SO8", at=local_midnight(D1) + timedelta(hours=10))
    day1 = run(project, [late_order, early_order], D1)
    assert day1.where("SO9")["disposition"] == "open" and day1.where("SO9")["rule"] == "erp-channel-order"
    assert day1.case_of("SO8").type is CaseType.MISSING_IN_CHANNEL  # 10:00 is no longer in flight
    carried = day1.rows.take([int(i) for i in day1.result.open_rows])
    assert carried["txn_id"].to_pylist() == ["SO9"]

    payment = txn("wechat", "WX9", 5000, order_ref="SO9", at=local_midnight(D2) + timedelta(seconds=3))
    table = table_of([payment], first_seen=None)
    import pyarrow as pa

    carried = carried.append_column("first_seen", pa.array([D1], pa.date32()))
    table = pa.concat_tables([table, carried], promote_options="permissive")
    day2 = run(project, table, D2)
    group = day2.group_of("WX9")
    assert {m.txn_id for m in group.members} == {"SO9", "WX9"} and group.status.value == "auto"
    assert day2.where("SO9")["first_seen"] == D1 and day2.where("WX9")["first_seen"] == D2
    assert next(e for e in group.evidence if e.field == "booked_at").delta == "5 s"


def test_a_refund_the_erp_books_the_next_day_is_carried_by_its_type_and_matched() -> None:
    """A carry-over entry limited to refunds: the channel's refund of D1 stays open (any hour of the day)
    and meets the ERP's booking of D2; an unmatched payment of the same source is a case at once."""
    import pyarrow as pa

    project = carry_project()
    rule = project.match_rules[0].model_dump(mode="json")
    rule["carry_over"] = [
        {"sources": ["erp"], "last_hours": 1},
        {"sources": ["erp", "wechat", "alipay"], "txn_types": ["refund"]},
    ]
    project = carry_project(rules=[rule])
    noon = local_midnight(D1) + timedelta(hours=12)
    refund = txn("wechat", "WX5#R1", -2000, order_ref="SO5", refund_ref="RF5", at=noon)
    stray = txn("wechat", "WX6", 3000, order_ref="SO6", at=noon)
    day1 = run(project, [refund, stray], D1)
    assert (
        day1.where("WX5#R1")["disposition"] == "open" and day1.where("WX5#R1")["rule"] == "erp-channel-order"
    )
    assert day1.case_of("WX6").type is CaseType.MISSING_IN_ERP

    carried = day1.rows.take([int(i) for i in day1.result.open_rows])
    carried = carried.append_column("first_seen", pa.array([D1], pa.date32()))
    booked = txn("erp", "SO5#RF5", -2000, order_ref="SO5", refund_ref="RF5", at=noon + timedelta(days=1))
    day2 = run(
        project,
        pa.concat_tables([table_of([booked], first_seen=None), carried], promote_options="permissive"),
        D2,
    )
    assert {m.txn_id for m in day2.group_of("WX5#R1").members} == {"WX5#R1", "SO5#RF5"}


def test_a_single_carry_over_entry_is_a_list_of_one() -> None:
    rule = carry_project().match_rules[0]
    assert [e.model_dump() for e in rule.carry_over] == [
        {"sources": ["erp"], "last_hours": 1, "txn_types": None}
    ]


def test_open_items_age_and_expire_into_missing_cases() -> None:
    project = carry_project()
    import pyarrow as pa

    order = txn("erp", "SO9", 5000, order_ref="SO9", at=local_midnight(D2) - timedelta(seconds=30))
    table = table_of([order])
    for day, expected in ((D2, "open"), (D3, "case")):
        table = table.drop_columns([c for c in ("first_seen",) if c in table.column_names])
        table = table.append_column("first_seen", pa.array([D1], pa.date32()))
        out = run(project, table, day)
        assert out.where("SO9")["disposition"] == expected, day
    case = out.case_of("SO9")
    assert case.type is CaseType.MISSING_IN_CHANNEL and "open since 2026-11-20" in case.reason


def test_a_credit_that_may_settle_a_later_day_waits_for_it() -> None:
    project = carry_project()
    # B2, valued D1+2, may also settle the channel's D2 (lag 1), which this run has not loaded.
    credit = txn("bank", "B2", 3000, value_date=D3, memo="微信支付结算")
    day1 = run(
        project,
        [
            txn("wechat", "WX1", 1000, order_ref="X1"),
            txn("erp", "E1", 1000, order_ref="X1"),
            txn("bank", "B1", 1000, value_date=D3, memo="微信支付结算"),
            credit,
        ],
        D1,
    )
    assert day1.group_of("B1").settles == ["wechat-main@2026-11-20"]
    assert day1.where("B2")["disposition"] == "open" and day1.where("B2")["rule"] == "wechat-settlement"


# --- the same through the match and resolve stages, over consecutive days -------------------------------
@pytest.fixture
def svc() -> Services:
    """The ERP and WeChat Pay accounts only: each day delivers both (an account without a statement for
    the day would hold its counterparts open as awaiting-statement, see test_awaiting_statements)."""
    project = carry_project(
        accounts=[a for a in DEMO["accounts"] if a["account_id"] in ("erp", "wechat-main")],
        rules=carry_project().model_dump(mode="json")["rules"][:1],
    )
    return memory_services("demo", project, clock=lambda: datetime(2026, 11, 25, 1, 30, tzinfo=UTC))


def _deliver(
    svc: Services,
    business_date: date,
    account: str,
    rows: list[Transaction],
    *,
    statement_date: date | None = None,
) -> None:
    """A parsed statement of ``statement_date`` (default: the business date), filed under the business date
    whose run reads it."""
    statement_date = statement_date or business_date
    statement_id = f"st-{account}-{statement_date:%Y%m%d}"
    rows = [r.model_copy(update={"statement_id": statement_id}) for r in rows]
    key = f"normalized/project=demo/account={account}/date={statement_date}/{statement_id}.parquet"
    svc.store.put("data", key, table_to_parquet(table_of(rows)))
    svc.repo.put_statement(
        Statement(
            statement_id=statement_id,
            project_id="demo",
            source=rows[0].source,
            account_id=account,
            business_date=business_date,
            raw_key=f"raw/demo/{account}/{statement_date}/file",
            checksum=statement_id,
            size=1,
            status=StatementStatus.PARSED,
            rows_read=len(rows),
            rows_parsed=len(rows),
            parquet_key=key,
        )
    )


def _run_day(svc: Services, day: date) -> dict:
    start_run(StartRunInput(project_id="demo", business_date=day), svc)
    ref = RunRef(run_id=run_id_for("demo", day), project_id="demo", business_date=day)
    match_run(MatchInput(**ref.model_dump()), svc)
    resolve_run(ref, svc)
    prefix = report_prefix("demo", day, ref.run_id)
    files = {
        n: svc.store.get("data", prefix + n).decode("utf-8-sig")
        for n in ("matches.csv", "cases.csv", "open_items.csv")
    }
    return {
        "run": svc.repo.get_run(ref.run_id),
        **{n: list(csv.DictReader(io.StringIO(t))) for n, t in files.items()},
    }


def test_three_consecutive_days_through_the_stages(svc: Services) -> None:
    late = local_midnight(D2) - timedelta(seconds=2)
    _deliver(
        svc,
        D1,
        "erp",
        [txn("erp", "SO1", 100, order_ref="SO1", at=late), txn("erp", "SO2", 200, order_ref="SO2", at=late)],
    )
    _deliver(svc, D1, "wechat-main", [txn("wechat", "WX0", 50, order_ref="SO0")])
    first = _run_day(svc, D1)
    assert [(r["txn_id"], r["first_seen"], r["age_days"]) for r in first["open_items.csv"]] == [
        ("SO1", "2026-11-20", "0"),
        ("SO2", "2026-11-20", "0"),
    ]
    erp = next(s for s in first["run"].sources if s.source.value == "erp")
    assert (erp.rows_in, erp.carried_in, erp.open, erp.balanced) == (2, 0, 2, True)
    assert svc.store.head("data", open_items_key("demo", D1)) is not None

    # D2: SO1's payment arrives after midnight; SO2 is still missing.
    _deliver(
        svc, D2, "erp", [txn("erp", "SO3", 300, order_ref="SO3", at=local_midnight(D2) + timedelta(hours=9))]
    )
    _deliver(
        svc,
        D2,
        "wechat-main",
        [
            txn("wechat", "WX1", 100, order_ref="SO1", at=late + timedelta(seconds=5)),
            txn("wechat", "WX3", 300, order_ref="SO3", at=local_midnight(D2) + timedelta(hours=9)),
        ],
    )
    second = _run_day(svc, D2)
    linked = {r["txn_id"]: r["group_id"] for r in second["matches.csv"]}
    assert linked["SO1"] == linked["WX1"]
    assert [(r["txn_id"], r["age_days"]) for r in second["open_items.csv"]] == [("SO2", "1")]
    erp = next(s for s in second["run"].sources if s.source.value == "erp")
    assert (erp.rows_in, erp.carried_in, erp.matched, erp.open, erp.balanced) == (1, 2, 2, 1, True)

    # D3: SO2 is now two days old: a MISSING case.
    _deliver(
        svc, D3, "erp", [txn("erp", "SO4", 400, order_ref="SO4", at=local_midnight(D3) + timedelta(hours=9))]
    )
    _deliver(
        svc,
        D3,
        "wechat-main",
        [txn("wechat", "WX4", 400, order_ref="SO4", at=local_midnight(D3) + timedelta(hours=9))],
    )
    third = _run_day(svc, D3)
    assert third["open_items.csv"] == []
    expired = [r for r in third["cases.csv"] if r["txn_id"] == "SO2"]
    assert (
        expired
        and expired[0]["type"] == "MISSING_IN_CHANNEL"
        and "open since 2026-11-20" in expired[0]["reason"]
    )
    assert third["run"].balanced

    # Re-running D2 reads D1's snapshot again: the same results, byte for byte.
    before = svc.store.get("data", report_prefix("demo", D2, run_id_for("demo", D2)) + "matches.csv")
    _run_day(svc, D2)
    assert svc.store.get("data", report_prefix("demo", D2, run_id_for("demo", D2)) + "matches.csv") == before
    summary = json.loads(json.dumps({"ok": True}))
    assert summary["ok"]


def test_an_order_held_for_a_bill_never_delivered_waits_for_it_through_the_stages(svc: Services) -> None:
    """D1's WeChat bill is never delivered: SO1 waits for it on D2 too, though D2's statements are all
    there (open_items.csv: held by awaiting-statement:wechat-main, age 1; was held by the key rule's
    carry-over, silent about the bill), and on D3 it is the 短款 whose reason names the bill and what to do."""
    noon = local_midnight(D1) + timedelta(hours=12)
    _deliver(svc, D1, "erp", [txn("erp", "SO1", 100, order_ref="SO1", at=noon)])
    first = _run_day(svc, D1)
    assert [(r["txn_id"], r["age_days"], r["held_by"]) for r in first["open_items.csv"]] == [
        ("SO1", "0", "awaiting-statement:wechat-main")
    ]
    for k, day in ((2, D2), (3, D3)):
        at = noon + timedelta(days=k - 1)
        _deliver(svc, day, "erp", [txn("erp", f"SO{k}", 200, order_ref=f"SO{k}", at=at)])
        _deliver(svc, day, "wechat-main", [txn("wechat", f"WX{k}", 200, order_ref=f"SO{k}", at=at)])
    second = _run_day(svc, D2)
    assert [(r["txn_id"], r["age_days"], r["held_by"]) for r in second["open_items.csv"]] == [
        ("SO1", "1", "awaiting-statement:wechat-main")
    ]
    assert second["cases.csv"] == [] and second["run"].balanced
    third = _run_day(svc, D3)
    assert third["open_items.csv"] == []
    (case,) = [r for r in third["cases.csv"] if r["txn_id"] == "SO1"]
    assert case["type"] == "MISSING_IN_CHANNEL"
    assert case["reason"].endswith(
        "It stayed open since 2026-11-20 waiting for the wechat-main bill of 2026-11-20, which never "
        "arrived, and is now past the carry-over limit of 2 day(s): deliver the wechat-main bill of "
        "2026-11-20 and re-run that day and the days after it; its counterpart may be there."
    )
    assert third["run"].balanced


def test_one_credit_for_two_days_waits_for_the_second_day() -> None:
    """Alipay pays Saturday T+2 and Sunday T+1 in one Monday credit: Saturday's batch waits (open) for
    Sunday's run, where the carried batch and Sunday's are settled together."""
    project = Project.model_validate(
        {
            **DEMO,
            "carry_over_days": 2,
            "rules": [
                {
                    "kind": "settlement",
                    "name": "alipay-settlement",
                    "channel_account": "alipay-main",
                    "bank_account": "bank-cmb",
                    "lag_days": [1, 2],
                    "memo_pattern": "支付宝",
                },
            ],
        }
    )
    import pyarrow as pa

    credit = txn("bank", "B-MON", 3000, value_date=D3, memo="支付宝结算")
    saturday = run(project, [txn("alipay", "AP1", 1000, order_ref="X1"), credit], D1)
    assert saturday.where("B-MON")["disposition"] == "open"
    waiting = saturday.result.open_batches["alipay-settlement"]
    assert [(b.ref, b.net) for b in waiting] == [("alipay-main@2026-11-20", 1000)]
    assert saturday.where("AP1")["disposition"] == "case"  # no ERP here; the batch is not a case

    carried = table_of([credit]).append_column("first_seen", pa.array([D1], pa.date32()))
    today = table_of([txn("alipay", "AP2", 2000, order_ref="X2")])
    sunday_rows = pa.concat_tables([today, carried], promote_options="permissive")
    sunday = Outcome(
        match_table(project, sunday_rows, D2, carried_batches=saturday.result.open_batches), sunday_rows
    )
    group = sunday.group_of("B-MON")
    assert group.settles == ["alipay-main@2026-11-20", "alipay-main@2026-11-21"]
    assert group.status.value == "auto" and sunday.result.open_batches == {}
