"""filtered.csv says why each row was filtered in words a person can check: the statement and row a repeated
row was first delivered in, or the filter rule's description. Parse, match and resolve stages on in-memory
adapters, the demo project and a generated day."""

from __future__ import annotations

import csv
import io
from datetime import UTC, date, datetime

import pyarrow as pa

from recon.domain import Project
from recon.keys import raw_key, report_prefix
from recon.pipeline.contracts import MatchInput, RunRef, StartRunInput
from recon.pipeline.match import match_run
from recon.pipeline.parse import ingest_upload, parse_channel
from recon.pipeline.resolve import resolve_run
from recon.pipeline.run import start_run
from recon.pipeline.services import Services
from recon.reporting.masking import Masker
from recon.reporting.tabular import filtered_csv
from recon_local.demo_data import generate_day
from tests.export_contract import APPENDED_FILTERED, FOUNDATION_FILTERED

from .conftest import DAY, REPO, Clock, memory_services

PROJECT_TEXT = (REPO / "local/recon_local/projects/demo.yaml").read_text("utf-8")


def _ingest(svc: Services, account_id: str, statement_date: date, name: str, data: bytes) -> str:
    key = raw_key("demo", account_id, statement_date, name)
    svc.store.put("raw", key, data)
    out = ingest_upload("raw", key, svc)
    assert out is not None and out.statements[0].status == "parsed"
    return key


def test_filtered_csv_names_the_file_and_row_an_overlapping_row_repeats_and_the_rules_description() -> None:
    svc = memory_services("demo", PROJECT_TEXT, clock=Clock(datetime(2026, 11, 21, 2, 0, tzinfo=UTC)))
    day = generate_day(DAY)
    keys = {a: _ingest(svc, a, day.statement_dates[a], *day.files[a]) for a in sorted(day.files)}
    # The ERP export in two parts whose second part repeats the first part's first two orders (file rows 2
    # and 3: the header is row 1).
    lines = day.files["erp"][1].decode("utf-8").splitlines(keepends=True)
    _ingest(svc, "erp", DAY, "erp_orders_20261120_part2.csv", "".join(lines[:3]).encode("utf-8"))
    repeated = [line.split(",")[0] for line in lines[1:3]]

    started = start_run(StartRunInput(project_id="demo", business_date=DAY), svc)
    ref = RunRef(run_id=started.run_id, project_id="demo", business_date=DAY)
    match_run(MatchInput(**ref.model_dump(), channels=[parse_channel(t, svc) for t in started.channels]), svc)
    resolve_run(ref, svc)

    body = svc.store.get("data", report_prefix("demo", DAY, ref.run_id) + "filtered.csv").decode("utf-8-sig")
    rows = list(csv.DictReader(io.StringIO(body)))
    assert list(rows[0]) == FOUNDATION_FILTERED + APPENDED_FILTERED
    overlapping = [r for r in rows if r["rule"] == "overlapping-statement"]
    assert [(r["source"], r["txn_id"], r["detail"]) for r in overlapping] == [
        ("erp", repeated[0], f"repeats row 2 of {keys['erp']}"),
        ("erp", repeated[1], f"repeats row 3 of {keys['erp']}"),
    ]
    descriptions = {r.name: r.description for r in Project.from_yaml(PROJECT_TEXT).filter_rules}
    by_rule = [r for r in rows if r["rule"] != "overlapping-statement"]
    assert {r["rule"] for r in by_rule} >= {"erp-unpaid-orders", "bank-fees-and-interest"}
    assert all(r["detail"] == descriptions[r["rule"]] for r in by_rule)
    run = svc.repo.get_run(ref.run_id)
    assert run is not None and run.balanced


def test_detail_falls_back_to_the_rules_description_and_masks_account_numbers_in_file_names() -> None:
    placements = pa.table(
        {
            "source": ["alipay", "alipay", "erp", "erp"],
            "account_id": ["alipay-main", "alipay-main", "erp", "erp"],
            "txn_id": ["A1", "A2", "SO1", "SO2"],
            "amount_minor": [100, 200, 300, 400],
            "currency": ["CNY"] * 4,
            "disposition": ["filtered", "matched", "filtered", "filtered"],
            "rule": ["overlapping-statement", "k", "erp-unpaid-orders", "other-filter"],
        }
    )
    repeats = pa.table(  # one per filtered row: the Alipay row repeats row 7 of a file named by its account
        {
            "overlap_of": pa.array(
                ["raw/alipay-main/2088101122136241_20261120.csv", None, None], pa.string()
            ),
            "overlap_row": pa.array([7, None, None], pa.int32()),
        }
    )
    masks = Masker.for_project(Project.from_yaml(PROJECT_TEXT)).pairs
    body = filtered_csv(placements, masks, descriptions={"erp-unpaid-orders": "Unpaid."}, repeats=repeats)
    rows = list(csv.DictReader(io.StringIO(body.decode("utf-8-sig"))))
    assert [(r["txn_id"], r["detail"]) for r in rows] == [
        ("A1", "repeats row 7 of raw/alipay-main/****6241_20261120.csv"),
        ("SO1", "Unpaid."),
        ("SO2", ""),
    ]
