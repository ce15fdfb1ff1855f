"""Resolving: the engine's result tables -> Case / MatchGroup / OpenItem models and the run's accounting."""

from .classify import (
    BookingTimes,
    RowDates,
    cases_from_tables,
    describe_delta,
    groups_from_tables,
    open_items,
    run_accounting,
    waiting_batches,
)

__all__ = [
    "BookingTimes",
    "RowDates",
    "cases_from_tables",
    "describe_delta",
    "groups_from_tables",
    "open_items",
    "run_accounting",
    "waiting_batches",
]
