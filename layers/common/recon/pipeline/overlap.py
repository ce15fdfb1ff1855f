"""Cross-statement dedupe: rows a newly parsed statement repeats from earlier statements of the same account.

Banks and channels re-send rows: a statement re-issued for an overlapping period, an intraday file followed
by the end-of-day one, a monthly export over daily ones. Such a row is kept (the file's row accounting stays
whole) and marked: ``overlap_of`` names the earlier statement that first delivered it and ``overlap_row``
that statement's row number. The match stage accounts a marked row as *filtered by rule*
``overlapping-statement``, so the money is counted once.

A row repeats an earlier one when

* both carry the same profile dedupe key (column ``dedupe_key``; rows without one are never marked),
* it is the n-th row with that key in the new file and the earlier statements hold at least n original rows
  with the key (occurrences are paired in order, so two genuine equal rows on the same day are not folded
  into one), and
* its booked date (in the project's time zone) lies inside the period the earlier statement covers.

"Original" rows of an earlier statement are its rows that were not themselves marked as overlaps, so a
mark always points to the statement that delivered the row first. Everything here is vectorised (Arrow and
numpy): a 1M-row statement is never turned into Python objects.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc

from recon.tables import STAGE_FIELDS

OVERLAP_OF, OVERLAP_ROW = (f.name for f in STAGE_FIELDS)  # the columns this module fills
DEDUPE_KEY = "dedupe_key"
IN_FILE_DUPLICATE = "in_file_duplicate"

#: Columns read from an earlier statement's Parquet to find its original rows.
EARLIER_COLUMNS = (DEDUPE_KEY, "row_number", OVERLAP_OF)


@dataclass(frozen=True)
class EarlierStatement:
    """The rows of an earlier statement of the account that later statements may repeat."""

    statement_id: str
    period_start: date
    period_end: date
    rows: pa.Table  # dedupe_key, row_number and (when present) overlap_of


def booked_dates(table: pa.Table, timezone: str) -> pa.Array:
    """The local booking date of every row (``booked_at`` is UTC)."""
    booked = table.column("booked_at").combine_chunks()
    local = pc.local_timestamp(booked.cast(pa.timestamp("us", tz=timezone)))
    return local.cast(pa.date32())


def period_of(table: pa.Table, timezone: str, stated: date | None, fallback: date) -> tuple[date, date]:
    """First and last day a statement covers: its booked dates and the date it states for itself."""
    days: list[date] = [stated] if stated is not None else []
    if table.num_rows:
        bounds = pc.min_max(booked_dates(table, timezone)).as_py()
        days += [d for d in (bounds["min"], bounds["max"]) if d is not None]
    if not days:
        days = [fallback]
    return min(days), max(days)


def count_true(table: pa.Table, column: str) -> int:
    """How many rows have a true ``column`` (0 when the table has no such column)."""
    if column not in table.column_names or table.num_rows == 0:
        return 0
    return int(pc.sum(pc.fill_null(table.column(column), False)).as_py() or 0)


def count_marked(table: pa.Table) -> int:
    """Rows marked as repeats of an earlier statement."""
    if OVERLAP_OF not in table.column_names:
        return 0
    return int(table.num_rows - table.column(OVERLAP_OF).null_count)


Ints = npt.NDArray[np.int64]


def _occurrences(codes: Ints) -> Ints:
    """For each position, how many earlier positions hold the same code (0 for the first one)."""
    if codes.size == 0:
        return np.zeros(0, dtype=np.int64)
    order = np.argsort(codes, kind="stable")
    ordered = codes[order]
    starts = np.r_[0, np.flatnonzero(ordered[1:] != ordered[:-1]) + 1]
    group_start = np.repeat(starts, np.diff(np.r_[starts, ordered.size]))
    rank = np.empty(codes.size, dtype=np.int64)
    rank[order] = np.arange(codes.size, dtype=np.int64) - group_start
    return rank


def _originals(earlier: Sequence[EarlierStatement]) -> tuple[pa.Array, Ints, Ints]:
    """Keys, statement index and row number of every original row, earlier statements first."""
    keys: list[pa.Array] = []
    owners: list[Ints] = []
    rows: list[Ints] = []
    for index, statement in enumerate(earlier):
        table = statement.rows
        if DEDUPE_KEY not in table.column_names or table.num_rows == 0:
            continue
        keep = pc.is_valid(table.column(DEDUPE_KEY))
        if OVERLAP_OF in table.column_names:
            keep = pc.and_(keep, pc.is_null(table.column(OVERLAP_OF)))
        kept = table.filter(keep)
        if kept.num_rows == 0:
            continue
        keys.append(kept.column(DEDUPE_KEY).combine_chunks().cast(pa.string()))
        owners.append(np.full(kept.num_rows, index, dtype=np.int64))
        rows.append(kept.column("row_number").to_numpy().astype(np.int64))
    if not keys:
        return pa.array([], pa.string()), np.zeros(0, np.int64), np.zeros(0, np.int64)
    return pa.concat_arrays(keys), np.concatenate(owners), np.concatenate(rows)


def mark_overlaps(table: pa.Table, earlier: Sequence[EarlierStatement], timezone: str) -> pa.Table:
    """``table`` with ``overlap_of`` / ``overlap_row`` set for the rows the earlier statements delivered.

    ``earlier`` must be in the order the statements were first ingested (the first one owns a row).
    Existing marks are replaced: the result depends only on the inputs (a re-parse recomputes them).
    """
    n = table.num_rows
    owner_of = np.full(n, -1, dtype=np.int64)  # index into ``earlier`` of the statement a row repeats
    row_of = np.zeros(n, dtype=np.int64)
    if n and DEDUPE_KEY in table.column_names and earlier:
        orig_keys, orig_owner, orig_row = _originals(earlier)
        new_keys = table.column(DEDUPE_KEY).combine_chunks().cast(pa.string())
        if len(orig_keys) and new_keys.null_count < n:
            # One dictionary over both sides: equal keys get equal integer codes.
            encoded = pa.chunked_array([orig_keys, new_keys]).dictionary_encode().combine_chunks()
            codes = pc.fill_null(encoded.indices, -1).to_numpy().astype(np.int64)
            orig_codes, new_codes = codes[: len(orig_keys)], codes[len(orig_keys) :]
            valid = ~np.asarray(new_keys.is_null().to_numpy(zero_copy_only=False), dtype=bool)
            # Pair the k-th new row of a key with the k-th original row of that key.
            new_pos = np.flatnonzero(valid)
            new_occ = _occurrences(new_codes[new_pos])
            orig_occ = _occurrences(orig_codes)
            width = np.int64(max(int(orig_occ.max(initial=0)), int(new_occ.max(initial=0))) + 1)
            orig_pair = orig_codes * width + orig_occ
            new_pair = new_codes[new_pos] * width + new_occ
            hit = pc.fill_null(pc.index_in(pa.array(new_pair), value_set=pa.array(orig_pair)), -1)
            hit = hit.to_numpy().astype(np.int64)
            found = hit >= 0
            candidates = new_pos[found]
            originals = hit[found]
            owners = orig_owner[originals]
            # The repeated row must fall inside the period of the statement that delivered it first.
            days = booked_dates(table, timezone).to_numpy(zero_copy_only=False)[candidates]
            starts = np.array([np.datetime64(e.period_start, "D") for e in earlier])[owners]
            ends = np.array([np.datetime64(e.period_end, "D") for e in earlier])[owners]
            inside = (days >= starts) & (days <= ends)
            chosen = candidates[inside]
            owner_of[chosen] = owners[inside]
            row_of[chosen] = orig_row[originals[inside]]
    unmarked = owner_of < 0
    ids = pa.array([e.statement_id for e in earlier], pa.string())
    indices = pa.array(np.where(unmarked, 0, owner_of).astype(np.int32), mask=unmarked)
    overlap_of = pa.DictionaryArray.from_arrays(indices, ids).cast(pa.string())
    overlap_row = pa.array(row_of.astype(np.int32), type=pa.int32(), mask=unmarked)
    return _with_column(_with_column(table, OVERLAP_OF, overlap_of), OVERLAP_ROW, overlap_row)


def _with_column(table: pa.Table, name: str, values: pa.Array) -> pa.Table:
    index = table.schema.get_field_index(name)
    field = pa.field(name, values.type)
    if index < 0:
        return table.append_column(field, values)
    return table.set_column(index, field, values)


__all__ = [
    "EARLIER_COLUMNS",
    "OVERLAP_OF",
    "OVERLAP_ROW",
    "EarlierStatement",
    "booked_dates",
    "count_marked",
    "count_true",
    "mark_overlaps",
    "period_of",
]
