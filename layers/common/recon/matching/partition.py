"""Scale-out: the same engine over hash partitions of a large day (a Step Functions Distributed Map).

::

    parts = partition_inputs(project, rows, business_date, n)        # 1 task: prepare + split
    shares = [match_partition(project, part, business_date) for part in parts]   # n tasks, in parallel
    rest = match_residual(project, [s.residual for s in shares], [s.batches for s in shares], business_date)
    result = merge_results([*shares, rest], business_date)          # == match_table(project, rows, ...)

* ``partition_inputs`` runs the prepare phase on the day (filters and mappings are cheap and column-wise),
  then splits the working rows by a hash of the keyed phase's first key field (the merchant order number,
  so a payment, its refunds and any repeat share a partition). Rows without that key are split by a hash
  of (account, source id), so repeats stay together. ``prepare_slice`` does the same for part of the day
  (the match stage's plan task reads the day an object, and a slice of an object, at a time): the prepare
  phase is row by row except in-file duplicates, which the caller finds over the whole file first, and
  each hash is of the row's own bytes, so a slice gets the partitions the whole day would.
* ``match_partition`` runs the keyed phase on one partition and returns its placements, groups and cases,
  the rows it left (the residual, small) and its share of the settlement batches' totals.
* ``match_residual`` runs the residual phase (window, settlement, subset-sum, residue) on all partitions'
  residual rows together.
* ``merge_results`` merges the shares in the single run's canonical order (placements scattered to their
  day positions, one share at a time).

Every table crossing a task boundary is plain Arrow (Parquet in S3 between Lambda tasks). A test shows the
merged result equals ``match_table`` byte for byte.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from recon.domain import Project, SettlementRule

from .context import Context
from .engine import (
    ORDER_KNOWN,
    MatchResult,
    Plan,
    keyed,
    plan,
    prepare,
    residual,
    seed_prepared,
    working_table,
)
from .frame import ANY, I64, Frame, plain
from .hashing import content_order, hash_words, id_hashes
from .ledger import FILTERED, UNPLACED, Ledger, canonical_dictionaries, dictionary
from .settlement import Batch, batch_totals, batches_from_json, batches_to_json


@dataclass
class Share:
    """One task's part of the result."""

    placements: pa.Table
    groups: pa.Table
    cases: pa.Table
    residual: pa.Table | None = None
    batches: dict[str, list[Batch]] | None = None
    open_batches: dict[str, list[Batch]] | None = None
    decided_batches: dict[str, list[Batch]] | None = None

    def batches_json(self) -> str:
        """The batch totals as JSON (to pass between tasks)."""
        return batches_to_json(self.batches or {})


def partition_inputs(project: Project, rows: pa.Table, business_date: date, n: int) -> list[pa.Table]:
    """Prepare the day and split it into ``n`` working tables (each carries its rows' global ``_pos``)."""
    return list(split_inputs(project, rows, business_date, n))


def split_inputs(project: Project, rows: pa.Table, business_date: date, n: int) -> Iterator[pa.Table]:
    """``partition_inputs`` one partition at a time.

    A caller that stores each partition before taking the next holds the day twice (rows + working table),
    not three times: at 5M rows the plan task needs 10 GiB otherwise.
    """
    for _, part in prepare_slice(project, rows, business_date, n):
        yield part


def prepare_slice(
    project: Project, rows: pa.Table, business_date: date, n: int, *, repeats: I64 | None = None
) -> Iterator[tuple[int, pa.Table]]:
    """The prepare phase on some of the day's rows, split into ``n`` partitions: (partition, its working
    rows), ascending. The prepare phase is row by row but for in-file duplicates, so a day may be prepared
    a slice at a time: ``rows`` then carry their day position (``_pos``) and ``repeats`` are the in-file
    duplicates among them, found beforehand over their whole file (``engine.in_file_duplicates``).
    """
    if n < 1:
        raise ValueError("at least one partition")
    frame = Frame(rows, business_date, project.timezone)
    ledger = Ledger(frame)
    p = plan(project)
    prepare(frame, ledger, Context(project), p, repeats=repeats)
    bucket = _buckets(frame, p, n)
    frame.release_derived()
    # Built in day order (a sequential gather, twice as fast as in partition order); each partition then
    # takes its rows from it, ascending as a filter would give them.
    table = working_table(frame, ledger, np.arange(frame.n))
    del frame, ledger
    order = np.argsort(bucket, kind="stable")
    bounds = np.searchsorted(bucket[order], np.arange(n + 1))
    for k in range(n):
        yield k, table.take(pa.array(order[bounds[k] : bounds[k + 1]]))


def _buckets(frame: Frame, p: Plan, n: int) -> I64:
    """Each row's partition: a hash of the keyed phase's first key field, or for rows without it of
    (txn_id, account). Each hash is of the row's own values (``hash_words``), so a slice of the day
    gets the buckets the whole day would."""
    first_key = p.keys[0] if p.keys else "txn_id"
    words = frame.words(first_key)
    keyed_rows = words.lengths > 0
    h = hash_words(words, seed=11)
    fallback = hash_words(frame.words("txn_id"), seed=12) ^ frame.account_hash(seed=13)
    return (np.where(keyed_rows, h, fallback) % np.uint64(n)).astype(np.int64)


def match_partition(project: Project, part: pa.Table, business_date: date) -> Share:
    """The keyed phase on one partition."""
    frame = Frame(part, business_date, project.timezone)
    ledger = Ledger(frame)
    ctx = Context(project)
    p = plan(project)
    seed_prepared(frame, ledger, ctx)
    known = keyed(frame, ledger, ctx, p)
    placements, groups, cases = ledger.finish(partial=True)
    left = np.flatnonzero(ledger.disposition == UNPLACED)
    counted = (ledger.disposition != UNPLACED) & (ledger.disposition != FILTERED)
    batches: dict[str, list[Batch]] = {}
    for rule in p.residual:
        if isinstance(rule, SettlementRule):
            # Rows placed here count in their batch; the residual phase adds the rows it still holds.
            from .settlement import batch_rows

            rows = batch_rows(frame, ledger, rule) & counted
            batches[rule.name] = batch_totals(frame, rows, rule)
    rest = working_table(frame, ledger, left, known=known).drop_columns(["_prefilter"])
    return Share(placements, groups, cases, rest, batches)


def match_residual(
    project: Project,
    residuals: list[pa.Table],
    batches: list[dict[str, list[Batch]]],
    business_date: date,
    *,
    carried_batches: dict[str, list[Batch]] | None = None,
    unavailable: frozenset[str] = frozenset(),
) -> Share:
    """The residual phase on the rows every partition left (and the batches earlier runs left open).
    ``unavailable``: as for ``match_table`` (only the residual phase concludes that a row is missing)."""
    table = pa.concat_tables(residuals, promote_options="default") if residuals else None
    if table is None:
        raise ValueError("no residual tables")
    table = table.take(pc.sort_indices(table["_pos"]))
    frame = Frame(table, business_date, project.timezone)
    ledger = Ledger(frame)
    ctx = Context(project, unavailable)
    partials: dict[str, list[Batch]] = {}
    for share in batches:
        for rule, parts in share.items():
            partials.setdefault(rule, []).extend(parts)
    known = (
        plain(frame.table[ORDER_KNOWN]).cast(pa.string())
        if ORDER_KNOWN in frame.table.column_names
        else pa.nulls(frame.n, pa.string())
    )
    settled = residual(
        frame, ledger, ctx, plan(project), known, partials=partials, carried=carried_batches or {}
    )
    placements, groups, cases = ledger.finish(partial=True)
    return Share(
        placements, groups, cases, open_batches=settled.open_batches, decided_batches=settled.decided
    )


def merge_results(
    shares: list[Share],
    business_date: date,
    *,
    placements: Callable[[int], pa.Table] | None = None,
    rows: int | None = None,
) -> MatchResult:
    """Concatenate task results into the single run's tables (same order, same bytes).

    Consumes the shares: each share's tables are released as they are merged, and the merged groups and
    cases are built a column at a time. ``placements``: share ``k``'s placements, read only when they are
    merged (the shares then need none; ``rows``: the day's rows): the residual task never holds every
    share's placements beside the merged ones."""
    groups, group_new = _merge_sorted(_consume(shares, "groups"), "group_id", "mg", by_type=False)
    cases, case_new = _merge_sorted(_consume(shares, "cases"), "case_id", "case", by_type=True)
    if placements is None:
        held = _consume(shares, "placements")
        rows = sum(p.num_rows for p in held)
        held.reverse()

        def placements(_: int) -> pa.Table:
            return held.pop()

    if rows is None:
        raise ValueError("rows: the day's rows, when the placements are read share by share")
    merged = _scatter(((placements(k), group_new[k], case_new[k]) for k in range(len(shares))), rows)
    open_rows = np.flatnonzero(
        np.asarray(
            pc.equal(merged["disposition"].cast(pa.string()), "open").to_numpy(zero_copy_only=False), bool
        )
    )
    open_batches = {k: v for s in shares for k, v in (s.open_batches or {}).items()}
    decided = {k: v for s in shares for k, v in (s.decided_batches or {}).items()}
    return MatchResult(merged, groups, cases, business_date, open_rows, open_batches, decided)


def _scatter(shares: Iterator[tuple[pa.Table, I64, I64]], n: int) -> pa.Table:
    """The shares' placements (with ``_pos``) as one table in day order, group and case references
    renumbered into the merged tables: each share's values go straight to their rows (positions are a
    permutation of 0..n-1), one share at a time. Dictionary columns come out as ``canonical_dictionaries``
    makes them (the labels in use, sorted)."""
    schema: pa.Schema | None = None
    values: dict[str, ANY] = {}
    valid: dict[str, ANY] = {}
    labels: dict[str, dict[str, int]] = {}
    placed = np.zeros(n, bool)
    for table, group_new, case_new in shares:
        if schema is None:
            schema = table.schema.remove(table.schema.get_field_index("_pos"))
            for f in schema:
                coded = pa.types.is_dictionary(f.type)
                values[f.name] = np.full(n, -1, np.int32) if coded else np.zeros(n, _numpy_type(f.type))
                valid[f.name] = np.ones(0, bool) if coded else np.zeros(n, bool)
                labels[f.name] = {}
        position = np.asarray(table["_pos"].to_numpy(), np.int64)
        if placed[position].any():
            raise AssertionError("two shares place the same row")
        placed[position] = True
        for f in schema:
            column = table[f.name]
            if pa.types.is_dictionary(f.type):
                at = 0
                for chunk in column.chunks:
                    vocabulary = labels[f.name]
                    lookup = np.array(
                        [vocabulary.setdefault(str(v), len(vocabulary)) for v in chunk.dictionary.to_pylist()]
                        + [-1],
                        np.int32,
                    )
                    codes = np.asarray(
                        pc.fill_null(chunk.indices, -1).to_numpy(zero_copy_only=False), np.int64
                    )
                    values[f.name][position[at : at + len(chunk)]] = lookup[codes]
                    at += len(chunk)
                continue
            storage = column.cast(pa.int32()) if pa.types.is_date32(f.type) else column
            got = np.asarray(pc.fill_null(storage, 0).to_numpy(zero_copy_only=False))
            if f.name == "group" and len(group_new):
                got = group_new[got]
            elif f.name == "case" and len(case_new):
                got = case_new[got]
            values[f.name][position] = got
            valid[f.name][position] = np.asarray(pc.is_valid(column).to_numpy(zero_copy_only=False), bool)
        del table, column
    if schema is None or not placed.all():
        raise AssertionError("the shares do not place every row")
    columns = []
    for f in schema:
        data = values.pop(f.name)
        if pa.types.is_dictionary(f.type):
            ordered = sorted(labels[f.name].items(), key=lambda item: item[1])
            columns.append(dictionary(data, [label for label, _ in ordered]))
            continue
        mask = ~valid[f.name] if not valid[f.name].all() else None
        if pa.types.is_date32(f.type):
            columns.append(pa.array(data, pa.int32(), mask=mask).cast(pa.date32()))
        else:
            columns.append(pa.array(data, f.type, mask=mask))
    return pa.Table.from_arrays(columns, schema=schema)


def _numpy_type(t: pa.DataType) -> np.dtype[Any]:
    return np.dtype(np.int32) if pa.types.is_date32(t) else np.dtype(t.to_pandas_dtype())


def _consume(shares: list[Share], name: str) -> list[pa.Table]:
    """The shares' ``name`` tables, each share left with an empty one (nothing else holds them)."""
    tables = []
    for share in shares:
        table: pa.Table = getattr(share, name)
        tables.append(table)
        setattr(share, name, table.schema.empty_table())
    return tables


def _taken(holder: list[pa.Table], order: ANY) -> pa.Table:
    """``canonical_dictionaries(table.take(order))``, compacted, a column at a time: each source column is
    released once taken (``holder`` holds the only reference to the table, and is emptied)."""
    table = holder.pop()
    indices = pa.array(order)
    schema, columns = table.schema, []
    for i in range(table.num_columns):
        column = table.column(0).take(indices)
        table = table.remove_column(0)
        one = canonical_dictionaries(pa.Table.from_arrays([column], schema=pa.schema([schema.field(i)])))
        columns.append(_compact(one).column(0))
    return pa.Table.from_arrays(columns, schema=schema)


def _merge_sorted(
    tables: list[pa.Table], id_column: str, prefix: str, *, by_type: bool
) -> tuple[pa.Table, list[ANY]]:
    """Concatenate and sort by content as the ledger does (consuming ``tables``); per input table, the new
    row of each of its rows."""
    offsets = np.cumsum([0] + [t.num_rows for t in tables])
    holder = [pa.concat_tables(tables)]
    del tables[:]
    table = holder[0]
    hashes = id_hashes(table[id_column], prefix)
    if hashes is None:
        raise ValueError(
            f"a share's {id_column} is not of the form the ledger writes ({prefix}_<16 hex digits>)"
        )
    types = table["type"].cast(pa.string()).to_numpy(zero_copy_only=False).astype(str) if by_type else None
    order = content_order(hashes, types)
    del table
    inverse = np.empty(len(order), dtype=np.int64)
    inverse[order] = np.arange(len(order))
    return _taken(holder, order), [inverse[offsets[k] : offsets[k + 1]] for k in range(len(offsets) - 1)]


def _compact(table: pa.Table) -> pa.Table:
    return table.combine_chunks()


__all__ = [
    "Share",
    "batches_from_json",
    "match_partition",
    "match_residual",
    "merge_results",
    "partition_inputs",
    "plain",
    "prepare_slice",
    "split_inputs",
]
