"""Matching: a project's rules over a day's rows (Arrow) -> placements, match groups and cases."""

from .engine import MatchResult, match_table, plan
from .ledger import CASE_SCHEMA, GROUP_SCHEMA, PLACEMENT_SCHEMA, with_identity
from .partition import Share, match_partition, match_residual, merge_results, partition_inputs

__all__ = [
    "CASE_SCHEMA",
    "GROUP_SCHEMA",
    "PLACEMENT_SCHEMA",
    "MatchResult",
    "Share",
    "match_partition",
    "match_residual",
    "match_table",
    "merge_results",
    "partition_inputs",
    "plan",
    "with_identity",
]
