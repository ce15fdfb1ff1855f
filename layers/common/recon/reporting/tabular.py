"""The per-row exports, written column-wise from the result tables (resolve stage; needs pyarrow):

* ``matches.csv``: one row per member of a match group (columns ``export.MATCH_COLUMNS``), by group id then
  input order, each with its group's settled batches, explanation and evidence (as ``export.evidence_text``
  words the group's ``MatchGroup.evidence``, built here column-wise for every group);
* ``filtered.csv``: one row per filtered row, naming the rule, and the statement and row it repeats or the
  rule's description (``export.FILTERED_COLUMNS``);
* ``open_items.csv``: one row per open item — settlement batches left waiting, then open rows — with its
  age (``export.OPEN_ITEM_COLUMNS``).

CSV as Python's csv module writes it (fields quoted only when needed, ``\\n`` line ends), UTF-8 with a byte
order mark (``export.CSV_BOM``: Excel on a zh-CN Windows reads a CSV without one as GBK).
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterator, Mapping, Sequence
from datetime import date

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from recon.domain import Evidence, OpenItem
from recon.durations import human_durations
from recon.matching.text import money
from recon.money import format_amount

from .export import CSV_BOM, FILTERED_COLUMNS, MATCH_COLUMNS, OPEN_ITEM_COLUMNS, evidence_line


def _text(column: pa.ChunkedArray | pa.Array) -> pa.Array:
    if isinstance(column, pa.ChunkedArray):
        column = column.combine_chunks()
    return column.cast(pa.string())


def amounts(minor: pa.ChunkedArray | pa.Array, currency: pa.ChunkedArray | pa.Array) -> pa.Array:
    """Exact decimals (``-10.00``) of integer minor units in each row's currency."""
    values = np.asarray(pc.fill_null(minor, 0).to_numpy(), dtype=np.int64)
    currencies = _text(currency)
    vocabulary = sorted(v for v in pc.unique(currencies).to_pylist() if v is not None)
    codes = np.asarray(
        pc.fill_null(pc.index_in(currencies, value_set=pa.array(vocabulary, pa.string())), 0).to_numpy()
    )
    return money(values, codes, vocabulary or ["CNY"])


def _confidence(values: pa.ChunkedArray) -> pa.Array:
    rounded = np.round(np.asarray(pc.fill_null(values, 0.0).to_numpy(zero_copy_only=False), float), 4)
    # A few scores, worded once each; distinct by their bits (-0.0 is worded "-0", as it always was).
    distinct, inverse = np.unique(rounded.view(np.int64), return_inverse=True)
    text = [f"{v:.4f}".rstrip("0").rstrip(".") or "0" for v in distinct.view(np.float64).tolist()]
    return pa.array(text, pa.string()).take(pa.array(inverse.reshape(-1)))


Masks = Sequence[tuple[str, str]]  # (account number, its mask): ``masking.Masker.pairs``


def _masked(column: pa.Array, masks: Masks) -> pa.Array:
    """Every account number in a text column replaced by its mask (a dictionary column: in its values)."""
    if not masks:
        return column
    if pa.types.is_dictionary(column.type):
        return pa.DictionaryArray.from_arrays(column.indices, _masked(column.dictionary, masks), safe=False)
    if not pa.types.is_string(column.type):
        return column
    for number, mask in masks:
        if pc.any(pc.match_substring(column, number)).as_py():  # finding is cheaper than replacing
            column = pc.replace_substring(column, number, mask)
    return column


# Columns we word ourselves from numbers, enums and hashes: no account number can be in them.
_OWN_WORDS = frozenset(
    {"group_id", "source", "amount", "currency", "status", "confidence", "pass", "age_days"}
)


def _masked_table(table: pa.Table, masks: Masks, already: frozenset[str] = frozenset()) -> pa.Table:
    if not masks:
        return table
    return pa.table(
        [
            c if name in _OWN_WORDS or name in already else _masked(c.combine_chunks(), masks)
            for name, c in zip(table.column_names, table.columns, strict=True)
        ],
        names=table.column_names,
    )


def _csv(table: pa.Table, masks: Masks = ()) -> bytes:
    table = _masked_table(table, masks)
    sink = io.BytesIO()
    sink.write(CSV_BOM)
    pacsv.write_csv(table, sink, pacsv.WriteOptions(quoting_style="needed", include_header=True))
    return sink.getvalue()


def _where(placements: pa.Table, disposition: str) -> pa.Table:
    return placements.filter(pc.equal(placements["disposition"].cast(pa.string()), disposition))


def _row_identity(rows: pa.Table) -> list[pa.Array]:
    """The leading columns of filtered.csv and open_items.csv: which row, and its amount."""
    return [
        _text(rows["source"]),
        _text(rows["account_id"]),
        _text(rows["txn_id"]),
        amounts(rows["amount_minor"], rows["currency"]),
        _text(rows["currency"]),
    ]


def _formatted(minor: pa.ChunkedArray | pa.Array, currency: pa.Array) -> pa.Array:
    """``format_amount`` of each value (``4,692.51``), computed once per distinct (currency, value)."""
    values = np.asarray(pc.fill_null(minor, 0).to_numpy(zero_copy_only=False), dtype=np.int64)
    currencies = np.asarray(pc.fill_null(currency, "CNY").to_numpy(zero_copy_only=False), dtype=object)
    out = np.empty(len(values), dtype=object)
    for code in sorted(set(currencies.tolist())):
        sel = np.flatnonzero(currencies == code)
        distinct, inverse = np.unique(values[sel], return_inverse=True)
        out[sel] = np.array([format_amount(int(v), code) for v in distinct.tolist()], dtype=object)[inverse]
    return pa.array(out.tolist(), pa.string())


def _lit(text: str, n: int) -> pa.Array:
    return pa.array([text] * n, pa.string())


def group_evidence(groups: pa.Table) -> pa.Array:
    """Per group row: its evidence on one line, the same words ``evidence_text`` gives the group's
    ``MatchGroup.evidence`` (key, amount, booking-time gap, fee, then the rule's own evidence)."""
    n = groups.num_rows
    if n == 0:
        return pa.array([], pa.string())
    currency = _text(groups["currency"])
    ne = _lit(" ≠ ", n)  # the fee's
    key = _text(groups["key"])
    has_key = pc.fill_null(pc.greater(pc.utf8_length(key), 0), False)
    key_part = pc.if_else(has_key, pc.binary_join_element_wise(_lit("key: ", n), key, ""), None)
    left, right = groups["left_amount_minor"], groups["right_amount_minor"]
    amount_part = pc.binary_join_element_wise(_lit("amount: ", n), _formatted(left, currency), "")
    differ = pc.fill_null(pc.not_equal(left, right), False)
    if pc.any(differ).as_py():  # few groups: word only their right side and difference
        idx = pa.array(np.flatnonzero(np.asarray(differ.to_numpy(zero_copy_only=False), dtype=bool)))
        l_, r_, c_ = left.take(idx), right.take(idx), currency.take(idx)
        m = len(idx)
        words = pc.binary_join_element_wise(
            _lit(" ≠ ", m),
            _formatted(r_, c_),
            _lit(" (Δ ", m),
            _formatted(pc.subtract(r_, l_), c_),
            _lit(")", m),
            "",
        )
        suffix = pc.replace_with_mask(_lit("", n), differ, words)
        amount_part = pc.binary_join_element_wise(amount_part, suffix, "")
    gap = groups["time_delta_s"]
    distinct = pc.unique(pc.drop_null(gap)).to_pylist()
    words = pc.take(
        human_durations(np.array(distinct, np.int64)),
        pc.index_in(gap, value_set=pa.array(distinct, pa.int64())),
    )
    time_part = pc.binary_join_element_wise(_lit("booked_at: Δ ", n), words, "")
    fee = groups["fee_delta_minor"]
    fee_part = pc.if_else(
        pc.is_valid(fee),
        pc.binary_join_element_wise(
            _lit("fee: schedule", n),
            pc.if_else(pc.fill_null(pc.equal(fee, 0), False), _lit(" ~ ", n), ne),
            _lit("stated (Δ ", n),
            _formatted(fee, currency),
            _lit(")", n),
            "",
        ),
        None,
    )
    extra = [
        "; ".join(evidence_line(Evidence(**e)) for e in json.loads(text)) if text else None
        for text in groups["evidence"].to_pylist()
    ]
    return pc.binary_join_element_wise(
        key_part, amount_part, time_part, fee_part, pa.array(extra, pa.string()), "; ", null_handling="skip"
    )


# matches.csv is written this many rows at a time: its text is never held whole (1.1 GB at 1M x 1M rows).
MATCH_ROWS_PER_CHUNK = 200_000


def matches_csv(placements: pa.Table, groups: pa.Table | None = None, masks: Masks = ()) -> bytes:
    """``matches_csv_chunks`` joined (small results; the resolve stage streams the chunks)."""
    return b"".join(matches_csv_chunks(placements, groups, masks))


def matches_csv_chunks(
    placements: pa.Table,
    groups: pa.Table | None = None,
    masks: Masks = (),
    *,
    rows_per_chunk: int = MATCH_ROWS_PER_CHUNK,
) -> Iterator[bytes]:
    """matches.csv in pieces whose concatenation is the file: the header, then ``rows_per_chunk`` rows at a
    time in the file's order (a group's rows may end one piece and begin the next).

    ``groups``: the run's groups table (the rows' ``group`` column indexes it); without it the group
    columns (settles, explanation, evidence) are empty. The group columns are built and masked once per
    group, a chunk's groups at a time."""
    # Only the columns written: the other columns of the matched rows (most of the day) are not copied.
    needed = ["group_id", "rule", "source", "txn_id", "amount_minor", "currency", "status", "confidence"]
    needed += ["match_pass", *(["group"] if groups is not None and groups.num_rows else [])]
    rows = _where(placements.select([*needed, "disposition"]), "matched")
    order = pc.sort_indices(
        pa.table({"group_id": rows["group_id"], "_pos": pa.array(np.arange(rows.num_rows))}),
        sort_keys=[("group_id", "ascending"), ("_pos", "ascending")],
    )
    index = pc.cast(rows["group"], pa.int32()).combine_chunks() if "group" in rows.column_names else None
    schema = pa.schema([(name, pa.string()) for name in MATCH_COLUMNS])
    sink = io.BytesIO()
    sink.write(CSV_BOM)  # the file's first bytes, before the header
    options = pacsv.WriteOptions(quoting_style="needed", include_header=True)
    with pacsv.CSVWriter(sink, schema, write_options=options) as writer:
        yield _drained(sink)  # the header
        for start in range(0, rows.num_rows, max(1, rows_per_chunk)):
            take = order.slice(start, rows_per_chunk)
            part = rows.take(take)
            n = part.num_rows
            if groups is not None and index is not None and n:
                settles, explanation, evidence = _group_columns(groups, index.take(take), masks)
            else:
                settles = explanation = evidence = _lit("", n)
            table = pa.table(
                [
                    _text(part["group_id"]),
                    _text(part["rule"]),
                    _text(part["source"]),
                    _text(part["txn_id"]),
                    amounts(part["amount_minor"], part["currency"]),
                    _text(part["currency"]),
                    _text(part["status"]),
                    _confidence(part["confidence"]),
                    _text(part["match_pass"]),
                    settles,
                    explanation,
                    evidence,
                ],
                schema=schema,
            )
            writer.write_table(_masked_table(table, masks, already=_GROUP_COLUMNS))
            yield _drained(sink)


def _group_columns(groups: pa.Table, at: pa.Array, masks: Masks) -> tuple[pa.Array, pa.Array, pa.Array]:
    """settles, explanation and evidence of the groups rows ``at`` belong to, one value per row. Built and
    masked once per group, for the groups of these rows only: a chunk's rows, in group id order, belong to
    a run of neighbouring groups (the groups table is sorted by group id)."""
    bounds = pc.min_max(at)
    if not bounds["min"].is_valid:  # no group (matched rows always have one)
        return _lit("", len(at)), _lit("", len(at)), _lit("", len(at))
    lo, hi = int(bounds["min"].as_py()), int(bounds["max"].as_py())
    near = groups.slice(lo, hi - lo + 1)
    at = pc.subtract(at, pa.scalar(lo, pa.int32()))
    texts = (_text(near["settles"]), _text(near["explanation"]), group_evidence(near))
    settles, explanation, evidence = (pc.take(_masked(_text(pc.fill_null(t, "")), masks), at) for t in texts)
    return settles, explanation, evidence


# The group columns of matches.csv: masked once per group, before they are spread over the group's rows.
_GROUP_COLUMNS = frozenset({"settles", "explanation", "evidence"})


def _drained(sink: io.BytesIO) -> bytes:
    """What was written to ``sink`` since the last call; the sink is emptied."""
    data = sink.getvalue()
    sink.seek(0)
    sink.truncate()
    return data


_IDENTITY = ["source", "account_id", "txn_id", "amount_minor", "currency", "disposition"]


def filtered_csv(
    placements: pa.Table,
    masks: Masks = (),
    *,
    descriptions: Mapping[str, str] | None = None,
    repeats: pa.Table | None = None,
) -> bytes:
    """One line per filtered row: which row, the rule, and the detail a person checks it by — ``repeats row
    N of <file>`` for a row an earlier statement already delivered, else the filter rule's description.

    ``descriptions``: rule name -> description. ``repeats``: one row per filtered row, in placement order:
    ``overlap_of`` (the file of the earlier statement the row repeats, null: none) and ``overlap_row`` (that
    statement's row number)."""
    rows = _where(placements.select([*_IDENTITY, "rule"]), "filtered")
    rule = _text(rows["rule"])
    table = pa.table(
        [
            *_row_identity(rows),
            rule,
            _filter_detail(rule, descriptions or {}, repeats),
        ],
        names=FILTERED_COLUMNS,
    )
    return _csv(table, masks)


def _filter_detail(rule: pa.Array, descriptions: Mapping[str, str], repeats: pa.Table | None) -> pa.Array:
    n = len(rule)
    names = pa.array(list(descriptions), pa.string())
    described = pa.array(list(descriptions.values()), pa.string()).take(pc.index_in(rule, value_set=names))
    detail = pc.fill_null(described, "")
    if repeats is None:
        return detail
    if repeats.num_rows != n:
        raise ValueError(f"{repeats.num_rows} overlap marks for {n} filtered rows")
    repeats_or_replaced = _lit("repeats row ", n)
    if "superseded" in repeats.column_names:  # the row a later delivery replaced (another content)
        replaced = pc.fill_null(repeats["superseded"], False)
        repeats_or_replaced = pc.if_else(replaced, _lit("superseded by row ", n), repeats_or_replaced)
    words = pc.binary_join_element_wise(
        repeats_or_replaced,
        _text(repeats["overlap_row"]),
        _lit(" of ", n),
        _text(repeats["overlap_of"]),
        "",
    )
    return pc.coalesce(words, detail)


def open_items_csv(
    placements: pa.Table, business_date: date, masks: Masks = (), batches: Sequence[OpenItem] = ()
) -> bytes:
    """The open rows, after ``batches``: the settlement batches left waiting (``resolving.waiting_batches``),
    one line each, as the report lists them."""
    rows = _where(placements.select([*_IDENTITY, "first_seen", "rule"]), "open")
    first_seen = rows["first_seen"].cast(pa.int32()).to_numpy(zero_copy_only=False)
    today = (business_date - date(1970, 1, 1)).days
    table = pa.table(
        [
            *_row_identity(rows),
            _text(rows["first_seen"]),
            pa.array(today - np.asarray(first_seen, np.int64)).cast(pa.string()),
            _text(rows["rule"]),
        ],
        names=OPEN_ITEM_COLUMNS,
    )
    if batches:
        waiting = pa.table(
            [
                pa.array([b.source.value for b in batches], pa.string()),
                pa.array([b.account_id for b in batches], pa.string()),
                pa.array([b.txn_id for b in batches], pa.string()),
                amounts(
                    pa.array([b.amount_minor for b in batches], pa.int64()),
                    pa.array([b.currency for b in batches]),
                ),
                pa.array([b.currency for b in batches], pa.string()),
                pa.array([b.first_seen.isoformat() for b in batches], pa.string()),
                pa.array([str(b.age_days) for b in batches], pa.string()),
                pa.array([b.rule for b in batches], pa.string()),
            ],
            names=OPEN_ITEM_COLUMNS,
        )
        table = pa.concat_tables([waiting, table.cast(waiting.schema)])
    return _csv(table, masks)
