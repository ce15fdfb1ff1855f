"""Report stage: render and store the report, e-mail it, and decide whether the run needs attention."""

from __future__ import annotations

from recon.domain import CaseStatus, RunStatus
from recon.keys import report_prefix
from recon.reporting import cases_csv, matches_csv, render_report, summary_json, summary_text

from .contracts import ReportOutput, RunRef
from .projects import load_project
from .run import RunNotFound, audit
from .services import Services


def report_run(ref: RunRef, svc: Services) -> ReportOutput:
    project = load_project(svc.store, svc.settings, ref.project_id)
    run = svc.repo.get_run(ref.run_id)
    if run is None:
        raise RunNotFound(ref.run_id)
    groups = svc.repo.list_match_groups(ref.run_id)
    cases = svc.repo.list_cases(ref.run_id)
    run.status = RunStatus.SUCCEEDED
    run.finished_at = svc.clock()
    prefix = report_prefix(ref.project_id, ref.business_date, ref.run_id)
    key = prefix + "report.html"
    run.report_key = key
    html = render_report(project, run, groups, cases)
    bucket = svc.settings.data_bucket
    svc.store.put(bucket, key, html.encode("utf-8"), content_type="text/html; charset=utf-8")
    svc.store.put(
        bucket, prefix + "matches.csv", matches_csv(groups).encode("utf-8"), content_type="text/csv"
    )
    svc.store.put(bucket, prefix + "cases.csv", cases_csv(cases).encode("utf-8"), content_type="text/csv")
    svc.store.put(
        bucket,
        prefix + "summary.json",
        summary_json(run, cases).encode("utf-8"),
        content_type="application/json",
    )
    location = f"s3://{svc.settings.data_bucket}/{key}"
    text = summary_text(project, run, cases, location)
    open_cases = [c for c in cases if c.status in (CaseStatus.OPEN, CaseStatus.IN_REVIEW)]
    subject = (
        f"[recon] {project.project_id} {ref.business_date}: {len(open_cases)} open case(s), "
        f"{run.quarantined_files} quarantined file(s)"
    )
    recipients = list(project.notifications.email_to) or svc.settings.recipients
    if recipients and svc.settings.sender_email:
        svc.mailer.send(
            sender=svc.settings.sender_email, to=recipients, subject=subject, html=html, text=text
        )
    svc.repo.put_run(run)
    audit(svc, "system:report", "run.reported", ref.run_id, report_key=key, recipients=len(recipients))
    alert = bool(project.notifications.alert_on_cases and (open_cases or run.quarantined_files or run.error))
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
