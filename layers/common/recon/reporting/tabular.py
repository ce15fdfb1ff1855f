"""The per-row exports, written column-wise from the result tables (resolve stage; needs pyarrow):

* ``matches.csv``: one row per member of a match group (columns ``export.MATCH_COLUMNS``), by group id then
  input order;
* ``filtered.csv``: one row per filtered row, naming the rule (``export.FILTERED_COLUMNS``);
* ``open_items.csv``: one row per open item with its age (``export.OPEN_ITEM_COLUMNS``).

CSV as Python's csv module writes it (fields quoted only when needed, ``\\n`` line ends), UTF-8.
"""

from __future__ import annotations

import io
from datetime import date

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from recon.matching.text import money

from .export import FILTERED_COLUMNS, MATCH_COLUMNS, OPEN_ITEM_COLUMNS


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
    text = [f"{v:.4f}".rstrip("0").rstrip(".") or "0" for v in rounded.tolist()]
    return pa.array(text, pa.string())


def _csv(table: pa.Table) -> bytes:
    sink = io.BytesIO()
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


def matches_csv(placements: pa.Table) -> bytes:
    rows = _where(placements, "matched")
    positions = pa.array(np.arange(rows.num_rows))
    rows = rows.append_column("_pos", positions)
    rows = rows.take(pc.sort_indices(rows, sort_keys=[("group_id", "ascending"), ("_pos", "ascending")]))
    table = pa.table(
        [
            _text(rows["group_id"]),
            _text(rows["rule"]),
            _text(rows["source"]),
            _text(rows["txn_id"]),
            amounts(rows["amount_minor"], rows["currency"]),
            _text(rows["currency"]),
            _text(rows["status"]),
            _confidence(rows["confidence"]),
            _text(rows["match_pass"]),
        ],
        names=MATCH_COLUMNS,
    )
    return _csv(table)


def filtered_csv(placements: pa.Table) -> bytes:
    rows = _where(placements, "filtered")
    table = pa.table(
        [
            *_row_identity(rows),
            _text(rows["rule"]),
        ],
        names=FILTERED_COLUMNS,
    )
    return _csv(table)


def open_items_csv(placements: pa.Table, business_date: date) -> bytes:
    rows = _where(placements, "open")
    first_seen = rows["first_seen"].cast(pa.int32()).to_numpy(zero_copy_only=False)
    today = (business_date - date(1970, 1, 1)).days
    table = pa.table(
        [
            *_row_identity(rows),
            _text(rows["first_seen"]),
            pa.array(today - np.asarray(first_seen, np.int64)).cast(pa.string()),
        ],
        names=OPEN_ITEM_COLUMNS,
    )
    return _csv(table)
