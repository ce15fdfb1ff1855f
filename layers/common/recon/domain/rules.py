"""Reconciliation rules: data, validated, versioned. The matching engine interprets them."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field


class _Rule(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(pattern=r"^[a-z0-9][a-z0-9_.-]*$", description="Rule name recorded on every result")
    description: str = ""
    enabled: bool = True


class FieldCondition(BaseModel):
    """One condition on a normalized field."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    field: str
    op: Literal["eq", "ne", "in", "not_in", "regex", "lt", "le", "gt", "ge", "empty", "not_empty"]
    value: str | int | list[str] | None = None


class FilterRule(_Rule):
    """Exclude rows from matching (they are accounted as *filtered*, naming this rule)."""

    kind: Literal["filter"] = "filter"
    sources: list[str] = Field(default_factory=list, description="Sources it applies to (empty: all)")
    when: list[FieldCondition] = Field(description="All conditions must hold for a row to be filtered")


class KeyMatchRule(_Rule):
    """Match rows of two sources that share key fields (e.g. ERP order number = merchant order number)."""

    kind: Literal["key_match"] = "key_match"
    left: list[str] = Field(description="Sources on the left, e.g. ['erp']")
    right: list[str] = Field(description="Sources on the right, e.g. ['alipay', 'wechat']")
    keys: list[str] = Field(
        default=["order_ref", "refund_ref"], description="Normalized fields that must be equal"
    )
    amount_tolerance_minor: int = Field(default=0, ge=0, description="Allowed |Δamount| in minor units")
    time_tolerance_hours: float = Field(default=48, ge=0, description="Allowed |Δbooked_at| in hours")


class SettlementRule(_Rule):
    """Aggregate a channel account's day (net of fees and refunds) and match it to one bank credit."""

    kind: Literal["settlement"] = "settlement"
    channel_account: str = Field(description="Channel account id whose transactions are settled")
    bank_account: str = Field(description="Bank account id that receives the settlement")
    lag_days: list[int] = Field(default=[1], description="Candidate settlement lags in days (T+n)")
    memo_pattern: str = Field(default="", description="Regex the bank credit's memo/counterparty must match")
    amount_tolerance_minor: int = Field(default=0, ge=0)


Rule = Annotated[FilterRule | KeyMatchRule | SettlementRule, Field(discriminator="kind")]


class Severity(StrEnum):
    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"


class SeverityThresholds(BaseModel):
    """Case severity from the absolute amount at stake (minor units)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    medium_minor: int = Field(default=10_000, ge=0, description="From this amount on a case is medium")
    high_minor: int = Field(default=1_000_000, ge=0, description="From this amount on a case is high")

    def classify(self, amount_minor: int) -> Severity:
        amount = abs(amount_minor)
        if amount >= self.high_minor:
            return Severity.HIGH
        if amount >= self.medium_minor:
            return Severity.MEDIUM
        return Severity.LOW
