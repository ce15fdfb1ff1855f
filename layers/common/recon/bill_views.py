"""One view of a channel's bills per account: the trade bill or the fund-flow bill, never both.

Alipay issues, for one merchant account and day, a 业务明细 (trade bill: one row per payment and refund)
and a 账务明细 (fund-flow bill: one row per movement of the balance, the same payments and refunds plus
the fees). WeChat Pay likewise a 交易账单 and a 资金账单. Both views describe the same money and both carry
the merchant order number, so reconciling both counts every order twice (a false "paid twice" 长款) and
doubles a settlement batch's net. Bills of one view in several layouts (WeChat ALL beside SUCCESS and
REFUND, an Alipay CSV beside its zip) are the overlap marks' and the versions' business, not this module's.

The view of a statement is known from its profile's family (the profile name, or a name under it: an
uploaded ``alipay.trade.mine`` is a 业务明细 too). ``VIEWS`` is the one place that says so.

The rule, per account and overlapping days: the view accepted first counts; a file of the other view is
quarantined (``view_conflict``), unless the account's ``format`` decides which view it reconciles (a
statement of a format the account no longer admits does not hold the days). A file of the pinned view
accepted later replaces an accepted statement of the other view of the same day
(``recon.statement_versions.supersedes``). Pure functions: the parse stage and the versions share them.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date

from recon.domain import RowError, Source, Statement, StatementStatus

__all__ = [
    "VIEWS",
    "BillView",
    "admits",
    "other_view",
    "refused_for_view",
    "view_conflict",
    "view_conflict_error",
    "view_conflict_settled",
    "view_of",
]


@dataclass(frozen=True)
class BillView:
    """A channel's view of an account's money, as people call its bill."""

    source: Source
    family: str  # the profile family, also the account ``format`` that pins this view
    kind: str  # "trade" or "fund-flow": two views of a source differ in kind
    name: str  # the bill as the channel's users call it

    @property
    def channel(self) -> str:
        return "Alipay" if self.source is Source.ALIPAY else "WeChat Pay"


VIEWS = (
    BillView(Source.ALIPAY, "alipay.trade", "trade", "业务明细 (trade bill)"),
    BillView(Source.ALIPAY, "alipay.signcustomer", "fund-flow", "账务明细 (fund-flow bill)"),
    BillView(Source.WECHAT, "wechat.tradebill", "trade", "交易账单 (trade bill)"),
    BillView(Source.WECHAT, "wechat.fundflow", "fund-flow", "资金账单 (fund-flow bill)"),
)

# The leading words of a view-conflict error: a re-delivery of such a file is read again once the account's
# format settles the conflict (``view_conflict_settled``).
_CONFLICT = "two views of the same"


def admits(expected: str | None, fmt: str) -> bool:
    """Whether an account whose ``format`` is ``expected`` (a format id or a prefix of one) takes ``fmt``."""
    return not expected or fmt == expected or fmt.startswith(expected + ".")


def view_of(profile: str) -> BillView | None:
    """The view a statement read by ``profile`` gives (None: not a channel bill of a known view)."""
    return next((v for v in VIEWS if admits(v.family, profile)), None)


def _overlaps(a: tuple[date, date], b: tuple[date, date]) -> bool:
    return a[0] <= b[1] and b[0] <= a[1]


def _period(statement: Statement) -> tuple[date, date]:
    end = statement.period_end or statement.business_date
    return statement.period_start or end, end


def view_conflict(
    profile: str,
    period: tuple[date, date],
    earlier: Iterable[Statement],
    *,
    account_format: str | None,
) -> Statement | None:
    """The accepted statement of the account's other view that holds these days (first ingested), if any.

    ``profile`` and ``period`` describe the file being read; ``earlier`` are the account's statements
    ingested before it, in that order (``statement_versions.ingest_order``). A statement of a format the
    account's ``format`` no longer admits holds nothing: the format decides.
    """
    mine = view_of(profile)
    if mine is None:
        return None
    for other in earlier:
        theirs = view_of(other.profile)
        if (
            theirs is None
            or theirs.source is not mine.source
            or theirs.kind == mine.kind
            or other.status is not StatementStatus.PARSED
            or other.superseded_by is not None
            or not admits(account_format, other.format or other.profile)
            or not _overlaps(_period(other), period)
        ):
            continue
        return other
    return None


def other_view(a: Statement, b: Statement) -> bool:
    """Whether ``a`` and ``b`` are accepted bills of the two views of one channel's money, for overlapping
    days (the later one counts: ``recon.statement_versions.supersedes``)."""
    mine, theirs = view_of(a.profile), view_of(b.profile)
    return (
        mine is not None
        and theirs is not None
        and mine.source is theirs.source
        and mine.kind != theirs.kind
        and a.status is StatementStatus.PARSED
        and b.status is StatementStatus.PARSED
        and _overlaps(_period(a), _period(b))
    )


def _days(period: tuple[date, date]) -> str:
    return f"{period[0]}" if period[0] == period[1] else f"{period[0]}..{period[1]}"


def view_conflict_error(
    key: str, profile: str, period: tuple[date, date], account_id: str, held_by: Statement
) -> RowError:
    """The quarantine reason: both files, both views, and how to choose the view the account reconciles."""
    mine, theirs = view_of(profile), view_of(held_by.profile)
    assert mine is not None and theirs is not None  # a conflict is between two known views
    return RowError(
        file=key,
        row=0,
        reason=f"{_CONFLICT} {mine.channel} bills: this file is the {mine.name} for {_days(period)}, and "
        f"the {theirs.name} {held_by.raw_key} ({_days(_period(held_by))}) is already reconciled for account "
        f"{account_id}. Both describe the same money: reconciled together, every order would count twice "
        f"(a false 长款) and the settlement's net would double. This file is kept but not reconciled. An "
        f"account reconciles one view of its {mine.channel} bills: to keep the {theirs.name}, nothing needs "
        f"to change (setting the account's format to {theirs.family} refuses such files up front; download "
        f"or fetch only that bill); to reconcile the {mine.name} instead, set the account's format to "
        f"{mine.family} and upload this file again: it then replaces {held_by.raw_key} for these days.",
    )


def refused_for_view(errors: Iterable[RowError | str]) -> bool:
    """Whether a quarantined file was refused only because the account reconciles the other view of its
    bills: the account's day is then complete without it (its rows are in the view that counts)."""
    reasons = [e.reason if isinstance(e, RowError) else e for e in errors]
    return bool(reasons) and all(f"{_CONFLICT} " in r for r in reasons)


def view_conflict_settled(statement: Statement, account_format: str | None) -> bool:
    """Whether a file quarantined only for a view conflict would now be read: the account's format has
    since been set to its view (so the other view no longer holds the days). A format admitting both views
    (``alipay``) settles nothing: the file would be refused again."""
    fmt = statement.format or statement.profile
    return (
        statement.status is StatementStatus.QUARANTINED
        and refused_for_view(statement.errors)
        and bool(account_format)
        and admits(account_format, fmt)
        and view_of(account_format or "") == view_of(fmt)
    )
