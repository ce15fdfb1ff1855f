"""Payloads passed between the state machine's steps (validated at every handler boundary)."""

from __future__ import annotations

from datetime import date
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from recon.domain import Delivery, Source


class _Payload(BaseModel):
    model_config = ConfigDict(extra="ignore")


class RunRef(_Payload):
    run_id: str
    project_id: str
    business_date: date


class StartRunInput(_Payload):
    """Execution input. Scheduled runs pass only the project; the business date defaults to yesterday."""

    project_id: str = Field(pattern=r"^[a-z0-9][a-z0-9-]{1,62}$")
    business_date: date | None = None
    trigger: Literal["schedule", "upload", "manual", "api"] = "schedule"
    then: NextRun | None = Field(
        default=None,
        description="The run this execution starts when it ends, successfully or not (the state machine's "
        "StartNextDay): the next day of an upload covering several days, so the days run one after the "
        "other and each carries over the open items of the day before it as re-run",
    )
    days_after: list[date] = Field(
        default_factory=list,
        description="The business dates ``then`` runs, in order (named in alerts: the days still to run)",
    )

    @model_validator(mode="after")
    def _days_after_are_the_chain(self) -> StartRunInput:
        chained = []
        at = self.then
        while at is not None:
            chained.append(at.input.business_date)
            at = at.input.then
        if chained != self.days_after:
            raise ValueError(f"days_after {self.days_after} are not the chained runs' dates {chained}")
        return self


class NextRun(_Payload):
    """A run to start later under a fixed execution name, so starting it twice starts it once."""

    name: str = Field(pattern=r"^[A-Za-z0-9_-]{1,80}$", description="Step Functions execution name")
    input: StartRunInput


StartRunInput.model_rebuild()


class ChannelTask(_Payload):
    """One account to fetch and parse within a run (an item of the fetch fan-out)."""

    run_id: str
    project_id: str
    business_date: date
    statement_date: date = Field(description="Date of the statement this run needs from the account")
    account_id: str
    source: Source
    delivery: Delivery


class StartRunOutput(RunRef):
    channels: list[ChannelTask]


class FetchOutput(_Payload):
    account_id: str
    source: Source
    status: Literal["stored", "unchanged", "none_dropped", "uploaded"]
    raw_keys: list[str] = Field(default_factory=list)


class StatementSummary(_Payload):
    statement_id: str
    raw_key: str
    status: str
    rows_read: int
    rows_parsed: int
    rows_skipped: int
    rows_rejected: int
    error: str | None = None
    format: str = ""
    profile: str = ""
    profile_version: str = ""
    rows_in_file_duplicate: int = Field(default=0, description="Rows flagged in_file_duplicate (kept)")
    rows_overlapping: int = Field(
        default=0, description="Rows an earlier statement already delivered (overlap_of set)"
    )
    blocked: str | None = Field(
        default=None,
        description="Why this statement blocks its account's reconciliation (a broken balance chain)",
    )


class ParseOutput(_Payload):
    account_id: str
    source: Source
    statements: list[StatementSummary] = Field(default_factory=list)
    quarantined: int = 0
    failed: bool = Field(default=False, description="The channel's fetch or parse failed after retries")
    error: str | None = None
    cause: str | None = None
    blocked: list[str] = Field(
        default_factory=list,
        description="Reasons the account's reconciliation is blocked this run (e.g. a balance chain break); "
        "the run needs attention until they are resolved",
    )


class ReparseRequest(_Payload):
    """Read a stored statement's raw object again with another profile version (parse function event)."""

    reparse_statement: str = Field(description="Statement id")
    profile_version: str | None = Field(
        default=None, description="Version to read it with; default: the profile's latest version"
    )
    profile: str | None = Field(
        default=None, description="Profile name; default: the one that read it, else the account's"
    )

    @staticmethod
    def is_one(event: dict[str, Any]) -> bool:
        return "reparse_statement" in event


class ReparseOutput(_Payload):
    statement_id: str
    status: Literal["reparsed", "unchanged", "rejected"] = Field(
        description="reparsed: the new parse is current; unchanged: that version is already current; "
        "rejected: the new parse failed and the previous one stays current"
    )
    previous_profile: str
    previous_profile_version: str
    previous_parquet_key: str | None
    statement: StatementSummary
    parquet_key: str | None = None
    errors: list[str] = Field(default_factory=list)


class ExtractPdfRequest(_Payload):
    """The parse function asks extract_pdf for the table rows of a stored PDF statement."""

    bucket: str
    key: str
    version_id: str | None = None
    sha256: str = Field(
        pattern=r"^[0-9a-f]{64}$",
        description="SHA-256 of the bytes the parse function read: others are refused",
    )


class ExtractPdfOutput(_Payload):
    """The rows object (``recon.keys.pdf_rows_key``) and its counts, or why the PDF cannot be read."""

    sha256: str
    rows_key: str | None = Field(default=None, description="Set when the PDF was read")
    rows: int = 0
    pages_with_rows: int = 0
    reused: bool = Field(default=False, description="The rows object existed already and was not rewritten")
    refusal: str | None = Field(
        default=None,
        description="Why the document is not a readable PDF statement (the parse error's reason)",
    )

    @model_validator(mode="after")
    def _rows_or_refusal(self) -> ExtractPdfOutput:
        if (self.rows_key is None) == (self.refusal is None):
            raise ValueError("exactly one of rows_key and refusal")
        return self


class FailureInput(_Payload):
    """What the state machine's Catch hands to the failure recorder."""

    execution: str
    input: dict[str, object] = Field(default_factory=dict)
    error: dict[str, object] = Field(default_factory=dict)


class FailureOutput(_Payload):
    subject: str
    summary: str


class MatchInput(RunRef):
    channels: list[ParseOutput] = Field(
        default_factory=list, description="Results of the fetch/parse fan-out"
    )
    mode: Literal["whole", "plan", "partition", "residual"] = Field(
        default="whole",
        description="whole: match the day in one task; plan: the same, unless the day is larger than "
        "RECON_MATCH_PARTITION_ROWS, then split it into partitions (Distributed Map); partition: the keyed "
        "passes of one partition; residual: merge the partitions and match what they left",
    )
    partition: int | None = Field(default=None, ge=0, description="Partition number (mode partition)")


class MatchOutput(RunRef):
    match_groups: int
    residue_rows: int
    partitioned: bool = Field(default=False, description="plan: the day was split into partitions")
    manifest_key: str = Field(default="", description="Data-bucket key of the JSON list of partitions")
    partitions: int = 0
    partition: int | None = None


class ResolveOutput(RunRef):
    cases: int
    cases_by_type: dict[str, int]


class ReportOutput(RunRef):
    report_key: str
    cases: int
    alert: bool = Field(description="True when the run needs attention (open cases or quarantined files)")
    subject: str
    summary: str


class ProjectSyncOutput(_Payload):
    project_id: str
    status: Literal["scheduled", "unscheduled", "invalid", "ignored"]
    detail: str = ""


class _Named(_Payload):
    name: str


class _Keyed(_Payload):
    key: str


class _S3Detail(_Payload):
    bucket: _Named
    object: _Keyed


class _EventBridgeS3(_Payload):
    model_config = ConfigDict(extra="ignore", populate_by_name=True)

    source: Literal["aws.s3"]
    detail_type: Literal["Object Created", "Object Deleted"] = Field(alias="detail-type")
    detail: _S3Detail


class S3ObjectEvent(_Payload):
    """An S3 "Object Created" / "Object Deleted" notification delivered by EventBridge (key not URL-encoded)."""

    bucket: str
    key: str
    deleted: bool

    @staticmethod
    def is_one(event: dict[str, Any]) -> bool:
        return event.get("source") == "aws.s3" and "detail-type" in event

    @classmethod
    def from_eventbridge(cls, event: dict[str, Any]) -> S3ObjectEvent:
        parsed = _EventBridgeS3.model_validate(event)
        return cls(
            bucket=parsed.detail.bucket.name,
            key=parsed.detail.object.key,
            deleted=parsed.detail_type == "Object Deleted",
        )
