"""The normalized transaction table (Parquet, zstd): schema version 3.

Columns and meaning are documented in docs/parsing.md ("Normalized transaction schema"). Money columns are
int64 minor units; times are UTC timestamps; every row carries its lineage (raw key, row number, profile
and profile version).

Version history:

* 1: the transaction columns and lineage.
* 2: ``dedupe_key`` (the fields named by the profile's dedupe key, joined with ``|``) and
  ``in_file_duplicate`` (this row repeats an earlier row's dedupe key in the same file: flagged, kept,
  never dropped). Version 1 files are read as version 2 (dedupe key = txn_id, duplicates recomputed).
* 3: ``gross_minor`` (nullable): a channel payment's amount before the merchant-funded discount (WeChat Pay
  订单金额, Alipay 订单金额), where the bill states it; ``amount_minor`` stays what the channel settles. Null
  where the source has no such amount. Version 1 and 2 files are read with it null.
"""

from __future__ import annotations

import io
from collections.abc import Iterable
from datetime import UTC

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from .domain import Transaction

SCHEMA_VERSION = "3"

TRANSACTION_SCHEMA = pa.schema(
    [
        pa.field("txn_uid", pa.string(), nullable=False),
        pa.field("source", pa.string(), nullable=False),
        pa.field("account_id", pa.string(), nullable=False),
        pa.field("statement_id", pa.string(), nullable=False),
        pa.field("txn_id", pa.string(), nullable=False),
        pa.field("order_ref", pa.string()),
        pa.field("refund_ref", pa.string()),
        pa.field("amount_minor", pa.int64(), nullable=False),
        pa.field("fee_minor", pa.int64(), nullable=False),
        pa.field("net_minor", pa.int64(), nullable=False),
        pa.field("currency", pa.string(), nullable=False),
        pa.field("booked_at", pa.timestamp("us", tz="UTC"), nullable=False),
        pa.field("value_date", pa.date32(), nullable=False),
        pa.field("txn_type", pa.string(), nullable=False),
        pa.field("status", pa.string(), nullable=False),
        pa.field("counterparty", pa.string()),
        pa.field("memo", pa.string()),
        pa.field("raw_key", pa.string(), nullable=False),
        pa.field("row_number", pa.int32(), nullable=False),
        pa.field("profile", pa.string(), nullable=False),
        pa.field("profile_version", pa.string(), nullable=False),
        pa.field("dedupe_key", pa.string(), nullable=False),
        pa.field("in_file_duplicate", pa.bool_(), nullable=False),
        pa.field("gross_minor", pa.int64()),
    ],
    metadata={"recon.schema_version": SCHEMA_VERSION},
)
_V2_COLUMNS = ("dedupe_key", "in_file_duplicate")
#: Optional columns of version 3: null where a reader or an older file has none.
_V3_COLUMNS = ("gross_minor",)
#: A reader's rows before the file-level columns: ``TRANSACTION_SCHEMA`` without the dedupe key and flag
#: (and without the optional amounts, which only the profile engine fills).
ROW_SCHEMA = pa.schema([f for f in TRANSACTION_SCHEMA if f.name not in _V2_COLUMNS + _V3_COLUMNS])

#: Columns the parse stage adds when it stores a statement (recon.pipeline.overlap); a parser never sets them.
#: ``overlap_of``: id of an earlier statement of the same account that already delivered this row (null: the
#: row is original); ``overlap_row``: that statement's row number. The match stage files such rows as
#: filtered by rule ``overlapping-statement``. Stored objects are in ``NORMALIZED_SCHEMA``.
STAGE_FIELDS = (pa.field("overlap_of", pa.string()), pa.field("overlap_row", pa.int32()))
NORMALIZED_SCHEMA = pa.schema([*TRANSACTION_SCHEMA, *STAGE_FIELDS], metadata=TRANSACTION_SCHEMA.metadata)


_HASHED = 1 << 16  # keys beyond which only the keys sharing a hash are compared
_BUCKET_BITS = 8  # sorted a bucket (top bits of the hash) at a time: each sort stays in the CPU caches
# odd 64-bit multipliers: the golden ratio's (each word), murmur3's finaliser's (the last mix)
_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_MIX = np.uint64(0xFF51AFD7ED558CCD)
# _WORD_MASK[k]: the k low bytes of a little-endian word
_WORD_MASK = np.array([(1 << (8 * k)) - 1 for k in range(8)] + [(1 << 64) - 1], dtype=np.uint64)


def mark_duplicates(
    keys: pa.Array | pa.ChunkedArray,
    buckets: np.ndarray | None = None,  # type: ignore[type-arg]
) -> pa.Array:
    """True where a key repeats an earlier one (the first occurrence stays False).

    Many keys are hashed (``bucket_of``): a key whose hash no other key has is a first occurrence, and only
    the keys sharing a hash (the repeats, and rare collisions) are compared exactly, in file order. Hash
    tables over a million distinct strings miss the CPU caches; the hashes sort a bucket at a time.
    ``buckets``: ``bucket_of(keys)``, when the caller computed it already (piece by piece)."""
    n = len(keys)
    if n == 0:
        return pa.array([], pa.bool_())
    if isinstance(keys, pa.ChunkedArray):
        keys = keys.combine_chunks()
    hashes = None if n <= _HASHED else buckets if buckets is not None else bucket_of(keys)
    if hashes is None:
        return pa.array(_repeats(keys), pa.bool_())
    rows = np.flatnonzero(_shared(hashes))
    repeat = np.zeros(n, dtype=bool)
    if len(rows):
        repeat[rows] = _repeats(keys.take(pa.array(rows)))
    return pa.array(repeat, pa.bool_())


def _shared(hashes: np.ndarray) -> np.ndarray:  # type: ignore[type-arg]
    """True where another value may equal this one: the values' top 40 bits are equal (the keys of those rows
    are compared exactly afterwards). Sorted a bucket (the top bits) at a time, the next 32 bits of each:
    32-bit sorts take half the time of 64-bit ones."""
    top = (hashes >> np.uint64(64 - _BUCKET_BITS)).astype(np.uint16)
    rest = (hashes >> np.uint64(32 - _BUCKET_BITS)).astype(np.uint32)  # the 32 bits below the bucket's
    grouped = rest[np.argsort(top, kind="stable")]
    twice: list[np.ndarray] = []  # type: ignore[type-arg]
    lo = 0
    for bucket, size in enumerate(np.bincount(top, minlength=1 << _BUCKET_BITS).tolist()):
        if size > 1:
            part = np.sort(grouped[lo : lo + size])
            same = part[1:] == part[:-1]
            if same.any():
                twice.append(part[1:][same].astype(np.uint64) | np.uint64(bucket << 32))
        lo += size
    if not twice:
        return np.zeros(len(hashes), dtype=bool)
    return np.isin(hashes >> np.uint64(32 - _BUCKET_BITS), np.unique(np.concatenate(twice)))


def _repeats(keys: pa.Array) -> np.ndarray:  # type: ignore[type-arg]
    encoded = pc.dictionary_encode(keys)
    if isinstance(encoded, pa.ChunkedArray):
        encoded = encoded.combine_chunks()
    codes = np.asarray(encoded.indices.to_numpy(zero_copy_only=False), dtype=np.int64)
    # Arrow numbers distinct keys in order of first appearance: a row is new when its code exceeds every
    # code before it. Checked (the new rows must carry 0, 1, 2, ...); otherwise the general way.
    repeat = np.ones(len(codes), dtype=bool)
    repeat[0] = False
    repeat[1:] = codes[1:] <= np.maximum.accumulate(codes)[:-1]
    if np.array_equal(codes[~repeat], np.arange(len(encoded.dictionary))):
        return repeat
    _, first = np.unique(codes, return_index=True)
    repeat = np.ones(len(codes), dtype=bool)
    repeat[first] = False
    return repeat


def bucket_of(keys: pa.Array) -> np.ndarray | None:  # type: ignore[type-arg]
    """A 64-bit hash per key of its length and every byte (equal keys share it); None: not a plain string
    array. Computed 8 bytes at a time from the value buffer, a key's last word masked to its own bytes."""
    if keys.null_count or keys.type not in (pa.string(), pa.binary()):
        return None
    n = len(keys)
    offsets = np.frombuffer(keys.buffers()[1], dtype=np.int32)[keys.offset : keys.offset + n + 1]
    data = keys.buffers()[2]
    body = np.frombuffer(data, dtype=np.uint8) if data is not None else np.zeros(0, dtype=np.uint8)
    starts = offsets[:-1].astype(np.intp)  # (numpy indexes with intp: converted once, not per word)
    lengths = np.diff(offsets)
    # A key is read as its words at 0, 8, 16, ... before its last word, then the last word, which ends at
    # its end (they may overlap: none reads past the key); a key shorter than 8 bytes is its one word masked
    # to its bytes, read from a copy padded with 8 bytes (it may start less than 8 bytes before the end).
    last_word = np.maximum(lengths - 8, 0)
    own = _WORD_MASK[np.minimum(lengths, 8)] if n and int(lengths.min()) < 8 else None
    if own is not None:
        body = np.concatenate((body[: int(offsets[-1])], np.zeros(8, dtype=np.uint8)))
    # the 8 bytes from each position (unaligned little-endian words)
    words: np.ndarray = np.ndarray((max(len(body) - 7, 0),), dtype="<u8", buffer=body, strides=(1,))  # type: ignore[type-arg]
    hashes: np.ndarray = lengths.astype(np.uint64)  # type: ignore[type-arg]
    for at in range(0, int(last_word.max()) if n else 0, 8):
        live = last_word > at  # the keys with a word at ``at`` before their last one
        if live.all():
            hashes = hashes * _GOLDEN + words[at:][starts]
        else:
            rows = np.flatnonzero(live)
            hashes[rows] = hashes[rows] * _GOLDEN + words[at:][starts[rows]]
    last = words[starts + last_word]
    hashes = hashes * _GOLDEN + (last & own if own is not None else last)
    hashes ^= hashes >> np.uint64(33)
    hashes *= _MIX
    hashes ^= hashes >> np.uint64(33)
    return hashes


def to_table(transactions: Iterable[Transaction]) -> pa.Table:
    rows = [t.model_dump() for t in transactions]
    for row in rows:
        row["booked_at"] = row["booked_at"].astimezone(UTC)
        if row.get("dedupe_key") is None:
            row["dedupe_key"] = row["txn_id"]
        row["in_file_duplicate"] = False
    table = pa.Table.from_pylist(rows, schema=TRANSACTION_SCHEMA)
    if not rows:
        return table
    flags = mark_duplicates(table.column("dedupe_key"))
    return table.set_column(
        table.schema.get_field_index("in_file_duplicate"),
        TRANSACTION_SCHEMA.field("in_file_duplicate"),
        flags,
    )


def from_rows(batches: Iterable[pa.Table]) -> pa.Table:
    """Row tables (``ROW_SCHEMA``, in file order) as one ``TRANSACTION_SCHEMA`` table: dedupe key = txn_id,
    in-file duplicates flagged (as ``to_table`` does for rows added one by one)."""
    table = pa.concat_tables([b.select(ROW_SCHEMA.names).cast(ROW_SCHEMA) for b in batches]).combine_chunks()
    keys = table.column("txn_id")
    table = table.append_column("dedupe_key", keys).append_column("in_file_duplicate", mark_duplicates(keys))
    return _optional(table).cast(TRANSACTION_SCHEMA)


def _optional(table: pa.Table) -> pa.Table:
    """``table`` with the version 3 columns it lacks, null."""
    for name in _V3_COLUMNS:
        if name not in table.column_names:
            fld = TRANSACTION_SCHEMA.field(name)
            table = table.append_column(fld, pa.nulls(table.num_rows, fld.type))
    return table


def upgrade(table: pa.Table) -> pa.Table:
    """A version 1 or 2 table as version 3 (version 1: dedupe key = txn_id; the version 3 columns null)."""
    if not all(name in table.column_names for name in _V2_COLUMNS):
        keys = table.column("txn_id")
        table = table.append_column("dedupe_key", keys).append_column(
            "in_file_duplicate", mark_duplicates(keys)
        )
    return _optional(table).select(TRANSACTION_SCHEMA.names).cast(TRANSACTION_SCHEMA)


def normalized(table: pa.Table) -> pa.Table:
    """A parser's or a stored table in ``NORMALIZED_SCHEMA`` (stage columns null where it has none)."""
    out = upgrade(table)
    for fld in STAGE_FIELDS:
        present = fld.name in table.column_names
        values = table.column(fld.name).cast(fld.type) if present else pa.nulls(table.num_rows, fld.type)
        out = out.append_column(fld, values)
    return out.cast(NORMALIZED_SCHEMA)


def table_to_parquet(table: pa.Table) -> bytes:
    """The stored form of a statement's rows: ``NORMALIZED_SCHEMA``, zstd."""
    sink = io.BytesIO()
    pq.write_table(normalized(table), sink, compression="zstd")
    return sink.getvalue()


def to_parquet(transactions: Iterable[Transaction]) -> bytes:
    return table_to_parquet(to_table(transactions))


def read_parquet(data: bytes) -> pa.Table:
    """A normalized Parquet object (version 1, 2 or 3) as a version 3 table with the stage columns."""
    return normalized(pq.read_table(io.BytesIO(data)))


def from_table(table: pa.Table) -> list[Transaction]:
    return [Transaction.model_validate(row) for row in upgrade(table).to_pylist()]


def from_parquet(data: bytes) -> list[Transaction]:
    return from_table(read_parquet(data))
