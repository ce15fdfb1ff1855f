"""Report stage: render and store the report, e-mail it, and decide whether the run needs attention.

It reads the run and its cases from the repository and the results digest (JSON) the resolve stage wrote;
no dataframe library is needed here. The per-row exports (matches.csv, cases.csv, filtered.csv,
open_items.csv) were written beside the report by the resolve stage.

People are notified once per (project, business date, content): ``recon.reporting.notices`` decides from the
audit record of what was sent; a re-run with the same findings sends nothing, one with other findings sends
once and says it supersedes the earlier report. A stage that would send claims the notification first, so
of two executions racing for the same day and findings only one sends. Every text that leaves (report,
summary, e-mail, alert) has the project's account numbers masked.
"""

from __future__ import annotations

from recon.domain import AuditEvent, ResultsDigest, RunStatus, stable_id
from recon.keys import REPORT_DATA_FILE, report_prefix, result_key
from recon.ports import NotificationClaim
from recon.reporting import render_report, summary_json, summary_text
from recon.reporting.masking import Masker
from recon.reporting.notices import (
    CLAIM_LEASE,
    NOTIFIED,
    Decision,
    claim_key,
    content_fingerprint,
    decide,
    history,
    missing_statements,
    notification_subject,
    superseding_note,
)
from recon.reporting.notices import headline as notice_headline
from recon.reporting.render import open_cases
from recon.settings import Settings

from .contracts import ReportOutput, RunRef
from .projects import load_project
from .run import RunNotFound, audit
from .services import Services


def load_digest(svc: Services, ref: RunRef) -> ResultsDigest:
    key = result_key(ref.project_id, ref.business_date, ref.run_id, REPORT_DATA_FILE)
    return ResultsDigest.model_validate_json(svc.store.get(svc.settings.data_bucket, key))


def report_location(settings: Settings, run_id: str, key: str) -> str:
    """Where people open the day's report: the review UI's page of the run when one is configured, else
    where the report is stored, in words (finance staff cannot open an s3:// URI)."""
    if settings.review_url:
        return f"{settings.review_url.rstrip('/')}/runs/{run_id}"
    folder, _, name = key.rpartition("/")
    return (
        f"{name} in the recon data bucket {settings.data_bucket}, folder {folder}/ (the AWS S3 console, or "
        f"ask the recon administrator), with matches.csv and cases.csv beside it; s3://{settings.data_bucket}/{key}"
    )


def report_run(ref: RunRef, svc: Services, *, execution: str | None = None) -> ReportOutput:
    """``execution``: the workflow execution this stage runs in (tells a retry from a re-run)."""
    project = load_project(svc.store, svc.settings, ref.project_id)
    masker = Masker.for_project(project)
    run = svc.repo.get_run(ref.run_id)
    if run is None:
        raise RunNotFound(ref.run_id)
    digest = load_digest(svc, ref)
    cases = svc.repo.list_cases(ref.run_id)
    missing = missing_statements(project, run)
    # A day with a statement missing or quarantined finished, but is not reconciled: it must not read as
    # all clear (its rows wait, open, for the statement).
    run.status = RunStatus.INCOMPLETE if missing else RunStatus.SUCCEEDED
    run.finished_at = svc.clock()
    prefix = report_prefix(ref.project_id, ref.business_date, ref.run_id)
    key = prefix + "report.html"
    run.report_key = key
    summary = masker.text(summary_json(run, cases, project.currency))
    still_open = open_cases(cases)
    headline = masker.text(
        notice_headline(missing, len(still_open), run.suggested_groups, run.quarantined_files)
    )
    fingerprint = content_fingerprint(summary, cases)  # not the headline: its open count follows reviews
    ledger = notification_subject(ref.project_id, ref.business_date)
    decision = decide(history(svc.repo.list_audit(ledger)), fingerprint, execution)
    if decision.send:
        # Before anything is rendered: a stage that loses the claim reports as one that sends nothing.
        at = svc.clock()
        claim = NotificationClaim(
            ledger, claim_key(fingerprint, decision.supersedes), execution, ref.run_id, at
        )
        if svc.repo.claim_notification(claim, stale_before=at - CLAIM_LEASE) is not None:
            decision = Decision(send=False, repeat_alert=False, supersedes=None)  # another execution sends it
    note = superseding_note(decision.supersedes, project.timezone) if decision.supersedes else ""
    location = report_location(svc.settings, ref.run_id, key)
    html = masker.text(render_report(project, run, digest, cases, note=note, link=location))
    bucket = svc.settings.data_bucket
    svc.store.put(bucket, key, html.encode("utf-8"), content_type="text/html; charset=utf-8")
    svc.store.put(bucket, prefix + "summary.json", summary.encode("utf-8"), content_type="application/json")
    text = masker.text(summary_text(project, run, cases, location, note=note))
    update = " UPDATED" if decision.supersedes else ""
    subject = masker.text(f"[recon] {project.project_id} {ref.business_date}{update}: {headline}")
    attention = bool(still_open or run.suggested_groups or run.quarantined_files or run.error or missing)
    wants_alert = bool(project.notifications.alert_on_cases and attention)
    recipients = list(project.notifications.email_to) or svc.settings.recipients
    message_id = None
    if decision.send:
        if recipients and svc.settings.sender_email:
            # The e-mail carries what to do and the cases; the match groups are in the stored report.
            mail_html = masker.text(
                render_report(project, run, digest, cases, note=note, link=location, email=True)
            )
            message_id = svc.mailer.send(
                sender=svc.settings.sender_email, to=recipients, subject=subject, html=mail_html, text=text
            )
        # Recorded after the e-mail went out: a retry after this point does not send it again.
        at = svc.clock()
        svc.repo.append_audit(
            AuditEvent(
                event_id=stable_id("ev", ledger, NOTIFIED, at.isoformat(), fingerprint, execution or ""),
                at=at,
                actor="system:report",
                action=NOTIFIED,
                subject=ledger,
                details={
                    "run_id": ref.run_id,
                    "execution": execution,
                    "fingerprint": fingerprint,
                    "email_message_id": message_id,
                    "recipients": len(recipients) if message_id else 0,
                    "alert": wants_alert,
                    "supersedes": decision.supersedes.fingerprint if decision.supersedes else None,
                },
            )
        )
    alert = wants_alert if decision.send else decision.repeat_alert
    svc.repo.put_run(run)
    audit(
        svc,
        "system:report",
        "run.reported",
        ref.run_id,
        report_key=key,
        recipients=len(recipients) if message_id else 0,
        notified=decision.send,
        fingerprint=fingerprint,
    )
    return ReportOutput(
        run_id=ref.run_id,
        project_id=ref.project_id,
        business_date=ref.business_date,
        report_key=key,
        cases=len(cases),
        alert=alert,
        subject=subject[:100],
        summary=text,
    )
