"""Reconciliation rules: data, validated, versioned (the project's ``version``). The engine interprets them.

Rules apply in the order the project lists them (priority order). Each result records the rule's name.

=================  =====================================================================================
kind               what it does
=================  =====================================================================================
``filter``         exclude rows by field conditions (eq/in/regex/...): they are *filtered*, naming the rule
``mapping``        rewrite working fields before matching: value maps, sign conventions, regex extraction
                   (e.g. the order number out of a bank memo), copying one field into another
``key_match``      rows of two sides that share key fields; amount (absolute and percent), time and fee
                   tolerances; status comparison. One key may carry several rows on either side (an order
                   paid by several payments; partial refunds): the sums are compared
``window_match``   no key: amount (with tolerance) and a time window, scored by time proximity and by
                   counterparty / memo / reference similarity, one-to-one optimal assignment; ambiguity is
                   *suggested*, never auto-matched
``settlement``     a channel account's day (net of fees and refunds) ↔ one bank credit T+n; several
                   batches in one credit; fee schedule check (FEE_MISMATCH)
``subset_sum``     one row ↔ k rows of the other side whose amounts add up (bounded k and date window);
                   only a unique solution may be auto-matched
=================  =====================================================================================
"""

from __future__ import annotations

import re
from decimal import Decimal
from enum import StrEnum
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from .statement import TxnType

# Working fields rules may read. Money fields are integer minor units; times are UTC.
TEXT_FIELDS = (
    "source",
    "account_id",
    "txn_id",
    "order_ref",
    "refund_ref",
    "currency",
    "txn_type",
    "status",
    "counterparty",
    "memo",
)
INTEGER_FIELDS = ("amount_minor", "fee_minor", "net_minor")
KEY_FIELDS = ("order_ref", "refund_ref", "txn_id", "counterparty", "memo", "account_id", "currency")
MAPPABLE_FIELDS = ("order_ref", "refund_ref", "counterparty", "memo", "txn_type", "status")
SIDES = ("erp", "alipay", "wechat", "bank")


def _check_sources(values: list[str]) -> list[str]:
    unknown = [v for v in values if v not in SIDES]
    if unknown:
        raise ValueError(f"unknown source(s) {unknown}; known: {list(SIDES)}")
    return values


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

    @model_validator(mode="after")
    def _check(self) -> FieldCondition:
        if self.field not in TEXT_FIELDS + INTEGER_FIELDS:
            raise ValueError(f"unknown field {self.field!r}")
        if self.op in ("lt", "le", "gt", "ge"):
            if self.field not in INTEGER_FIELDS or not isinstance(self.value, int):
                raise ValueError(f"{self.op} compares an integer field ({INTEGER_FIELDS}) with an integer")
        elif self.op in ("in", "not_in"):
            if not isinstance(self.value, list):
                raise ValueError(f"{self.op} needs a list value")
        elif self.op == "regex":
            if not isinstance(self.value, str):
                raise ValueError("regex needs a pattern")
            re.compile(self.value)
        elif self.op in ("eq", "ne") and self.value is None:
            raise ValueError(f"{self.op} needs a value")
        return self


class FilterRule(_Rule):
    """Exclude rows from matching (they are accounted as *filtered*, naming this rule)."""

    kind: Literal["filter"] = "filter"
    sources: list[str] = Field(default_factory=list, description="Sources it applies to (empty: all)")
    when: list[FieldCondition] = Field(description="All conditions must hold for a row to be filtered")

    _sources = field_validator("sources")(_check_sources)


class MappingRule(_Rule):
    """Rewrite one working field of the rows it applies to, before any match rule runs.

    Exactly one of ``value_map``, ``extract``, ``copy_from`` or ``negate`` is given:

    * ``value_map``: replace values (e.g. a bank's own status words) — unmapped values stay as they are;
    * ``extract``: a regex with one capture group run on ``from_field`` (e.g. ``'订单号[:：]?(\\w+)'`` on
      the bank memo); the capture becomes ``field`` where it matches and ``field`` is empty;
    * ``copy_from``: copy another field where ``field`` is empty;
    * ``negate``: flip the sign of amount, fee and net (a source that books money in as negative).
    """

    kind: Literal["mapping"] = "mapping"
    sources: list[str] = Field(default_factory=list, description="Sources it applies to (empty: all)")
    when: list[FieldCondition] = Field(default_factory=list, description="Only rows meeting all of these")
    field: str = Field(default="order_ref", description=f"Field written: one of {MAPPABLE_FIELDS}")
    value_map: dict[str, str] = Field(default_factory=dict)
    extract: str = Field(default="", description="Regex with one capture group")
    from_field: str = Field(default="memo", description="Field the regex reads")
    copy_from: str = ""
    negate: bool = False

    _sources = field_validator("sources")(_check_sources)

    @model_validator(mode="after")
    def _check(self) -> MappingRule:
        chosen = [bool(self.value_map), bool(self.extract), bool(self.copy_from), self.negate]
        if sum(chosen) != 1:
            raise ValueError("a mapping rule does exactly one of value_map, extract, copy_from, negate")
        if not self.negate and self.field not in MAPPABLE_FIELDS:
            raise ValueError(f"field must be one of {MAPPABLE_FIELDS}")
        for name in (self.from_field, self.copy_from):
            if name and name not in TEXT_FIELDS:
                raise ValueError(f"unknown field {name!r}")
        if self.extract and re.compile(self.extract).groups != 1:
            raise ValueError("extract needs exactly one capture group")
        return self


class AmountTolerance(BaseModel):
    """|Δamount| allowed: the larger of an absolute amount and a percentage of the expected amount.

    Both are exact: the percentage is a decimal, applied in integer minor units and rounded down.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    minor: int = Field(default=0, ge=0, description="Absolute tolerance in minor units")
    percent: Decimal = Field(default=Decimal(0), ge=0, le=100, description="Percent of the expected amount")

    def ratio(self) -> tuple[int, int]:
        """``percent / 100`` as an exact fraction (numerator, denominator)."""
        num, den = (self.percent / 100).as_integer_ratio()
        return int(num), int(den)


class CarryOver(BaseModel):
    """Which unmatched rows of a rule may still be in flight: they stay *open* (for the project's
    ``carry_over_days``) and are offered again to later runs before they become MISSING cases."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    sources: list[str] = Field(description="Sources whose unmatched rows may be in flight")
    last_hours: float = Field(
        default=24,
        gt=0,
        le=24,
        description="Only rows booked within this many hours before the end of the business day "
        "(project time zone); 24 = any row of the day",
    )
    txn_types: list[TxnType] | None = Field(
        default=None,
        min_length=1,
        description="Only rows of these transaction types (e.g. [refund]: ERPs often book a refund a day or "
        "two after the channel paid it out); none: every type",
    )

    _sources = field_validator("sources")(_check_sources)


class _MatchRule(_Rule):
    left: list[str] = Field(description="Sources on the left (the side that sets the expectation)")
    right: list[str] = Field(description="Sources on the right")
    amount_tolerance: AmountTolerance = Field(default_factory=AmountTolerance)
    carry_over: list[CarryOver] = Field(
        default_factory=list,
        description="Unmatched rows that may still be in flight: one entry, or a list (a row is kept open "
        "when any entry takes it)",
    )

    _left = field_validator("left", "right")(_check_sources)

    @field_validator("carry_over", mode="before")
    @classmethod
    def _one_or_many(cls, value: object) -> object:
        return [] if value is None else [value] if isinstance(value, dict | CarryOver) else value

    @model_validator(mode="after")
    def _sides(self) -> _MatchRule:
        if not self.left or not self.right or set(self.left) & set(self.right):
            raise ValueError("left and right are non-empty and disjoint")
        return self


class KeyMatchRule(_MatchRule):
    """Match rows of two sides that share key fields (e.g. ERP order number = merchant order number)."""

    kind: Literal["key_match"] = "key_match"
    keys: list[str] = Field(
        default=["order_ref", "refund_ref"],
        min_length=1,
        description="Fields that must be equal. Rows with an empty first key are not keyed.",
    )
    amount_tolerance_minor: int | None = Field(
        default=None, ge=0, description="Shorthand for amount_tolerance.minor (kept for older projects)"
    )
    time_tolerance_hours: float = Field(default=48, ge=0, description="Allowed |Δbooked_at| in hours")
    compare_status: bool = Field(
        default=True, description="A side that says it did not happen (closed, failed...) is a case"
    )
    fee_rate_percent: Decimal | None = Field(
        default=None,
        ge=0,
        le=100,
        description="Channel fee schedule: expected fee = amount × rate, rounded half up to the minor unit",
    )
    fee_tolerance_minor: int = Field(default=0, ge=0)
    merchant_discount: Literal["case", "match"] = Field(
        default="case",
        description="A difference that is exactly the channel's merchant-funded discount (the bill's amount "
        "before discounts, gross_minor, equals the ERP amount): 'case' keeps it an AMOUNT_MISMATCH whose reason "
        "names the discount; 'match' matches it, the explanation naming the discount",
    )

    @field_validator("keys")
    @classmethod
    def _keys(cls, keys: list[str]) -> list[str]:
        unknown = [k for k in keys if k not in KEY_FIELDS]
        if unknown:
            raise ValueError(f"unknown key field(s) {unknown}; allowed: {list(KEY_FIELDS)}")
        return keys

    def tolerance(self) -> AmountTolerance:
        if self.amount_tolerance_minor is None:
            return self.amount_tolerance
        return self.amount_tolerance.model_copy(update={"minor": self.amount_tolerance_minor})


class WindowMatchRule(_MatchRule):
    """No shared key: amount and time window, scored by every other signal, one-to-one assignment."""

    kind: Literal["window_match"] = "window_match"
    time_window_hours: float = Field(default=1, gt=0, le=24 * 7, description="Allowed |Δbooked_at|")
    same_sign: bool = Field(default=True, description="Payments match payments, refunds refunds")
    max_candidates: int = Field(
        default=64, ge=1, le=4096, description="Rows with more candidates than this are not assigned"
    )
    max_block: int = Field(
        default=12, ge=1, le=64, description="Largest candidate block solved exactly (rows per side)"
    )
    weight_time: float = Field(default=1.0, ge=0, description="Weight of time proximity")
    weight_counterparty: float = Field(default=1.0, ge=0, description="Weight of counterparty similarity")
    weight_reference: float = Field(
        default=2.0, ge=0, description="Weight of a reference of one row found in the other's memo"
    )
    clear_time_gap_seconds: float | None = Field(
        default=None,
        ge=0,
        le=24 * 3600,
        description="A pair that is each row's best candidate is also clear (auto-matched) when every other "
        "candidate of both rows is at least this many seconds further apart in time than the pair, no closer "
        "in amount, and has no more counterparty or reference evidence for it: payment callbacks come within "
        "seconds, so an order of the same amount minutes away is no real alternative. None: only the "
        "score margin decides",
    )
    reject_conflicting_orders: bool = Field(
        default=True,
        description="Never pair two rows that both carry an order reference (order_ref) when neither "
        "contains the other: a different order number is a different order, not a mangled one (a cut, "
        "prefixed or suffixed number still contains, or is contained in, the other). Turn off where a "
        "channel carries its own numbering in order_ref",
    )


class SettlementRule(_Rule):
    """Aggregate a channel account's day (net of fees and refunds) and match it to one bank credit."""

    kind: Literal["settlement"] = "settlement"
    channel_account: str = Field(description="Channel account id whose transactions are settled")
    bank_account: str = Field(description="Bank account id that receives the settlement")
    lag_days: list[int] = Field(default=[1], min_length=1, description="Candidate settlement lags (T+n)")
    memo_pattern: str = Field(default="", description="Regex the bank credit's memo/counterparty must match")
    amount_tolerance_minor: int = Field(default=0, ge=0)
    group_by: Literal["business_date", "value_date"] = Field(
        default="business_date",
        description="Batch the channel's rows by the run's business date (one bill, one batch) or by "
        "their value date",
    )
    max_batches_per_credit: int = Field(
        default=3, ge=1, le=8, description="A credit may settle up to this many days at once"
    )
    fee_rate_percent: Decimal | None = Field(
        default=None,
        ge=0,
        le=100,
        description="Fee schedule: a credit equal to gross − scheduled fees but not to the channel's net "
        "is a FEE_MISMATCH (the channel's stated fees differ from the contract)",
    )
    carry_over: bool = Field(
        default=True,
        description="Credits that may settle a channel day not loaded yet stay open (late posting)",
    )

    @field_validator("lag_days")
    @classmethod
    def _lags(cls, lags: list[int]) -> list[int]:
        if any(lag < 0 or lag > 31 for lag in lags):
            raise ValueError("lag days are between 0 and 31")
        return sorted(set(lags))

    @field_validator("memo_pattern")
    @classmethod
    def _pattern(cls, pattern: str) -> str:
        re.compile(pattern)
        return pattern


class SubsetSumRule(_MatchRule):
    """One row on ``right`` ↔ 2..max_k rows on ``left`` (or the reverse) whose amounts add up exactly
    (within tolerance), all within ``window_days``. A unique solution is needed for anything but
    *suggested*."""

    kind: Literal["subset_sum"] = "subset_sum"
    one_side: Literal["left", "right"] = Field(default="right", description="The side holding the single row")
    max_k: int = Field(default=4, ge=2, le=6, description="Largest number of rows added up")
    window_days: int = Field(default=3, ge=0, le=31, description="Dates within this many days of the one")
    max_candidates: int = Field(default=24, ge=2, le=64, description="Candidates searched per row")


Rule = Annotated[
    FilterRule | MappingRule | KeyMatchRule | WindowMatchRule | SettlementRule | SubsetSumRule,
    Field(discriminator="kind"),
]
MatchRule = KeyMatchRule | WindowMatchRule | SettlementRule | SubsetSumRule


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
