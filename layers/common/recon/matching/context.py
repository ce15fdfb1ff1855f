"""What every pass needs besides the rows: the project's settings for this run."""

from __future__ import annotations

import json
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

import numpy as np
import pyarrow as pa

from recon.domain import AmountTolerance, Project
from recon.vocabulary import UNMATCHED_RULE as UNMATCHED_RULE  # noqa: PLC0414 (re-exported with the rule names)

from .frame import ANY, I64, SOURCES, Frame
from .hashing import U64, combine, seed_of

# Case types (recon.domain.CaseType values), by the name the engine uses.
AMOUNT_MISMATCH = "AMOUNT_MISMATCH"
TIME_MISMATCH = "TIME_MISMATCH"
MISSING_IN_ERP = "MISSING_IN_ERP"
MISSING_IN_CHANNEL = "MISSING_IN_CHANNEL"
MISSING_IN_BANK = "MISSING_IN_BANK"
DUPLICATE = "DUPLICATE"
STATUS_MISMATCH = "STATUS_MISMATCH"
FEE_MISMATCH = "FEE_MISMATCH"
OTHER = "OTHER"

# Built-in rule names (recorded like project rules).
DUPLICATE_RULE = "duplicate-source-id"
OVERLAP_RULE = "overlapping-statement"
# Rows held open because a statement they need is missing (quarantined or not delivered): the rule name
# is this prefix and the accounts awaited, e.g. "awaiting-statement:wechat-main".
AWAITING_RULE = "awaiting-statement"
# Open-items snapshot column: the statements a row held by ``AWAITING_RULE`` waits for, as
# "<account>@<business date of the run that lacked it>", comma-separated (null: none). The next runs keep
# holding the row while they are missing, since a statement delivered late re-runs its day and places it.
AWAITING_COLUMN = "awaiting"
# A settlement rule's pending bank entry: open (``pending-entry:<rule>``) until booked, then filtered.
PENDING_RULE = "pending-entry"
PENDING_BOOKED_RULE = "pending-entry-booked"
# An unmatched row of 0.00 (no fee either): filtered, it moved no money.
ZERO_AMOUNT_RULE = "zero-amount"
# What the built-in filters mean, for filtered.csv's detail column (as a project filter's description).
BUILTIN_FILTER_DESCRIPTIONS = {
    ZERO_AMOUNT_RULE: "A row of 0.00 that nothing matched moved no money: nothing to reconcile.",
    PENDING_BOOKED_RULE: "A pending bank entry whose booked entry (same reference, amount and currency) "
    "arrived: the booked entry counts.",
}


@dataclass(frozen=True)
class Context:
    project: Project
    # Accounts without a complete statement for the run (quarantined or not delivered): nothing can be
    # concluded about rows whose counterpart would be there, so they wait instead of becoming MISSING.
    unavailable: frozenset[str] = frozenset()

    def awaited(self, sources: list[str]) -> list[str]:
        """The unavailable accounts among those of ``sources`` (sorted)."""
        return sorted(
            a.account_id
            for a in self.project.accounts
            if a.account_id in self.unavailable and (not sources or a.source in sources)
        )

    @property
    def threshold(self) -> float:
        return self.project.auto_match_min_confidence

    def status(self, confidence: ANY) -> pa.DictionaryArray:
        """auto at or above the project's threshold, else suggested."""
        codes = np.where(np.asarray(confidence) >= self.threshold, 0, 1).astype(np.int32)
        return pa.DictionaryArray.from_arrays(pa.array(codes), pa.array(["auto", "suggested"]))


def tolerance(tol: AmountTolerance, expected: I64) -> I64:
    """Allowed |Δ| per row: max(absolute, percent × |expected| rounded down), exact in minor units."""
    num, den = tol.ratio()
    allowed = np.full(len(expected), tol.minor, dtype=np.int64)
    if num:
        allowed = np.maximum(allowed, np.abs(expected) * num // den)
    return allowed


def scheduled_fee(amount: I64, rate_percent: Decimal) -> I64:
    """Fee = |amount| × rate, rounded half up to the minor unit, with the amount's sign (refunds give the
    fee back). Exact integer arithmetic."""
    num, den = (rate_percent / 100).as_integer_ratio()
    magnitude = np.abs(amount) * int(num)
    fee = (2 * magnitude + int(den)) // (2 * int(den))
    return np.where(amount < 0, -fee, fee)


def scheduled_fee_one(amount: int, rate_percent: Decimal) -> int:
    fee = (abs(Decimal(amount)) * rate_percent / 100).quantize(Decimal(1), rounding=ROUND_HALF_UP)
    return -int(fee) if amount < 0 else int(fee)


def content_hash(base: U64, *labels: str) -> U64:
    """Hash of the defining content plus labels (rule name, case type)."""
    h = base
    for label in labels:
        h = combine(h, np.uint64(seed_of(label)))
    return h


def member_ref(frame: Frame, row: int) -> dict[str, Any]:
    """A row as a MemberRef's fields (small residual passes only)."""
    return {
        "txn_uid": frame.uid(row),
        "source": SOURCES[int(frame.source[row])],
        "account_id": frame.accounts[int(frame.account[row])],
        "txn_id": frame.str_at("txn_id", row),
        "amount_minor": int(frame.amount[row]),
        "currency": frame.currencies[int(frame.currency[row])],
    }


def dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, sort_keys=True, separators=(",", ":"))
