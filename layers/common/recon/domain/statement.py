"""Statements (one raw file from one source) and normalized transactions."""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field

from .common import Source


class TxnType(StrEnum):
    PAYMENT = "payment"  # money in from a customer (an order paid)
    REFUND = "refund"  # money back to a customer
    SETTLEMENT = "settlement"  # a channel paying out to the bank
    FEE = "fee"
    TRANSFER = "transfer"
    ADJUSTMENT = "adjustment"
    OTHER = "other"


class TxnStatus(StrEnum):
    SUCCESS = "success"
    PENDING = "pending"
    CLOSED = "closed"
    REVERSED = "reversed"
    FAILED = "failed"


class Transaction(BaseModel):
    """One normalized row. Money is signed integer minor units: positive = money in to the merchant."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    txn_uid: str = Field(description="Unique within a run: '<source>:<account_id>:<txn_id>'")
    source: Source
    account_id: str
    statement_id: str
    txn_id: str = Field(description="The source's own id as printed (refunds: '<id>#<refund id>')")
    order_ref: str | None = Field(
        default=None, description="Merchant order number (ERP order no, 商户订单号)"
    )
    refund_ref: str | None = Field(default=None, description="Merchant refund number, on refunds")
    amount_minor: int
    fee_minor: int = 0
    net_minor: int
    currency: str = Field(pattern=r"^[A-Z]{3}$")
    booked_at: datetime = Field(description="Time the source booked the row (time zone aware)")
    value_date: date
    txn_type: TxnType
    status: TxnStatus = TxnStatus.SUCCESS
    counterparty: str | None = None
    memo: str | None = None
    raw_key: str = Field(description="S3 key of the raw file the row was read from")
    row_number: int = Field(ge=1, description="1-based line number in the raw file (or its zip member)")
    profile: str
    profile_version: str
    dedupe_key: str | None = Field(
        default=None, description="The profile's dedupe key fields joined with '|' (default: txn_id)"
    )
    in_file_duplicate: bool = Field(
        default=False, description="Repeats an earlier row's dedupe key in the same file (flagged, kept)"
    )
    gross_minor: int | None = Field(
        default=None,
        description="A channel payment's amount before the merchant-funded discount (订单金额), where the "
        "bill states it; amount_minor is what the channel settles (schema version 3)",
    )


class RowDisposition(StrEnum):
    """Where a row of a raw file went during parsing."""

    PARSED = "parsed"
    SKIPPED = "skipped"  # non-data (preamble, header, footer, summary): names the rule
    REJECTED = "rejected"  # data row that failed validation: names the reason


class RowError(BaseModel):
    """A row that could not be parsed, named precisely enough to find it in the file."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    file: str
    row: int
    column: str | None = None
    reason: str

    def __str__(self) -> str:
        column = f", column {self.column!r}" if self.column else ""
        where = f"row {self.row}{column}" if self.row else "the file as a whole"  # row 0: a file-level error
        return f"{self.file}: {where}: {self.reason}"


class StatementStatus(StrEnum):
    PARSED = "parsed"
    QUARANTINED = "quarantined"
    DUPLICATE = "duplicate"  # the same bytes were already parsed (same checksum)


class ControlTotal(BaseModel):
    """A total the file states about itself, and what the parsed rows add up to."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    stated: str
    computed: str

    @property
    def ok(self) -> bool:
        return self.stated == self.computed


class StatementDay(BaseModel):
    """The rows of a bank statement covering several days that were booked on one of them.

    A statement covering several days (a weekly export after a holiday) is reconciled as if the bank had
    sent one statement a day: each covered day's rows are stored as their own object and read by the run
    that reads that day's statement (``business_date`` = the day − the account's statement lag).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    day: date = Field(description="The covered day (booking date in the project's time zone)")
    business_date: date = Field(description="The run that reads this day's rows")
    parquet_key: str | None = Field(default=None, description="The day's rows (None: no row booked that day)")
    rows: int = Field(default=0, description="Parsed rows booked that day")
    rows_skipped: int = Field(
        default=0, description="The file's non-data lines, counted once: on the day the file is filed under"
    )


class Statement(BaseModel):
    """One raw file, as parsed."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    statement_id: str
    project_id: str
    source: Source
    account_id: str
    business_date: date
    raw_key: str
    raw_version_id: str | None = None
    checksum: str = Field(description="sha256 of the raw bytes")
    size: int
    format: str = ""
    encoding: str = ""
    profile: str = ""
    profile_version: str = ""
    status: StatementStatus
    rows_read: int = 0
    rows_parsed: int = 0
    rows_skipped: int = 0
    rows_rejected: int = 0
    skipped_by_rule: dict[str, int] = Field(default_factory=dict)
    errors: list[RowError] = Field(default_factory=list)
    control_totals: list[ControlTotal] = Field(default_factory=list)
    parquet_key: str | None = Field(
        default=None, description="The current normalized object (a re-parse writes a new one beside it)"
    )
    quarantine_key: str | None = None
    parsed_at: datetime | None = Field(default=None, description="When the statement was first ingested")
    # Parse stage (recon.pipeline.parse): continuity across the statements of one account.
    period_start: date | None = Field(default=None, description="First day covered (booked dates)")
    period_end: date | None = Field(
        default=None, description="Last day covered: the closing-balance date when the file states one"
    )
    rows_in_file_duplicate: int = Field(
        default=0, description="Parsed rows repeating an earlier row's dedupe key in the same file (kept)"
    )
    rows_overlapping: int = Field(
        default=0,
        description="Parsed rows an earlier statement of the account already delivered (overlap_of)",
    )
    reparsed_at: datetime | None = Field(default=None, description="When the current parse replaced another")
    superseded_by: str | None = Field(
        default=None,
        description="The newer upload (statement id) that replaced this version: kept for the audit trail, "
        "no longer one of the day's files (recon.statement_versions)",
    )
    days: list[StatementDay] = Field(
        default_factory=list,
        description="A bank statement covering several days: its rows per covered day, each read by that "
        "day's run (empty: one day, the whole file is read by the run of business_date)",
    )

    def days_read_by(self, business_date: date) -> list[StatementDay]:
        """The covered days whose rows the run of ``business_date`` reads (empty: the run reads none, or
        the statement is not split by day)."""
        return [d for d in self.days if d.business_date == business_date]

    def filed_for(self, business_date: date) -> bool:
        """Whether the run of ``business_date`` counts this statement among its files."""
        return business_date == self.business_date or bool(self.days_read_by(business_date))

    @property
    def balanced(self) -> bool:
        """Rows read = parsed + skipped + rejected."""
        return self.rows_read == self.rows_parsed + self.rows_skipped + self.rows_rejected
