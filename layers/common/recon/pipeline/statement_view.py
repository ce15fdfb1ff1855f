"""The parse stage's check that an account reconciles one view of a channel's bills (recon.bill_views).

A trade bill and a fund-flow bill of the same account and days describe the same money: the file of the
view that arrives second is quarantined, naming the first, unless the account's ``format`` decides.
"""

from __future__ import annotations

from datetime import UTC, date
from typing import Any

from recon.bill_views import admits, view_conflict, view_conflict_error, view_conflict_settled, view_of
from recon.domain import Account, RowError, Statement
from recon.parsing import ParsedStatement
from recon.statement_versions import ingest_order

from .services import Services

__all__ = ["retry_settled_view", "view_errors"]


def view_errors(
    svc: Services,
    account: Account,
    parsed: ParsedStatement,
    base: dict[str, Any],
    *,
    period: tuple[date, date],
) -> list[RowError]:
    """A file of the other view than the account's accepted statement of overlapping days is rejected
    (``base`` describes the statement being read; ``period``: the days it covers, ``overlap.period_of``)."""
    if view_of(parsed.profile) is None or not admits(account.format, parsed.format):
        return []  # not a channel bill of a known view, or refused by the account's format already
    parsed_at = base.get("parsed_at")
    mine = (parsed_at.astimezone(UTC).isoformat() if parsed_at else "", base["statement_id"])
    listed = svc.repo.list_account_statements(base["project_id"], account.account_id, ending_from=period[0])
    earlier = sorted(
        (s for s in listed if s.statement_id != base["statement_id"] and ingest_order(s) < mine),
        key=ingest_order,
    )
    held_by = view_conflict(parsed.profile, period, earlier, account_format=account.format)
    if held_by is None:
        return []
    return [view_conflict_error(base["raw_key"], parsed.profile, period, account.account_id, held_by)]


def retry_settled_view(existing: Statement, account: Account) -> bool:
    """The same bytes delivered again are read again when they were quarantined only for a view conflict
    that the account's format has settled since (it now names this file's view)."""
    return view_conflict_settled(existing, account.format)
