"""The matching engine: a project's rules, in priority order, over a day's rows as an Arrow table.

Phases (the same functions serve a single run and a partitioned one, so both give the same bytes):

1. *prepare* — rows an earlier statement already delivered (``overlap_of``) are filtered by rule
   ``overlapping-statement``; rows the parser flagged ``in_file_duplicate`` are DUPLICATE cases; then the
   project's leading filter and mapping rules;
2. *keyed* — the key rules that follow (sharing the first key rule's key fields), with filter and mapping
   rules between them that do not rewrite a key field. Rows that share a key share a partition, so this
   phase runs per partition (``recon.matching.partition``);
3. *residual* — every other rule (window, settlement, subset-sum, later key rules...) on what is left, then
   the residue: repeated ids, open items (carry-over) and one case per remaining row.

Every input row ends in exactly one place: a match group, a case, the filtered set (naming the rule) or the
open items. Output tables are sorted by content (placements keep input order), so the same rows always
give byte-identical results.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from typing import Any, Final

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from recon.domain import (
    FilterRule,
    KeyMatchRule,
    MappingRule,
    Project,
    Rule,
    SettlementRule,
    SubsetSumRule,
    WindowMatchRule,
)

from .conditions import apply_filter, apply_mapping
from .context import DUPLICATE_RULE, OVERLAP_RULE, Context
from .frame import ANY, BOOL, I64, STATUSES, TXN_TYPES, Frame, labels_of, plain, take_rows
from .keyed import duplicates, key_match
from .ledger import CASE, FILTERED, UNPLACED, Ledger
from .residue import (
    await_carried,
    await_statements,
    carry_over,
    classify,
    order_known,
    refunds_on_other_orders,
    residual_duplicates,
)
from .settlement import Batch, Settled, settle
from .subset import subset_sum
from .window import window_match

PREFILTER: Final = "_prefilter"  # working-table column: the filter rule that took the row, or DUPLICATE_MARK
ORDER_KNOWN: Final = "_order_known"
DUPLICATE_MARK: Final = "\x00duplicate"
_LOW_CARDINALITY: Final = ("rule", "match_pass", "status", "currency", "type", "severity", "explanation")


@dataclass(frozen=True)
class Plan:
    """The project's rules split into the three phases."""

    prepare: list[FilterRule | MappingRule]
    keyed: list[Rule]
    residual: list[Rule]
    keys: tuple[str, ...] | None  # the key fields of the keyed phase (the partition key's first field)


def plan(project: Project) -> Plan:
    rules = [r for r in project.rules if r.enabled]
    i = 0
    while i < len(rules) and isinstance(rules[i], FilterRule | MappingRule):
        i += 1
    prepare = [r for r in rules[:i] if isinstance(r, FilterRule | MappingRule)]
    keyed: list[Rule] = []
    keys: tuple[str, ...] | None = None
    j = i
    while j < len(rules):
        rule = rules[j]
        if isinstance(rule, KeyMatchRule):
            if keys is None:
                keys = tuple(rule.keys)
            elif tuple(rule.keys) != keys:
                break
        elif isinstance(rule, MappingRule):
            if keys is not None and rule.field in keys:
                break
        elif not isinstance(rule, FilterRule):
            break
        keyed.append(rule)
        j += 1
    if keys is None:  # no key rule up front: nothing to partition by
        return Plan(prepare, [], rules[i:], None)
    return Plan(prepare, keyed, rules[j:], keys)


@dataclass
class MatchResult:
    """Placements (one row per input row, input order), match groups and cases; ``open_rows`` are the
    input rows left open (carry-over)."""

    placements: pa.Table
    groups: pa.Table
    cases: pa.Table
    business_date: date
    open_rows: I64 = field(default_factory=lambda: np.zeros(0, np.int64))
    open_batches: dict[str, list[Batch]] = field(default_factory=dict)
    # Batches decided lately, remembered by the next runs (``Batch.decided``): not open items.
    decided_batches: dict[str, list[Batch]] = field(default_factory=dict)

    def next_batches(self) -> dict[str, list[Batch]]:
        """What the next run carries (``match_table``'s ``carried_batches``): the open batches, then the
        decided ones, by rule."""
        rules = sorted({*self.open_batches, *self.decided_batches})
        return {r: [*self.open_batches.get(r, []), *self.decided_batches.get(r, [])] for r in rules}

    def write(self, name: str, sink: Any) -> None:
        """Write one result table (``placements``, ``groups`` or ``cases``) as Parquet (zstd).

        Dictionary encoding only for low-cardinality columns and no column statistics: on 2M rows this
        halves the write time, and nothing reads these files by predicate.
        """
        table: pa.Table = getattr(self, name)
        low = [f.name for f in table.schema if pa.types.is_dictionary(f.type) or f.name in _LOW_CARDINALITY]
        pq.write_table(
            table.combine_chunks(), sink, compression="zstd", use_dictionary=low, write_statistics=False
        )

    def counts(self) -> dict[str, int]:
        """Rows per disposition (matched, case, filtered, open)."""
        counted = pc.value_counts(self.placements["disposition"].cast(pa.string()))
        return {str(c["values"]): int(c["counts"]) for c in counted.to_pylist()}


# --- phases ------------------------------------------------------------------------------------------
def _apply(
    frame: Frame,
    ledger: Ledger,
    ctx: Context,
    rule: Rule,
    *,
    partials: dict[str, list[Batch]],
    settled: Settled,
    carried: dict[str, list[Batch]],
) -> None:
    if isinstance(rule, FilterRule):
        apply_filter(frame, ledger, rule)
    elif isinstance(rule, MappingRule):
        apply_mapping(frame, ledger, rule)
    elif isinstance(rule, KeyMatchRule):
        key_match(frame, ledger, rule, ctx)
    elif isinstance(rule, WindowMatchRule):
        window_match(frame, ledger, rule, ctx)
    elif isinstance(rule, SettlementRule):
        settle(
            frame,
            ledger,
            rule,
            ctx,
            partial=partials.get(rule.name, []),
            settled=settled,
            carried=carried.get(rule.name, []),
        )
    elif isinstance(rule, SubsetSumRule):
        subset_sum(frame, ledger, rule, ctx)


def _in_file_duplicates(frame: Frame) -> tuple[I64, I64]:
    """Rows the parser flagged as repeats within their file, and the first occurrence of each (same
    statement, same dedupe key, earliest position)."""
    flagged = frame.optional_bool("in_file_duplicate")
    if not flagged.any():
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    key_column = "dedupe_key" if "dedupe_key" in frame.table.column_names else "txn_id"
    statement = (
        frame.table["statement_id"]
        if "statement_id" in frame.table.column_names
        else frame.table["account_id"]
    )
    return in_file_duplicates(flagged, statement, frame.text(key_column), frame.position)


def in_file_duplicates(
    flagged: BOOL,
    statement_column: pa.Array | pa.ChunkedArray,
    keys: pa.Array | pa.ChunkedArray,
    position: ANY,
) -> tuple[I64, I64]:
    """``_in_file_duplicates`` over bare columns (a statement object's, before it is matched)."""
    if not flagged.any():
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    statement, _ = labels_of(statement_column)
    rows = np.flatnonzero(flagged)
    row_keys = take_rows(keys, rows).to_pylist()
    # Flagged rows are few: look their keys up in the whole column (exact values, nulls as nulls)
    # rather than hashing every row's key.
    wanted = pa.array(row_keys, pa.string())
    shares_key = np.asarray(
        pc.fill_null(pc.is_in(keys, value_set=wanted, skip_nulls=False), False).to_numpy(
            zero_copy_only=False
        ),
        bool,
    )
    hits = np.flatnonzero(shares_key & np.isin(statement, np.unique(statement[rows])) & ~flagged)
    hits = hits[np.argsort(position[hits], kind="stable")]
    hit_keys = take_rows(keys, hits).to_pylist()
    first_of: dict[tuple[int, str], int] = {}
    for row, key in zip(hits.tolist(), hit_keys, strict=True):
        first_of.setdefault((int(statement[row]), key), row)
    found, first = [], []
    for row, key in zip(rows.tolist(), row_keys, strict=True):
        original = first_of.get((int(statement[row]), key))
        if original is not None:  # else the original is not among these rows: the row is matched as any
            found.append(row)
            first.append(original)
    return np.array(found, np.int64), np.array(first, np.int64)


def prepare(frame: Frame, ledger: Ledger, ctx: Context, p: Plan, *, repeats: I64 | None = None) -> None:
    """``repeats``: the in-file duplicates among the frame's rows, found beforehand over their whole file
    (a partitioned run's plan prepares a file a slice at a time). They are only set aside as cases: the
    partition that gets them builds their DUPLICATE cases (``seed_prepared``)."""
    overlap = np.flatnonzero(frame.optional_valid("overlap_of"))
    ledger.filter_rows(overlap, OVERLAP_RULE)
    if repeats is None:
        rows, first = _in_file_duplicates(frame)
        keep = ledger.disposition[rows] == UNPLACED
        duplicates(frame, ledger, ctx, rows[keep], first[keep])
    else:
        ledger.set_aside(repeats[ledger.disposition[repeats] == UNPLACED], DUPLICATE_RULE)
    for rule in p.prepare:
        _apply(frame, ledger, ctx, rule, partials={}, settled=Settled(), carried={})


def keyed(frame: Frame, ledger: Ledger, ctx: Context, p: Plan) -> pa.Array:
    for rule in p.keyed:
        _apply(frame, ledger, ctx, rule, partials={}, settled=Settled(), carried={})
    return order_known(frame, ledger)


def residual(
    frame: Frame,
    ledger: Ledger,
    ctx: Context,
    p: Plan,
    known: pa.Array,
    *,
    partials: dict[str, list[Batch]],
    carried: dict[str, list[Batch]],
) -> Settled:
    settled = Settled()
    for rule in p.residual:
        _apply(frame, ledger, ctx, rule, partials=partials, settled=settled, carried=carried)
    residual_duplicates(frame, ledger, ctx)
    refunds_on_other_orders(frame, ledger, ctx, known)
    await_statements(frame, ledger, ctx)
    never_arrived = await_carried(frame, ledger, ctx)
    carry_over(frame, ledger, ctx.project, settled.in_flight)
    classify(frame, ledger, ctx, known, never_arrived)
    return settled


def match_table(
    project: Project,
    rows: pa.Table,
    business_date: date,
    *,
    carried_batches: dict[str, list[Batch]] | None = None,
    unavailable: frozenset[str] = frozenset(),
) -> MatchResult:
    """Place every row: match groups, cases, filtered, open. ``rows`` follows recon.tables' schema (by
    column name; optional columns may be absent, extra columns are ignored). ``carried_batches``: the
    settlement batches earlier runs left open or decided lately, by rule (``MatchResult.next_batches()`` of
    the day before).
    ``unavailable``: accounts whose statement for the day is missing (quarantined or not delivered); rows
    that would need it wait (``AWAITING_RULE``) instead of becoming MISSING cases."""
    frame = Frame(rows, business_date, project.timezone)
    ledger = Ledger(frame)
    ctx = Context(project, unavailable)
    p = plan(project)
    prepare(frame, ledger, ctx, p)
    known = keyed(frame, ledger, ctx, p)
    frame.release_derived()
    settled = residual(frame, ledger, ctx, p, known, partials={}, carried=carried_batches or {})
    frame.release_passes()
    placements, groups, cases = ledger.finish()
    return MatchResult(
        placements,
        groups,
        cases,
        business_date,
        np.flatnonzero(ledger.disposition == 4),
        settled.open_batches,
        settled.decided,
    )


# --- the working table handed between phases (partitioned runs) ------------------------------------------
def working_table(frame: Frame, ledger: Ledger, rows: I64, *, known: pa.Array | None = None) -> pa.Table:
    """``rows`` of the frame with the working values the rules produced so far (mapped fields, signs,
    statuses), their global position, and how the prepare phase placed them."""
    take = pa.array(np.asarray(rows, np.int64))
    table = frame.table.take(take)
    replace: dict[str, pa.Array] = {}
    for name, values in frame._text.items():
        if name in table.column_names or name in ("order_ref", "refund_ref", "counterparty", "memo"):
            replace[name] = values.take(take)
    replace["amount_minor"] = pa.array(frame.amount[rows], pa.int64())
    replace["fee_minor"] = pa.array(frame.fee[rows], pa.int64())
    replace["net_minor"] = pa.array(frame.net[rows], pa.int64())
    replace["status"] = pa.array(STATUSES).take(pa.array(frame.status[rows].astype(np.int32)))
    replace["txn_type"] = pa.array(TXN_TYPES).take(pa.array(frame.txn_type[rows].astype(np.int32)))
    replace["first_seen"] = pa.array(frame.first_seen[rows].astype(np.int32), pa.int32()).cast(pa.date32())
    replace["_pos"] = pa.array(frame.position[rows], pa.int64())
    prefilter = np.where(ledger.disposition[rows] == FILTERED, ledger.rule[rows], -1)
    names = pa.array(ledger.rules or [""], pa.string())
    mark = pc.if_else(
        pa.array(prefilter >= 0), names.take(pa.array(np.maximum(prefilter, 0))), pa.scalar(None, pa.string())
    )
    dup = ledger.disposition[rows] == CASE
    replace[PREFILTER] = pc.if_else(pa.array(dup), pa.scalar(DUPLICATE_MARK), mark)
    if known is not None:
        replace[ORDER_KNOWN] = known.take(take)
    for name, values in replace.items():
        if name in table.column_names:
            table = table.set_column(table.column_names.index(name), name, values)
        else:
            table = table.append_column(name, values)
    return table


def seed_prepared(frame: Frame, ledger: Ledger, ctx: Context) -> None:
    """Re-create the prepare phase's placements from a working table's marks."""
    if PREFILTER not in frame.table.column_names:
        return
    marks = plain(frame.table[PREFILTER]).to_pylist()
    filtered: dict[str, list[int]] = {}
    dups: list[int] = []
    for row, mark in enumerate(marks):
        if mark == DUPLICATE_MARK:
            dups.append(row)
        elif mark is not None:
            filtered.setdefault(mark, []).append(row)
    for name in sorted(filtered):
        ledger.filter_rows(np.array(filtered[name], np.int64), name)
    if dups:
        rows, first = _in_file_duplicates(frame)
        keep = np.isin(rows, np.array(dups, np.int64))
        duplicates(frame, ledger, ctx, rows[keep], first[keep])
