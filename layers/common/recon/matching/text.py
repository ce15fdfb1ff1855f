"""Words for results, built column-wise: money as exact decimals, severities, reasons."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from recon.domain import SeverityThresholds
from recon.money import exponent, format_amount

from .frame import ANY, I64, Frame
from .hashing import U64, hash_strings


def money(amounts: I64, currency_codes: ANY, currencies: list[str]) -> pa.Array:
    """Exact decimal text of minor units (``-10.00``), per row in its currency's minor unit."""
    amounts = np.asarray(amounts, dtype=np.int64)
    n = len(amounts)
    if n == 0:
        return pa.array([], pa.string())
    exps = np.array([exponent(c) for c in currencies] or [2], dtype=np.int64)[
        np.asarray(currency_codes, np.intp)
    ]
    magnitude = np.abs(amounts)
    parts: list[pa.Array] = []
    index: list[ANY] = []
    for e in np.unique(exps).tolist():
        sel = np.flatnonzero(exps == e)
        whole = pa.array(magnitude[sel] // 10**e).cast(pa.string())
        if e:
            frac = pc.utf8_lpad(pa.array(magnitude[sel] % 10**e).cast(pa.string()), width=e, padding="0")
            whole = pc.binary_join_element_wise(whole, frac, ".")
        parts.append(whole)
        index.append(sel)
    body = pa.concat_arrays(parts)
    order = np.empty(n, dtype=np.int64)
    order[np.concatenate(index)] = np.arange(n)
    sign = pa.array(np.where(amounts < 0, "-", ""))
    return pc.binary_join_element_wise(sign, body.take(pa.array(order)), "")


def one_money(amount: int, currency: str) -> str:
    return format_amount(amount, currency)


def severities(thresholds: SeverityThresholds, at_stake: I64) -> pa.Array:
    stake = np.abs(np.asarray(at_stake, dtype=np.int64))
    codes = np.where(stake >= thresholds.high_minor, 2, np.where(stake >= thresholds.medium_minor, 1, 0))
    return pa.DictionaryArray.from_arrays(pa.array(codes.astype(np.int32)), ["low", "medium", "high"])


def join(*parts: pa.Array | str) -> pa.Array:
    """Concatenate text columns and literals element-wise (nulls read as empty)."""
    arrays = [p for p in parts if not isinstance(p, str)]
    n = len(arrays[0]) if arrays else 0
    columns = [
        pa.array([p] * n, pa.string()) if isinstance(p, str) else pc.fill_null(p.cast(pa.string()), "")
        for p in parts
    ]
    return pc.binary_join_element_wise(*columns, "")


def take_text(frame: Frame, name: str, rows: I64) -> pa.Array:
    return frame.take_text(name, rows)


def row_case_ids(frame: Frame, rows: I64, seed: int, *, content: tuple[str, ...] = ()) -> U64:
    """Ids (hashes) of cases about single rows: the row's identity (``txn_uid``: source, account, id, plus
    the ``content`` fields) and how many of ``rows`` before it (placement order) carry the same identity,
    never the file name or row number. A re-delivered or renamed file, or a row added above, keeps every
    case id and so its review status; the count keeps ids apart in a run holding a row twice (a
    DUPLICATE's repeats, whose ``content`` also tells conflicting repeats apart wherever they are built:
    rows with the same key and content always share a partition)."""
    uid = join(
        take_text(frame, "txn_uid", rows),
        *[p for name in content for p in ("\x1f", _field(frame, name, rows))],
    )
    h = hash_strings(uid, seed=7)
    order = np.lexsort((frame.position[rows], h))
    ordered = h[order]
    starts = np.r_[0, np.flatnonzero(ordered[1:] != ordered[:-1]) + 1]
    first = np.repeat(starts, np.diff(np.r_[starts, len(rows)]))
    count = np.empty(len(rows), dtype=np.int64)
    count[order] = np.arange(len(rows)) - first
    return hash_strings(join(uid, "\x1f", pa.array(count).cast(pa.string())), seed=seed)


def local_times(booked_us: I64, timezone: str) -> pa.Array:
    """Booking times (µs since the epoch) as ISO 8601 in ``timezone``, with its offset, as
    ``datetime.isoformat`` writes them (the resolve stage's evidence): ``2026-11-20T10:00:00+08:00``."""
    booked_us = np.asarray(booked_us, dtype=np.int64)
    local = pc.local_timestamp(pa.array(booked_us).cast(pa.timestamp("us", tz=timezone)))
    # The wall time's text from a zone-less timestamp, its offset from the few distinct ones: Arrow's
    # strftime (or a cast with the zone) costs ≈ 1 µs a row, ≈ 30 times this.
    wall = pc.replace_substring(local.cast(pa.string()), pattern=" ", replacement="T")
    wall = pc.replace_substring(wall, pattern=".000000", replacement="")  # isoformat omits zero µs
    offset_s = (np.asarray(local.cast(pa.int64()).to_numpy(), np.int64) - booked_us) // 1_000_000
    distinct, index = np.unique(offset_s, return_inverse=True)
    return join(wall, labels(index, [_utc_offset(int(s)) for s in distinct.tolist()]))


def _utc_offset(seconds: int) -> str:
    """``+08:00``; ``+05:53:28`` when the offset has seconds (as isoformat)."""
    minutes, secs = divmod(abs(seconds), 60)
    text = f"{'-' if seconds < 0 else '+'}{minutes // 60:02d}:{minutes % 60:02d}"
    return f"{text}:{secs:02d}" if secs else text


def labels(codes: ANY, vocabulary: tuple[str, ...] | list[str]) -> pa.Array:
    """Labels of codes, as a dictionary array (cheap to build and to take from)."""
    return pa.DictionaryArray.from_arrays(pa.array(np.asarray(codes, dtype=np.int32)), list(vocabulary))


def _field(frame: Frame, name: str, rows: I64) -> pa.Array:
    """A text or amount field of ``rows`` as text (identity of a case)."""
    if name == "amount_minor":
        return pa.array(frame.amount[rows]).cast(pa.string())
    return take_text(frame, name, rows)
