"""Report stage: render and store the report, e-mail it, and decide whether the run needs attention.

It reads the run and its cases from the repository and the results digest (JSON) the resolve stage wrote;
no dataframe library is needed here. The per-row exports (matches.csv, cases.csv, filtered.csv,
open_items.csv) were written beside the report by the resolve stage.
"""

from __future__ import annotations

from recon.domain import CaseStatus, ResultsDigest, RunStatus
from recon.keys import REPORT_DATA_FILE, report_prefix, result_key
from recon.reporting import render_report, summary_json, summary_text

from .contracts import ReportOutput, RunRef
from .projects import load_project
from .run import RunNotFound, audit
from .services import Services


def load_digest(svc: Services, ref: RunRef) -> ResultsDigest:
    key = result_key(ref.project_id, ref.business_date, ref.run_id, REPORT_DATA_FILE)
    return ResultsDigest.model_validate_json(svc.store.get(svc.settings.data_bucket, key))


def report_run(ref: RunRef, svc: Services) -> ReportOutput:
    project = load_project(svc.store, svc.settings, ref.project_id)
    run = svc.repo.get_run(ref.run_id)
    if run is None:
        raise RunNotFound(ref.run_id)
    digest = load_digest(svc, ref)
    cases = svc.repo.list_cases(ref.run_id)
    run.status = RunStatus.SUCCEEDED
    run.finished_at = svc.clock()
    prefix = report_prefix(ref.project_id, ref.business_date, ref.run_id)
    key = prefix + "report.html"
    run.report_key = key
    html = render_report(project, run, digest, cases)
    bucket = svc.settings.data_bucket
    svc.store.put(bucket, key, html.encode("utf-8"), content_type="text/html; charset=utf-8")
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
        f"{run.suggested_groups} suggested match(es), {run.quarantined_files} quarantined file(s)"
    )
    recipients = list(project.notifications.email_to) or svc.settings.recipients
    if recipients and svc.settings.sender_email:
        svc.mailer.send(
            sender=svc.settings.sender_email, to=recipients, subject=subject, html=html, text=text
        )
    svc.repo.put_run(run)
    audit(svc, "system:report", "run.reported", ref.run_id, report_key=key, recipients=len(recipients))
    attention = open_cases or run.suggested_groups or run.quarantined_files or run.error
    alert = bool(project.notifications.alert_on_cases and attention)
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
