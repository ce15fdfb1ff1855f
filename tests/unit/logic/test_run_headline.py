"""What people read first about a day: the subject, the status, the e-mail and alert text, the report heading.

A day with a statement missing must not read as all clear; the body counts what the subject counts; times
are in the project's time zone; the notification says what to do and where the report is. The whole
pipeline on in-memory adapters, as in test_notifications."""

from __future__ import annotations

import json
import re

import pytest

from recon.domain import CaseStatus, Project, RunStatus
from recon.keys import raw_key, report_prefix
from recon.pipeline.contracts import ReportOutput, RunRef
from recon.pipeline.report import report_run
from recon.pipeline.services import Services
from recon.reporting import summary_text
from recon_local.demo_data import generate_day

from .conftest import DAY, memory_services, notifying_settings
from .test_notifications import _mails, _resolved_day, _run_day, _ticking
from .test_pipeline_in_memory import PROJECT_TEXT, _upload

SUBJECT = "[recon] demo 2026-11-20: "


def _services(*, delivered: bool = True, **settings: str) -> Services:
    svc = memory_services("demo", PROJECT_TEXT, settings=notifying_settings(**settings), clock=_ticking())
    if delivered:
        _upload(svc, Project.from_yaml(PROJECT_TEXT))
    return svc


def _stored_report(svc: Services, ref: RunRef) -> str:
    return svc.store.get("data", report_prefix("demo", DAY, ref.run_id) + "report.html").decode("utf-8")


def test_a_day_with_nothing_delivered_reads_incomplete_everywhere() -> None:
    svc = _services(delivered=False)
    ref, report = _run_day(svc, "arn:exec:1")
    run = svc.repo.get_run(ref.run_id)
    assert run is not None and run.status is RunStatus.INCOMPLETE
    (mail,) = _mails(svc)
    assert mail.subject == (
        SUBJECT + "INCOMPLETE — 4 statements missing (erp, wechat-main, alipay-main, bank-cmb); "
        "0 open case(s), 0 suggested match(es), 0 quarantined file(s)"
    )
    assert report.alert and report.subject == mail.subject[:100]  # the SNS subject starts the same way
    for text in (mail.text, report.summary):
        assert "Run demo-20261120: incomplete" in text
        assert "INCOMPLETE: 4 statement(s) missing" in text
        assert "bank-cmb: the bank statement of 2026-11-21 was not delivered" in text  # read T+1
        assert "Deliver the 4 missing statement(s)" in text
    html = _stored_report(svc, ref)
    assert "INCOMPLETE" in html.split("<h2>")[0]  # in the heading, before any section
    assert "erp: the erp statement of 2026-11-20 was not delivered" in html
    assert "Only the statements that arrived are counted: 4 missing" in html
    summary = json.loads(svc.store.get("data", report_prefix("demo", DAY, ref.run_id) + "summary.json"))
    assert summary["status"] == "incomplete"


def test_a_quarantined_statement_makes_the_day_incomplete_and_names_it() -> None:
    svc = _services()
    name, data = generate_day(DAY).files["wechat-main"]
    broken = data.replace(b"\r\n`", b"\r\n`not-a-date", 1)
    svc.store.put("raw", raw_key("demo", "wechat-main", DAY, name), broken)
    ref, report = _run_day(svc, "arn:exec:1")
    assert report.subject.startswith(SUBJECT + "INCOMPLETE — 1 statement missing (wechat-main); ")
    assert "wechat-main: the wechat statement of 2026-11-20 was quarantined" in report.summary
    run = svc.repo.get_run(ref.run_id)
    assert run is not None and run.status is RunStatus.INCOMPLETE


def test_a_complete_day_keeps_its_subject_and_succeeds() -> None:
    svc = _services()
    ref, report = _run_day(svc, "arn:exec:1")
    assert report.subject == SUBJECT + "6 open case(s), 0 suggested match(es), 0 quarantined file(s)"
    run = svc.repo.get_run(ref.run_id)
    assert run is not None and run.status is RunStatus.SUCCEEDED
    assert "INCOMPLETE" not in report.summary and "INCOMPLETE" not in _stored_report(svc, ref)


def test_the_body_counts_the_open_cases_the_subject_counts_and_the_report_shows_each_status() -> None:
    svc = _services()
    ref = _resolved_day(svc)
    cases = svc.repo.list_cases(ref.run_id)
    amount = next(c for c in cases if c.type.value == "AMOUNT_MISMATCH")
    svc.repo.set_case_status(amount.case_id, CaseStatus.RESOLVED)  # type: ignore[attr-defined]
    report = report_run(ref, svc, execution="arn:exec:1")
    (mail,) = _mails(svc)
    assert "5 open case(s)" in mail.subject
    assert "Open cases: 5 (of 6 cases; 1 handled: 1 resolved)" in mail.text
    assert re.search(r"AMOUNT_MISMATCH\s+1\s+at stake 10\.00 CNY", mail.text)  # not the resolved one's 10.00
    assert amount.case_id not in mail.text  # listed among the open ones: it is handled
    html = _stored_report(svc, ref)
    row = html[html.index(amount.case_id) :]
    assert '<td class="status-resolved">resolved</td>' in row[: row.index("</tr>")]
    assert html.count('<td class="status-open">open</td>') == 5
    assert report.cases == 6


def test_times_people_read_are_in_the_project_time_zone_with_its_offset() -> None:
    svc = _services()
    ref, report = _run_day(svc, "arn:exec:1")  # the clock reads 2026-11-21 01:30 UTC onwards
    html = _stored_report(svc, ref)
    assert "started 2026-11-21 09:3" in html and "+08:00" in html
    assert "+00:00" not in html.split("<h2>")[0] and "T01:" not in html.split("<h2>")[0]
    assert re.search(r"started 2026-11-21 09:\d\d:\d\d \+08:00", report.summary)


def test_the_notification_says_what_to_do_lists_the_top_cases_and_where_the_report_is() -> None:
    svc = _services()
    ref, report = _run_day(svc, "arn:exec:1")
    (mail,) = _mails(svc)
    cases = svc.repo.list_cases(ref.run_id)
    short = next(c for c in cases if c.type.value == "MISSING_IN_CHANNEL" and c.delta_minor > 0)
    for text in (mail.text, report.summary):  # the e-mail's text part and the SNS alert
        assert "What to do:" in text and "Work through the 6 open case(s)" in text
        assert f"MISSING_IN_CHANNEL 短款 29.90 CNY  [{short.case_id}, open]" in text
        assert "短款: the ERP booked this order but the channel never received the money" in text
        assert text.index("Open cases:") < text.index("Rows per source")  # cases first
        assert "Report: report.html in the recon data bucket data, folder reports/demo/2026-11-20/" in text
    # The HTML part: what to do and the cases; the 121 match groups are summarized, not attached.
    stored = _stored_report(svc, ref)
    assert 'id="groups"' in stored and 'id="groups"' not in mail.html
    assert 'id="next-steps"' in mail.html and short.case_id in mail.html
    assert "121 match group(s)" in mail.html
    assert len(mail.html) * 4 < len(stored)


def test_a_configured_review_url_is_the_link_people_get() -> None:
    svc = _services(review_url="https://recon.example.com/review/")
    _, report = _run_day(svc, "arn:exec:1")
    (mail,) = _mails(svc)
    link = "https://recon.example.com/review/runs/demo-20261120"
    assert f"Report: {link}" in mail.text and f"Report: {link}" in report.summary
    assert f'<a href="{link}">' in mail.html
    assert "s3://" not in mail.text


def test_a_day_with_nothing_to_do_says_so() -> None:
    svc = _services()
    ref = _resolved_day(svc)
    for case in svc.repo.list_cases(ref.run_id):
        svc.repo.set_case_status(case.case_id, CaseStatus.RESOLVED)  # type: ignore[attr-defined]
    report: ReportOutput = report_run(ref, svc, execution="arn:exec:1")
    assert "Nothing to do" in report.summary and "Open cases: 0 (of 6 cases; 6 handled: 6 resolved)" in (
        report.summary
    )


@pytest.mark.parametrize("delivered", [True, False])
def test_the_command_line_summary_is_the_notification_text(delivered: bool) -> None:
    svc = _services(delivered=delivered)
    ref, report = _run_day(svc, "arn:exec:1")
    run = svc.repo.get_run(ref.run_id)
    assert run is not None
    text = summary_text(Project.from_yaml(PROJECT_TEXT), run, svc.repo.list_cases(ref.run_id))
    assert ("INCOMPLETE" in text) is (not delivered)
    without_link = [line for line in report.summary.splitlines() if not line.startswith("Report: ")]
    assert text.splitlines() == without_link  # the same words; `recon run` names its local report.html
