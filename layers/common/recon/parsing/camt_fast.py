"""camt.053 entries read column by column from the bytes, exactly as ``camt`` reads them one by one.

A statement of 100,000 entries is 35 MB of XML. Building an element per tag (ElementTree) and a model per row
costs tens of microseconds an entry; this reader costs about one:

1. It checks the document is in the plain form it reads: UTF-8 without entities or characters XML forbids,
   entries that are ``<Ntry>`` children of ``<Stmt>`` elements, without comments, CDATA or processing
   instructions, entry tags of at most 16 bytes. Otherwise it returns None and ``camt.parse`` reads the
   document.
2. It finds where every tag starts with numpy and groups the entries by shape: the exact sequence of their
   tags (the tag bytes, attributes included). In the usual statement a run of entries has one shape, so each
   entry's tags are compared with the run's first entry's; otherwise (or where markup other than tags could
   hide a ``<``) every tag is found by both its brackets, with every ``>`` closing a tag, and the entries
   are grouped by a hash of their tags. ElementTree parses one entry of each shape and tells which tag opens
   which element, so every entry of that shape holds the same element at the same tag: a field is the
   column of texts after one tag position.
3. ``camt.parse`` itself reads the rest (statement ids and currencies, balances, TxsSummry, dates) from the
   document with each run of entries replaced by a placeholder; where it reaches a placeholder, the run's
   entries are converted with Arrow and numpy by the rules of ``camt._entry`` (status, sign, dates, ids,
   party, memo, order reference, type) and counted into the statement's totals.

An entry the careful reader would treat in any other way (a rejection, several ``TxDtls`` split into
transactions, a date or amount in another notation, ...) abandons this reader: ``camt.parse`` then reads the
whole document, so both always give the same result (tests/unit/parsing/test_parse_fastpaths.py and
test_camt_fast_tags.py compare them).
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections.abc import Callable
from dataclasses import dataclass
from datetime import tzinfo

import numpy as np
import numpy.typing as npt
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from recon.domain.statement import TxnStatus, TxnType
from recon.money import exponent
from recon.tables import ROW_SCHEMA

from . import camt, vector
from ._common import Builder, Context, RowFail, check_currency
from .model import PROFILE_VERSION, ParsedStatement, StatementParseError
from .profiles import AmountFormat
from .readers._bank import _CHANNEL, _FEE_MEMO

Ints = npt.NDArray[np.int64]
Bools = npt.NDArray[np.bool_]

RUN_TAG = "recon.entries"  # the placeholder of a run of entries in the document camt.parse reads
MAX_TAG_BYTES = 16  # entry tags are compared as two 8-byte words
MAX_SHAPES = 64  # more distinct entry layouts than this: the careful reader
_SLICE = 1 << 22  # bytes scanned at a time
_P = np.uint64(0x9E3779B97F4A7C15)  # odd multipliers of the shape hash
_Q = np.uint64(0xBF58476D1CE4E5B9)
_MICROS_PER_DAY = 86_400_000_000
_TYPES = [TxnType.ADJUSTMENT, TxnType.SETTLEMENT, TxnType.TRANSFER, TxnType.FEE]  # the types an entry takes
_STATUS = {"BOOK": TxnStatus.SUCCESS.value, "PDNG": TxnStatus.PENDING.value, "": TxnStatus.SUCCESS.value}
_STATUS_CODES = (b"BOOK", b"PDNG", b"INFO")  # the entry statuses as written, and the row status of each
_STATUS_OF_CODE = pa.array([TxnStatus.SUCCESS.value, TxnStatus.PENDING.value, ""], pa.string())
_INDICATORS = (b"CRDT", b"DBIT")
# _CHANNEL and _FEE_MEMO for Arrow (RE2). They agree with Python's ``re`` on ASCII text only (case
# folding, ``\b``): other text is matched by the Python patterns themselves.
_CHANNEL_RE2 = "(?i)" + _CHANNEL.pattern
_FEE_MEMO_RE2 = "(?i)" + _FEE_MEMO.pattern


class NotPlain(Exception):
    """The document (or one entry) is not in the plain form this reader reads: use ``camt.parse``."""


def read(data: bytes, ctx: Context, *, profile: str, file: str, raw_key: str) -> ParsedStatement | None:
    """The statement, or None when ``camt.parse`` must read it (see the module docstring)."""
    b = Builder(ctx, profile=profile)
    try:
        doc = _Document.of(data, file, raw_key)
        if doc is None:
            return None
        fmt, encoding, statement_date = camt.parse(doc.skeleton, b, file=file, raw_key=raw_key, runs=doc)
        if encoding != doc.encoding or len(doc.taken) != len(doc.runs):
            return None  # entries the careful reader would not have read as a statement's: let it say so
    except (NotPlain, camt.NotRead, RowFail, StatementParseError):
        return None
    except Exception:  # anything unexpected: the careful reader reads the document (and words its faults)
        return None
    return b.result(format=fmt, encoding=encoding, statement_date=statement_date)


# ---------------------------------------------------------------------------------------------- tokens


_ENTRY, _ENTRY_END = b"<Ntry>", b"</Ntry>"
# A start, end or empty-element tag whose attribute values hold no '<' or '>': where it ends is its first '>'.
_TAG = re.compile(rb"""<[^<>"']*(?:(?:"[^<>"]*"|'[^<>']*')[^<>"']*)*>""")
_DECLARATION = re.compile(rb"<\?xml[^<>]*\?>\s*")
_LOW_MASKS = np.array([(1 << (8 * k)) - 1 for k in range(8)] + [(1 << 64) - 1], dtype=np.uint64)


def _word(tag: bytes) -> int:
    return int.from_bytes(tag.ljust(8, b"\0")[:8], "little")


@dataclass
class _Tags:
    """Every tag of the document: where it starts (``<``) and ends (``>``) and its bytes (the first and the
    last 8: all of a tag of up to 16 bytes). Only for documents whose entries ``_Document`` cannot group
    run by run (see ``_Document._shapes``)."""

    lt: Ints
    gt: Ints
    length: Ints  # bytes, '<' and '>' included
    low: npt.NDArray[np.uint64]  # the first 8 bytes, little-endian (zeros past the tag's end)
    high: npt.NDArray[np.uint64]  # the last 8 bytes (0 for a tag of at most 8 bytes)

    @classmethod
    def of(cls, data: bytes) -> _Tags:
        """The tags of a plain document whose characters ``_starts`` has checked (``NotPlain`` otherwise):
        one pass over the bytes, a slice at a time, finds the angle brackets."""
        arr = np.frombuffer(data, dtype=np.uint8)
        brackets: list[Ints] = []
        for lo in range(0, len(arr), _SLICE):
            part = arr[lo : lo + _SLICE]
            brackets.append(np.flatnonzero((part | 2) == ord(">")) + lo)  # '<' and '>' (0x3C, 0x3E)
        found = np.concatenate(brackets)
        if len(found) < 2 or len(found) % 2:
            raise NotPlain("a '>' outside a tag")
        lt, gt = found[0::2].copy(), found[1::2].copy()
        if int(gt[0]) < 7 or int(lt[-1]) > len(data) - 8:
            raise NotPlain("a tag at the very edge of the document")
        words = _words(data)
        low = words[lt]
        high = words[gt - 7]
        # brackets alternate '<', '>' (a '>' in a text or a '<' in a tag would break this): the first byte
        # of each tag's low word, the last of its high word
        if not bool(np.all(low.view(np.uint8)[0::8] == ord("<"))) or not bool(
            np.all(high.view(np.uint8)[7::8] == ord(">"))
        ):
            raise NotPlain("a '>' outside a tag")
        length = gt - lt + 1
        low &= _LOW_MASKS[np.minimum(length, 8)]
        high[length <= 8] = 0
        return cls(lt, gt, length, low, high)


def _starts(data: bytes) -> tuple[Ints, npt.NDArray[np.uint64]]:
    """Where every tag starts (each ``<``) and the 8 bytes from there, little-endian, in one pass over the
    bytes (a slice at a time) that also checks the characters: ``NotPlain`` for one XML forbids."""
    arr = np.frombuffer(data, dtype=np.uint8)
    size = min(_SLICE, len(arr))
    shifted, hit = np.empty(size, dtype=np.uint8), np.empty(size, dtype=np.bool_)  # (reused by every slice)
    found: list[Ints] = []
    for lo in range(0, len(arr), _SLICE):
        part = arr[lo : lo + _SLICE]
        k = len(part)
        np.equal(part, ord("<"), out=hit[:k])
        at = np.flatnonzero(hit[:k])
        at += lo
        found.append(at)
        # Bytes below 0x20 and 0xEF (the lead of U+FFFE and U+FFFF, EF BF BE and EF BF BF) in one test:
        # shifted by 0x11 they are below 0x31 (with F0-FF, which the check of each one passes).
        np.add(part, 0x11, out=shifted[:k])
        np.less(shifted[:k], 0x31, out=hit[:k])
        if hit[:k].any():
            suspect = np.flatnonzero(hit[:k]) + lo
            byte = arr[suspect]
            control = byte[byte < 0x20]  # XML allows TAB, LF and CR only
            if not bool(np.all((control == 9) | (control == 10) | (control == 13))):
                raise NotPlain("a control character")
            lead = suspect[(byte == 0xEF) & (suspect + 2 < len(arr))]
            if len(lead) and bool(np.any((arr[lead + 1] == 0xBF) & ((arr[lead + 2] | 1) == 0xBF))):
                raise NotPlain("a non-character")
    lt = np.concatenate(found) if len(found) > 1 else found[0]
    if len(lt) < 2 or int(lt[-1]) > len(data) - 8:
        raise NotPlain("a tag at the very edge of the document")
    return lt, _words(data)[lt]


def _named(head: npt.NDArray[np.uint64], tag: bytes) -> Ints:
    """Indices of the tags (by their first 8 bytes, ``head``) that are exactly ``tag`` (at most 8 bytes,
    ``>`` included)."""
    return np.flatnonzero((head & _LOW_MASKS[len(tag)]) == np.uint64(_word(tag)))


def _words(data: bytes) -> npt.NDArray[np.uint64]:
    """``words[k]``: bytes k..k+7 of ``data`` as a little-endian integer (an overlapping view, no copy)."""
    return np.ndarray(shape=(len(data) - 7,), dtype="<u8", buffer=data, strides=(1,))


# ------------------------------------------------------------------------------------------- the document


class _Document:
    """The entries found in a plain document, their shapes, and the document without them."""

    tag = RUN_TAG

    def __init__(
        self,
        data: bytes,
        *,
        file: str,
        raw_key: str,
        lt: Ints,
        head: npt.NDArray[np.uint64],
        starts: Ints,
        ends: Ints,
        encoding: str,
    ) -> None:
        self.data = data
        self.file = file
        self.raw_key = raw_key
        self.lt = lt  # where each tag starts ('<')
        self.head = head  # ... and its first 8 bytes
        self.gt: Ints = np.zeros(len(lt), dtype=np.int64)  # where it ends ('>'): known for the shapes' tags
        self.starts = starts  # tag index of each entry's <Ntry>
        self.ends = ends  # ... and of its </Ntry>
        self.encoding = encoding
        self.runs: list[tuple[int, int]] = []
        self.taken: set[int] = set()  # runs the careful reader has met
        self._whole: pa.Buffer | None = None
        self._odd: dict[int, pa.Array] = {}  # the indices 1, 3, 5, ... by count (see _slices)
        self._returns = b"\r" in data  # (texts are then checked for one)
        self.skeleton = self._cut()
        self.shape_of, self.shapes = self._shapes()

    @classmethod
    def of(cls, data: bytes, file: str, raw_key: str) -> _Document | None:
        if len(data) < 64:
            return None
        try:
            encoding = camt._declared_encoding(data[:4096], file)  # (declared at the start)
        except StatementParseError:
            return None  # a DTD: the careful reader refuses it, in its words
        if encoding not in ("utf-8", "utf-8-sig") or not _plain_bytes(data):
            return None
        lt, head = _starts(data)
        starts, ends = _named(head, _ENTRY), _named(head, _ENTRY_END)
        if not len(starts):
            return None  # nothing to read quickly
        if (
            len(starts) != len(ends)
            or not bool(np.all(starts < ends))
            or not bool(np.all(ends[:-1] < starts[1:]))
        ):
            raise NotPlain("nested or unbalanced entries")
        return cls(
            data, file=file, raw_key=raw_key, lt=lt, head=head, starts=starts, ends=ends, encoding=encoding
        )

    # The careful reader meets a placeholder: these entries, in this statement.
    def take(self, b: Builder, stmt: camt.StmtState, run: int, ordinal: int) -> int:
        if not 0 <= run < len(self.runs):
            raise NotPlain("unknown run")
        first, last = self.runs[run]
        if run in self.taken:
            raise NotPlain("a run met twice")
        self.taken.add(run)
        totals = stmt.totals
        assert totals is not None
        entries = _Entries(self, (first, last), stmt=stmt, b=b, ordinal=ordinal)
        rows, skipped = entries.convert()
        stmt.entries += last - first
        if rows.num_rows:
            b.add_rows(rows)
        for _ in range(skipped):
            b.skip("info_entry")
        return last - first

    def _cut(self) -> bytes:
        """The document with each run of consecutive entries replaced by ``<recon.entries run="n"/>``."""
        follows = self.starts[1:] == self.ends[:-1] + 1  # nothing but text between two entries
        breaks = np.flatnonzero(~follows)
        firsts = np.concatenate(([0], breaks + 1)).tolist()
        lasts = np.concatenate((breaks + 1, [len(self.starts)])).tolist()
        pieces: list[bytes] = []
        at = 0
        for r, (first, last) in enumerate(zip(firsts, lasts, strict=True)):
            self.runs.append((first, last))
            begin = int(self.lt[self.starts[first]])
            pieces.append(self.data[at:begin])
            pieces.append(f'<{RUN_TAG} run="{r}"/>'.encode())
            at = int(self.lt[self.ends[last - 1]]) + len(_ENTRY_END)
        pieces.append(self.data[at:])
        if any(RUN_TAG.encode() in piece for piece in pieces[0::2]):
            raise NotPlain("the placeholder name occurs in the document")
        return b"".join(pieces)

    def _shapes(self) -> tuple[Ints, list[_Shape]]:
        """Each entry's shape (index into the list); the entries of a shape have byte-identical tags."""
        same = self._one_shape_per_run() if self._only_tags() else None
        if same is not None:
            return same
        tags = _Tags.of(self.data)
        if not np.array_equal(tags.lt, self.lt):
            raise NotPlain("a '<' that starts no tag")
        self.gt = tags.gt
        counts = self.ends - self.starts + 1
        lo, hi = int(self.starts[0]), int(self.ends[-1]) + 1  # the tags from the first entry to the last
        bounds = np.empty(2 * len(counts), dtype=np.int64)  # each entry's tags: [bounds[2i], bounds[2i+1])
        bounds[0::2] = self.starts - lo
        bounds[1::2] = self.ends - lo + 1
        cut = bounds[:-1] if bounds[-1] == hi - lo else bounds
        length = tags.length[lo:hi]
        if int(np.maximum.reduceat(length, cut)[0::2].max()) > MAX_TAG_BYTES:
            raise NotPlain("an entry tag longer than 16 bytes")
        low, high = tags.low[lo:hi], tags.high[lo:hi]
        # A shape hash: each tag's bytes weighted by its position in the entry (sum of key * (t - start),
        # from two sums over the whole range). Entries of one hash are then compared tag by tag, exactly.
        key = (low * _P) ^ (high * _Q) ^ length.astype(np.uint64)
        position = np.arange(hi - lo, dtype=np.uint64)
        plain = np.add.reduceat(key, cut)[0::2]
        weighted = np.add.reduceat(key * position, cut)[0::2]
        first = (self.starts - lo).astype(np.uint64)
        hashed = (weighted - first * plain) * _Q ^ plain ^ (counts.astype(np.uint64) * _P)
        codes, _ = pd.factorize(hashed)
        shape_of = np.asarray(codes, dtype=np.int64)
        if int(shape_of.max()) >= MAX_SHAPES:
            raise NotPlain("too many entry layouts")
        shapes: list[_Shape] = []
        for k in range(int(shape_of.max()) + 1):
            members = np.flatnonzero(shape_of == k)
            c = int(counts[members[0]])
            if not bool(np.all(counts[members] == c)):
                raise NotPlain("entry hash collision")
            grid = (self.starts[members] - lo)[:, None] + np.arange(c)
            for values in (low, high, length):
                cells = values[grid]
                if not bool(np.all(cells == cells[0])):
                    raise NotPlain("entry hash collision")
            shapes.append(_Shape.of(self, int(members[0])))
        return shape_of, shapes

    def _one_shape_per_run(self) -> tuple[Ints, list[_Shape]] | None:
        """The usual statement: in each run every entry has the same tags as the run's first entry, whose
        tags (at most 16 bytes each) are read with their quotes. Checked by comparing each tag's first and
        last 8 bytes with those of the first entry's (no hashing, and only the '<' of every tag needed: a
        '>' may then stand in a text, as XML allows); None otherwise."""
        counts = self.ends - self.starts + 1
        shape_of = np.empty(len(counts), dtype=np.int64)
        shapes: list[_Shape] = []
        layouts: list[bytes] = []  # each shape's tags, to know a layout an earlier run had
        words = _words(self.data)
        for first, last in self.runs:
            c = int(counts[first])
            if not bool(np.all(counts[first:last] == c)):
                return None
            n = last - first
            lo = int(self.starts[first])
            hi = lo + n * c  # (a run's entries follow each other: its tags are c per entry)
            length = np.array([self._tag_length(t) for t in range(lo, lo + c)], dtype=np.int64)
            masks = _LOW_MASKS[np.minimum(length, 8)]
            if not bool(np.all((self.head[lo:hi].reshape(n, c) & masks) == (self.head[lo : lo + c] & masks))):
                return None
            long = np.flatnonzero(length > 8)
            if len(long):  # their last 8 bytes too (one flat gather: a 2-D one is several times slower)
                at = self.lt[lo:hi].reshape(n, c)[:, long] + (length[long] - 8)
                tails = words[at.reshape(-1)]
                if not bool(np.all(tails.reshape(n, len(long)) == tails[: len(long)])):
                    return None
            self.gt[lo : lo + c] = self.lt[lo : lo + c] + (length - 1)  # (the first entry's, for _Shape.of)
            layout = b"".join(
                self.data[int(self.lt[t]) : int(self.lt[t]) + int(size)]
                for t, size in zip(range(lo, lo + c), length, strict=True)
            )
            if layout not in layouts:
                layouts.append(layout)
                shapes.append(_Shape.of(self, first))
            shape_of[first:last] = layouts.index(layout)
        return shape_of, shapes

    def _only_tags(self) -> bool:
        """Every '<' starts a tag: no markup but tags (a comment, CDATA or a processing instruction may hide
        a '<'; then every tag is found by both its brackets), the XML declaration aside."""
        marks = self.head.view(np.uint8)[1::8]
        if bool(np.any((marks[1:] == ord("!")) | (marks[1:] == ord("?")))):
            return False
        return marks[0] != ord("!") and (
            marks[0] != ord("?")
            or _DECLARATION.fullmatch(self.data, int(self.lt[0]), int(self.lt[1])) is not None
        )

    def _tag_length(self, t: int) -> int:
        """Bytes of tag ``t``, '<' to '>' (a '>' in a quoted attribute value, or more than 16 bytes:
        ``NotPlain``)."""
        found = _TAG.match(self.data, int(self.lt[t]))
        if found is None:
            raise NotPlain("a tag with '<' or '>' in an attribute value")
        size = found.end() - found.start()
        if size > MAX_TAG_BYTES:
            raise NotPlain("an entry tag longer than 16 bytes")
        return size

    def texts(self, base: _Base, shape: _Shape, slot: int | None) -> pa.Array:
        """The text (stripped) of the element opened at tag ``slot`` of the entries of ``shape`` whose
        ``<Ntry>`` tags are ``base`` ("" where it has none)."""
        if slot is None or slot < 0:
            return vector.const("", _count(base))
        found = self._slices(*self._bounds(base, shape, slot))
        return found if _plain_edges(found) else _strip(found)

    def codes(
        self, base: _Base, shape: _Shape, slot: int | None, values: tuple[bytes, ...]
    ) -> npt.NDArray[np.int8] | None:
        """Which of ``values`` (4 bytes each) the text after tag ``slot`` is, per entry, read from the bytes
        without building strings; None unless every text is exactly one of them (``texts`` then reads it)."""
        if slot is None or slot < 0:
            return None
        begin, end = self._bounds(base, shape, slot)
        if not bool(np.all(end - begin == 4)):
            return None
        words: npt.NDArray[np.uint32] = np.ndarray(
            shape=(len(self.data) - 3,), dtype="<u4", buffer=self.data, strides=(1,)
        )
        found = words[begin]
        code = np.full(len(found), -1, dtype=np.int8)
        for k, value in enumerate(values):
            code[found == int.from_bytes(value, "little")] = k
        return None if bool((code < 0).any()) else code

    def _bounds(self, base: _Base, shape: _Shape, slot: int) -> tuple[Ints, Ints]:
        """Where the text after tag ``slot`` of each entry begins and ends."""
        if isinstance(base, slice):  # (every step-th tag: read in stride, no gather)
            assert base.start is not None
            at = slice(base.start + slot, base.stop + slot, base.step)
            after = slice(base.start + slot + 1, base.stop + slot + 1, base.step)
            return self.lt[at] + shape.widths[slot], self.lt[after]
        tag = base + slot
        return self.lt[tag] + shape.widths[slot], self.lt[tag + 1]

    def _slices(self, begin: Ints, end: Ints) -> pa.Array:
        """``data[begin[i]:end[i]]`` (ascending, disjoint ranges) as strings: the document seen as the
        values begin0-end0, end0-begin1, begin1-end1, ... of which every other one is taken (one copy)."""
        n = len(begin)
        if n == 0:
            return pa.array([], pa.string())
        bounds = np.empty(2 * n + 1, dtype=np.int32)
        bounds[0] = 0
        bounds[1::2] = begin
        bounds[2::2] = end
        if self._whole is None:
            self._whole = pa.py_buffer(self.data)
        view = pa.Array.from_buffers(pa.binary(), 2 * n, [None, pa.py_buffer(bounds), self._whole])
        odd = self._odd.get(n)
        if odd is None:  # (the same for every column of a run)
            odd = self._odd[n] = pa.array(np.arange(1, 2 * n, 2, dtype=np.int64))
        taken = view.take(odd)
        if self._returns:
            found = vector.value_bytes(taken)
            if found is not None and bool((found[1] == 13).any()):
                raise NotPlain("a carriage return inside a text (XML reads it as a line feed)")
        # (strings without a second validation: the document is UTF-8 and every cut is next to '<' or '>')
        return pa.Array.from_buffers(pa.string(), n, taken.buffers())


_Base = Ints | slice  # the <Ntry> tags of some entries: indices, or every step-th tag of a range


def _progression(base: Ints) -> _Base:
    """``base`` as a slice when its tags are evenly spaced (the entries of one layout, one after the
    other: the usual run)."""
    n = len(base)
    if n < 2:
        return base
    step = int(base[1] - base[0])
    if step <= 0 or int(base[-1] - base[0]) != step * (n - 1) or not bool(np.all(np.diff(base) == step)):
        return base
    return slice(int(base[0]), int(base[-1]) + 1, step)


def _count(base: _Base) -> int:
    return len(range(base.start, base.stop, base.step)) if isinstance(base, slice) else len(base)


def _plain_bytes(data: bytes) -> bool:
    """No entity or character reference, no ``]]>`` (ElementTree would decode or refuse them), and UTF-8
    (control and non-characters are checked with the tags)."""
    if b"&" in data or (b"]" in data and b"]]>" in data):
        return False
    try:
        offsets = pa.py_buffer(np.array([0, len(data)], dtype=np.int32))
        pa.Array.from_buffers(pa.binary(), 1, [None, offsets, pa.py_buffer(data)]).cast(pa.string())
    except (pa.ArrowInvalid, OverflowError):
        return False  # not UTF-8 (the cast validates without copying)
    return True


def _plain_edges(arr: pa.Array) -> bool:
    """No value starts or ends with whitespace (every first and last byte is printable ASCII or part of a
    multi-byte character other than a space's): stripping would change nothing."""
    found = vector.value_bytes(arr)
    if found is None:
        return False
    offsets, body = found
    filled = offsets[1:] > offsets[:-1]
    if not filled.any():
        return True
    edges = np.concatenate((body[offsets[:-1][filled]], body[offsets[1:][filled] - 1]))
    # ASCII whitespace and control bytes; 0xC2 0x85/0xA0, 0xE1 0x9A 0x80, 0xE2 0x80 0x8x.., 0xE3 0x80 0x80
    # (the whitespace outside ASCII) start with C2, E1, E2 or E3 and end with 0x80-0xAF or 0x9F
    return not bool(
        np.any((edges <= 0x20) | (edges == 0xC2) | (edges == 0xE1) | (edges == 0xE2) | (edges == 0xE3))
        or np.any((edges >= 0x80) & (edges <= 0xAF))
        or np.any(edges == 0x9F)
    )


def _strip(arr: pa.Array) -> pa.Array:
    """``str.strip()``: Arrow's whitespace is Python's (tests check it)."""
    return pc.utf8_trim_whitespace(arr)


# ----------------------------------------------------------------------------------------------- shapes


@dataclass
class _Shape:
    """Where each field of ``camt._entry`` is, in the entries of one layout: tag positions ("slots")."""

    status_cd: int | None
    status: int | None
    amount: int | None
    amount_ccy: str
    indicator: int | None
    booked: tuple[int | None, int | None] | None  # (Dt, DtTm) of BookgDt
    value: tuple[int | None, int | None] | None
    reversal: int | None
    entry_refs: tuple[int | None, int | None]  # Ntry/AcctSvcrRef, Ntry/NtryRef
    tx_refs: tuple[int | None, ...]  # TxDtls/Refs AcctSvcrRef, EndToEndId, TxId, InstrId
    parties: dict[str, tuple[int | None, ...]]  # by role
    ustrd: tuple[int, ...]
    addtl_tx: int | None
    addtl_ntry: int | None
    strd_refs: tuple[int | None, ...]
    end_to_end: int | None
    codes: tuple[int | None, ...]  # BkTxCd codes of the entry and of its TxDtls
    widths: tuple[int, ...]  # bytes of each tag ('<' to '>'): a slot's text follows its tag

    @classmethod
    def of(cls, doc: _Document, entry: int) -> _Shape:
        lt, gt = doc.lt, doc.gt
        first, last = int(doc.starts[entry]), int(doc.ends[entry])
        raw = doc.data[int(lt[first]) : int(gt[last]) + 1]
        try:
            ntry = ET.fromstring(raw)  # noqa: S314 - the document has no DTD (refused before)
        except ET.ParseError as exc:
            raise NotPlain(str(exc)) from exc
        # The k-th element in document order is opened by the k-th start (or empty-element) tag.
        kinds = [
            doc.data[int(lt[t]) + 1 : int(lt[t]) + 2] + doc.data[int(gt[t]) - 1 : int(gt[t])]
            for t in range(first, last + 1)
        ]
        if any(k[:1] in (b"!", b"?") for k in kinds):
            raise NotPlain("a comment, CDATA or processing instruction in an entry")
        opened = [j for j, k in enumerate(kinds) if k[:1] != b"/"]
        elements = list(ntry.iter())
        if len(elements) != len(opened) or camt.local(ntry.tag) != "Ntry":
            raise NotPlain("entry structure")
        slot_of: dict[int, int] = {}
        for el, j in zip(elements, opened, strict=True):
            # an empty element (<a/>) has no text: its slot reads nothing
            slot_of[id(el)] = -1 if kinds[j][1:] == b"/" else j

        def slot(el: ET.Element | None, *path: str) -> int | None:
            found = camt.child(el, *path)
            return None if found is None else slot_of[id(found)]

        txs = camt.descendants(camt.child(ntry, "NtryDtls"), "TxDtls")
        # any amount on every TxDtls: the careful reader decides whether (and in which currency) to split
        if len(txs) > 1 and all(camt._tx_amounts(tx) for tx in txs):
            raise NotPlain("an entry split into several transactions")
        tx = txs[0] if txs else None
        amount = camt.child(ntry, "Amt")
        rmt = camt.child(tx, "RmtInf")
        parties = camt.child(tx, "RltdPties")

        def when(name: str) -> tuple[int | None, int | None] | None:
            el = camt.child(ntry, name)
            return None if el is None else (slot(el, "Dt"), slot(el, "DtTm"))

        def codes(el: ET.Element | None) -> list[int | None]:
            bk = camt.child(el, "BkTxCd")
            return [
                slot(bk, "Domn", "Cd"),
                slot(bk, "Domn", "Fmly", "Cd"),
                slot(bk, "Domn", "Fmly", "SubFmlyCd"),
                slot(bk, "Prtry", "Cd"),
            ]

        return cls(
            status_cd=slot(ntry, "Sts", "Cd"),
            status=slot(ntry, "Sts"),
            amount=None if amount is None else slot_of[id(amount)],
            amount_ccy="" if amount is None else amount.get("Ccy", ""),
            indicator=slot(ntry, "CdtDbtInd"),
            booked=when("BookgDt"),
            value=when("ValDt"),
            reversal=slot(ntry, "RvslInd"),
            entry_refs=(slot(ntry, "AcctSvcrRef"), slot(ntry, "NtryRef")),
            tx_refs=tuple(
                slot(tx, "Refs", name) for name in ("AcctSvcrRef", "EndToEndId", "TxId", "InstrId")
            ),
            parties={
                role: tuple(
                    slot(parties, *path)
                    for path in (
                        (role, "Nm"),
                        (role, "Pty", "Nm"),
                        ("Ultmt" + role, "Nm"),
                        ("Ultmt" + role, "Pty", "Nm"),
                    )
                )
                for role in ("Dbtr", "Cdtr")
            },
            ustrd=tuple(slot_of[id(u)] for u in camt.kids(rmt, "Ustrd")),
            addtl_tx=slot(tx, "AddtlTxInf"),
            addtl_ntry=slot(ntry, "AddtlNtryInf"),
            strd_refs=tuple(slot(strd, "CdtrRefInf", "Ref") for strd in camt.kids(rmt, "Strd")),
            end_to_end=slot(tx, "Refs", "EndToEndId"),
            codes=tuple(codes(ntry) + codes(tx)),
            widths=tuple(int(gt[t] - lt[t]) + 1 for t in range(first, last + 1)),
        )


# ---------------------------------------------------------------------------------------------- entries


@dataclass
class _Converted:
    """The entries of one shape in a run, converted (one value per entry)."""

    info: Bools  # status INFO: skipped
    book: Bools  # status BOOK: counted into the booked total
    amount: Ints  # signed minor units
    currency: str
    currency_column: pa.Array
    booked_utc: Ints  # microseconds
    value_day: Ints  # days since 1970-01-01
    txn_id: pa.Array
    order_ref: pa.Array
    party: pa.Array
    memo: pa.Array
    txn_type: pa.Array
    status: pa.Array


class _Entries:
    """One run of a statement's entries, converted as ``camt._entry`` converts each."""

    def __init__(
        self, doc: _Document, run: tuple[int, int], *, stmt: camt.StmtState, b: Builder, ordinal: int
    ) -> None:
        first, last = run
        self.doc = doc
        self.first = first
        self.last = last
        self.stmt = stmt
        self.b = b
        self.ordinal = ordinal

    def convert(self) -> tuple[pa.Table, int]:
        """(the rows of the run, in document order; how many INFO entries were skipped)."""
        doc = self.doc
        n = self.last - self.first
        shape_of = doc.shape_of[self.first : self.last]
        parts: list[tuple[Ints, _Converted]] = []
        for k in np.unique(shape_of).tolist():
            local = np.flatnonzero(shape_of == k)
            parts.append((local, self._shape(doc.shapes[k], local)))
        order = np.argsort(np.concatenate([local for local, _ in parts]), kind="stable")

        def num(name: str) -> Ints:
            joined = np.concatenate([getattr(c, name) for _, c in parts])
            out: Ints = joined if len(parts) == 1 else joined[order]
            return out

        def arr(name: str) -> pa.Array:
            pieces = [getattr(c, name) for _, c in parts]
            if len(pieces) == 1:
                return pieces[0]
            return pa.concat_arrays(pieces).take(pa.array(order))

        info = num("info").astype(bool)
        amount = num("amount")
        # Totals as camt._entry keeps them: every entry whose amount reads, INFO ones too.
        totals = self.stmt.totals
        assert totals is not None
        credit = amount >= 0
        totals.count += n
        totals.abs_sum += int(np.abs(amount).sum())
        totals.credits += int(credit.sum())
        totals.credit_sum += int(amount[credit].sum())
        totals.debits += int((~credit).sum())
        totals.debit_sum -= int(amount[~credit].sum())
        for _, c in parts:
            if c.book.any():
                totals.booked[c.currency] = totals.booked.get(c.currency, 0) + int(c.amount[c.book].sum())
        keep = ~info
        every = bool(keep.all())
        rows = int(keep.sum())
        ctx = self.b.ctx

        def kept(values: pa.Array | Ints) -> pa.Array:
            if isinstance(values, np.ndarray):
                return pa.array(values if every else values[keep])
            return values if every else pc.filter(values, pa.array(keep))

        txn_id = kept(arr("txn_id"))
        row_number = np.maximum(self.ordinal + np.arange(n, dtype=np.int64), 1)
        table = pa.table(
            {
                "txn_uid": pc.binary_join_element_wise(
                    pa.scalar(f"{ctx.source}:{ctx.account_id}:"), txn_id, ""
                ),
                "source": vector.const(str(ctx.source), rows),
                "account_id": vector.const(ctx.account_id, rows),
                "statement_id": vector.const(ctx.statement_id, rows),
                "txn_id": txn_id,
                "order_ref": vector.nulls_for_empty(kept(arr("order_ref"))),
                "refund_ref": pa.nulls(rows, pa.string()),
                "amount_minor": kept(amount),
                "fee_minor": pa.array(np.zeros(rows, dtype=np.int64)),
                "net_minor": kept(amount),
                "currency": kept(arr("currency_column")),
                "booked_at": kept(num("booked_utc")).cast(pa.timestamp("us", tz="UTC")),
                "value_date": kept(num("value_day")).cast(pa.int32()).cast(pa.date32()),
                "txn_type": kept(arr("txn_type")),
                "status": kept(arr("status")),
                "counterparty": vector.nulls_for_empty(kept(arr("party"))),
                "memo": vector.nulls_for_empty(kept(arr("memo"))),
                "raw_key": vector.const(doc.raw_key, rows),
                "row_number": kept(row_number).cast(pa.int32()),
                "profile": vector.const(self.b.profile, rows),
                "profile_version": vector.const(PROFILE_VERSION, rows),
            }
        )
        return table.cast(ROW_SCHEMA), int(info.sum())

    # ------------------------------------------------------------------------------------------ a shape
    def _shape(self, shape: _Shape, local: Ints) -> _Converted:
        doc = self.doc
        entries = self.first + local
        m = len(local)
        tz = self.b.ctx.tz

        base = _progression(doc.starts[entries])
        read: dict[int | None, pa.Array] = {}

        def text(slot: int | None) -> pa.Array:
            if slot not in read:
                read[slot] = doc.texts(base, shape, slot)
            return read[slot]

        def first_filled(*slots: int | None) -> list[Callable[[], pa.Array]]:
            # (an absent element reads "": it never fills a value)
            present: list[int | None] = [s for s in slots if s is not None and s >= 0]
            return [lambda slot=slot: text(slot) for slot in present or [None]]  # type: ignore[misc]

        # Status, indicator, amount: a row the careful reader would reject abandons this one. Status and
        # indicator are read from the bytes when each is exactly one of its codes (the usual statement).
        if shape.amount is None:
            raise NotPlain("amount missing")
        acct_ccy = self.stmt.acct_ccy
        ccy = check_currency(shape.amount_ccy, acct_ccy, "Amt@Ccy")  # RowFail: the careful reader words it
        minor = vector.fast_amounts(text(shape.amount), np.full(m, exponent(ccy), dtype=np.int64), _PLAIN)
        if minor is None or bool((minor < 0).any()):
            raise NotPlain("an amount in another notation")
        indicator_code = doc.codes(base, shape, shape.indicator, _INDICATORS)
        if indicator_code is not None:
            debit = indicator_code == _INDICATORS.index(b"DBIT")
        else:
            indicator = _py_map(text(shape.indicator), str.upper)
            if not bool(pc.all(pc.is_in(indicator, value_set=pa.array(["CRDT", "DBIT"]))).as_py()):
                raise NotPlain("CdtDbtInd")
            debit = np.asarray(pc.equal(indicator, "DBIT").to_numpy(zero_copy_only=False), dtype=bool)
        amount = np.where(debit, -minor, minor)
        # (Sts/Cd, else Sts: the one whose text the careful reader reads when Sts/Cd is absent or empty)
        status_slot = shape.status if shape.status_cd is None or shape.status_cd < 0 else shape.status_cd
        status_code = doc.codes(base, shape, status_slot, _STATUS_CODES)
        if status_code is not None:
            info = status_code == _STATUS_CODES.index(b"INFO")
            book = status_code == _STATUS_CODES.index(b"BOOK")
            state = _STATUS_OF_CODE.take(pa.array(status_code))
        else:
            status = _py_map(_first_filled(first_filled(shape.status_cd, shape.status)), str.upper)
            info = _equals(status, "INFO")
            book = _equals(status, "BOOK")
            known = np.asarray(
                pc.is_in(status, value_set=pa.array(list(_STATUS))).to_numpy(zero_copy_only=False), dtype=bool
            )
            if bool((~known & ~info).any()):
                raise NotPlain("entry status")
            state = pc.take(
                pa.array([_STATUS.get(s, "") for s in pc.unique(status).to_pylist()]),
                pc.index_in(status, value_set=pc.unique(status)),
            )
        # Dates: BookgDt, else ValDt (INFO entries are skipped before the careful reader reads them).
        booked, booked_ok = self._when(shape, shape.booked, base, info)
        value, value_ok = self._when(shape, shape.value, base, info)
        booked_utc = np.where(booked_ok, booked, value)
        if bool((~(booked_ok | value_ok) & ~info).any()):
            raise NotPlain("an entry without a date")
        value_utc = np.where(value_ok, value, booked_utc)
        value_day = np.floor_divide(vector.from_utc(value_utc, tz), _MICROS_PER_DAY)
        reversal = _py_map(text(shape.reversal), str.lower)
        reversed_ = np.asarray(
            pc.is_in(reversal, value_set=pa.array(["true", "1"])).to_numpy(zero_copy_only=False), dtype=bool
        )
        # The entry id: Ntry/AcctSvcrRef, NtryRef, then the first TxDtls' references, else statement:ordinal.
        k = self.stmt.entries + local + 1
        stmt_id = self.stmt.stmt_id or f"Stmt{self.stmt.s}"
        fallback = pc.binary_join_element_wise(
            pa.scalar(f"{stmt_id}:"), pc.cast(pa.array(k), pa.string()), ""
        )
        refs = [lambda slot=slot: _provided(text(slot)) for slot in shape.tx_refs]
        txn_id = _first_filled([*first_filled(*shape.entry_refs), *refs, lambda: fallback])
        # Party by the sign, memo, order reference, type.
        credit = amount >= 0
        debtor = _first_filled(first_filled(*shape.parties["Dbtr"])) if credit.any() else vector.const("", m)
        creditor = _first_filled(first_filled(*shape.parties["Cdtr"])) if not credit.all() else debtor
        party = (
            creditor
            if not credit.any()
            else debtor
            if credit.all()
            else pc.if_else(pa.array(credit), debtor, creditor)
        )

        def unstructured() -> pa.Array:
            ustrd = [vector.nulls_for_empty(text(s)) for s in shape.ustrd]
            if not ustrd:
                return vector.const("", m)
            if len(ustrd) == 1:
                return text(shape.ustrd[0])
            return pc.fill_null(pc.binary_join_element_wise(*ustrd, " ", null_handling="skip"), "")

        memo = _first_filled([unstructured, *first_filled(shape.addtl_tx, shape.addtl_ntry)])
        order_ref = _first_filled(
            [*first_filled(*shape.strd_refs), lambda: _provided(text(shape.end_to_end))]
        )
        fee_code = np.zeros(m, dtype=bool)
        for slot in shape.codes:
            if slot is not None:
                found = pc.is_in(text(slot), value_set=pa.array(sorted(camt._FEE_CODES)))
                fee_code |= np.asarray(found.to_numpy(zero_copy_only=False), dtype=bool)
        # (each pattern is searched only where it can decide the type: channels for credits, fee words for
        # debits without a fee code; reversals are adjustments whatever their text)
        channel = _search(
            _CHANNEL, _CHANNEL_RE2, pc.binary_join_element_wise(party, memo, " "), credit & ~reversed_
        )
        fee_memo = _search(_FEE_MEMO, _FEE_MEMO_RE2, memo, ~credit & ~reversed_ & ~fee_code)
        kinds = pa.array([t.value for t in _TYPES], pa.string())
        kind = np.where(
            reversed_,
            _TYPES.index(TxnType.ADJUSTMENT),
            np.where(
                amount >= 0,
                np.where(channel, _TYPES.index(TxnType.SETTLEMENT), _TYPES.index(TxnType.TRANSFER)),
                np.where(fee_code | fee_memo, _TYPES.index(TxnType.FEE), _TYPES.index(TxnType.TRANSFER)),
            ),
        )
        return _Converted(
            info=info,
            book=book,
            amount=amount,
            currency=ccy,
            currency_column=vector.const(ccy, m),
            booked_utc=booked_utc,
            value_day=value_day,
            txn_id=txn_id,
            order_ref=order_ref,
            party=party,
            memo=memo,
            txn_type=kinds.take(pa.array(kind, pa.int8())),
            status=state,
        )

    def _when(
        self, shape: _Shape, where: tuple[int | None, int | None] | None, base: _Base, info: Bools
    ) -> tuple[Ints, Bools]:
        """(UTC microseconds, present) of a date choice element, as ``camt._when`` reads it."""
        m = _count(base)
        none = np.zeros(m, dtype=np.int64), np.zeros(m, dtype=bool)
        if where is None:
            return none
        tz = self.b.ctx.tz
        day = self.doc.texts(base, shape, where[0])
        moment = self.doc.texts(base, shape, where[1]) if where[1] is not None else vector.const("", m)
        has_day = ~vector.empty(day)
        has_moment = ~has_day & ~vector.empty(moment)
        out: npt.NDArray[np.int64] = np.zeros(m, dtype=np.int64)
        need = ~info
        # (a value that is not needed is never converted: it may be anything)
        if bool((has_day & need).any()):
            days = np.where(has_day & need, _iso_days(day, has_day & need), 0)
            out = np.where(has_day, vector.to_utc(days * _MICROS_PER_DAY, tz), out).astype(np.int64)
        if bool((has_moment & need).any()):
            out = np.where(has_moment, _moments(moment, has_moment & need, tz), out).astype(np.int64)
        return out, has_day | has_moment


# ---------------------------------------------------------------------------------------- conversions


_PLAIN = AmountFormat()  # camt amounts: plain decimals, '.' as the point


def _first_filled(candidates: list[Callable[[], pa.Array]]) -> pa.Array:
    """``a or b or c ...`` per value (Python's truthiness of strings); a candidate is read only when a
    value is still empty."""
    out = candidates[0]()
    for candidate in candidates[1:]:
        missing = vector.empty(out)
        if not missing.any():
            break
        out = pc.if_else(pa.array(missing), candidate(), out)
    return out


def _provided(arr: pa.Array) -> pa.Array:
    """The value, or "" where it reads NOTPROVIDED (any case)."""
    hidden = _equals(_py_map(arr, str.upper), "NOTPROVIDED")
    return pc.if_else(pa.array(hidden), pa.scalar(""), arr) if hidden.any() else arr


def _equals(arr: pa.Array, value: str) -> Bools:
    return np.asarray(pc.equal(arr, value).to_numpy(zero_copy_only=False), dtype=bool)


def _py_map(arr: pa.Array, fn: Callable[[str], str]) -> pa.Array:
    """``fn`` (``str.upper``, ``str.lower``) on every value, exactly as Python does it: Arrow's ASCII case
    mapping when every value is ASCII, else Python on the distinct values."""
    if vector.all_ascii(arr):
        return pc.ascii_upper(arr) if fn is str.upper else pc.ascii_lower(arr)
    encoded = pc.dictionary_encode(arr)
    mapped = pa.array([fn(v) for v in encoded.dictionary.to_pylist()], pa.string())
    return mapped.take(encoded.indices)


def _search(pattern: re.Pattern[str], re2: str, arr: pa.Array, where: Bools) -> Bools:
    """``pattern.search(value)`` per value ``where`` it is asked (False elsewhere): Arrow's RE2 for ASCII
    values (where the two agree), Python's ``re`` for the others."""
    if not where.all():
        asked: Bools = np.zeros(len(arr), dtype=bool)
        if where.any():
            asked[where] = _search(pattern, re2, arr.filter(pa.array(where)), np.ones(int(where.sum()), bool))
        return asked
    n = len(arr)
    if not n:
        return np.zeros(0, dtype=bool)
    found = np.asarray(
        pc.fill_null(pc.match_substring_regex(arr, re2), False).to_numpy(zero_copy_only=False), dtype=bool
    )
    if vector.all_ascii(arr):  # (one pass over the bytes: no value to leave to Python)
        return found
    ascii_ = np.asarray(pc.string_is_ascii(arr).to_numpy(zero_copy_only=False), dtype=bool)
    others = np.flatnonzero(~ascii_)
    if len(others):
        values = arr.take(pa.array(others)).to_pylist()
        found[others] = [pattern.search(v or "") is not None for v in values]
    return found


def _heads(arr: pa.Array, width: int, need: Bools) -> tuple[npt.NDArray[np.uint8], Ints]:
    """(the first ``width`` bytes of each value as rows of a matrix, each value's length in bytes); the
    rows of values shorter than ``width`` are undefined (they must not be needed)."""
    found = vector.value_bytes(arr)
    if found is None:
        raise NotPlain("no plain text")
    offsets, body = found
    lengths = np.diff(offsets)
    if bool((need & (lengths < width)).any()):
        raise NotPlain("a date or time in another notation")
    padded = np.concatenate((body, np.zeros(width, dtype=np.uint8)))
    rows = np.lib.stride_tricks.sliding_window_view(padded, width)[offsets[:-1]]
    return rows, lengths


def _number(rows: npt.NDArray[np.uint8], first: int, last: int) -> tuple[Ints, Bools]:
    """(the decimal number in columns first..last-1, whether they are all ASCII digits)."""
    digits = rows[:, first:last].astype(np.int64) - ord("0")
    ok = np.all((digits >= 0) & (digits <= 9), axis=1)
    value: Ints = np.zeros(len(rows), dtype=np.int64)
    for k in range(last - first):
        value = (value * 10 + digits[:, k]).astype(np.int64)
    return value, ok


_MONTH_DAYS = np.array([0, 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31], dtype=np.int64)


def _civil_days(rows: npt.NDArray[np.uint8]) -> tuple[Ints, Bools]:
    """``YYYY-MM-DD`` at the start of each row: (days since 1970-01-01, a valid date of years 1000-8999)."""
    year, y_ok = _number(rows, 0, 4)
    month, m_ok = _number(rows, 5, 7)
    day, d_ok = _number(rows, 8, 10)
    leap = (year % 4 == 0) & ((year % 100 != 0) | (year % 400 == 0))
    in_month = _MONTH_DAYS[np.clip(month, 0, 12)] + (leap & (month == 2))
    ok = y_ok & m_ok & d_ok & (rows[:, 4] == ord("-")) & (rows[:, 7] == ord("-"))
    # (years far from both ends of Python's range: converting to UTC never overflows)
    ok &= (year >= 1000) & (year <= 8999) & (month >= 1) & (month <= 12) & (day >= 1) & (day <= in_month)
    # days from the civil date (H. Hinnant's algorithm; March-based years)
    y = year - (month <= 2)
    era = np.floor_divide(y, 400)
    yoe = y - era * 400
    doy = (153 * ((month + 9) % 12) + 2) // 5 + day - 1
    doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
    return era * 146_097 + doe - 719_468, ok


def _iso_days(arr: pa.Array, need: Bools) -> Ints:
    """``date.fromisoformat(value[:10])`` as days since 1970-01-01 for values ``YYYY-MM-DD...`` (a needed
    value in another notation abandons the fast reader). A statement's entries share a few dates: each
    distinct value is converted once."""
    encoded = pc.dictionary_encode(arr)
    distinct = encoded.dictionary
    index = encoded.indices.to_numpy(zero_copy_only=False)
    needed = np.zeros(len(distinct), dtype=bool)
    needed[index[need]] = True
    rows, _ = _heads(distinct, 10, needed)
    days, ok = _civil_days(rows)
    if bool((needed & ~ok).any()):
        raise NotPlain("a date in another notation")
    out: Ints = days[index]
    return out


def _moments(arr: pa.Array, need: Bools, tz: tzinfo) -> Ints:
    """``camt._when``'s DtTm (``_common.parse_datetime``) as UTC microseconds, for ``YYYY-MM-DD HH:MM:SS``
    and ``YYYY-MM-DDTHH:MM:SS`` (wall times in ``tz``), the latter also with ``Z`` or ``+HH:MM`` (instants).
    A needed value in another notation abandons the fast reader."""
    rows, lengths = _heads(arr, 19, need)
    days, ok = _civil_days(rows)
    hour, h_ok = _number(rows, 11, 13)
    minute, mi_ok = _number(rows, 14, 16)
    second, s_ok = _number(rows, 17, 19)
    ok &= h_ok & mi_ok & s_ok & (hour <= 23) & (minute <= 59) & (second <= 59)
    ok &= ((rows[:, 10] == ord("T")) | ((rows[:, 10] == ord(" ")) & (lengths != 20))) & (
        rows[:, 13] == ord(":")
    )
    ok &= rows[:, 16] == ord(":")
    wall = ((days * 24 + hour) * 60 + minute) * 60_000_000 + second * 1_000_000
    naive = lengths == 19
    shift: Ints = np.zeros(len(rows), dtype=np.int64)
    zulu = lengths == 20
    if zulu.any():
        tail, _ = _heads(arr, 20, need & zulu)
        ok &= ~zulu | (tail[:, 19] == ord("Z"))
    zoned = lengths == 25
    if zoned.any():
        tail, _ = _heads(arr, 25, need & zoned)
        hours, h2 = _number(tail, 20, 22)
        minutes, m2 = _number(tail, 23, 25)
        sign = np.where(tail[:, 19] == ord("-"), -1, 1)
        good = ((tail[:, 19] == ord("+")) | (tail[:, 19] == ord("-"))) & h2 & m2 & (tail[:, 22] == ord(":"))
        ok &= ~zoned | (good & (hours <= 23) & (minutes <= 59))
        shift = np.where(zoned, sign * (hours * 60 + minutes) * 60_000_000, 0).astype(np.int64)
    ok &= naive | zulu | zoned
    if bool((need & ~ok).any()):
        raise NotPlain("a time in another notation")
    wall = np.where(need, wall, 0)  # (a value that is not needed is never converted: it may be anything)
    return np.where(naive, vector.to_utc(np.where(naive, wall, 0), tz), wall - shift)
