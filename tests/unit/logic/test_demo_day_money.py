"""The demo day through every stage (in-memory adapters), read as a finance controller reads its outputs:
the money tie-out per source, 长款 / 短款 over every case type, cases.csv safe to sum, and CSV files Excel on
a zh-CN Windows opens as UTF-8."""

from __future__ import annotations

import csv
import io
import json
from collections import defaultdict
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pyarrow.parquet as pq
import pytest

from recon.domain import Project, StatementStatus
from recon.keys import raw_key, report_prefix
from recon.pipeline.contracts import MatchInput, RunRef, StartRunInput
from recon.pipeline.fetch import fetch_statements
from recon.pipeline.match import match_run
from recon.pipeline.parse import parse_channel
from recon.pipeline.report import report_run
from recon.pipeline.resolve import resolve_run
from recon.pipeline.run import start_run
from recon.pipeline.services import Services
from recon_local.demo_data import generate_day
from tests.export_contract import APPENDED_CASE, FOUNDATION_CASE, SOURCE_MONEY_FIELDS

from .conftest import DAY, Clock, memory_services, notifying_settings
from .test_pipeline_in_memory import PROJECT_TEXT, _run_all, _upload

EXPORTS = ("matches.csv", "cases.csv", "filtered.csv", "open_items.csv")


def _demo_services() -> Services:
    """In-memory services with the demo project and its day's files uploaded."""
    svc = memory_services(
        "demo",
        PROJECT_TEXT,
        settings=notifying_settings(),
        clock=lambda: datetime(2026, 11, 22, 1, 30, tzinfo=UTC),
    )
    _upload(svc, Project.from_yaml(PROJECT_TEXT))
    return svc


@pytest.fixture(scope="module")
def demo() -> tuple[Services, str, dict[str, Any]]:
    svc = _demo_services()
    started, *_ = _run_all(svc)
    prefix = report_prefix("demo", DAY, started.run_id)
    return svc, prefix, json.loads(svc.store.get("data", prefix + "summary.json"))


def _csv(svc: Services, key: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(svc.store.get("data", key).decode("utf-8-sig"))))


def _statement_amounts(svc: Services) -> dict[str, int]:
    """Per source, the amounts of the rows the parse stage wrote (independent of the run's accounting)."""
    totals: dict[str, int] = defaultdict(int)
    for account in ("erp", "wechat-main", "alipay-main", "bank-cmb"):
        for day in (DAY, DAY.replace(day=21)):
            for st in svc.repo.list_statements("demo", account, day):
                if st.status is StatementStatus.PARSED and st.parquet_key:
                    rows = pq.read_table(io.BytesIO(svc.store.get("data", st.parquet_key)))
                    totals[st.source.value] += sum(rows["amount_minor"].to_pylist())
    return dict(totals)


def _minor(text: str) -> int:
    return int(Decimal(text) * 100)


def test_money_ties_out_per_source_to_the_fen_in_summary_and_report(
    demo: tuple[Services, str, dict[str, Any]],
) -> None:
    svc, prefix, summary = demo
    read = _statement_amounts(svc)
    assert set(read) == set(summary["sources"]) == {"erp", "wechat", "alipay", "bank"}
    by_disposition: dict[tuple[str, str], int] = defaultdict(int)
    for name, column in (("matches.csv", "matched"), ("cases.csv", "in_cases"), ("filtered.csv", "filtered")):
        for row in _csv(svc, prefix + name):
            by_disposition[(row["source"], column)] += _minor(row["amount"])
    for source, counts in summary["sources"].items():
        money = counts["money"]["CNY"]
        assert list(money) == SOURCE_MONEY_FIELDS
        assert _minor(money["in"]) == read[source], source  # what the statements hold, to the fen
        out = sum(_minor(money[k]) for k in ("matched", "in_cases", "filtered", "open"))
        assert _minor(money["in"]) + _minor(money["carried_in"]) == out == _minor(money["out"])
        assert money["balanced"] is True and money["held"] == money["open"] == "0.00"
        for column in ("matched", "in_cases", "filtered"):  # each figure is what its export lists
            assert _minor(money[column]) == by_disposition[(source, column)], (source, column)
    assert summary["quarantined_by_source"] == {}
    erp = summary["sources"]["erp"]["money"]["CNY"]
    assert (erp["in"], erp["matched"], erp["in_cases"], erp["filtered"]) == (
        "10638.67",
        "10180.52",
        "398.45",
        "59.70",
    )
    html = svc.store.get("data", prefix + "report.html").decode("utf-8")
    money_table = html[html.index('<table id="money">') :]
    money_table = money_table[: money_table.index("</table>")]
    for figure in ("10,638.67", "10,180.52", "398.45", "59.70"):
        assert figure in money_table


def test_shortage_and_surplus_count_every_money_case_and_leave_the_duplicate_out(
    demo: tuple[Services, str, dict[str, Any]],
) -> None:
    """短款: the unpaid ERP order 29.90, WeChat's 10.00 less than the ERP booked, the CMB credit 10.00 below
    Alipay's net; 长款: the unexecuted ERP refund 30.16 and the Alipay trade no order explains 59.90. The
    repeated ERP row moved no money. Before: 短款 29.90, and 199.71 more at stake."""
    svc, prefix, summary = demo
    assert summary["stake_totals"]["CNY"] == {
        "cases": 6,
        "at_stake": "139.96",
        "surplus": "90.06",
        "shortage": "49.90",
        "not_at_stake": "199.71",
    }
    assert summary["case_stakes"]["AMOUNT_MISMATCH"]["CNY"]["shortage"] == "20.00"
    assert summary["case_stakes"]["DUPLICATE"]["CNY"]["at_stake"] == "0.00"
    assert summary["case_amount_by_type"]["DUPLICATE"] == "0.00"
    html = svc.store.get("data", prefix + "report.html").decode("utf-8")
    totals = html[html.index('<table id="stake-totals">') :]
    assert "<b>49.90</b>" in totals[: totals.index("</table>")]


def test_cases_csv_is_safe_to_sum_and_names_direction_status_and_dates(
    demo: tuple[Services, str, dict[str, Any]],
) -> None:
    svc, prefix, summary = demo
    rows = _csv(svc, prefix + "cases.csv")
    assert list(rows[0]) == FOUNDATION_CASE + APPENDED_CASE
    cases = svc.repo.list_cases(summary["run_id"])
    # Each case's delta and amount at stake once: the columns add up to the cases' totals.
    delta = sum(_minor(r["delta"]) for r in rows if r["delta"])
    assert delta == sum(c.delta_minor for c in cases)
    mismatch = [r for r in rows if r["type"] == "AMOUNT_MISMATCH"]
    assert sum(_minor(r["delta"]) for r in mismatch if r["delta"]) == -2000  # two cases of -10.00, not -30.00
    assert sum(_minor(r["at_stake"]) for r in rows if r["at_stake"]) == _minor(
        summary["stake_totals"]["CNY"]["at_stake"]
    )
    assert {r["direction"] for r in mismatch} == {"短款"}
    assert {r["direction"] for r in rows if r["type"] == "DUPLICATE"} == {"not at stake: data defect"}
    assert {r["status"] for r in rows} == {"open"}
    for r in rows:
        if "@" not in r["txn_id"]:  # a row, not a settlement batch
            assert r["booked_at"].endswith("+08:00") and r["value_date"].startswith("2026-11-2"), r
    bank = next(r for r in rows if r["source"] == "bank")
    assert (bank["value_date"], bank["delta"], bank["direction"]) == ("2026-11-21", "-10.00", "短款")


def test_every_csv_export_opens_in_excel_as_utf8(demo: tuple[Services, str, dict[str, Any]]) -> None:
    """A byte order mark, and the charset in the stored content type: Excel on a zh-CN Windows read the
    files as GBK (短款 became 鐭�娆�)."""
    svc, prefix, _ = demo
    for name in EXPORTS:
        data = svc.store.get("data", prefix + name)
        assert data.startswith(b"\xef\xbb\xbf"), name
        assert svc.store.content_type("data", prefix + name) == "text/csv; charset=utf-8", name  # type: ignore[attr-defined]
    assert "短款" in svc.store.get("data", prefix + "cases.csv").decode("utf-8-sig")


def test_a_quarantined_bill_shows_its_rows_and_the_money_held_for_it() -> None:
    """The WeChat bill is quarantined: its rows were never read (counted per source, in no amount), and the
    ERP orders and the bank credit waiting for it are the open amount, all of it held."""
    svc = _demo_services()
    name, data = generate_day(DAY).files["wechat-main"]
    broken = data.replace(b"\r\n`", b"\r\n`not-a-date", 1)
    svc.store.put("raw", raw_key("demo", "wechat-main", DAY, name), broken)
    started, *_ = _run_all(svc)
    prefix = report_prefix("demo", DAY, started.run_id)
    summary = json.loads(svc.store.get("data", prefix + "summary.json"))
    wechat = next(f for f in summary["files"] if f["source"] == "wechat")
    assert "wechat" not in summary["sources"]  # no row of it was read
    assert summary["quarantined_by_source"] == {"wechat": {"files": 1, "rows": wechat["rows_rejected"]}}
    assert wechat["rows_rejected"] > 0
    held = 0
    for source in ("erp", "bank"):
        money = summary["sources"][source]["money"]["CNY"]
        assert money["balanced"] and _minor(money["held"]) > 0, source
        held += _minor(money["held"])
    open_rows = _csv(svc, prefix + "open_items.csv")
    assert held == sum(
        _minor(r["amount"]) for r in open_rows if r["held_by"] == "awaiting-statement:wechat-main"
    )
    html = svc.store.get("data", prefix + "report.html").decode("utf-8")
    assert f"wechat {wechat['rows_rejected']} row(s) in 1 file(s)." in html


def test_a_statement_delivered_twice_shows_the_repeated_money_apart_from_what_arrived() -> None:
    """The bank's statement comes again under another name (an interim file and the final one): its rows
    are filtered as repeats, so money in counts them twice; ``repeated`` says how much of it, and in −
    repeated (``received``) is what the account received, as with the statement delivered once."""
    svc = memory_services(
        "demo",
        PROJECT_TEXT,
        settings=notifying_settings(),
        clock=Clock(datetime(2026, 11, 22, 1, 30, tzinfo=UTC)),  # the second file is ingested later
    )
    _upload(svc, Project.from_yaml(PROJECT_TEXT))
    day = generate_day(DAY)
    name, data = day.files["bank-cmb"]
    again = data.replace(b"\n", b" \n", 1)  # other bytes, the same entries
    svc.store.put("raw", raw_key("demo", "bank-cmb", day.statement_dates["bank-cmb"], "final_" + name), again)
    started = start_run(StartRunInput(project_id="demo", business_date=DAY), svc)
    parsed = []
    for task in started.channels:
        assert fetch_statements(task, svc).status == "uploaded"
        parsed.append(parse_channel(task, svc))
    ref = RunRef(run_id=started.run_id, project_id="demo", business_date=DAY)
    match_run(MatchInput(**ref.model_dump(), channels=parsed), svc)
    resolve_run(ref, svc)
    report_run(ref, svc)
    prefix = report_prefix("demo", DAY, started.run_id)
    summary = json.loads(svc.store.get("data", prefix + "summary.json"))
    bank = summary["sources"]["bank"]
    money = bank["money"]["CNY"]
    once = _statement_amounts(svc)["bank"] // 2  # both statements' rows, the same entries twice
    assert bank["filtered_by_rule"].get("overlapping-statement", 0) > 0
    assert _minor(money["in"]) == 2 * once and money["balanced"] is True
    assert _minor(money["repeated"]) == once
    assert _minor(money["received"]) == _minor(money["in"]) - _minor(money["repeated"]) == once
    for source in ("erp", "wechat", "alipay"):  # nothing repeated there
        assert summary["sources"][source]["money"]["CNY"]["repeated"] == "0.00"
    html = svc.store.get("data", prefix + "report.html").decode("utf-8")
    money_table = html[html.index('<table id="money">') :]
    money_table = money_table[: money_table.index("</table>")]
    assert "<th>of which repeated</th><th>Received</th>" in money_table
    assert f"{Decimal(once) / 100:,.2f}" in money_table
