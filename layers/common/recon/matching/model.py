"""What the matcher hands to the resolver."""

from __future__ import annotations

from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field

from recon.domain import Evidence, MatchGroup, MemberRef, Source, Transaction
from recon.domain.results import AGGREGATE_PREFIX


class FindingKind(StrEnum):
    UNMATCHED = "unmatched"  # no counterpart on the other side
    DUPLICATE = "duplicate"  # the same source id seen again
    KEY_AMOUNT_MISMATCH = "key_amount_mismatch"  # keys agree, amounts do not
    KEY_STATUS_MISMATCH = "key_status_mismatch"  # keys agree, one side says it did not happen
    KEY_TIME_MISMATCH = "key_time_mismatch"  # keys and amounts agree, times beyond tolerance
    SETTLEMENT_AMOUNT_MISMATCH = (
        "settlement_amount_mismatch"  # bank credit differs from the channel day's net
    )
    SETTLEMENT_MISSING = "settlement_missing"  # a channel day with no bank credit


class Finding(BaseModel):
    """Rows the matcher could not place in a match group, with the evidence it gathered."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: FindingKind
    rule: str
    members: list[MemberRef]
    counterpart: list[MemberRef] = Field(default_factory=list)
    evidence: list[Evidence] = Field(default_factory=list)
    detail: str = ""


class MatchOutcome(BaseModel):
    """Everything the match stage decided for a run. Every input row is in exactly one of the three."""

    model_config = ConfigDict(extra="forbid")

    run_id: str
    groups: list[MatchGroup] = Field(default_factory=list)
    findings: list[Finding] = Field(default_factory=list)
    filtered: dict[str, str] = Field(default_factory=dict, description="txn_uid -> filter rule name")
    rows_in: dict[str, int] = Field(default_factory=dict, description="source -> rows given to the matcher")


def member_ref(t: Transaction) -> MemberRef:
    return MemberRef(
        txn_uid=t.txn_uid,
        source=t.source,
        account_id=t.account_id,
        txn_id=t.txn_id,
        amount_minor=t.amount_minor,
        currency=t.currency,
    )


def aggregate_ref(source: Source, account_id: str, batch: str, amount_minor: int, currency: str) -> MemberRef:
    """Reference to a channel account's settlement batch (not an input row)."""
    return MemberRef(
        txn_uid=f"{AGGREGATE_PREFIX}{account_id}@{batch}",
        source=source,
        account_id=account_id,
        txn_id=f"{account_id}@{batch}",
        amount_minor=amount_minor,
        currency=currency,
    )
