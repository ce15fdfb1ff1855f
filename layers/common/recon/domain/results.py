"""Results of a run: match groups, cases (discrepancies), the run itself and audit events."""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from .common import Source
from .rules import Severity

AGGREGATE_PREFIX = "agg:"


class MemberRef(BaseModel):
    """A transaction as referenced from a result.

    An aggregate (a channel account's settlement batch for one day) is referenced with a ``txn_uid`` that
    starts with ``agg:`` and ``txn_id`` '<channel account>@<business date>'; it is not an input row.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    txn_uid: str
    source: Source
    account_id: str
    txn_id: str
    amount_minor: int
    currency: str

    @property
    def is_aggregate(self) -> bool:
        return self.txn_uid.startswith(AGGREGATE_PREFIX)


class Evidence(BaseModel):
    """One field compared while matching: the values on each side and whether they agree."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    field: str
    left: str
    right: str
    equal: bool
    delta: str | None = Field(default=None, description="Numeric difference right - left, where meaningful")


class MatchStatus(StrEnum):
    AUTO = "auto"  # matched by a rule with full confidence
    SUGGESTED = "suggested"  # below the confidence threshold: a person confirms
    CONFIRMED = "confirmed"  # a person confirmed a suggestion


class MatchGroup(BaseModel):
    """Rows that reconcile with each other, with the rule and the evidence."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    group_id: str
    run_id: str
    rule: str
    members: list[MemberRef]
    evidence: list[Evidence] = Field(default_factory=list)
    confidence: float = Field(default=1.0, ge=0, le=1)
    status: MatchStatus = MatchStatus.AUTO
    settles: list[str] = Field(
        default_factory=list,
        description="Settlement batches this group settles, as '<channel account>@<business date>'",
    )
    explanation: str = ""
    match_pass: str = Field(
        default="", description="exact_key, key_tolerance, window, settlement, subset_sum"
    )


class CaseType(StrEnum):
    AMOUNT_MISMATCH = "AMOUNT_MISMATCH"
    TIME_MISMATCH = "TIME_MISMATCH"
    # Missing on one side. Seen from the merchant's books: 长款 (overage) is money received that the books
    # do not explain; 短款 (shortage) is money the books expect that never arrived.
    MISSING_IN_ERP = "MISSING_IN_ERP"  # 长款: the channel took money for no ERP order (a refund: 短款)
    MISSING_IN_CHANNEL = (
        "MISSING_IN_CHANNEL"  # ERP order never paid through the channel (短款; a refund: 长款), or a
    )
    #                                            bank credit that no channel settlement explains (长款)
    MISSING_IN_BANK = "MISSING_IN_BANK"  # 短款: the channel settled a day, the bank never credited it
    DUPLICATE = "DUPLICATE"
    STATUS_MISMATCH = "STATUS_MISMATCH"
    FEE_MISMATCH = "FEE_MISMATCH"
    OTHER = "OTHER"


class CaseStatus(StrEnum):
    OPEN = "open"
    AUTO_RESOLVED = "auto_resolved"
    IN_REVIEW = "in_review"
    RESOLVED = "resolved"


class CaseLink(BaseModel):
    """Another run's case, by id and the business date of its run (the run id follows from the date)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    case_id: str
    business_date: date


class ReviewedDifference(BaseModel):
    """The difference a reviewer had marked (in_review / resolved) before a re-run found another one under
    the same case id: a person signs off one difference, not whatever the id holds later."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    status: CaseStatus = Field(description="The review status it had")
    type: CaseType
    delta_minor: int
    currency: str
    members: list[str] = Field(description="txn_id of the rows it was about")
    changed_by: str = Field(description="The run that found the difference changed (or gone)")


class Case(BaseModel):
    """A discrepancy (差异) that says why it is one."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    case_id: str
    run_id: str
    type: CaseType
    members: list[MemberRef] = Field(description="Rows this case is about (each row is in one case at most)")
    counterpart: list[MemberRef] = Field(
        default_factory=list, description="Rows on the other side it was compared with (they may be matched)"
    )
    delta_minor: int = Field(description="Amount at stake, signed: members - counterpart")
    currency: str
    severity: Severity
    status: CaseStatus = CaseStatus.OPEN
    rule: str = Field(default="", description="Rule that found it")
    reason: str = Field(description="Why this is a case, in words a finance user reads")
    evidence: list[Evidence] = Field(default_factory=list)
    changed_since_review: ReviewedDifference | None = Field(
        default=None, description="Reopened: what a reviewer had marked before a re-run changed it"
    )
    closes: list[CaseLink] = Field(
        default_factory=list, description="Earlier runs' cases this case explains (a late payout's)"
    )
    explained_by: CaseLink | None = Field(
        default=None, description="A later run's case that explains this one"
    )
    system_note: str = Field(
        default="", description="What the system did to its status and why (reopened, closed, kept)"
    )


class ResultsDigest(BaseModel):
    """The small part of a run's results the report stage and the review API read (JSON; the full results
    are Parquet beside it): counts, the suggested groups and a sample of the others, the open items."""

    model_config = ConfigDict(extra="forbid")

    run_id: str
    groups_by_rule: dict[str, int] = Field(default_factory=dict)
    groups_by_pass: dict[str, int] = Field(default_factory=dict)
    suggested_groups: int = 0
    sample_groups: list[MatchGroup] = Field(
        default_factory=list, description="Suggested groups first, then others, by id (at most 200)"
    )
    open_items: list[OpenItem] = Field(default_factory=list, description="At most 1,000, oldest first")
    open_items_total: int = 0


class RunStatus(StrEnum):
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    # Finished, but a statement the day needs is missing or quarantined: the day is not reconciled until it
    # arrives (its rows are held open as awaiting-statement), so it must not read as all clear.
    INCOMPLETE = "incomplete"
    FAILED = "failed"


class MoneyAccounting(BaseModel):
    """Money in = money out for one source and currency in one run, in minor units (the rows of
    ``SourceAccounting``, by amount): in + carried in = matched + in cases + filtered + open. ``held_minor``
    is the part of ``open_minor`` held for a missing or quarantined statement (``awaiting-statement``)."""

    model_config = ConfigDict(extra="forbid")

    currency: str
    in_minor: int = 0
    carried_in_minor: int = 0
    matched_minor: int = 0
    in_cases_minor: int = 0
    filtered_minor: int = 0
    open_minor: int = 0
    held_minor: int = 0
    repeated_minor: int = Field(
        default=0,
        description="Of ``in_minor`` (and of ``filtered_minor``): rows filtered as ``overlapping-statement``, "
        "money another statement of the day already delivered; in − repeated is the money that arrived",
    )

    @property
    def balanced(self) -> bool:
        out = self.matched_minor + self.in_cases_minor + self.filtered_minor + self.open_minor
        return self.in_minor + self.carried_in_minor == out


class SourceAccounting(BaseModel):
    """Rows in = rows out for one source in one run.

    ``rows_in`` are the rows of this run's statements; ``carried_in`` the open items earlier runs left
    (in flight). Every one of them ends matched, in a case, filtered (naming the rule) or open again.
    """

    model_config = ConfigDict(extra="forbid")

    source: Source
    rows_in: int = 0
    carried_in: int = 0
    matched: int = 0
    suggested: int = Field(default=0, description="Of the matched rows, those in suggested groups")
    in_cases: int = 0
    filtered: int = 0
    open: int = 0
    filtered_by_rule: dict[str, int] = Field(default_factory=dict)
    matched_minor: int = 0
    in_cases_minor: int = 0
    open_minor: int = 0
    money: list[MoneyAccounting] = Field(
        default_factory=list, description="The same rows by amount, per currency (the money tie-out)"
    )

    @property
    def balanced(self) -> bool:
        rows = self.rows_in + self.carried_in == self.matched + self.in_cases + self.filtered + self.open
        return rows and all(m.balanced for m in self.money)


class OpenItem(BaseModel):
    """A row that may still be in flight: offered again to later runs until it is matched or too old."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    txn_uid: str
    source: Source
    account_id: str
    txn_id: str
    amount_minor: int
    currency: str
    first_seen: date = Field(description="Business date of the run that first saw the row")
    age_days: int = Field(description="Business date of this run − first seen")
    rule: str = Field(description="Rule that keeps it open")


class FileAccounting(BaseModel):
    """Rows in = rows out for one raw file."""

    model_config = ConfigDict(extra="forbid")

    raw_key: str
    source: Source
    account_id: str
    status: str
    rows_read: int
    rows_parsed: int
    rows_skipped: int
    rows_rejected: int
    errors: list[str] = Field(default_factory=list)
    day: date | None = Field(
        default=None,
        description="A statement covering several days: the day whose rows this run read (the counts are "
        "that day's; the other days' rows are counted by their own runs)",
    )
    file_rows_read: int | None = Field(default=None, description="With ``day``: the whole file's rows read")
    superseded_by: str | None = Field(
        default=None,
        description="Status ``superseded``: the raw key of the newer upload that replaced this file. Listed "
        "because it was delivered; none of its rows is in the run's rows or money",
    )


class Run(BaseModel):
    """One reconciliation of one project for one business date."""

    model_config = ConfigDict(extra="forbid")

    run_id: str
    project_id: str
    project_version: int
    business_date: date
    status: RunStatus = RunStatus.RUNNING
    trigger: str = "schedule"
    started_at: datetime
    finished_at: datetime | None = None
    files: list[FileAccounting] = Field(default_factory=list)
    sources: list[SourceAccounting] = Field(default_factory=list)
    match_groups: int = 0
    suggested_groups: int = 0
    open_items: int = Field(
        default=0, description="Open rows plus settlement batches waiting for a statement"
    )
    groups_by_pass: dict[str, int] = Field(default_factory=dict)
    cases_by_type: dict[str, int] = Field(default_factory=dict)
    case_minor_by_type: dict[str, int] = Field(default_factory=dict)
    quarantined_files: int = 0
    report_key: str | None = None
    error: str | None = None

    @property
    def balanced(self) -> bool:
        return all(s.balanced for s in self.sources)


class AuditEvent(BaseModel):
    """An append-only record of something that happened to a run, a case or a statement."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    event_id: str
    at: datetime
    actor: str = Field(description="'system:<stage>' or the reviewer's identity")
    action: str
    subject: str = Field(description="run / case / statement id")
    details: dict[str, Any] = Field(default_factory=dict)
