"""The normalized transaction table (Parquet, zstd): schema version 1.

Columns and meaning are documented in README "Normalized transaction schema". Money columns are int64
minor units; times are UTC timestamps; every row carries its lineage (raw key, row number, profile version).
"""

from __future__ import annotations

import io
from collections.abc import Iterable
from datetime import UTC

import pyarrow as pa
import pyarrow.parquet as pq

from .domain import Transaction

SCHEMA_VERSION = "1"

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
    ],
    metadata={"recon.schema_version": SCHEMA_VERSION},
)


def to_table(transactions: Iterable[Transaction]) -> pa.Table:
    rows = [t.model_dump() for t in transactions]
    for row in rows:
        row["booked_at"] = row["booked_at"].astimezone(UTC)
    return pa.Table.from_pylist(rows, schema=TRANSACTION_SCHEMA)


def to_parquet(transactions: Iterable[Transaction]) -> bytes:
    sink = io.BytesIO()
    pq.write_table(to_table(transactions), sink, compression="zstd")
    return sink.getvalue()


def from_parquet(data: bytes) -> list[Transaction]:
    table = pq.read_table(io.BytesIO(data), schema=TRANSACTION_SCHEMA)
    # Rows were validated when they were parsed; model_construct skips re-validation of trusted data.
    return [Transaction.model_validate(row) for row in table.to_pylist()]
