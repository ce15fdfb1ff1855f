"""Scale-out: the same engine over hash partitions of a large day (a Step Functions Distributed Map).

::

    parts = partition_inputs(project, rows, business_date, n)        # 1 task: prepare + split
    shares = [match_partition(project, part, business_date) for part in parts]   # n tasks, in parallel
    rest = match_residual(project, [s.residual for s in shares], [s.batches for s in shares], business_date)
    result = merge_results([*shares, rest], business_date)          # == match_table(project, rows, ...)

* ``partition_inputs`` runs the prepare phase on the whole day (filters and mappings are cheap and
  column-wise), then splits the working rows by a hash of the keyed phase's first key field (the merchant
  order number, so a payment, its refunds and any repeat share a partition). Rows without that key are
  split by a hash of (account, source id), so repeats stay together.
* ``match_partition`` runs the keyed phase on one partition and returns its placements, groups and cases,
  the rows it left (the residual, small) and its share of the settlement batches' totals.
* ``match_residual`` runs the residual phase (window, settlement, subset-sum, residue) on all partitions'
  residual rows together.
* ``merge_results`` concatenates the shares in the single run's canonical order.

Every table crossing a task boundary is plain Arrow (Parquet in S3 between Lambda tasks). A test shows the
merged result equals ``match_table`` byte for byte.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from recon.domain import Project, SettlementRule

from .context import Context
from .engine import (
    ORDER_KNOWN,
    MatchResult,
    keyed,
    plan,
    prepare,
    residual,
    seed_prepared,
    working_table,
)
from .frame import ANY, Frame, plain
from .hashing import hash_words
from .ledger import FILTERED, UNPLACED, Ledger, canonical_dictionaries
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
    if n < 1:
        raise ValueError("at least one partition")
    frame = Frame(rows, business_date, project.timezone)
    ledger = Ledger(frame)
    p = plan(project)
    prepare(frame, ledger, Context(project), p)
    first_key = p.keys[0] if p.keys else "txn_id"
    words = frame.words(first_key)
    keyed_rows = words.lengths > 0
    h = hash_words(words, seed=11)
    fallback = hash_words(frame.words("txn_id"), seed=12) ^ frame.account.astype(np.uint64)
    bucket = (np.where(keyed_rows, h, fallback) % np.uint64(n)).astype(np.int64)
    del words, keyed_rows, h, fallback
    frame.release_derived()
    # Built in day order (a sequential gather, twice as fast as in partition order); each partition then
    # takes its rows from it, ascending as a filter would give them.
    table = working_table(frame, ledger, np.arange(frame.n))
    del frame, ledger
    order = np.argsort(bucket, kind="stable")
    bounds = np.searchsorted(bucket[order], np.arange(n + 1))
    for k in range(n):
        yield table.take(pa.array(order[bounds[k] : bounds[k + 1]]))


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
) -> Share:
    """The residual phase on the rows every partition left (and the batches earlier runs left open)."""
    table = pa.concat_tables(residuals, promote_options="default") if residuals else None
    if table is None:
        raise ValueError("no residual tables")
    table = table.take(pc.sort_indices(table["_pos"]))
    frame = Frame(table, business_date, project.timezone)
    ledger = Ledger(frame)
    ctx = Context(project)
    partials: dict[str, list[Batch]] = {}
    for share in batches:
        for rule, parts in share.items():
            partials.setdefault(rule, []).extend(parts)
    known = frame.optional_bool(ORDER_KNOWN)
    settled = residual(
        frame, ledger, ctx, plan(project), known, partials=partials, carried=carried_batches or {}
    )
    placements, groups, cases = ledger.finish(partial=True)
    return Share(placements, groups, cases, open_batches=settled.open_batches)


def merge_results(shares: list[Share], business_date: date) -> MatchResult:
    """Concatenate task results into the single run's tables (same order, same bytes)."""
    groups, group_new = _merge_sorted([s.groups for s in shares], [("group_id", "ascending")])
    cases, case_new = _merge_sorted(
        [s.cases for s in shares], [("type", "ascending"), ("case_id", "ascending")]
    )
    parts = []
    for k, share in enumerate(shares):
        p = share.placements
        for column, new in (("group", group_new[k]), ("case", case_new[k])):
            local = np.asarray(pc.fill_null(p[column], 0).to_numpy(zero_copy_only=False), np.int64)
            remapped = pa.array(
                new[local].astype(np.int32) if len(new) else local.astype(np.int32),
                mask=~np.asarray(pc.is_valid(p[column]).to_numpy(zero_copy_only=False), bool),
            )
            p = p.set_column(p.column_names.index(column), column, remapped)
        parts.append(p)
    placements = pa.concat_tables(parts, promote_options="permissive")
    placements = placements.take(pc.sort_indices(placements["_pos"]))
    open_rows = np.flatnonzero(
        np.asarray(
            pc.equal(placements["disposition"].cast(pa.string()), "open").to_numpy(zero_copy_only=False), bool
        )
    )
    placements = canonical_dictionaries(placements.drop_columns(["_pos"]))
    open_batches = {k: v for s in shares for k, v in (s.open_batches or {}).items()}
    return MatchResult(
        _compact(placements),
        _compact(canonical_dictionaries(groups)),
        _compact(canonical_dictionaries(cases)),
        business_date,
        open_rows,
        open_batches,
    )


def _merge_sorted(tables: list[pa.Table], keys: list[tuple[str, str]]) -> tuple[pa.Table, list[ANY]]:
    """Concatenate and sort; per input table, the new row of each of its rows."""
    merged = pa.concat_tables(tables)
    sortable = pa.table({name: merged[name].cast(pa.string()) for name, _ in keys})
    order = (
        np.asarray(pc.sort_indices(sortable, sort_keys=keys).to_numpy(), np.int64)
        if merged.num_rows
        else np.zeros(0, np.int64)
    )
    inverse = np.empty(len(order), dtype=np.int64)
    inverse[order] = np.arange(len(order))
    offsets = np.cumsum([0] + [t.num_rows for t in tables])
    return merged.take(pa.array(order)), [inverse[offsets[k] : offsets[k + 1]] for k in range(len(tables))]


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
    "split_inputs",
]
