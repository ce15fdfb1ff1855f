"""Notify once per (project, business date, content).

A day may be run many times (a re-run, the schedule and an upload both starting one, a Lambda retry). People
get the e-mail and the alert once for what a run found; again only when the findings change, and then the
message says it supersedes the earlier one. What was sent is recorded as an audit event under
``notification_subject`` (the ledger this module reads), so the decision survives retries and re-runs.

Two executions of the same day running at once both read the ledger before either recorded; so a stage
that decided to send first claims the notification (``RunRepository.claim_notification``, atomic) and only
the winner sends. A claim is for the content as the notification that follows the last one recorded
(``claim_key``): findings that change back (X, Y, X) are notified again, as the ledger says.

The content is a fingerprint of what the run found: the summary (rows, files, cases by type and amount,
suggested groups, quarantined files, error) and each case (id, type, Δ); not the run's timestamps, and not
the review status of cases or the open count it gives the subject: a reviewer's work is no new finding to
e-mail everyone about (a case whose difference changed is one, through its type or Δ).

The subject line (``headline``) leads with INCOMPLETE when a statement the day needs is missing or
quarantined (``missing_statements``): an inbox of subjects must not show a day that was never reconciled as
all clear. Times people read are in the project's time zone, with its offset (``local_time``).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from recon.domain import AuditEvent, Case, Project, Run, Source
from recon.pipeline.projects import statement_date_for  # the statement date a run reads (a bank: T+n)
from recon.statement_versions import incomplete_accounts

NOTIFIED = "notification.sent"

#: How long a claim whose execution never recorded a notification keeps other executions from sending.
#: Longer than a report attempt can run (ReportFunction's Timeout, 120 s), so the attempt that claimed has
#: ended (sent and recorded, or failed) before another execution takes over; the claiming execution's own
#: retries renew the claim.
CLAIM_LEASE = timedelta(minutes=15)


def notification_subject(project_id: str, business_date: date) -> str:
    """The audit subject under which a day's notifications are recorded."""
    return f"notify:{project_id}:{business_date.isoformat()}"


def content_fingerprint(summary: str, cases: Iterable[Case]) -> str:
    """The findings' fingerprint (module docstring): ``summary`` must not depend on review statuses."""
    digest = hashlib.sha256()
    digest.update(summary.encode("utf-8") + b"\x1e")
    for c in sorted(cases, key=lambda c: c.case_id):
        digest.update(f"{c.case_id}\x1f{c.type.value}\x1f{c.delta_minor}\x1e".encode())
    return digest.hexdigest()[:32]


@dataclass(frozen=True)
class Notified:
    """One notification that went out (the e-mail sent, the alert handed to the workflow)."""

    event_id: str
    fingerprint: str
    at: datetime
    run_id: str
    execution: str | None
    alert: bool

    @classmethod
    def from_event(cls, event: AuditEvent) -> Notified:
        d = event.details
        return cls(
            event_id=event.event_id,
            fingerprint=str(d.get("fingerprint", "")),
            at=event.at,
            run_id=str(d.get("run_id", "")),
            execution=str(d["execution"]) if d.get("execution") else None,
            alert=bool(d.get("alert", False)),
        )


def history(events: Iterable[AuditEvent]) -> list[Notified]:
    """The day's notifications, oldest first."""
    return [Notified.from_event(e) for e in events if e.action == NOTIFIED]


@dataclass(frozen=True)
class Decision:
    send: bool  # e-mail now (and record it)
    repeat_alert: bool  # a retry of the attempt that already notified: hand the same alert decision back
    supersedes: Notified | None  # the earlier notification whose findings this one replaces


def decide(sent: list[Notified], fingerprint: str, execution: str | None) -> Decision:
    """Send when nothing was sent for this day or the last notification said something else.

    The same content as the last notification sends nothing — unless this is a retry of the very workflow
    execution that recorded it: the record is written after the e-mail went out, so the e-mail is not sent
    again, but the alert (published by the workflow after this stage returns) may not have been, and the
    retry hands it back.
    """
    last = sent[-1] if sent else None
    if last is not None and last.fingerprint == fingerprint:
        retry = execution is not None and last.execution == execution
        return Decision(send=False, repeat_alert=retry and last.alert, supersedes=None)
    return Decision(send=True, repeat_alert=False, supersedes=last)


def claim_key(fingerprint: str, supersedes: Notified | None) -> str:
    """What a stage that decided to send claims: this content as the notification after ``supersedes``."""
    return f"{fingerprint}#{supersedes.event_id if supersedes else 'first'}"


def superseding_note(earlier: Notified, timezone: str) -> str:
    return (
        f"This report supersedes the one sent at {local_time(earlier.at, timezone)} "
        f"(run {earlier.run_id}): the results of the day changed since."
    )


def local_time(at: datetime, timezone: str) -> str:
    """``at`` as people of the project read it: its time zone, to the second, with the offset
    (2026-11-21 09:30:00 +08:00). A naive ``at`` is UTC (how the stages' clocks are stored)."""
    aware = at if at.tzinfo is not None else at.replace(tzinfo=ZoneInfo("UTC"))
    local = aware.astimezone(ZoneInfo(timezone))
    offset = local.strftime("%z")  # +0800
    return f"{local:%Y-%m-%d %H:%M:%S} {offset[:3]}:{offset[3:]}"


@dataclass(frozen=True)
class MissingStatement:
    """A statement the run of the day needed and did not read: none delivered, or one quarantined."""

    account_id: str
    source: Source
    statement_date: date
    quarantined: bool

    def describe(self) -> str:
        what = (
            "was quarantined: correct the file (its error report says what is wrong) and deliver it again"
            if self.quarantined
            else "was not delivered: upload it, or check why fetching it failed"
        )
        return f"{self.account_id}: the {self.source.value} statement of {self.statement_date} {what}"


def missing_statements(project: Project, run: Run) -> list[MissingStatement]:
    """The project's accounts whose statement for the run is incomplete, in project order: the accounts
    whose rows the engine held open as ``awaiting-statement`` (``statement_versions.incomplete_accounts``),
    from the run's file accounting."""
    incomplete = incomplete_accounts((a.account_id for a in project.accounts), run.files)
    return [
        MissingStatement(
            account_id=a.account_id,
            source=a.source,
            statement_date=statement_date_for(project, a, run.business_date),
            quarantined=incomplete[a.account_id],
        )
        for a in project.accounts
        if a.account_id in incomplete
    ]


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def headline(missing: list[MissingStatement], open_cases: int, suggested: int, quarantined: int) -> str:
    """The subject of the day's e-mail and alert (after "[recon] <project> <date>: ")."""
    counts = f"{open_cases} open case(s), {suggested} suggested match(es), {quarantined} quarantined file(s)"
    if not missing:
        return counts
    accounts = ", ".join(m.account_id for m in missing)
    return f"INCOMPLETE — {_plural(len(missing), 'statement')} missing ({accounts}); {counts}"
