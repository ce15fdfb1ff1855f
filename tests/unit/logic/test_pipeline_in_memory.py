"""The whole pipeline's logic on in-memory adapters (no AWS, no moto): stage by stage, as the state machine
calls it, on a generated day in the real file formats."""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from recon.domain import Project, RunStatus, StatementStatus
from recon.keys import project_config_key, raw_key, report_prefix, result_key
from recon.pipeline.contracts import MatchInput, RunRef, StartRunInput
from recon.pipeline.fetch import fetch_statements
from recon.pipeline.match import match_run
from recon.pipeline.parse import ingest_upload, parse_channel
from recon.pipeline.report import report_run
from recon.pipeline.resolve import resolve_run
from recon.pipeline.run import start_run
from recon.pipeline.services import Services
from recon_local.demo_data import generate_day

from .conftest import DAY, REPO, memory_services, notifying_settings

PROJECT_TEXT = (REPO / "local/recon_local/projects/demo.yaml").read_text("utf-8")


@pytest.fixture
def svc() -> Services:
    settings = notifying_settings()
    return memory_services(
        "demo", PROJECT_TEXT, settings=settings, clock=lambda: datetime(2026, 11, 22, 1, 30, tzinfo=UTC)
    )


def _upload(svc: Services, project: Project) -> None:
    day = generate_day(DAY)
    for account_id, (name, data) in day.files.items():
        svc.store.put("raw", raw_key("demo", account_id, day.statement_dates[account_id], name), data)


def _run_all(svc: Services):
    started = start_run(StartRunInput(project_id="demo", business_date=DAY), svc)
    parsed = []
    for task in started.channels:
        fetched = fetch_statements(task, svc)
        assert fetched.status == "uploaded" and len(fetched.raw_keys) == 1
        parsed.append(parse_channel(task, svc))
    ref = RunRef(run_id=started.run_id, project_id="demo", business_date=DAY)
    match_run(MatchInput(**ref.model_dump(), channels=parsed), svc)
    resolved = resolve_run(ref, svc)
    report = report_run(ref, svc)
    return started, parsed, resolved, report


def test_demo_day_end_to_end_finds_exactly_the_planted_differences(svc: Services) -> None:
    project = Project.from_yaml(PROJECT_TEXT)
    _upload(svc, project)
    started, parsed, _resolved, report = _run_all(svc)
    assert started.run_id == "demo-20261120"
    assert {c.account_id: c.statement_date.isoformat() for c in started.channels}["bank-cmb"] == "2026-11-21"
    assert all(p.quarantined == 0 for p in parsed), [s.error for p in parsed for s in p.statements]

    planted = generate_day(DAY).planted
    cases = svc.repo.list_cases(started.run_id)
    found = {(c.type.value, m.source.value, m.txn_id) for c in cases for m in c.members}
    for p in planted:
        assert (p.case_type, p.source, p.txn_id) in found, p
    assert len(cases) == len(planted), [(c.type.value, [m.txn_id for m in c.members]) for c in cases]

    run = svc.repo.get_run(started.run_id)
    assert run is not None and run.status is RunStatus.SUCCEEDED and run.balanced
    assert {f.status for f in run.files} == {"parsed"} and len(run.files) == 4
    for f in run.files:
        assert f.rows_read == f.rows_parsed + f.rows_skipped + f.rows_rejected
    assert report.alert is True and report.cases == len(planted)
    mail = svc.mailer.sent[0]  # type: ignore[attr-defined]
    assert mail.to == ["finance@example.com"] and "open case" in mail.subject
    prefix = report_prefix("demo", DAY, started.run_id)
    summary = json.loads(svc.store.get("data", prefix + "summary.json"))
    assert summary["balanced"] and summary["cases"] == len(planted)


def test_rerun_of_the_same_day_is_idempotent(svc: Services) -> None:
    project = Project.from_yaml(PROJECT_TEXT)
    _upload(svc, project)
    first = _run_all(svc)
    groups_1 = svc.repo.list_match_groups(first[0].run_id)
    cases_1 = svc.repo.list_cases(first[0].run_id)
    statements_1 = svc.repo.list_statements("demo", "wechat-main", DAY)
    second = _run_all(svc)
    assert second[0].run_id == first[0].run_id
    assert [g.model_dump() for g in svc.repo.list_match_groups(first[0].run_id)] == [
        g.model_dump() for g in groups_1
    ]
    assert [c.model_dump() for c in svc.repo.list_cases(first[0].run_id)] == [c.model_dump() for c in cases_1]
    assert svc.repo.list_statements("demo", "wechat-main", DAY) == statements_1  # same bytes: parsed once


def test_bad_file_is_quarantined_and_the_run_goes_on(svc: Services) -> None:
    project = Project.from_yaml(PROJECT_TEXT)
    _upload(svc, project)
    day = generate_day(DAY)
    name, data = day.files["wechat-main"]
    broken = data.replace(b"`SUCCESS", b"`SUCCESS", 1).replace(b"\r\n`", b"\r\n`not-a-date", 1)
    key = raw_key("demo", "wechat-main", DAY, name)
    svc.store.put("raw", key, broken)  # a corrected upload would be a new version; this one is bad
    started, parsed, resolved, _report = _run_all(svc)
    wechat = next(p for p in parsed if p.account_id == "wechat-main")
    assert wechat.quarantined == 1
    statement = svc.repo.list_statements("demo", "wechat-main", DAY)[0]
    assert statement.status is StatementStatus.QUARANTINED
    assert statement.errors and statement.errors[0].file == key and statement.errors[0].row >= 1
    assert any("quarantined" in a.subject for a in svc.alerts.published)  # type: ignore[attr-defined]
    report_json = svc.store.get("data", statement.quarantine_key + ".error.json")
    assert json.loads(report_json)["errors"][0]["row"] == statement.errors[0].row
    run = svc.repo.get_run(started.run_id)
    assert run is not None and run.quarantined_files == 1 and run.balanced
    # The bill is missing, not the money: ERP orders and the bank credit that need it wait for a corrected
    # file (open, naming the account), they are neither lost nor reported as MISSING cases.
    assert (
        "MISSING_IN_CHANNEL" not in resolved.cases_by_type and "MISSING_IN_BANK" not in resolved.cases_by_type
    )
    placements = pq.read_table(
        io.BytesIO(svc.store.get("data", result_key("demo", DAY, started.run_id, "placements.parquet")))
    )
    held = pc.equal(placements["rule"].cast(pa.string()), "awaiting-statement:wechat-main")
    assert pc.sum(held).as_py() > 10
    assert set(placements.filter(held)["disposition"].cast(pa.string()).to_pylist()) == {"open"}
    assert run.error and key in run.error and "quarantined" in run.error and "held open" in run.error


def test_upload_event_parses_and_starts_the_run_once_inputs_are_complete(svc: Services) -> None:
    day = generate_day(DAY)
    accounts = sorted(day.files)
    for i, account_id in enumerate(accounts):
        name, data = day.files[account_id]
        key = raw_key("demo", account_id, day.statement_dates[account_id], name)
        svc.store.put("raw", key, data)
        out = ingest_upload("raw", key, svc)
        assert out is not None and out.statements[0].status == "parsed"
        started = svc.workflow.executions  # type: ignore[attr-defined]
        assert len(started) == (1 if i == len(accounts) - 1 else 0)
    again = ingest_upload("raw", key, svc)  # the same event delivered twice
    assert again is not None and len(svc.workflow.executions) == 1  # type: ignore[attr-defined]
    execution = next(iter(svc.workflow.executions.values()))  # type: ignore[attr-defined]
    assert execution.payload == {"project_id": "demo", "business_date": "2026-11-20", "trigger": "upload"}


def test_project_file_keeps_its_schedule_in_step(svc: Services) -> None:
    from recon.pipeline.project_sync import sync_project

    key = project_config_key("demo")
    out = sync_project("data", key, deleted=False, svc=svc)
    assert out.status == "scheduled"
    schedule = svc.schedules.schedules["recon-demo"]  # type: ignore[attr-defined]
    assert (schedule.expression, schedule.timezone) == ("cron(30 9 * * ? *)", "Asia/Shanghai")
    assert schedule.payload == {"project_id": "demo", "trigger": "schedule"}

    # an invalid edit is rejected with an alert naming the file, and the schedule stays as it was
    svc.store.put(
        "data", key, PROJECT_TEXT.replace("schedule: cron(30 9 * * ? *)", "schedule: every morning").encode()
    )
    bad = sync_project("data", key, deleted=False, svc=svc)
    assert bad.status == "invalid" and "schedule" in bad.detail
    assert svc.schedules.schedules["recon-demo"].expression == "cron(30 9 * * ? *)"  # type: ignore[attr-defined]
    assert any("invalid project file" in a.subject for a in svc.alerts.published)  # type: ignore[attr-defined]

    # a file whose name does not match its project id is refused
    svc.store.put("data", "config/projects/other.yaml", PROJECT_TEXT.encode())
    assert sync_project("data", "config/projects/other.yaml", deleted=False, svc=svc).status == "invalid"

    assert sync_project("data", key, deleted=True, svc=svc).status == "unscheduled"
    assert "recon-demo" not in svc.schedules.schedules  # type: ignore[attr-defined]
    assert sync_project("data", "reports/x.html", deleted=False, svc=svc).status == "ignored"
