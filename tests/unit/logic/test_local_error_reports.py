"""``recon run --out``: each quarantined file's error report is among the outputs, masked as the others are
(``recon_local.local_run.copy_error_reports``; in-memory adapters, the demo project)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

from recon.domain import Project
from recon.keys import raw_key
from recon.pipeline.parse import ingest_upload
from recon_local.demo_data import generate_day
from recon_local.local_run import copy_error_reports

from .conftest import DAY, REPO, Clock, memory_services

PROJECT_TEXT = (REPO / "local/recon_local/projects/demo.yaml").read_text("utf-8")
ALIPAY_NUMBER = "2088101122136241"  # declared in the demo project; Alipay names its bill files after it


def test_run_out_holds_the_error_report_of_each_quarantined_file_masked(tmp_path: Path) -> None:
    svc = memory_services("demo", PROJECT_TEXT, clock=Clock(datetime(2026, 11, 21, 2, 0, tzinfo=UTC)))
    project = Project.from_yaml(PROJECT_TEXT)
    day = generate_day(DAY)
    for account_id, (name, data) in sorted(day.files.items()):
        broken = b"PK\x03\x04 not a zip" if account_id == "alipay-main" else data
        key = raw_key("demo", account_id, day.statement_dates[account_id], name)
        svc.store.put("raw", key, broken)
        ingest_upload("raw", key, svc)
    (bad,) = [s for s in svc.repo.list_statements("demo", "alipay-main", DAY) if s.quarantine_key]
    assert ALIPAY_NUMBER in (bad.quarantine_key or "")

    copied = copy_error_reports(svc.store, "data", svc.repo, project, business_date=DAY, day_dir=tmp_path)

    (name,) = copied  # only the quarantined file has one
    assert name == "quarantine/alipay-main/****62410156_20261120.csv.zip.error.json"
    path = copied[name]
    assert path == tmp_path / name
    text = path.read_text("utf-8")
    assert ALIPAY_NUMBER not in text and "****6241" in text
    report = json.loads(text)
    assert report["account_id"] == "alipay-main" and report["error_count"] >= 1 and report["errors"]
    assert report["file"].endswith("/****62410156_20261120.csv.zip")
