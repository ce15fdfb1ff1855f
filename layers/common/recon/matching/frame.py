"""The engine's working set: the input table as numpy arrays and Arrow text columns, selected by name.

Rows stay in input order (the caller loads statements in a canonical order); row ``i`` of every array is
row ``i`` of the input. Optional columns (schema version 2's ``in_file_duplicate``, the parse stage's
``overlap_of``, carry-over's ``first_seen``) are used when present and defaulted when absent; extra
columns are ignored.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from typing import Any, Final
from zoneinfo import ZoneInfo

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc

from .hashing import U64, Words, combine, hash_words, words_of

ANY = npt.NDArray[Any]
F64 = npt.NDArray[np.float64]
I8 = npt.NDArray[np.int8]
I32 = npt.NDArray[np.int32]
I64 = npt.NDArray[np.int64]
BOOL = npt.NDArray[np.bool_]

SOURCES: Final = ("erp", "alipay", "wechat", "bank")
ERP, ALIPAY, WECHAT, BANK = range(4)
CHANNELS: Final = (ALIPAY, WECHAT)
STATUSES: Final = ("success", "pending", "closed", "reversed", "failed")
SUCCESS = 0
TXN_TYPES: Final = ("payment", "refund", "settlement", "fee", "transfer", "adjustment", "other")
REFUND = 1

REQUIRED: Final = ("txn_uid", "source", "account_id", "txn_id", "amount_minor", "currency", "booked_at")
EPOCH = date(1970, 1, 1)


def day_number(d: date) -> int:
    return (d - EPOCH).days


def from_day_number(n: int) -> date:
    return EPOCH + timedelta(days=int(n))


def plain(column: pa.ChunkedArray | pa.Array) -> pa.Array:
    """One contiguous, non-dictionary array."""
    if isinstance(column, pa.ChunkedArray):
        column = column.combine_chunks() if column.num_chunks != 1 else column.chunk(0)
    if pa.types.is_dictionary(column.type):
        column = column.dictionary_decode()
    return column


def _encoded(column: pa.ChunkedArray | pa.Array) -> tuple[list[str | None], I32]:
    """(dictionary values, indices; null: -1) of a text column; a dictionary column is used as it is.
    Indices stay int32 (the dictionary's own width) and are read in place where a chunk has no nulls."""
    if isinstance(column, pa.Array):
        column = pa.chunked_array([column])
    if not pa.types.is_dictionary(column.type):
        column = pc.dictionary_encode(column)
    column = column.unify_dictionaries()
    chunks = column.chunks
    if not chunks:
        return [], np.zeros(0, np.int32)
    values = chunks[0].dictionary.to_pylist()
    parts = [
        np.asarray((pc.fill_null(c.indices, -1) if c.null_count else c.indices).to_numpy(), np.int32)
        for c in chunks
    ]
    return values, (np.concatenate(parts) if len(parts) > 1 else parts[0])


def codes_of(column: pa.ChunkedArray | pa.Array, vocabulary: tuple[str, ...], what: str) -> I8:
    """Codes of a low-cardinality text column in a fixed vocabulary (an unknown value is an error)."""
    values, indices = _encoded(column)
    unknown = [v for v in values if v not in vocabulary]
    if unknown or (indices < 0).any():
        raise ValueError(f"unknown {what} value(s) {unknown[:5] or [None]}")
    lookup = np.array([vocabulary.index(str(v)) for v in values] or [0], dtype=np.int8)
    return lookup[indices]


def labels_of(column: pa.ChunkedArray | pa.Array) -> tuple[I32, list[str]]:
    """Codes of an open-vocabulary low-cardinality text column (account ids, currencies), sorted labels."""
    values, indices = _encoded(column)
    labels = [("" if v is None else str(v)) for v in values]
    order = sorted(range(len(labels)), key=lambda i: labels[i])
    remap = np.zeros(len(labels) + 1, dtype=np.int32)
    for new, old in enumerate(order):
        remap[old] = new
    return remap[indices], [labels[i] for i in order]


def take_rows(column: pa.Array | pa.ChunkedArray, rows: npt.NDArray[np.integer[Any]]) -> pa.Array:
    """Values of a column at ``rows``, as one array. Taken chunk by chunk: Arrow's take from several
    string chunks concatenates them all first on every call, however few the rows."""
    rows = np.asarray(rows, dtype=np.int64)
    if not isinstance(column, pa.ChunkedArray) or column.num_chunks == 1:
        return plain(plain(column).take(pa.array(rows)))
    bounds = np.cumsum([0] + [len(c) for c in column.chunks])
    chunk_of = np.searchsorted(bounds, rows, side="right") - 1
    order = np.argsort(chunk_of, kind="stable")
    by_chunk, first = np.unique(chunk_of[order], return_index=True)
    ends = np.append(first[1:], len(order))
    parts = [
        plain(column.chunk(int(k))).take(pa.array(rows[order[a:b]] - bounds[k]))
        for k, a, b in zip(by_chunk.tolist(), first.tolist(), ends.tolist(), strict=True)
    ]
    taken = (
        plain(pa.chunked_array(parts, type=plain(column.chunk(0)).type))
        if parts
        else plain(column.chunk(0))[:0]
    )
    if np.array_equal(order, np.arange(len(order))):
        return taken
    inverse = np.empty(len(order), dtype=np.int64)
    inverse[order] = np.arange(len(order))
    return taken.take(pa.array(inverse))


def _filled(column: pa.Array, default: Any) -> pa.Array:
    """``column`` with nulls replaced; as it is when it has none (fill_null copies even then)."""
    return pc.fill_null(column, default) if column.null_count else column


def _int64(table: pa.Table, name: str, default: int = 0) -> I64:
    if name not in table.column_names:
        return np.full(table.num_rows, default, dtype=np.int64)
    return np.asarray(_filled(plain(table[name]), default).to_numpy(zero_copy_only=False), dtype=np.int64)


class Frame:
    """Columns of the rows being matched. Text columns are Arrow arrays; numbers are numpy arrays."""

    def __init__(self, table: pa.Table, business_date: date, timezone: str = "Asia/Shanghai"):
        missing = [c for c in REQUIRED if c not in table.column_names]
        if missing:
            raise ValueError(f"input rows lack column(s) {missing}")
        self.table = table
        self.n = table.num_rows
        self.business_date = business_date
        self.today = day_number(business_date)
        tz = ZoneInfo(timezone)
        end = datetime.combine(business_date + timedelta(days=1), time(0), tz)
        self.day_end_us = int(end.timestamp()) * 1_000_000
        self.source = codes_of(table["source"], SOURCES, "source")
        self.account, self.accounts = labels_of(table["account_id"])
        self.currency, self.currencies = labels_of(table["currency"])
        self.amount = _int64(table, "amount_minor")
        self.fee = _int64(table, "fee_minor")
        self.net = _int64(table, "net_minor") if "net_minor" in table.column_names else self.amount - self.fee
        booked = plain(table["booked_at"])
        if pa.types.is_timestamp(booked.type):
            booked = booked.cast(pa.timestamp("us", tz=booked.type.tz)).cast(pa.int64())
        self.booked: I64 = np.asarray(booked.to_numpy(zero_copy_only=False), dtype=np.int64)
        # Day numbers and positions fit int32: half the memory of int64 for state held for every row.
        if "value_date" in table.column_names:
            vd = plain(table["value_date"]).cast(pa.int32())
            self.value_date: I32 = np.asarray(_filled(vd, 0).to_numpy(zero_copy_only=False), np.int32)
        else:
            self.value_date = (self.booked // 86_400_000_000).astype(np.int32)
        self.status = (
            codes_of(table["status"], STATUSES, "status")
            if "status" in table.column_names
            else np.zeros(self.n, np.int8)
        )
        self.txn_type = (
            codes_of(table["txn_type"], TXN_TYPES, "txn_type")
            if "txn_type" in table.column_names
            else np.where(self.amount < 0, REFUND, 0).astype(np.int8)
        )
        if "first_seen" in table.column_names:
            fs = plain(table["first_seen"]).cast(pa.int32())
            self.first_seen: I32 = np.asarray(
                _filled(fs, self.today).to_numpy(zero_copy_only=False), dtype=np.int32
            )
        else:
            self.first_seen = np.full(self.n, self.today, dtype=np.int32)
        self.position: I32 = (
            np.asarray(plain(table["_pos"]).to_numpy(zero_copy_only=False), dtype=np.int32)
            if "_pos" in table.column_names
            else np.arange(self.n, dtype=np.int32)
        )
        self._text: dict[str, pa.Array] = {}
        self._words: dict[str, Words] = {}
        self._key_hash: dict[tuple[str, ...], U64] = {}

    # --- text columns (mapping rules may rewrite them) ------------------------------------------------
    def text(self, name: str) -> pa.Array | pa.ChunkedArray:
        """A text column (chunked as read: take() and compute functions accept it as it is)."""
        if name not in self._text:
            if name in self.table.column_names:
                column = self.table[name]
                self._text[name] = column.cast(pa.string()) if pa.types.is_dictionary(column.type) else column
            elif name == "source":
                self._text[name] = pa.array(SOURCES).take(pa.array(self.source))
            else:
                self._text[name] = pa.nulls(self.n, pa.string())
        return self._text[name]

    def take_text(self, name: str, rows: npt.NDArray[np.integer[Any]]) -> pa.Array:
        """Values of a text column at ``rows``, as one array (see ``take_rows``)."""
        return take_rows(self.text(name), rows)

    def set_text(self, name: str, values: pa.Array | pa.ChunkedArray) -> None:
        self._text[name] = values
        self._words.pop(name, None)
        for key in [k for k in self._key_hash if name in k]:
            del self._key_hash[key]

    def release_derived(self) -> None:
        """Forget the cached padded words and key hashes (rebuilt if asked for again): after the keyed
        phase the three-way day needs neither, and they hold ~80 MiB at 1M orders."""
        self._words.clear()
        self._key_hash.clear()

    def release_passes(self) -> None:
        """After the last pass: drop what building the result tables does not read (the padded words and
        key hashes, the text columns, and the numeric columns only the passes use: fees, nets, times,
        value dates, statuses, types; ≈ 65 MiB at 1M orders, held at the peak, which is in the result
        tables). The placements read source, account, amount, currency, first_seen and position."""
        self.release_derived()
        self._text.clear()
        self.table = self.table.schema.empty_table()
        self.fee = self.net = self.booked = np.zeros(0, np.int64)
        self.value_date = np.zeros(0, np.int32)
        self.status = self.txn_type = np.zeros(0, np.int8)

    def words(self, name: str) -> Words:
        if name not in self._words:
            self._words[name] = words_of(self.text(name))
        return self._words[name]

    def key_hash(self, fields: tuple[str, ...]) -> U64:
        """Hash of the tuple of key fields per row (cached until a mapping rewrites one of them)."""
        if fields not in self._key_hash:
            if len(fields) == 1:
                h = hash_words(self.words(fields[0]), seed=1)
            else:  # the first field's own hash is kept: order_known looks orders up by it
                h = self.key_hash(fields[:1])
                for name in fields[1:]:
                    h = combine(h, hash_words(self.words(name), seed=2))
            self._key_hash[fields] = h
        return self._key_hash[fields]

    def account_hash(self, seed: int) -> U64:
        """Per row, a hash of its account id: unlike the label code ``account``, which numbers the accounts
        present, the same in every task (a partition, the residual, the whole day)."""
        return hash_words(words_of(pa.array(self.accounts or [""], pa.string())), seed)[self.account]

    def has_text(self, name: str) -> BOOL:
        return np.asarray(self.words(name).lengths > 0)

    def optional_bool(self, name: str) -> BOOL:
        if name not in self.table.column_names:
            return np.zeros(self.n, dtype=bool)
        return np.asarray(pc.fill_null(plain(self.table[name]), False).to_numpy(zero_copy_only=False), bool)

    def optional_valid(self, name: str) -> BOOL:
        """Rows whose optional column ``name`` holds a non-empty value."""
        if name not in self.table.column_names:
            return np.zeros(self.n, dtype=bool)
        column = plain(self.table[name])
        valid = pc.is_valid(column)
        if pa.types.is_string(column.type):
            valid = pc.and_(valid, pc.greater(pc.binary_length(column), 0))
        return np.asarray(pc.fill_null(valid, False).to_numpy(zero_copy_only=False), bool)

    def source_mask(self, sources: list[str] | tuple[str, ...]) -> BOOL:
        if not sources:
            return np.ones(self.n, dtype=bool)
        wanted = np.zeros(len(SOURCES), dtype=bool)
        for s in sources:
            wanted[SOURCES.index(s)] = True
        return wanted[self.source]

    def account_mask(self, account_id: str) -> BOOL:
        if account_id not in self.accounts:
            return np.zeros(self.n, dtype=bool)
        return np.asarray(self.account == self.accounts.index(account_id))

    def str_at(self, name: str, row: int) -> str:
        value = self.text(name)[int(row)].as_py()
        return "" if value is None else str(value)

    def uid(self, row: int) -> str:
        return self.str_at("txn_uid", row)
