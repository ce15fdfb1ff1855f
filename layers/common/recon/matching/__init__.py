"""Matching: project rules -> match groups, filtered rows and findings (what could not be matched, and why)."""

from .engine import match_transactions
from .model import Finding, FindingKind, MatchOutcome, aggregate_ref, member_ref

__all__ = ["Finding", "FindingKind", "MatchOutcome", "aggregate_ref", "match_transactions", "member_ref"]
