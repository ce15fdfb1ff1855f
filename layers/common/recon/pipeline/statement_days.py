"""A bank statement covering several days is reconciled as if the bank had sent one statement a day.

A weekly export after a holiday, a camt.053 with several days of entries, an MT940 with several statement
periods: the parse stage keeps the whole file's rows (``Statement.parquet_key``: overlap marks, re-parse,
lineage) and also stores each covered day's rows as their own object (``Statement.days``). The repository
lists the statement under the business date of every covered day, and the run of that date reads only that
day's rows (``Statement.days_read_by``), exactly as it would read that day's statement.

Which day a row belongs to: its **booking date** (``booked_at`` in the project's time zone), the date a
bank files an entry under and the date the statement's own period and balances follow; the value date may
lie before or after it. A row without a booking time belongs to the day the file is filed under. Every row
is in exactly one day's object, in file order; the file's non-data lines (headers, footers) are counted
once, on the day the file is filed under, so the runs of the covered days account for every row read once.

Only bank statements are split: a channel bill or an ERP export is one day's file whatever the booking
times of its rows (an order booked before midnight in the next day's export is carried over, not moved).
"""

from __future__ import annotations

from datetime import date, timedelta

import numpy as np
import pyarrow as pa

from recon.domain import Source

from .overlap import booked_dates


def splits_by_day(source: Source, period: tuple[date, date]) -> bool:
    """Whether a statement of ``source`` covering ``period`` is stored per covered day."""
    return source is Source.BANK and period[0] < period[1]


def covered_days(period: tuple[date, date]) -> list[date]:
    """Every day from the first to the last covered, in order (a day without entries is covered too)."""
    start, end = period
    return [start + timedelta(days=n) for n in range((end - start).days + 1)]


def rows_by_day(
    table: pa.Table, timezone: str, period: tuple[date, date], filed_day: date
) -> list[tuple[date, pa.Table]]:
    """The table's rows per covered day (booking date; none: ``filed_day``), each in file order.

    Every row is in exactly one day's table: the tables add up to the whole."""
    days = covered_days(period)
    start = days[0]
    if table.num_rows:
        booked = booked_dates(table, timezone).cast(pa.int32())  # days since the epoch
        filed = (filed_day - date(1970, 1, 1)).days
        offsets = (
            np.asarray(booked.fill_null(filed).to_numpy(zero_copy_only=False), np.int64)
            - (start - date(1970, 1, 1)).days
        )
    else:
        offsets = np.zeros(0, np.int64)
    if offsets.size and (offsets.min() < 0 or offsets.max() >= len(days)):
        raise ValueError(f"a row is booked outside the statement's period {period[0]}..{period[1]}")
    order = np.argsort(offsets, kind="stable")  # stable: each day's rows keep the file's order
    counts = np.bincount(offsets, minlength=len(days))
    ordered = table.take(pa.array(order)) if table.num_rows else table
    parts: list[tuple[date, pa.Table]] = []
    at = 0
    for day, n in zip(days, counts.tolist(), strict=True):
        parts.append((day, ordered.slice(at, n)))
        at += n
    return parts


__all__ = ["covered_days", "rows_by_day", "splits_by_day"]
