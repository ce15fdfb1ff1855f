"""Column-at-a-time conversions for the profile engine (pyarrow.compute + numpy, no per-row Python on the
happy path): cell cleaning, exact amounts in integer minor units, dates and times to UTC, value maps and
row conditions. Per-row Python runs only to word the rejection of rows that failed (``Failure.describe``).

Every converter returns its values plus a ``Failure``: a boolean mask of rejected rows and how to word each
rejection. Regexes here run on Arrow (RE2 syntax: no look-around, no back-references).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, tzinfo
from decimal import Decimal

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc

from recon.money import exponent

from .profiles import AmountFormat, Condition

Bools = npt.NDArray[np.bool_]
Ints = npt.NDArray[np.int64]
Describe = Callable[[npt.NDArray[np.intp]], list[tuple[str | None, str]]]

MAX_INT_DIGITS = 15  # |amount| < 10**15 minor units (recon.parsing._common.MAX_AMOUNT_MINOR)
MAX_AMOUNT_MINOR = 10**15
_MICROS_PER_DAY = 86_400_000_000
_MICROS_PER_HOUR = 3_600_000_000


@dataclass
class Failure:
    """Rows rejected by one check, and the (column, reason) of each, computed only for those rows."""

    mask: Bools
    describe: Describe


def no_failure(n: int) -> Failure:
    return Failure(np.zeros(n, dtype=bool), lambda rows: [])


def bools(arr: pa.Array | pa.ChunkedArray) -> Bools:
    """A boolean Arrow array as numpy (nulls are False)."""
    filled = pc.fill_null(arr, False)
    return np.asarray(filled.to_numpy(zero_copy_only=False), dtype=bool)


def strings(arr: pa.Array | pa.ChunkedArray) -> pa.Array:
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks()
    if arr.type != pa.string():
        arr = arr.cast(pa.string())
    return arr


def text_at(arr: pa.Array, rows: npt.NDArray[np.intp]) -> list[str]:
    return [v if v is not None else "" for v in arr.take(pa.array(rows, pa.int64())).to_pylist()]


def empty(arr: pa.Array) -> Bools:
    if isinstance(arr, pa.Array) and not arr.null_count and pa.types.is_string(arr.type):
        offsets = np.frombuffer(arr.buffers()[1], dtype=np.int32)[arr.offset : arr.offset + len(arr) + 1]
        blank: Bools = np.diff(offsets) == 0
        return blank
    return bools(pc.equal(pc.binary_length(arr), 0))


def value_bytes(arr: pa.Array) -> tuple[Ints, npt.NDArray[np.uint8]] | None:
    """(offsets from 0, the values' bytes) of a string or binary array, without copying; None when it has
    nulls or another layout (callers then take the Arrow path)."""
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks()
    if arr.null_count or not (pa.types.is_string(arr.type) or pa.types.is_binary(arr.type)):
        return None
    n = len(arr)
    offsets = np.frombuffer(arr.buffers()[1], dtype=np.int32)[arr.offset : arr.offset + n + 1].astype(
        np.int64
    )
    if n == 0:
        return np.zeros(1, dtype=np.int64), np.zeros(0, dtype=np.uint8)
    data = arr.buffers()[2]
    base, end = int(offsets[0]), int(offsets[-1])
    body = np.frombuffer(data, dtype=np.uint8)[base:end] if data is not None else np.zeros(0, dtype=np.uint8)
    return offsets - base, body


def all_ascii(arr: pa.Array) -> bool:
    """Every value is ASCII (one pass over the bytes, no per-value result)."""
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks()
    if arr.null_count or not (pa.types.is_string(arr.type) or pa.types.is_binary(arr.type)):
        return bool(pc.all(pc.string_is_ascii(arr)).as_py() is not False)
    if len(arr) == 0 or arr.buffers()[2] is None:
        return True
    # the values' bytes: only the first and last offsets are read (no per-value offsets converted)
    bounds = np.frombuffer(arr.buffers()[1], dtype=np.int32)[[arr.offset, arr.offset + len(arr)]]
    body = np.frombuffer(arr.buffers()[2], dtype=np.uint8)[int(bounds[0]) : int(bounds[1])]
    return not len(body) or int(body.max()) < 0x80


def const(value: str, n: int) -> pa.Array:
    """``value`` n times, built from its buffers: evenly spaced offsets and the bytes repeated (measured
    quicker than ``pa.repeat``, by far for empty values)."""
    raw = value.encode("utf-8")
    if (n + 1) * len(raw) >= 1 << 31:
        return pa.repeat(pa.scalar(value, pa.string()), n)
    offsets = np.arange(0, (n + 1) * len(raw), len(raw), dtype=np.int32) if raw else np.zeros(n + 1, np.int32)
    return pa.Array.from_buffers(pa.string(), n, [None, pa.py_buffer(offsets), pa.py_buffer(raw * n)])


def single_value(arr: pa.Array) -> str | None:
    """The value every row holds, when they all hold the same one (no nulls)."""
    if len(arr) == 0 or arr.null_count or not pa.types.is_string(arr.type):
        return None
    first = arr[0].as_py()
    return first if bool(pc.all(pc.equal(arr, pa.scalar(first, pa.string()))).as_py()) else None


def nulls_for_empty(arr: pa.Array) -> pa.Array:
    """Empty values as nulls (the optional text columns of the table)."""
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks()
    if arr.null_count or not (pa.types.is_string(arr.type) or pa.types.is_binary(arr.type)):
        return pc.if_else(pc.equal(pc.binary_length(arr), 0), pa.scalar(None, pa.string()), arr)
    offsets = np.frombuffer(arr.buffers()[1], dtype=np.int32)[arr.offset : arr.offset + len(arr) + 1]
    filled = offsets[1:] > offsets[:-1]
    if filled.all():
        return arr
    validity = pa.py_buffer(np.packbits(filled, bitorder="little"))
    return pa.Array.from_buffers(pa.string(), len(arr), [validity, pa.py_buffer(offsets), arr.buffers()[2]])


def spread(arr: pa.Array, rows: npt.NDArray[np.intp], n: int) -> pa.Array:
    """String ``arr``'s values at ``rows`` (ascending) of ``n`` rows, empty values elsewhere. Without nulls
    only the offsets are new: the values' bytes are the same, in the same order."""
    arr = strings(arr)
    if arr.null_count:
        at = np.full(n, len(arr), dtype=np.int64)
        at[rows] = np.arange(len(arr))
        return pa.concat_arrays([arr, pa.array([""], pa.string())]).take(pa.array(at))
    offsets = np.frombuffer(arr.buffers()[1], dtype=np.int32)[arr.offset : arr.offset + len(arr) + 1]
    spread_offsets = np.zeros(n + 1, dtype=np.int32)
    spread_offsets[rows + 1] = np.diff(offsets)
    np.cumsum(spread_offsets, out=spread_offsets)
    spread_offsets += offsets[0]
    data = arr.buffers()[2] if arr.buffers()[2] is not None else pa.py_buffer(b"")
    return pa.Array.from_buffers(pa.string(), n, [None, pa.py_buffer(spread_offsets), data])


def where(mask: Bools, yes: pa.Array, no: pa.Array) -> pa.Array:
    return pc.if_else(pa.array(mask), yes, no)


# -------------------------------------------------------------------------------------------- cleaning


_SPACE = " \t\r\n\x0b\x0c\u00a0\u3000"


def _plain_edge(arr: pa.Array, strip: str, *, last: bool) -> bool:
    """No value ends (``last``) or starts with whitespace or a ``strip`` character: each one's last or first
    byte is printable ASCII and no strip character (one byte read per value; an empty value reads another's,
    which only errs towards trimming). False when it cannot tell."""
    if isinstance(arr, pa.ChunkedArray) or arr.null_count or not pa.types.is_string(arr.type) or not len(arr):
        return False
    buffers = arr.buffers()
    if buffers[2] is None:
        return False
    offsets = np.frombuffer(buffers[1], dtype=np.int32)[arr.offset : arr.offset + len(arr) + 1]
    if offsets[-1] == offsets[0]:
        return True  # every value empty
    body = np.frombuffer(buffers[2], dtype=np.uint8)
    # (an empty value reads a neighbour's byte, or the buffer's first or last: it needs no trimming either way)
    edge = body.take((offsets[1:] - 1 if last else offsets[:-1]).astype(np.intp), mode="clip")
    plain = (edge > 0x20) & (edge < 0x7F)  # compared, not looked up in a table: measured quicker
    for char in strip:
        if char.isascii():
            plain &= edge != ord(char)
    return bool(plain.all())


def clean(arr: pa.Array, *, strip: str = "", prefix: str = "") -> pa.Array:
    """Trim whitespace (TABs too) and ``strip`` characters; with ``prefix`` (WeChat's backtick guard), leading
    prefix characters are removed along with leading whitespace. Alipay's TAB after ids, ICBC's padding.

    An end is trimmed only when a value's byte there could be trimmed (no copy at all when none could)."""
    plain_ends = _plain_edge(arr, strip, last=True)
    if prefix and plain_ends:
        # No value ends with anything to trim, and the left trim stops at a character that none of the
        # other steps would remove from the start.
        return pc.utf8_ltrim(arr, characters=_SPACE + prefix + strip)
    if prefix:
        out = pc.utf8_rtrim_whitespace(pc.utf8_ltrim(arr, characters=_SPACE + prefix + strip))
    elif _plain_edge(arr, strip, last=False):
        if plain_ends:
            return arr
        out = pc.utf8_rtrim_whitespace(arr)
        return pc.utf8_rtrim(out, characters=strip) if strip else out
    elif plain_ends:
        out = pc.utf8_ltrim_whitespace(arr)
        return pc.utf8_ltrim(out, characters=strip) if strip else out
    else:
        out = pc.utf8_trim_whitespace(arr)
    if strip:
        out = pc.utf8_trim(out, characters=strip)
    return out


def nfkc(arr: pa.Array) -> pa.Array:
    """NFKC-normalise the non-ASCII values (full-width digits, colons and brackets become ASCII)."""
    if all_ascii(arr):
        return arr
    ascii_ = pc.string_is_ascii(arr)
    return pc.if_else(ascii_, arr, pc.utf8_normalize(arr, form="NFKC"))


def blank_to(arr: pa.Array, values: Sequence[str], replacement: str = "") -> pa.Array:
    """Values in ``values`` become ``replacement`` (null values like '-' or '0')."""
    if not values:
        return arr
    return where(one_of(arr, values), pa.scalar(replacement, pa.string()), arr)


def lower(arr: pa.Array) -> pa.Array:
    # ASCII text (status codes, ids) the same, several times quicker
    return pc.ascii_lower(arr) if all_ascii(arr) else pc.utf8_lower(arr)


def one_of(arr: pa.Array, values: Sequence[str]) -> Bools:
    """Rows whose value is one of ``values`` (nulls are not): a few values are compared one at a time
    (measured several times quicker than ``is_in``'s hash lookups), more are looked up."""
    if len(values) > 4:
        return bools(pc.is_in(arr, value_set=pa.array(list(values), pa.string())))
    out = np.zeros(len(arr), dtype=bool)
    for value in dict.fromkeys(values):
        out |= empty(arr) if value == "" else bools(pc.equal(arr, pa.scalar(value, pa.string())))
    return out


# ------------------------------------------------------------------------------------------- amounts


def _amount_pattern(fmt: AmountFormat) -> str:
    dec = re.escape(fmt.decimal)
    if fmt.minor_units:
        return r"^[+-]?\d+$"
    if fmt.thousands:
        sep = re.escape(fmt.thousands)
        return rf"^[+-]?(?:\d{{1,3}}(?:{sep}\d{{3}})+|\d+)(?:{dec}\d+)?$"
    return rf"^[+-]?\d+(?:{dec}\d+)?$"


def normalise_amount_text(arr: pa.Array, fmt: AmountFormat) -> pa.Array:
    """NFKC, currency symbols/prefixes removed, whitespace trimmed (``CNY 123.18`` -> ``123.18``)."""
    out = nfkc(arr)
    for symbol in fmt.symbols:
        if symbol and pc.any(pc.match_substring(out, symbol)).as_py():
            out = pc.replace_substring(out, symbol, "")
    return pc.utf8_trim_whitespace(out)


@dataclass
class Amounts:
    minor: Ints  # 0 where the row failed
    failure: Failure


def fast_amounts(arr: pa.Array, exponents: npt.NDArray[np.int64], fmt: AmountFormat) -> Ints | None:
    """The common case without a regex or a decimal cast: one currency, every value ``-?digits`` with F
    digits after a ``.`` (``1790.57``, ``10.74000``) or none (``199``). F is usually the same for the whole
    column (one check at each value's end); otherwise the values are taken F by F.

    The value's bytes decide F and where the point is; Arrow's integer cast of the text without its point
    then accepts exactly ``-?\\d+`` (and hexadecimal ``0x..``, refused here by its ``x``). F digits beyond the
    currency's must be zeros (else this is no plain amount: the general path words the rejection). Exact:
    integers only. None: use the general path."""
    n = len(arr)
    if n == 0 or fmt.minor_units or fmt.decimal != "." or not bool(np.all(exponents == exponents[0])):
        return None
    found = value_bytes(arr)
    if found is None:
        return None
    offsets, body = found
    ends = offsets[1:]
    lengths = ends - offsets[:-1]
    if int(lengths.min()) < 1 or bool(((body | 0x20) == ord("x")).any()):
        return None
    e = int(exponents[0])
    point = body[: int(lengths[0])].tobytes().rfind(b".")
    places = int(lengths[0]) - point - 1 if point >= 0 else 0
    if point < 0 or int(lengths.min()) >= places + 2:
        uniform = _scaled(arr, body, offsets, places, e)  # (a value with a point elsewhere fails the cast)
        if uniform is not None:
            return uniform
    # Points at different places: each value's F from its point (one point at most, a digit before it).
    points = np.flatnonzero(body == ord("."))
    if not len(points):
        return None
    row = np.searchsorted(ends, points, side="right")
    if len(row) != len(np.unique(row)):
        return None
    each = np.zeros(n, dtype=np.int64)
    each[row] = ends[row] - points - 1
    minor = np.empty(n, dtype=np.int64)
    for f in np.unique(each).tolist():
        rows = np.flatnonzero(each == f)
        part = arr if len(rows) == n else arr.take(pa.array(rows))
        sub = value_bytes(part)
        assert sub is not None
        got = _scaled(part, sub[1], sub[0], int(f), e)
        if got is None:
            return None
        minor[rows] = got
    return minor


def prefixed_amounts(
    arr: pa.Array, exponents: npt.NDArray[np.int64], fmt: AmountFormat, *, prefix: str, strip: str = ""
) -> Ints | None:
    """``fast_amounts`` of ``clean(arr, strip=strip, prefix=prefix)`` without the cleaned copy, for values that
    are the one prefix character, then an amount with the same digits after every point (WeChat's backtick
    before ``1790.57``). The cast accepts exactly ``-?\\d+`` after the prefix: a value starts with a digit or
    '-' and ends with a digit, which cleaning keeps (``strip`` holds neither), so cleaning would have removed
    the prefix alone. None: clean, then parse."""
    n = len(arr)
    if (
        n == 0
        or len(prefix) != 1
        or not prefix.isascii()
        or any(ch in strip for ch in "-0123456789")
        or fmt.minor_units
        or fmt.decimal != "."
        or not bool(np.all(exponents == exponents[0]))
    ):
        return None
    found = value_bytes(arr)
    if found is None:
        return None
    offsets, body = found
    starts, ends = offsets[:-1], offsets[1:]
    lengths = ends - starts
    if int(lengths.min()) < 2 or bool(((body | 0x20) == ord("x")).any()):
        return None
    if not bool(np.all(body[starts] == ord(prefix))):
        return None
    first = body[1 : int(lengths[0])].tobytes()
    point = first.rfind(b".")
    places = len(first) - point - 1 if point >= 0 else 0
    e = int(exponents[0])
    # A column zero in most rows (a refund column of payment rows) has only its other values cast.
    zero = prefix + ("0." + "0" * places if places else "0")
    is_zero = np.asarray(pc.equal(arr, pa.scalar(zero, pa.string())).to_numpy(zero_copy_only=False))
    others = np.flatnonzero(~is_zero)
    if 2 * len(others) > n:
        return _scaled(arr, body, offsets, places, e, lead=1)
    minor = np.zeros(n, dtype=np.int64)
    if len(others):
        part = arr.take(pa.array(others))
        sub = value_bytes(part)
        assert sub is not None
        got = _scaled(part, sub[1], sub[0], places, e, lead=1)
        if got is None:
            return None
        minor[others] = got
    return minor


def _scaled(
    arr: pa.Array, body: npt.NDArray[np.uint8], offsets: Ints, places: int, e: int, *, lead: int = 0
) -> Ints | None:
    """Minor units of values (``offsets`` from 0 into ``body``) that all have ``places`` digits after a point
    (none when 0), after ``lead`` bytes that are dropped."""
    text = arr
    if places:
        ends = offsets[1:]
        lengths = ends - offsets[:-1]
        # the point ``places`` bytes before every end, a digit before it
        if int(lengths.min()) < places + 2 + lead:
            return None
        if not bool(np.all(body[ends - places - 1] == ord("."))):
            return None
        before = body[ends - places - 2]
        if not bool(np.all((before >= ord("0")) & (before <= ord("9")))):
            return None
        text = pc.binary_replace_slice(arr, start=-places - 1, stop=-places, replacement="")
    if lead:
        text = pc.binary_replace_slice(text, start=0, stop=lead, replacement="")
    try:
        units = np.asarray(pc.cast(text, pa.int64()).to_numpy(zero_copy_only=False), dtype=np.int64)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return None  # a sign other than a leading '-', another character, or too many digits
    minor: Ints
    if places > e:
        scale = 10 ** (places - e)
        if bool(np.any(units % scale)):
            return None  # digits beyond the currency's minor unit: the general path words it
        minor = units // scale
    elif places < e:
        if _out_of_range(units):
            return None
        minor = units * 10 ** (e - places)
    else:
        minor = units
    return None if _out_of_range(minor) else minor


def _out_of_range(minor: Ints) -> bool:
    return bool(len(minor)) and (
        int(minor.max()) >= MAX_AMOUNT_MINOR or int(minor.min()) <= -MAX_AMOUNT_MINOR
    )


def amounts(
    arr: pa.Array,
    exponents: npt.NDArray[np.int64],
    currencies: Callable[[npt.NDArray[np.intp]], list[str]],
    fmt: AmountFormat,
    column: Callable[[npt.NDArray[np.intp]], list[str | None]],
) -> Amounts:
    """Exact amounts in integer minor units (cleaned text in; currency exponent per row).

    Rejected: empty, not an amount, non-zero digits beyond the currency's minor unit, out of range.
    """
    n = len(arr)
    fast = fast_amounts(arr, exponents, fmt)
    if fast is not None:
        return Amounts(fast, no_failure(n))
    text = normalise_amount_text(arr, fmt)
    is_empty = empty(text)
    ok = bools(pc.match_substring_regex(text, _amount_pattern(fmt)))
    plain = text
    if fmt.thousands:
        plain = pc.replace_substring(plain, fmt.thousands, "")
    if fmt.decimal == ",":
        plain = pc.replace_substring(plain, ",", ".")
    parts = pc.extract_regex(
        pc.if_else(pa.array(ok), plain, pa.scalar("0")), r"^(?P<s>[+-]?)(?P<i>\d+)(?:\.(?P<f>\d*))?$"
    )
    sign_text = pc.struct_field(parts, "s")
    int_text = pc.utf8_ltrim(pc.struct_field(parts, "i"), characters="0")
    frac_text = pc.struct_field(parts, "f")
    too_long = ok & bools(pc.greater(pc.utf8_length(int_text), MAX_INT_DIGITS))
    ok &= ~too_long
    int_text = pc.if_else(pa.array(ok & ~empty(int_text)), int_text, pa.scalar("0"))
    ints = np.asarray(pc.cast(int_text, pa.int64()).to_numpy(zero_copy_only=False), dtype=np.int64)
    minor: Ints = np.zeros(n, dtype=np.int64)
    imprecise = np.zeros(n, dtype=bool)
    if fmt.minor_units:
        minor = ints.copy()
    else:
        for e_value in np.unique(exponents) if n else []:
            rows = exponents == e_value
            e = int(e_value)
            exact = bools(pc.match_substring_regex(frac_text, rf"^\d{{0,{e}}}0*$"))
            imprecise |= rows & ok & ~exact
            frac: Ints
            if e:
                head = pc.utf8_rpad(pc.utf8_slice_codeunits(frac_text, 0, e), width=e, padding="0")
                frac = np.asarray(pc.cast(head, pa.int64()).to_numpy(zero_copy_only=False), dtype=np.int64)
            else:
                frac = np.zeros(n, dtype=np.int64)
            minor = np.where(rows, ints * (10**e) + frac, minor)
    negative = bools(pc.equal(sign_text, "-"))
    minor = np.where(negative, -minor, minor)
    out_of_range = ok & ~imprecise & (np.abs(minor) >= MAX_AMOUNT_MINOR)
    bad = is_empty | ~ok | imprecise | out_of_range | too_long
    minor = np.where(bad, 0, minor)

    def describe(rows: npt.NDArray[np.intp]) -> list[tuple[str | None, str]]:
        values = text_at(arr, rows)
        plains = text_at(plain, rows)
        curs = currencies(rows)
        cols = column(rows)
        out: list[tuple[str | None, str]] = []
        for i, row in enumerate(rows):
            value = values[i]
            if is_empty[row]:
                reason = "amount is empty"
            elif too_long[row] or out_of_range[row]:
                reason = f"amount out of range: {value!r}"
            elif imprecise[row]:
                reason = (
                    f"{plains[i]!r} has more precision than {curs[i]} minor units allow (value {value!r})"
                )
            else:
                reason = f"not an amount: {value!r}"
            out.append((cols[i], reason))
        return out

    return Amounts(minor, Failure(bad, describe))


def zero_amount(arr: pa.Array, fmt: AmountFormat) -> Bools:
    """The text is a zero amount (``0``, ``0.00``, ``-0.00``)."""
    text = normalise_amount_text(arr, fmt)
    if fmt.thousands:
        text = pc.replace_substring(text, fmt.thousands, "")
    return bools(pc.match_substring_regex(text, r"^[+-]?(?:0+[.,]?0*|[.,]0+)$"))


def exponents_of(currencies: pa.Array) -> npt.NDArray[np.int64]:
    """Minor-unit exponent per row from its currency code (recon.money.exponent)."""
    single = single_value(currencies)
    if single is not None:
        return np.full(len(currencies), exponent(single), dtype=np.int64)
    uniques = pc.unique(currencies)
    exps = pa.array([exponent(c or "") for c in uniques.to_pylist()], pa.int64())
    idx = pc.index_in(currencies, value_set=uniques)
    return np.asarray(pc.take(exps, idx).to_numpy(zero_copy_only=False), dtype=np.int64)


# ----------------------------------------------------------------------------------------- date/time


@dataclass
class Moments:
    local_micros: Ints  # naive local wall time, microseconds since 1970-01-01 (0 where failed)
    failure: Failure
    text: pa.Array  # the values parsed, as given
    is_empty: Bools

    def describe_with(self, column: Callable[[npt.NDArray[np.intp]], list[str | None]]) -> Describe:
        """The rejections worded for another field reading the same values."""
        arr, is_empty = self.text, self.is_empty

        def describe(rows: npt.NDArray[np.intp]) -> list[tuple[str | None, str]]:
            values = text_at(arr, rows)
            cols = column(rows)
            return [
                (cols[i], "time is empty" if is_empty[row] else f"not a time: {values[i]!r}")
                for i, row in enumerate(rows)
            ]

        return describe


_ISO = {"%Y-%m-%d %H:%M:%S": 19, "%Y-%m-%dT%H:%M:%S": 19, "%Y-%m-%d": 10}


def _strptime(text: pa.Array, fmt: str) -> pa.Array:
    """strptime, then checked: Arrow's strptime rolls impossible dates over (2024-02-30 -> 03-01), so a
    value must format back to its own text; values that do not (unpadded digits, or impossible) are read by
    Python's ``datetime.strptime``, which refuses impossible dates."""
    width = _ISO.get(fmt)
    if width is not None and len(text) and _all_bytes_long(text, width):
        try:  # the ISO-8601 cast is strict and fast: the common case in one step
            return pc.cast(text, pa.timestamp("us"))
        except pa.ArrowInvalid:
            pass
    parsed = pc.strptime(text, format=fmt, unit="us", error_is_null=True)
    if len(text) == 0:
        return parsed
    same = pc.equal(pc.strftime(parsed, format=fmt), text)
    check = np.flatnonzero(
        ~bools(same) & bools(pc.is_valid(parsed)) | bools(pc.is_null(parsed)) & ~empty(text)
    )
    if not len(check):
        return parsed
    values = parsed.to_pylist()
    for row, value in zip(check.tolist(), text_at(text, check), strict=True):
        try:
            values[row] = datetime.strptime(value, fmt)
        except ValueError:
            values[row] = None
    return pa.array(values, pa.timestamp("us"))


def _all_bytes_long(arr: pa.Array, width: int) -> bool:
    """Every value is ``width`` bytes long (the ISO cast's guard: a value of other bytes is no ISO text)."""
    found = value_bytes(arr)
    if found is None:
        return bool(pc.all(pc.equal(pc.binary_length(arr), width)).as_py())
    return bool(np.all(np.diff(found[0]) == width))


def moments(
    arr: pa.Array,
    formats: Sequence[str],
    column: Callable[[npt.NDArray[np.intp]], list[str | None]],
    *,
    year: int | None = None,
    month: int | None = None,
) -> Moments:
    """Parse local date/times with strptime formats tried in order (the first that reads a value wins).

    ``year``: prefixed to values whose patterns lack one (``MM/DD`` with the year from a title line);
    ``month``: the statement month: a value in a later month belongs to the year before (a January
    statement listing December purchases).
    """
    n = len(arr)
    text = nfkc(arr)
    is_empty = empty(text)
    found: pa.Array = pa.nulls(n, pa.timestamp("us"))
    for k, fmt in enumerate(formats):
        if year is not None and "%Y" not in fmt:
            parsed = _strptime(
                pc.binary_join_element_wise(pa.scalar(f"{year}"), text, "\x1f"), "%Y\x1f" + fmt
            )
            if month is not None:
                earlier = _strptime(
                    pc.binary_join_element_wise(pa.scalar(f"{year - 1}"), text, "\x1f"), "%Y\x1f" + fmt
                )
                later = pc.greater(pc.month(parsed), month)
                parsed = pc.if_else(pc.fill_null(later, False), earlier, parsed)
        else:
            parsed = _strptime(text, fmt)
        found = parsed if k == 0 else pc.coalesce(found, parsed)
        if not pc.any(pc.is_null(found)).as_py():
            break
    bad = is_empty | bools(pc.is_null(found))
    micros = np.asarray(
        pc.fill_null(found.cast(pa.int64()), 0).to_numpy(zero_copy_only=False), dtype=np.int64
    )

    found_moments = Moments(micros, no_failure(n), arr, is_empty)
    found_moments.failure = Failure(bad, found_moments.describe_with(column))
    return found_moments


_EPOCH = datetime(1970, 1, 1)


def _offset_micros(local: datetime, tz: tzinfo) -> int:
    offset = local.replace(tzinfo=tz).utcoffset()
    assert offset is not None
    return int(offset / timedelta(microseconds=1))


_HOUR_TABLE = 1 << 16  # hours (7 years) spanned by values numbered through a table instead of a sort


def _distinct_hours(micros: Ints) -> tuple[Ints, npt.NDArray[np.intp]]:
    """``np.unique(micros // hour, return_inverse=True)``: a statement's times span a few days, so the hours
    are numbered through a table over their span (no sort of a million values); else by np.unique."""
    hours = micros // _MICROS_PER_HOUR
    low = int(hours.min())
    span = int(hours.max()) - low + 1
    if span > _HOUR_TABLE:
        distinct, inverse = np.unique(hours, return_inverse=True)
        return distinct, inverse
    present = np.zeros(span, dtype=bool)
    present[hours - low] = True
    rank = np.cumsum(present, dtype=np.intp) - 1
    return np.flatnonzero(present) + low, rank[hours - low]


def to_utc(local_micros: Ints, tz: tzinfo) -> Ints:
    """Naive local wall times -> UTC instants, as ``datetime(..., tzinfo=tz)`` reads them (fold=0).

    The zone's offset is looked up once per distinct hour; an hour whose offset changes inside it (a
    transition off the hour) is resolved value by value.
    """
    if len(local_micros) == 0:
        return local_micros.copy()
    hours, inverse = _distinct_hours(local_micros)
    offsets = np.empty(len(hours), dtype=np.int64)
    uneven: list[int] = []
    for i, hour in enumerate(hours.tolist()):
        start = _EPOCH + timedelta(hours=hour)
        first = _offset_micros(start, tz)
        if _offset_micros(start + timedelta(minutes=59, seconds=59, microseconds=999_999), tz) != first:
            uneven.append(i)
        offsets[i] = first
    utc = local_micros - offsets[inverse]
    for i in uneven:
        for row in np.flatnonzero(inverse == i).tolist():
            moment = _EPOCH + timedelta(microseconds=int(local_micros[row]))
            utc[row] = local_micros[row] - _offset_micros(moment, tz)
    return utc


def from_utc(utc_micros: Ints, tz: tzinfo) -> Ints:
    """UTC instants -> the zone's local wall times (``datetime.astimezone(tz)``), the offset looked up once
    per distinct hour (an hour with a transition inside it value by value)."""
    if len(utc_micros) == 0:
        return utc_micros.copy()
    hours, inverse = _distinct_hours(utc_micros)
    offsets = np.empty(len(hours), dtype=np.int64)
    uneven: list[int] = []
    for i, hour in enumerate(hours.tolist()):
        start = (_EPOCH + timedelta(hours=hour)).replace(tzinfo=UTC)
        first = _utc_offset_micros(start, tz)
        if _utc_offset_micros(start + timedelta(minutes=59, seconds=59, microseconds=999_999), tz) != first:
            uneven.append(i)
        offsets[i] = first
    local = utc_micros + offsets[inverse]
    for i in uneven:
        for row in np.flatnonzero(inverse == i).tolist():
            moment = (_EPOCH + timedelta(microseconds=int(utc_micros[row]))).replace(tzinfo=UTC)
            local[row] = utc_micros[row] + _utc_offset_micros(moment, tz)
    return local


def _utc_offset_micros(moment: datetime, tz: tzinfo) -> int:
    offset = moment.astimezone(tz).utcoffset()
    assert offset is not None
    return int(offset / timedelta(microseconds=1))


def local_days(local_micros: Ints) -> npt.NDArray[np.int32]:
    return np.asarray(np.floor_divide(local_micros, _MICROS_PER_DAY), dtype=np.int32)


# ------------------------------------------------------------------------------------------ value maps


@dataclass
class Mapped:
    values: pa.Array
    failure: Failure


def map_values(
    arr: pa.Array,
    *,
    exact: dict[str, str] | None,
    contains: Sequence[tuple[str, str]] | None,
    ignore_case: bool,
    default: str | None,
    reason: str,
    column: Callable[[npt.NDArray[np.intp]], list[str | None]],
) -> Mapped:
    """Exact or substring value map; unmapped values take ``default`` or reject the row with ``reason``."""
    n = len(arr)
    key = lower(arr) if ignore_case else arr
    if exact is not None:
        keys = [k.lower() if ignore_case else k for k in exact]
        idx = pc.index_in(key, value_set=pa.array(keys, pa.string()))
        # an unmapped value takes the entry after the map's, the default: no nulls to fill in the strings
        fill = pa.array([*exact.values(), default or ""], pa.string())
        result = pc.take(fill, pc.fill_null(idx, len(exact)) if idx.null_count else idx)
        unmapped = bools(pc.is_null(idx)) if idx.null_count and default is None else np.zeros(n, dtype=bool)
    else:
        result = pa.nulls(n, pa.string())
        for needle, value in contains or ():
            hit = pc.match_substring(key, needle.lower() if ignore_case else needle)
            result = pc.if_else(pc.and_(hit, pc.is_null(result)), pa.scalar(value), result)
        unmapped = bools(pc.is_null(result)) if default is None else np.zeros(n, dtype=bool)
        result = pc.fill_null(result, default if default is not None else "")

    def describe(rows: npt.NDArray[np.intp]) -> list[tuple[str | None, str]]:
        values = text_at(arr, rows)
        cols = column(rows)
        return [(cols[i], reason.replace("{value}", repr(values[i]))) for i in range(len(rows))]

    return Mapped(result, Failure(unmapped, describe))


# ------------------------------------------------------------------------------------------ conditions


def condition(
    cond: Condition,
    cell: Callable[[list[str]], pa.Array | None],
    n: int,
    filled: Callable[[list[str]], bool] | None = None,
) -> Bools:
    """Evaluate a row condition; ``cell(aliases)`` gives a cleaned column (None: absent from the file, read
    as empty); ``filled(aliases)``: the column is known to hold no empty value (its text is not needed to
    tell which rows are empty)."""
    if cond.all_ is not None:
        out = np.ones(n, dtype=bool)
        for sub in cond.all_:
            out &= condition(sub, cell, n, filled)
        return out
    if cond.any_ is not None:
        out = np.zeros(n, dtype=bool)
        for sub in cond.any_:
            out |= condition(sub, cell, n, filled)
        return out
    if cond.not_ is not None:
        return ~condition(cond.not_, cell, n, filled)
    assert cond.column is not None
    if cond.empty is not None and filled is not None and filled(cond.column):
        return np.full(n, not cond.empty)
    found = cell(cond.column)
    arr = found if found is not None else pa.array([""] * n, pa.string())
    if cond.ignore_case:
        arr = lower(arr)

    def fold(values: list[str]) -> list[str]:
        return [v.lower() if cond.ignore_case else v for v in values]

    if cond.equals is not None:
        return one_of(arr, fold([cond.equals]))
    if cond.in_ is not None:
        return one_of(arr, fold(cond.in_))
    if cond.not_in is not None:
        return ~one_of(arr, fold(cond.not_in))
    if cond.empty is not None:
        return empty(arr) if cond.empty else ~empty(arr)
    if cond.regex is not None:
        return bools(pc.match_substring_regex(arr, cond.regex))
    assert cond.nonzero is not None
    nonzero = ~empty(arr) & ~zero_amount(arr, AmountFormat())
    return nonzero if cond.nonzero else ~nonzero


def decimal_minor(value: Decimal, exp: int) -> int:
    """A profile's range bound (major units) in minor units."""
    return int(value.scaleb(exp).to_integral_value())
