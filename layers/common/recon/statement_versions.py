"""Which statements count for a day: a newer upload replaces an older version of the same file.

Statements are filed per project, account and business date. Among them, an older statement is
*superseded* by a newer upload (later first ingestion: ``parsed_at``, then id) when

* both were read from the same raw key (the object was overwritten with other bytes), or
* the older one was quarantined and the newer covers the same period (first and last day), whatever the
  file names (a corrected file sent under another name; a parsed bank statement may cover more days: a
  corrected bank export of several days replaces the quarantined one filed under one of them), or
* both are channel bills (WeChat Pay, Alipay) read by the same profile for the same period: a channel issues
  one bill of a kind per account and day, so a second one is a corrected version, whatever its name. (Were
  its rows marked as overlaps instead, a corrected amount would be filtered as a repeat of the wrong one.)
* both are accepted channel bills of the two views of the same money (trade bill and fund-flow bill,
  ``recon.bill_views``) for overlapping days: an account reconciles one view, so a bill of the other view is
  accepted after the first only when the account's ``format`` chose it, and then it is the one that counts.

Otherwise two parsed files of one account and day under different names both count (an ERP export in two
parts, an interim and a final bank statement): their common transactions are marked as overlaps by the
profile's dedupe key, so nothing is hidden and nothing is counted twice.

A superseded statement is no longer one of the day's files: its rows, its quarantine and its row
accounting do not count. Its record stays (``Statement.superseded_by``) for the audit trail. The same
bytes uploaded again are not a new version (the checksum finds the stored statement), so they supersede
nothing. Pure functions: the repositories and the parse stage share them.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, date

from recon.bill_views import other_view, refused_for_view
from recon.domain import FileAccounting, Source, Statement, StatementStatus

__all__ = [
    "SUPERSEDED",
    "current_statements",
    "incomplete_accounts",
    "ingest_order",
    "period",
    "superseded",
    "supersedes",
]

#: ``FileAccounting.status`` of a delivered file a newer upload replaced (listed, never read).
SUPERSEDED = "superseded"

#: Sources that issue one bill of a kind (profile) per account and period.
ONE_BILL_PER_PERIOD = frozenset({Source.WECHAT, Source.ALIPAY})


def ingest_order(statement: Statement) -> tuple[str, str]:
    """Order of first ingestion (a missing time sorts first)."""
    at = statement.parsed_at
    return (at.astimezone(UTC).isoformat() if at else "", statement.statement_id)


def period(statement: Statement) -> tuple[date, date] | None:
    """First and last day the statement covers, when known."""
    if statement.period_start is None or statement.period_end is None:
        return None
    return statement.period_start, statement.period_end


def supersedes(newer: Statement, older: Statement) -> bool:
    """Whether ``newer`` (a later upload of the same day and account) replaces ``older``."""
    if newer.statement_id == older.statement_id or StatementStatus.DUPLICATE in (newer.status, older.status):
        return False
    if (newer.project_id, newer.account_id, newer.business_date) != (
        older.project_id,
        older.account_id,
        older.business_date,
    ) or ingest_order(newer) <= ingest_order(older):
        return False
    if newer.raw_key == older.raw_key:
        return True
    if other_view(newer, older):
        return True
    same_bill = (
        newer.source in ONE_BILL_PER_PERIOD
        and older.source == newer.source
        and bool(older.profile)
        and older.profile == newer.profile
    )
    if older.status is not StatementStatus.QUARANTINED and not same_bill:
        return False  # a second parsed file is more rows, not a replacement (see the module doc)
    covered, covering = period(older), period(newer)
    if covered is None or covering is None:
        return False
    if (
        older.status is StatementStatus.QUARANTINED
        and newer.status is StatementStatus.PARSED
        and newer.source is Source.BANK
    ):
        # A quarantined file covers the day it was filed for; a corrected bank export of several days
        # delivered in its place covers that day and more.
        return covering[0] <= covered[0] and covered[1] <= covering[1]
    return covered == covering


def superseded(statements: Iterable[Statement]) -> dict[str, str]:
    """Statement id -> id of the newest statement that replaces it (among ``statements``)."""
    listed = sorted(statements, key=ingest_order)
    replaced: dict[str, str] = {}
    for i, older in enumerate(listed):
        for newer in reversed(listed[i + 1 :]):
            if supersedes(newer, older):
                replaced[older.statement_id] = newer.statement_id
                break
    return replaced


def current_statements(statements: Iterable[Statement]) -> list[Statement]:
    """The statements that count, in the given order (a stored mark or the rule above excludes one)."""
    listed = list(statements)
    replaced = superseded(listed)
    return [s for s in listed if s.superseded_by is None and s.statement_id not in replaced]


def incomplete_accounts(accounts: Iterable[str], files: Iterable[FileAccounting]) -> dict[str, bool]:
    """Account -> whether a quarantined file is why, for the accounts whose statement for a run's day is
    incomplete: none parsed, or one quarantined — not a file refused only because the account reconciles the
    other view of its bills (recon.bill_views: the day is complete without it). One rule for the engine
    (rows wait as ``awaiting-statement``) and for the day's status and notifications (INCOMPLETE)."""
    listed = list(files)
    parsed = {f.account_id for f in listed if f.status == StatementStatus.PARSED.value}
    quarantined = {
        f.account_id
        for f in listed
        if f.status == StatementStatus.QUARANTINED.value and not refused_for_view(f.errors)
    }
    return {a: a in quarantined for a in accounts if a not in parsed or a in quarantined}
