"""Notify once per (project, business date, content).

A day may be run many times (a re-run, the schedule and an upload both starting one, a Lambda retry). People
get the e-mail and the alert once for what a run found; again only when the findings change, and then the
message says it supersedes the earlier one. What was sent is recorded as an audit event under
``notification_subject`` (the ledger this module reads), so the decision survives retries and re-runs.

Two executions of the same day running at once both read the ledger before either recorded; so a stage
that decided to send first claims the notification (``RunRepository.claim_notification``, atomic) and only
the winner sends. A claim is for the content as the notification that follows the last one recorded
(``claim_key``): findings that change back (X, Y, X) are notified again, as the ledger says.

The content is a fingerprint of what the notification says: the summary (rows, files, cases by type and
amount), each case (id, type, Δ, status) and the subject line; not the run's timestamps.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from recon.domain import AuditEvent, Case

NOTIFIED = "notification.sent"

#: How long a claim whose execution never recorded a notification keeps other executions from sending.
#: Longer than a report attempt can run (ReportFunction's Timeout, 120 s), so the attempt that claimed has
#: ended (sent and recorded, or failed) before another execution takes over; the claiming execution's own
#: retries renew the claim.
CLAIM_LEASE = timedelta(minutes=15)


def notification_subject(project_id: str, business_date: date) -> str:
    """The audit subject under which a day's notifications are recorded."""
    return f"notify:{project_id}:{business_date.isoformat()}"


def content_fingerprint(subject: str, summary: str, cases: Iterable[Case]) -> str:
    digest = hashlib.sha256()
    for part in (subject, summary):
        digest.update(part.encode("utf-8") + b"\x1e")
    for c in sorted(cases, key=lambda c: c.case_id):
        digest.update(f"{c.case_id}\x1f{c.type.value}\x1f{c.delta_minor}\x1f{c.status.value}\x1e".encode())
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


def superseding_note(earlier: Notified) -> str:
    return (
        f"This report supersedes the one sent at {earlier.at.isoformat(timespec='seconds')} "
        f"(run {earlier.run_id}): the results of the day changed since."
    )
