"""Where every row goes: the placement state of each input row, and the match groups and cases the passes
create, accumulated column-wise and turned into the three result tables at the end.

A row is placed exactly once (placing it twice is a bug and raises). Group and case ids are content
hashes; the tables are sorted by content (groups by id, cases by type then id) and placements keep the
input order, so the same rows give byte-identical tables whatever the partitioning.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Final

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc

from .frame import BOOL, I32, I64, SOURCES, Frame, plain
from .hashing import U64, content_order, hex_ids

UNPLACED, MATCHED, CASE, FILTERED, OPEN = range(5)
DISPOSITIONS: Final = ("unplaced", "matched", "case", "filtered", "open")
AUTO, SUGGESTED = "auto", "suggested"

_DICT = pa.dictionary(pa.int32(), pa.string())

GROUP_SCHEMA = pa.schema(
    [
        pa.field("group_id", pa.string(), nullable=False),
        pa.field("rule", _DICT, nullable=False),
        pa.field("match_pass", _DICT, nullable=False),
        pa.field("status", _DICT, nullable=False),
        pa.field("confidence", pa.float64(), nullable=False),
        pa.field("members", pa.int32(), nullable=False),
        pa.field("left_members", pa.int32(), nullable=False),
        pa.field("right_members", pa.int32(), nullable=False),
        pa.field("key", pa.string()),
        pa.field("currency", _DICT, nullable=False),
        pa.field("left_amount_minor", pa.int64(), nullable=False),
        pa.field("right_amount_minor", pa.int64(), nullable=False),
        pa.field("amount_delta_minor", pa.int64(), nullable=False),
        pa.field("time_delta_s", pa.int64()),
        pa.field("fee_delta_minor", pa.int64()),
        pa.field("settles", pa.string()),
        pa.field("explanation", _DICT, nullable=False),
        pa.field("evidence", pa.string()),
    ],
    metadata={"recon.results": "groups", "recon.results_version": "1"},
)

CASE_SCHEMA = pa.schema(
    [
        pa.field("case_id", pa.string(), nullable=False),
        pa.field("type", _DICT, nullable=False),
        pa.field("rule", _DICT, nullable=False),
        pa.field("severity", _DICT, nullable=False),
        pa.field("delta_minor", pa.int64(), nullable=False),
        pa.field("currency", _DICT, nullable=False),
        pa.field("members", pa.int32(), nullable=False),
        pa.field("key", pa.string()),
        pa.field("left_amount_minor", pa.int64()),
        pa.field("right_amount_minor", pa.int64()),
        pa.field("time_delta_s", pa.int64()),
        pa.field("left_status", _DICT),
        pa.field("right_status", _DICT),
        pa.field("counterparts", pa.string()),
        pa.field("aggregate", pa.string()),
        pa.field("reason", pa.string(), nullable=False),
        pa.field("evidence", pa.string()),
        pa.field("closes", pa.string()),  # JSON [{case_id, business_date}]: earlier runs' cases it explains
    ],
    metadata={"recon.results": "cases", "recon.results_version": "1"},
)

# One row per input row, in input order (row i describes input row i). The row's identity (txn_uid, txn_id)
# stays in the immutable normalized inputs; ``with_identity`` joins it back for readers. Groups and cases
# are referenced by their row in the groups / cases table (writing 2M id strings cost 0.19 s, the int32
# indices 0.04 s; see docs/matching.md).
PLACEMENT_SCHEMA = pa.schema(
    [
        pa.field("source", _DICT, nullable=False),
        pa.field("account_id", _DICT, nullable=False),
        pa.field("amount_minor", pa.int64(), nullable=False),
        pa.field("currency", _DICT, nullable=False),
        pa.field("disposition", _DICT, nullable=False),
        pa.field("group", pa.int32()),
        pa.field("case", pa.int32()),
        pa.field("rule", _DICT),
        pa.field("match_pass", _DICT),
        pa.field("status", _DICT),
        pa.field("confidence", pa.float64()),
        pa.field("first_seen", pa.date32(), nullable=False),
    ],
    metadata={"recon.results": "placements", "recon.results_version": "1"},
)


@dataclass
class _Batch:
    columns: dict[str, Any]
    hashes: U64


@dataclass
class Ledger:
    frame: Frame
    disposition: npt.NDArray[np.int8] = field(init=False)
    ref: npt.NDArray[np.int32] = field(init=False)  # the group's / case's ordinal
    rule: npt.NDArray[np.int32] = field(init=False)
    rules: list[str] = field(default_factory=list)
    _groups: list[_Batch] = field(default_factory=list)
    _cases: list[_Batch] = field(default_factory=list)
    _n_groups: int = 0
    _n_cases: int = 0
    _placed: int = 0

    def __post_init__(self) -> None:
        n = self.frame.n
        self.disposition = np.zeros(n, dtype=np.int8)
        self.ref = np.full(n, -1, dtype=np.int32)
        self.rule = np.full(n, -1, dtype=np.int32)

    # --- state ------------------------------------------------------------------------------------
    def unplaced(self) -> BOOL:
        return np.asarray(self.disposition == UNPLACED)

    def rule_code(self, name: str) -> int:
        if name not in self.rules:
            self.rules.append(name)
        return self.rules.index(name)

    def _rule_codes(self, value: Any, n: int) -> npt.NDArray[np.int32]:
        if isinstance(value, str):
            return np.full(n, self.rule_code(value), dtype=np.int32)
        names = _as_list(value, n)
        lookup = {name: self.rule_code(name) for name in sorted(set(names))}
        return np.array([lookup[name] for name in names], dtype=np.int32)

    def _place(self, rows: I64, disposition: int, ref: I64 | int, rule: npt.NDArray[np.int32] | int) -> None:
        rows = np.asarray(rows, dtype=np.int64)
        if len(rows) == 0:
            return
        before = self._placed
        if (self.disposition[rows] != UNPLACED).any():
            raise AssertionError("a row was placed twice")  # a bug, never data
        self.disposition[rows] = disposition
        self._placed = int(np.count_nonzero(self.disposition))
        if self._placed != before + len(rows):
            raise AssertionError("a row was placed twice")  # the same row twice in one call
        self.ref[rows] = ref
        self.rule[rows] = rule

    def filter_rows(self, rows: I64, rule: str) -> None:
        self._place(rows, FILTERED, -1, self.rule_code(rule))

    def set_aside(self, rows: I64, rule: str) -> None:
        """Place rows as cases without building the cases (a partitioned run's plan: the partition that
        gets the rows builds them)."""
        self._place(rows, CASE, -1, self.rule_code(rule))

    def open_rows(self, rows: I64, rule_codes: npt.NDArray[np.int32]) -> None:
        self._place(rows, OPEN, -1, rule_codes)

    def add_groups(self, columns: dict[str, Any], hashes: U64, rows: I64, owner: I64) -> None:
        """Match groups of one pass: ``columns`` per group (GROUP_SCHEMA names but group_id), members as
        (row, index of its group in this batch)."""
        n = len(hashes)
        if n == 0:
            return
        self._place(rows, MATCHED, self._n_groups + owner, self._rule_codes(columns["rule"], n)[owner])
        self._groups.append(_Batch(columns, hashes))
        self._n_groups += n

    def add_cases(self, columns: dict[str, Any], hashes: U64, rows: I64, owner: I64) -> None:
        n = len(hashes)
        if n == 0:
            return
        self._place(rows, CASE, self._n_cases + owner, self._rule_codes(columns["rule"], n)[owner])
        self._cases.append(_Batch(columns, hashes))
        self._n_cases += n

    # --- results ----------------------------------------------------------------------------------
    def finish(self, *, partial: bool = False) -> tuple[pa.Table, pa.Table, pa.Table]:
        """(placements, groups, cases). ``partial``: placements of the placed rows only, with ``_pos``
        (a partition's share of a partitioned run)."""
        if not partial and (self.disposition == UNPLACED).any():
            raise AssertionError(f"{int((self.disposition == UNPLACED).sum())} row(s) left unplaced")
        groups, group_rank = _table(self._groups, GROUP_SCHEMA, "group_id", "mg", by_type=False)
        cases, case_rank = _table(self._cases, CASE_SCHEMA, "case_id", "case", by_type=True)
        # The tables hold sorted copies: release the batches before the placements (the peak at 1M).
        self._groups.clear()
        self._cases.clear()
        placements = self._placements(groups, group_rank, cases, case_rank)
        if partial:
            placed = np.flatnonzero(self.disposition != UNPLACED)
            placements = placements.take(pa.array(placed)).append_column(
                "_pos", pa.array(self.frame.position[placed], pa.int64())
            )
        return placements, groups, cases

    def _placements(self, groups: pa.Table, group_rank: I32, cases: pa.Table, case_rank: I32) -> pa.Table:
        f = self.frame
        disp = self.disposition
        matched = disp == MATCHED
        in_case = disp == CASE
        g_idx = (
            group_rank[np.where(matched, self.ref, 0)] if len(group_rank) else np.zeros(len(disp), np.int32)
        )
        c_idx = case_rank[np.where(in_case, self.ref, 0)] if len(case_rank) else np.zeros(len(disp), np.int32)
        if len(groups):
            suggested = np.asarray(
                pc.equal(groups["status"], SUGGESTED).to_numpy(zero_copy_only=False), dtype=np.int32
            )
            conf = groups["confidence"].to_numpy()
            pass_codes = np.asarray(
                pc.index_in(groups["match_pass"], value_set=pa.array(PASSES)).to_numpy(zero_copy_only=False),
                dtype=np.int32,
            )
        else:
            suggested = np.zeros(1, np.int32)
            conf = np.zeros(1)
            pass_codes = np.zeros(1, np.int32)
        return pa.table(
            {
                "source": dictionary(f.source, SOURCES),
                "account_id": dictionary(f.account, f.accounts),
                "amount_minor": pa.array(f.amount, pa.int64()),
                "currency": dictionary(f.currency, f.currencies),
                "disposition": dictionary(disp, DISPOSITIONS),
                "group": pa.array(g_idx, pa.int32(), mask=~matched),
                "case": pa.array(c_idx, pa.int32(), mask=~in_case),
                "rule": dictionary(self.rule, self.rules),
                "match_pass": dictionary(np.where(matched, pass_codes[g_idx], -1), PASSES),
                "status": dictionary(np.where(matched, suggested[g_idx], -1), (AUTO, SUGGESTED)),
                "confidence": pa.array(conf[g_idx], pa.float64(), mask=~matched),
                "first_seen": pa.array(f.first_seen, pa.int32()).cast(pa.date32()),
            },
            schema=PLACEMENT_SCHEMA,
        )


PASSES: Final = ("exact_key", "key_tolerance", "window", "settlement", "subset_sum")


def dictionary(
    codes: npt.NDArray[np.integer[Any]], vocabulary: tuple[str, ...] | list[str]
) -> pa.DictionaryArray:
    """A dictionary column holding exactly the labels in use, sorted (negative codes are nulls): the same
    rows give the same bytes however they were assembled."""
    codes = np.asarray(codes)
    if len(codes) and int(codes.max()) >= len(vocabulary):
        raise IndexError(f"code {int(codes.max())} outside a vocabulary of {len(vocabulary)}")
    missing = codes < 0
    nulls = bool(missing.any())
    used = _used(codes, len(vocabulary))
    labels = [vocabulary[int(u)] for u in used]
    order = sorted(range(len(labels)), key=lambda i: labels[i])
    if (
        len(used) == len(vocabulary)
        and order == list(range(len(order)))
        and list(used) == list(range(len(used)))
    ):
        indices = codes.astype(np.int32, copy=False)  # already canonical: every label used, sorted
    else:
        remap = np.zeros(len(vocabulary) + 1, dtype=np.int32)
        for new, i in enumerate(order):
            remap[int(used[i]) + 1] = new
        shifted = codes.astype(np.int32)  # nulls (-1) become 0
        shifted += 1
        indices = remap[shifted]
    mask = missing if nulls else None
    return pa.DictionaryArray.from_arrays(
        pa.array(indices, pa.int32(), mask=mask), pa.array([labels[i] for i in order], pa.string())
    )


def _used(codes: npt.NDArray[np.integer[Any]], size: int) -> npt.NDArray[np.int64]:
    """The codes in [0, size) that occur, ascending. A small vocabulary (the usual: sources, dispositions,
    rules, passes) is probed value by value — a pass over the codes per value, a quarter of the time of
    counting every code with np.bincount on 2M rows."""
    if size <= 32:
        return np.array([v for v in range(size) if (codes == v).any()], dtype=np.int64)
    shifted = codes.astype(np.int32)
    shifted += 1
    return np.flatnonzero(np.bincount(shifted, minlength=size + 1)[1:])


def canonical_dictionaries(table: pa.Table) -> pa.Table:
    """Re-encode every dictionary column with exactly its used labels, sorted, in one chunk (works on the
    dictionaries and indices; values are never decoded)."""
    for i, f in enumerate(table.schema):
        if not pa.types.is_dictionary(f.type):
            continue
        column = table.column(i).unify_dictionaries()
        chunks = column.chunks
        vocabulary = [str(v) for v in chunks[0].dictionary.to_pylist()] if chunks else []
        codes = (
            np.concatenate(
                [
                    np.asarray(pc.fill_null(c.indices, -1).to_numpy(zero_copy_only=False), np.int64)
                    for c in chunks
                ]
            )
            if chunks
            else np.zeros(0, np.int64)
        )
        table = table.set_column(i, f, dictionary(codes, vocabulary))
    return table


def _as_list(value: Any, n: int) -> list[str]:
    if isinstance(value, str):
        return [value] * n
    if isinstance(value, pa.Array | pa.ChunkedArray):
        return [str(v) for v in value.to_pylist()]
    return [str(v) for v in value]


def _column(value: Any, n: int, typ: pa.DataType) -> pa.Array:
    if pa.types.is_dictionary(typ):
        if isinstance(value, str):
            return pa.DictionaryArray.from_arrays(pa.array(np.zeros(n, np.int32)), pa.array([value]))
        if value is None:
            return pa.DictionaryArray.from_arrays(pa.nulls(n, pa.int32()), pa.array([], pa.string()))
        if isinstance(value, pa.ChunkedArray):
            value = value.combine_chunks()
        if not isinstance(value, pa.Array):
            value = pa.array(value if isinstance(value, list) else value.tolist(), pa.string())
        if not pa.types.is_dictionary(value.type):
            value = pc.dictionary_encode(value.cast(pa.string()))
        return value.cast(typ)
    if isinstance(value, pa.ChunkedArray):
        value = value.combine_chunks()
    if isinstance(value, pa.Array):
        return value if value.type == typ else value.cast(typ)
    if isinstance(value, np.ndarray):
        return pa.array(value, typ)
    if value is None:
        return pa.nulls(n, typ)
    if isinstance(value, list):
        return pa.array(value, typ)
    return pa.array([value] * n, typ) if n else pa.array([], typ)


def _table(
    batches: list[_Batch], schema: pa.Schema, id_column: str, prefix: str, *, by_type: bool
) -> tuple[pa.Table, I32]:
    """Concatenate batches into one table sorted by content; returns the table and, per ordinal (the
    order groups were added in), its row in the sorted table. Consumes the batches' columns: they are
    gathered and sorted one at a time, so only one column is ever held twice."""
    if not batches:
        return schema.empty_table(), np.zeros(0, np.int32)
    sizes = [len(b.hashes) for b in batches]

    def gathered(f: pa.Field) -> pa.ChunkedArray:
        parts = [_column(b.columns.pop(f.name, None), n, f.type) for b, n in zip(batches, sizes, strict=True)]
        return pa.chunked_array(parts, f.type)

    hashes = np.concatenate([b.hashes for b in batches])
    done: dict[str, pa.ChunkedArray] = {}
    if by_type:
        done["type"] = gathered(schema.field("type"))
        types = done["type"].cast(pa.string()).to_numpy(zero_copy_only=False).astype(str)
        order = content_order(hashes, types)
    else:
        order = content_order(hashes)
    sorted_hashes = np.sort(hashes) if by_type else hashes[order]
    if (sorted_hashes[1:] == sorted_hashes[:-1]).any():
        raise AssertionError(f"two {prefix} ids collide (identical defining content)")
    rank = np.empty(len(order), dtype=np.int32)
    rank[order] = np.arange(len(order), dtype=np.int32)
    take = None if np.array_equal(order, np.arange(len(order))) else pa.array(order)
    # Ids are rendered in the final order (cheaper than rendering then moving a million strings).
    columns = [hex_ids(prefix, hashes[order])]
    for f in schema:
        if f.name != id_column:
            column = done.pop(f.name) if f.name in done else gathered(f)
            columns.append(column if take is None else column.take(take))
    return canonical_dictionaries(pa.table(columns, names=schema.names)).cast(schema), rank


def with_identity(placements: pa.Table, identity: pa.Table, groups: pa.Table, cases: pa.Table) -> pa.Table:
    """Placements with each row's ``txn_uid`` and ``txn_id`` (``identity``: the input rows, same order) and
    its ``group_id`` / ``case_id`` — what readers (exports, review) want, assembled after the fact."""
    if identity.num_rows != placements.num_rows:
        raise ValueError(f"{identity.num_rows} input rows for {placements.num_rows} placements")

    def ids(table: pa.Table, column: str, index: pa.ChunkedArray) -> pa.Array:
        if table.num_rows == 0:
            return pa.nulls(len(index), pa.string())
        return plain(table[column]).take(plain(index))

    out = placements
    out = out.add_column(0, "txn_uid", plain(identity["txn_uid"]))
    out = out.add_column(3, "txn_id", plain(identity["txn_id"]))
    out = out.append_column("group_id", ids(groups, "group_id", placements["group"]))
    return out.append_column("case_id", ids(cases, "case_id", placements["case"]))
