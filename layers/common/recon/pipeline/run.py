"""Start a run, and record a failed one."""

from __future__ import annotations

import json
from datetime import date

from recon.domain import AuditEvent, Run, RunStatus, stable_id

from .contracts import ChannelTask, FailureInput, FailureOutput, StartRunInput, StartRunOutput
from .projects import default_business_date, load_project, run_id_for, statement_date_for
from .services import Services


class RunNotFound(Exception):
    """A stage was asked to work on a run that was never started."""


def audit(svc: Services, actor: str, action: str, subject: str, **details: object) -> None:
    at = svc.clock()
    svc.repo.append_audit(
        AuditEvent(
            event_id=stable_id("ev", subject, action, at.isoformat()),
            at=at,
            actor=actor,
            action=action,
            subject=subject,
            details=details,
        )
    )


def start_run(request: StartRunInput, svc: Services) -> StartRunOutput:
    project = load_project(svc.store, svc.settings, request.project_id)
    business_date = request.business_date or default_business_date(project, svc.clock())
    run_id = run_id_for(project.project_id, business_date)
    svc.repo.put_run(
        Run(
            run_id=run_id,
            project_id=project.project_id,
            project_version=project.version,
            business_date=business_date,
            trigger=request.trigger,
            started_at=svc.clock(),
        )
    )
    audit(
        svc,
        "system:start_run",
        "run.started",
        run_id,
        trigger=request.trigger,
        project_version=project.version,
    )
    channels = [
        ChannelTask(
            run_id=run_id,
            project_id=project.project_id,
            business_date=business_date,
            statement_date=statement_date_for(project, account, business_date),
            account_id=account.account_id,
            source=account.source,
            delivery=account.delivery,
        )
        for account in project.accounts
    ]
    return StartRunOutput(
        run_id=run_id, project_id=project.project_id, business_date=business_date, channels=channels
    )


def record_failure(failure: FailureInput, svc: Services) -> FailureOutput:
    """Mark the run failed (when it got as far as existing) and word the alert."""
    error = str(failure.error.get("Error", "Unknown"))
    cause_text = str(failure.error.get("Cause", ""))
    try:  # Lambda errors arrive as a JSON document in Cause
        cause = json.loads(cause_text).get("errorMessage", cause_text)
    except (ValueError, AttributeError):
        cause = cause_text
    project_id = str(failure.input.get("project_id", "?"))
    run = None
    business_date = failure.input.get("business_date")
    if business_date:
        run = svc.repo.get_run(run_id_for(project_id, date.fromisoformat(str(business_date)[:10])))
    if run is not None:
        run.status = RunStatus.FAILED
        run.finished_at = svc.clock()
        run.error = f"{error}: {cause}"[:2000]
        svc.repo.put_run(run)
        audit(svc, "system:workflow", "run.failed", run.run_id, error=error, cause=cause[:500])
    subject = f"[recon] run FAILED: {project_id} {business_date or ''}".strip()
    summary = (
        f"Reconciliation run failed.\nProject: {project_id}\nBusiness date: {business_date or 'n/a'}\n"
        f"Error: {error}\nCause: {cause}\nExecution: {failure.execution}\n"
    )
    days_after = failure.input.get("days_after")
    if isinstance(days_after, list) and days_after:
        # The days of the same upload still run after this one (the workflow starts the next when a run
        # ends), but they carry over the open items of the last day that completed, not this day's.
        summary += (
            f"Days of the same upload still run after it, in order: {', '.join(map(str, days_after))}. "
            f"They carry over the open items of the last day before them that completed, not this day's: "
            f"once the cause is fixed, run {business_date} again, then each of those days in date order.\n"
        )
    return FailureOutput(subject=subject[:100], summary=summary)
