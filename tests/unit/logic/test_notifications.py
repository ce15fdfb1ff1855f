"""People are notified once per (project, business date, content), and never see a full account number.

The whole pipeline on in-memory adapters, run several times for the same day as the workflow would (a re-run,
the schedule and an upload both starting one, a retry of the report task)."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest
import yaml

from recon.adapters.memory import MemoryMailer, SentMail
from recon.domain import AuditEvent, Project
from recon.keys import REPORT_DATA_FILE, project_config_key, report_prefix, result_key
from recon.pipeline.contracts import MatchInput, ReportOutput, RunRef, StartRunInput
from recon.pipeline.fetch import fetch_statements
from recon.pipeline.match import match_run
from recon.pipeline.parse import parse_channel
from recon.pipeline.report import report_run
from recon.pipeline.resolve import resolve_run
from recon.pipeline.run import start_run
from recon.pipeline.services import Services
from recon.reporting.notices import CLAIM_LEASE, NOTIFIED, notification_subject

from .conftest import DAY, memory_services, notifying_settings
from .test_pipeline_in_memory import PROJECT_TEXT, _upload

NUMBERS = ("2088101122136241", "1900000109", "75591234561080100018")  # declared in the demo project


def _ticking() -> Callable[[], datetime]:
    """A clock that moves a minute per reading (runs of one day happen one after another)."""
    ticks = itertools.count()
    return lambda: datetime(2026, 11, 21, 1, 30, tzinfo=UTC) + timedelta(minutes=next(ticks))


@pytest.fixture
def svc() -> Services:
    settings = notifying_settings()
    services = memory_services("demo", PROJECT_TEXT, settings=settings, clock=_ticking())
    _upload(services, Project.from_yaml(PROJECT_TEXT))
    return services


def _resolved_day(svc: Services) -> RunRef:
    """A run of the day through every stage but the report."""
    started = start_run(StartRunInput(project_id="demo", business_date=DAY), svc)
    parsed = [parse_channel(task, svc) for task in started.channels if fetch_statements(task, svc)]
    ref = RunRef(run_id=started.run_id, project_id="demo", business_date=DAY)
    match_run(MatchInput(**ref.model_dump(), channels=parsed), svc)
    resolve_run(ref, svc)
    return ref


def _run_day(svc: Services, execution: str) -> tuple[RunRef, ReportOutput]:
    ref = _resolved_day(svc)
    return ref, report_run(ref, svc, execution=execution)


def _mails(svc: Services) -> list[SentMail]:
    mailer = svc.mailer
    return list(mailer.inner.sent if isinstance(mailer, _Meanwhile) else mailer.sent)  # type: ignore[attr-defined]


def _records(svc: Services) -> list[AuditEvent]:
    return [e for e in svc.repo.list_audit(notification_subject("demo", DAY)) if e.action == NOTIFIED]


class _Meanwhile:
    """A mailer that runs ``meanwhile`` once when the first mail is handed to it (the report stage has
    claimed the notification and not yet recorded it), then sends through ``inner`` or, with ``fail``, raises
    as a failing SES call would."""

    def __init__(self, inner: MemoryMailer, meanwhile: Callable[[], object], *, fail: bool = False) -> None:
        self.inner, self._meanwhile, self._fail = inner, meanwhile, fail
        self._pending = True

    def send(self, *, sender: str, to: list[str], subject: str, html: str, text: str) -> str:
        if self._pending:
            self._pending = False
            self._meanwhile()
            if self._fail:
                raise RuntimeError("SES: throttled")
        return self.inner.send(sender=sender, to=to, subject=subject, html=html, text=text)


def test_the_same_day_run_three_times_notifies_once(svc: Services) -> None:
    outcomes = [_run_day(svc, f"arn:exec:demo-20261120-{n}")[1] for n in ("schedule", "upload", "manual")]
    assert len(_mails(svc)) == 1
    assert [o.alert for o in outcomes] == [True, False, False]  # the workflow publishes the alert once
    records = [e for e in svc.repo.list_audit(notification_subject("demo", DAY)) if e.action == NOTIFIED]
    assert len(records) == 1 and records[0].details["execution"] == "arn:exec:demo-20261120-schedule"
    assert records[0].details["email_message_id"] == _mails(svc)[0].message_id
    assert "UPDATED" not in _mails(svc)[0].subject and "supersedes" not in _mails(svc)[0].text


def test_a_retry_of_the_report_task_does_not_mail_again_but_hands_the_alert_back(svc: Services) -> None:
    ref, first = _run_day(svc, "arn:exec:one")
    retry = report_run(
        ref, svc, execution="arn:exec:one"
    )  # the first result was lost: Step Functions retries
    assert first.alert and retry.alert and len(_mails(svc)) == 1
    assert report_run(ref, svc, execution="arn:exec:two").alert is False  # another execution: a re-run
    assert report_run(ref, svc).alert is False  # no execution known: never a second alert
    assert len(_mails(svc)) == 1


def test_changed_results_notify_once_and_say_they_supersede_the_earlier_report(svc: Services) -> None:
    _run_day(svc, "arn:exec:1")
    project = yaml.safe_load(PROJECT_TEXT)  # the finance team drops the rule that filters unpaid orders
    project["rules"] = [r for r in project["rules"] if r["name"] != "erp-unpaid-orders"]
    svc.store.put("data", project_config_key("demo"), yaml.safe_dump(project, allow_unicode=True).encode())
    _, changed = _run_day(svc, "arn:exec:2")
    _, again = _run_day(svc, "arn:exec:3")
    mails = _mails(svc)
    assert len(mails) == 2 and changed.alert and not again.alert
    update = mails[1]
    assert "UPDATED" in update.subject and "UPDATED" in changed.subject
    assert "supersedes the one sent at 2026-11-21 09:" in update.text  # Asia/Shanghai, +08:00
    assert "+08:00 (run demo-20261120)" in update.text and "supersedes" in update.html
    records = [e for e in svc.repo.list_audit(notification_subject("demo", DAY)) if e.action == NOTIFIED]
    assert [r.details["supersedes"] for r in records] == [None, records[0].details["fingerprint"]]


def test_two_executions_racing_with_the_same_findings_mail_once(svc: Services) -> None:
    """The upload's execution reports while the schedule's is sending: both read a ledger with nothing
    recorded, and only the one that claimed the notification first mails and alerts."""
    scheduled, uploaded = _resolved_day(svc), _resolved_day(svc)
    raced: list[ReportOutput] = []
    assert isinstance(svc.mailer, MemoryMailer)
    svc.mailer = _Meanwhile(
        svc.mailer, lambda: raced.append(report_run(uploaded, svc, execution="arn:exec:upload"))
    )
    first = report_run(scheduled, svc, execution="arn:exec:schedule")
    (second,) = raced
    assert len(_mails(svc)) == 1
    assert (first.alert, second.alert) == (True, False)
    assert "UPDATED" not in second.subject
    (record,) = _records(svc)
    assert record.details["execution"] == "arn:exec:schedule"
    reported = [
        e.details["notified"] for e in svc.repo.list_audit(uploaded.run_id) if e.action == "run.reported"
    ]
    assert sorted(reported) == [False, True]  # the day's run id: both executions report on it


def test_a_failed_send_is_sent_by_its_retry_and_by_no_other_execution(svc: Services) -> None:
    ref = _resolved_day(svc)
    other = _resolved_day(svc)
    assert isinstance(svc.mailer, MemoryMailer)
    svc.mailer = _Meanwhile(svc.mailer, lambda: None, fail=True)
    with pytest.raises(RuntimeError, match="throttled"):
        report_run(ref, svc, execution="arn:exec:one")  # claimed, then the e-mail failed
    assert _mails(svc) == [] and _records(svc) == []
    # A re-run while the claim is held: the failed execution's retry is coming, so this one stays silent.
    assert report_run(other, svc, execution="arn:exec:two").alert is False
    retry = report_run(ref, svc, execution="arn:exec:one")
    assert retry.alert and len(_mails(svc)) == 1
    assert [r.details["execution"] for r in _records(svc)] == ["arn:exec:one"]


def test_a_claim_whose_execution_gave_up_lets_a_later_run_send(svc: Services) -> None:
    ref = _resolved_day(svc)
    assert isinstance(svc.mailer, MemoryMailer)
    svc.mailer = _Meanwhile(svc.mailer, lambda: None, fail=True)
    with pytest.raises(RuntimeError, match="throttled"):
        report_run(ref, svc, execution="arn:exec:one")  # and every retry failed too: the execution failed
    later = svc.clock() + CLAIM_LEASE
    svc.clock = lambda: later  # the day is run again once SES works
    rerun = report_run(_resolved_day(svc), svc, execution="arn:exec:two")
    assert rerun.alert and len(_mails(svc)) == 1 and "UPDATED" not in rerun.subject
    assert [r.details["execution"] for r in _records(svc)] == ["arn:exec:two"]


def test_findings_that_change_back_are_notified_again(svc: Services) -> None:
    original = svc.store.get("data", project_config_key("demo"))
    project = yaml.safe_load(PROJECT_TEXT)
    project["rules"] = [r for r in project["rules"] if r["name"] != "erp-unpaid-orders"]
    _run_day(svc, "arn:exec:1")
    svc.store.put("data", project_config_key("demo"), yaml.safe_dump(project, allow_unicode=True).encode())
    _run_day(svc, "arn:exec:2")
    svc.store.put("data", project_config_key("demo"), original)
    _, back = _run_day(svc, "arn:exec:3")
    mails = _mails(svc)
    assert len(mails) == 3 and back.alert and "UPDATED" in mails[2].subject
    fingerprints = [r.details["fingerprint"] for r in _records(svc)]
    assert fingerprints[0] == fingerprints[2] != fingerprints[1]


def test_no_output_and_no_message_shows_a_declared_account_number(svc: Services) -> None:
    ref, report = _run_day(svc, "arn:exec:1")
    texts = [report.subject, report.summary]
    texts += [m.subject + m.html + m.text for m in _mails(svc)]
    prefix = report_prefix("demo", DAY, ref.run_id)
    outputs = [o.key for o in svc.store.list("data", prefix)]
    assert {k.rsplit("/", 1)[1] for k in outputs} >= {
        "report.html",
        "summary.json",
        "matches.csv",
        "cases.csv",
    }
    texts += [svc.store.get("data", k).decode("utf-8-sig") for k in outputs]
    texts.append(svc.store.get("data", result_key("demo", DAY, ref.run_id, REPORT_DATA_FILE)).decode())
    texts += [c.model_dump_json() for c in svc.repo.list_cases(ref.run_id)]
    texts += [g.model_dump_json() for g in svc.repo.list_match_groups(ref.run_id)]
    leaks = [(n, t[max(0, t.find(n) - 60) : t.find(n) + 20]) for t in texts for n in NUMBERS if n in t]
    assert not leaks
    # The memo that quoted the Alipay merchant id is still there, masked.
    assert any("支付宝结算 ****6241 20261120" in t for t in texts)
