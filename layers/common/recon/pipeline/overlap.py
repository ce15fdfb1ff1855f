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
* its booked date (in the project's time zone) lies inside the period the earlier statement covers, and
* it says the same (``CONTENT_COLUMNS``: amount, fee, net, currency, status, type, booking time, order and
  refund reference).

A paired row that says something else (an ERP export re-delivered under another name after an order's amount
or status was corrected) is not a repeat: the later delivery is the current truth. The new row stays
unmarked and counts; ``supersessions`` names the earlier row it replaces, which the parse stage marks in the
earlier statement (``mark_superseded``: ``overlap_of`` / ``overlap_row`` then point at the later statement),
so exactly one of the two is reconciled, whatever order the files are listed in ("later" is the order of
first ingestion, as for the earlier statements).

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

#: What a row says: a paired row that differs in one of these replaces the earlier row instead of repeating
#: it. Free text (memo, counterparty) is left out: formats render it differently, it moves no money.
CONTENT_COLUMNS = (
    "amount_minor",
    "fee_minor",
    "net_minor",
    "currency",
    "status",
    "txn_type",
    "booked_at",
    "order_ref",
    "refund_ref",
)

#: Columns read from an earlier statement's Parquet to find its original rows and what they say.
EARLIER_COLUMNS = (DEDUPE_KEY, "row_number", OVERLAP_OF, *CONTENT_COLUMNS)


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


def _content_columns(table: pa.Table, earlier: Sequence[EarlierStatement]) -> list[str]:
    """The content columns every side holds (an older stored object may lack some: they are not compared)."""
    tables = [table, *(e.rows for e in earlier if e.rows.num_rows)]
    return [c for c in CONTENT_COLUMNS if all(c in t.column_names for t in tables)]


def _originals(
    earlier: Sequence[EarlierStatement], content: Sequence[str]
) -> tuple[pa.Array, Ints, Ints, pa.Table]:
    """Keys, statement index, row number and content of every original row, earlier statements first."""
    keys: list[pa.Array] = []
    owners: list[Ints] = []
    rows: list[Ints] = []
    says: list[pa.Table] = []
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
        says.append(kept.select(list(content)))
    if not keys:
        empty = pa.table({c: pa.array([], pa.null()) for c in content})
        return pa.array([], pa.string()), np.zeros(0, np.int64), np.zeros(0, np.int64), empty
    return (
        pa.concat_arrays(keys),
        np.concatenate(owners),
        np.concatenate(rows),
        pa.concat_tables(says, promote_options="permissive"),
    )


def _same(left: pa.Table, right: pa.Table) -> npt.NDArray[np.bool_]:
    """Row by row, whether ``left`` and ``right`` say the same in every column (two nulls are the same)."""
    same = np.ones(left.num_rows, dtype=bool)
    for name in left.column_names:
        a, b = left.column(name).combine_chunks(), right.column(name).combine_chunks()
        if a.type != b.type:
            b = b.cast(a.type)
        equal = pc.fill_null(pc.equal(a, b), False)
        both_null = pc.and_(pc.is_null(a), pc.is_null(b))
        same &= np.asarray(pc.or_(equal, both_null).to_numpy(zero_copy_only=False), dtype=bool)
    return same


@dataclass(frozen=True)
class _Pairs:
    """New rows paired with the earlier original they share a key (and occurrence) and period with."""

    rows: Ints  # positions in the new table
    owners: Ints  # index into ``earlier`` of the statement holding the original
    originals: Ints  # row number of the original in that statement
    same: npt.NDArray[np.bool_]  # whether the new row says what the original says


def _pairs(table: pa.Table, earlier: Sequence[EarlierStatement], timezone: str) -> _Pairs:
    none = _Pairs(np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0, bool))
    n = table.num_rows
    if not (n and DEDUPE_KEY in table.column_names and earlier):
        return none
    content = _content_columns(table, earlier)
    orig_keys, orig_owner, orig_row, orig_says = _originals(earlier, content)
    new_keys = table.column(DEDUPE_KEY).combine_chunks().cast(pa.string())
    if not len(orig_keys) or new_keys.null_count == n:
        return none
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
    rows, originals = candidates[inside], originals[inside]
    same = _same(table.select(content).take(pa.array(rows)), orig_says.take(pa.array(originals)))
    return _Pairs(rows, orig_owner[originals], orig_row[originals], same)


def mark_overlaps(table: pa.Table, earlier: Sequence[EarlierStatement], timezone: str) -> pa.Table:
    """``table`` with ``overlap_of`` / ``overlap_row`` set for the rows the earlier statements delivered.

    ``earlier`` must be in the order the statements were first ingested (the first one owns a row).
    Existing marks are replaced: the result depends only on the inputs (a re-parse recomputes them). A row
    that says something else than the earlier row it pairs with is left unmarked (``supersessions``).
    """
    return _marked(table, earlier, _pairs(table, earlier, timezone))


def overlaps(
    table: pa.Table, earlier: Sequence[EarlierStatement], timezone: str
) -> tuple[pa.Table, list[Supersession]]:
    """``mark_overlaps`` and ``supersessions`` of one delivery from one pairing of its rows (the parse
    stage wants both; pairing a re-issued million-row statement twice would double the stage's cost)."""
    pairs = _pairs(table, earlier, timezone)
    return _marked(table, earlier, pairs), _superseded(table, earlier, pairs)


def _marked(table: pa.Table, earlier: Sequence[EarlierStatement], pairs: _Pairs) -> pa.Table:
    n = table.num_rows
    owner_of = np.full(n, -1, dtype=np.int64)  # index into ``earlier`` of the statement a row repeats
    row_of = np.zeros(n, dtype=np.int64)
    owner_of[pairs.rows[pairs.same]] = pairs.owners[pairs.same]
    row_of[pairs.rows[pairs.same]] = pairs.originals[pairs.same]
    unmarked = owner_of < 0
    ids = pa.array([e.statement_id for e in earlier], pa.string())
    indices = pa.array(np.where(unmarked, 0, owner_of).astype(np.int32), mask=unmarked)
    overlap_of = pa.DictionaryArray.from_arrays(indices, ids).cast(pa.string())
    overlap_row = pa.array(row_of.astype(np.int32), type=pa.int32(), mask=unmarked)
    return _with_column(_with_column(table, OVERLAP_OF, overlap_of), OVERLAP_ROW, overlap_row)


@dataclass(frozen=True)
class Supersession:
    """Rows of an earlier statement that a later delivery replaces: same dedupe key, other content."""

    statement_id: str  # the earlier statement
    rows: tuple[int, ...]  # its row numbers (``row_number``), ascending
    by_rows: tuple[int, ...]  # the row number in the later statement that replaces each


def supersessions(table: pa.Table, earlier: Sequence[EarlierStatement], timezone: str) -> list[Supersession]:
    """The earlier rows ``table`` (the later delivery) replaces, per earlier statement (in ``earlier``'s
    order). The parse stage marks them with ``mark_superseded`` so only the later row is reconciled."""
    return _superseded(table, earlier, _pairs(table, earlier, timezone))


def _superseded(table: pa.Table, earlier: Sequence[EarlierStatement], pairs: _Pairs) -> list[Supersession]:
    changed = ~pairs.same
    if not changed.any():
        return []
    by = table.column("row_number").combine_chunks().to_numpy().astype(np.int64)[pairs.rows[changed]]
    owners, rows = pairs.owners[changed], pairs.originals[changed]
    found = []
    for index in np.unique(owners).tolist():
        mine = owners == index
        order = np.argsort(rows[mine], kind="stable")
        found.append(
            Supersession(
                earlier[index].statement_id,
                tuple(rows[mine][order].tolist()),
                tuple(by[mine][order].tolist()),
            )
        )
    return found


def mark_superseded(stored: pa.Table, later_statement_id: str, superseded: Supersession) -> pa.Table:
    """``stored`` (the earlier statement's rows) with the superseded rows marked as delivered again by the
    later statement: ``overlap_of`` names it and ``overlap_row`` the row that replaces each. The match stage
    then filters the stale row (rule ``overlapping-statement``) and reconciles the later one."""
    n = stored.num_rows
    numbers = stored.column("row_number").combine_chunks().to_numpy().astype(np.int64)
    at = pc.index_in(pa.array(numbers), value_set=pa.array(np.array(superseded.rows, np.int64)))
    position = pc.fill_null(at, -1).to_numpy().astype(np.int64)
    hit = pa.array(position >= 0)
    by = np.array(superseded.by_rows, np.int64)[np.maximum(position, 0)] if superseded.rows else position
    if OVERLAP_OF in stored.column_names:
        was_of = stored.column(OVERLAP_OF).combine_chunks().cast(pa.string())
        was_row = stored.column(OVERLAP_ROW).combine_chunks().cast(pa.int32())
    else:
        was_of, was_row = pa.nulls(n, pa.string()), pa.nulls(n, pa.int32())
    overlap_of = pc.if_else(hit, pa.scalar(later_statement_id, pa.string()), was_of)
    overlap_row = pc.if_else(hit, pa.array(by.astype(np.int32), pa.int32()), was_row)
    return _with_column(_with_column(stored, OVERLAP_OF, overlap_of), OVERLAP_ROW, overlap_row)


def _with_column(table: pa.Table, name: str, values: pa.Array) -> pa.Table:
    index = table.schema.get_field_index(name)
    field = pa.field(name, values.type)
    if index < 0:
        return table.append_column(field, values)
    return table.set_column(index, field, values)


__all__ = [
    "CONTENT_COLUMNS",
    "EARLIER_COLUMNS",
    "OVERLAP_OF",
    "OVERLAP_ROW",
    "EarlierStatement",
    "Supersession",
    "booked_dates",
    "count_marked",
    "count_true",
    "mark_overlaps",
    "mark_superseded",
    "overlaps",
    "period_of",
    "supersessions",
]
