"""Line sources for the profile engine: where each line (record) of a member is, which are blank, which
match a rule, and the data rows as Arrow string columns.

``BufferLines`` works on a UTF-8 buffer with numpy line offsets and reads data rows with
``pyarrow.csv.read_csv`` (no Python per row); ``QuickLines`` (``index_lines`` picks it for large files)
indexes only its head and tail and has Arrow's read check the data block between. ``RecordLines`` holds already-split records: spreadsheet and
JSON rows, and CSV text whose quoted values span lines (read with the csv module, as the old parsers did).
"""

from __future__ import annotations

import csv
import re
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from ._common import records
from .vector import all_ascii

Idx = npt.NDArray[np.intp]
_META = set(".^$*+?{}[]\\|()")
_QUANT = set("*+?{")
# space, TAB, VT, FF, U+3000 (UTF-8 E3.., GBK A1A1), NBSP (C2 A0)
_BLANK_FIRST = {0x20, 0x09, 0x0B, 0x0C, 0xE3, 0xC2, 0xA1}
_BLANK_TABLE = np.isin(np.arange(-1, 256), list(_BLANK_FIRST))  # by first byte + 1 (-1: empty line)


class NotUtf8(Exception):
    """A column that is read does not decode as the encoding decided from the file's head: decode the
    whole file the exact (slow) way instead."""


class LinesNotPlain(Exception):
    """``QuickLines`` assumed the lines between its indexed head and tail plain data rows, and one is not (a
    blank line, a lone CR, a line starting as a rule or section does, a field count below two): index
    every line instead (``BufferLines``)."""


def literal_prefix(regex: str) -> str | None:
    """The literal text a ``^``-anchored regex starts with (None when there is none)."""
    if not regex.startswith("^"):
        return None
    out: list[str] = []
    i = 1
    while i < len(regex):
        char = regex[i]
        if char == "\\" and i + 1 < len(regex):
            nxt = regex[i + 1]
            if nxt.isalnum():
                break
            step, lit = 2, nxt
        elif char in _META:
            break
        else:
            step, lit = 1, char
        if i + step < len(regex) and regex[i + step] in _QUANT:
            break
        out.append(lit)
        i += step
    return "".join(out) or None


def split_cells(text: str, delimiter: str, quote: str) -> list[str]:
    """One record's cells (the csv module, lenient)."""
    try:
        return next(csv.reader([text], delimiter=delimiter, quotechar=quote or None, strict=False), [])
    except csv.Error:
        return text.split(delimiter)


@dataclass
class DataTable:
    """Data rows as string columns (only the columns asked for), with each row's field count."""

    columns: dict[int, pa.Array]
    widths: npt.NDArray[np.int64]


_SCAN_BYTES = 1 << 22  # bytes compared at a time: the masks stay in cache, never a file-sized temporary


def scan_bytes(arr: npt.NDArray[np.uint8], byte: int) -> Idx:
    """Positions of ``byte`` in ``arr``, a cache-sized slice at a time."""
    found = [
        np.flatnonzero(arr[lo : lo + _SCAN_BYTES] == byte) + lo for lo in range(0, len(arr), _SCAN_BYTES)
    ]
    return np.concatenate(found) if found else np.zeros(0, dtype=np.intp)


@dataclass
class _Newlines:
    at: Idx  # positions of LF
    cr_before: npt.NDArray[np.bool_]  # the byte before each LF is CR
    after: npt.NDArray[np.int16]  # the byte after each LF (-1 at the end of the buffer)
    carriages: int  # CR bytes in the buffer


def _scan_newlines(arr: npt.NDArray[np.uint8]) -> _Newlines:
    """LF positions and their neighbouring bytes, read while each slice is in cache."""
    at: list[Idx] = []
    before: list[npt.NDArray[np.bool_]] = []
    after: list[npt.NDArray[np.int16]] = []
    carriages = 0
    top = len(arr) - 1
    mask = np.empty(min(len(arr), _SCAN_BYTES), dtype=bool)  # reused: no new mask per slice
    # LF and CR in one comparison (bytes 0..13) while those are mostly line ends; a slice rich in TABs
    # (Alipay's ids) makes that slower than a comparison for each, kept for the rest of the buffer.
    together = True
    for lo in range(0, len(arr), _SCAN_BYTES):
        part = arr[lo : lo + _SCAN_BYTES]
        hits = mask[: len(part)]
        if together:
            low = np.flatnonzero(np.less_equal(part, 13, out=hits))
            byte = part[low]
            pos = low[byte == 10] + lo
            crs = int(np.count_nonzero(byte == 13))
            together = 2 * (len(low) - len(pos) - crs) <= len(pos) + crs
        else:
            pos = np.flatnonzero(np.equal(part, 10, out=hits)) + lo
            crs = int(np.count_nonzero(np.equal(part, 13, out=hits)))
        carriages += crs
        at.append(pos)
        before.append((pos > 0) & (arr[np.maximum(pos - 1, 0)] == 13))
        after.append(np.where(pos < top, arr[np.minimum(pos + 1, top)], -1).astype(np.int16))
    if not at:
        return _Newlines(np.zeros(0, dtype=np.intp), np.zeros(0, dtype=bool), np.zeros(0, dtype=np.int16), 0)
    return _Newlines(np.concatenate(at), np.concatenate(before), np.concatenate(after), carriages)


class BufferLines:
    """Lines of a UTF-8 buffer (CRLF, LF or CR endings)."""

    _skip_empty_lines = True  # (the rows read never include an empty line)

    def __init__(self, buf: bytes, *, delimiter: str, quote: str, encoding: str = "utf-8") -> None:
        self.encoding = encoding  # of buf: UTF-8, or GBK/GB18030 left as it is (columns decoded when read)
        arr = np.frombuffer(buf, dtype=np.uint8)
        found = _scan_newlines(arr)
        self.lone_cr = bool(found.carriages) and found.carriages != int(np.count_nonzero(found.cr_before))
        if self.lone_cr:
            buf = re.sub(rb"\r(?!\n)", b"\n", buf)  # classic-Mac line ends: each lone CR ends a line
            arr = np.frombuffer(buf, dtype=np.uint8)
            found = _scan_newlines(arr)
        self.buf = buf
        self.delimiter = delimiter
        self.quote = quote
        newlines = found.at
        size = len(buf)
        starts = np.concatenate(([0], newlines + 1))
        ends = np.concatenate((newlines, [size]))
        first = np.concatenate(([int(arr[0]) if size else -1], found.after)).astype(np.int64)
        has_cr = np.concatenate((found.cr_before, [bool(size) and int(arr[-1]) == 13]))
        if len(starts) and starts[-1] == size:  # the text ends with a newline: no empty last line
            starts, ends, first, has_cr = starts[:-1], ends[:-1], first[:-1], has_cr[:-1]
        self.next_starts = np.concatenate((starts[1:], [size])) if len(starts) else starts
        content_ends = ends - (has_cr & (ends > starts))
        self.starts = starts
        self.ends = content_ends
        self.count = len(starts)
        lengths = content_ends - starts
        first = np.where(lengths > 0, first, -1)
        self._first = first
        blank = lengths == 0
        maybe = np.flatnonzero(_BLANK_TABLE[first + 1])
        for i in maybe.tolist():
            blank[i] = self.text(i).strip() == ""
        self.blank = blank
        self.multiline = False
        self.quoted = bool(quote) and quote.encode() in buf  # (else Arrow reads it without quoting: quicker)
        if self.quoted:
            qpos = scan_bytes(arr, ord(quote))
            per_line = np.searchsorted(qpos, self.next_starts) - np.searchsorted(qpos, starts)
            self.multiline = bool(np.any(per_line % 2 == 1))

    def line_no(self, i: int) -> int:
        return i + 1

    def line_nos(self, idx: Idx) -> npt.NDArray[np.int64]:
        return np.asarray(idx, dtype=np.int64) + 1

    def text(self, i: int) -> str:
        return self.buf[int(self.starts[i]) : int(self.ends[i])].decode(self.encoding, "replace")

    def cells(self, i: int) -> list[str]:
        return split_cells(self.text(i), self.delimiter, self.quote)

    def find(self, regex: str, lo: int, hi: int) -> list[int]:
        """Lines in [lo, hi) whose text matches ``regex`` (re.search)."""
        if lo >= hi:
            return []
        pattern = re.compile(regex)
        prefix = literal_prefix(regex)
        if prefix is not None:
            head = prefix.encode(self.encoding, "replace")
            cand = lo + np.flatnonzero(self._first[lo:hi] == head[0])
            out = []
            for i in cand.tolist():
                if self.buf.startswith(head, int(self.starts[i])) and pattern.search(self.text(i)):
                    out.append(i)
            return out
        if hi - lo <= 50_000:
            return [i for i in range(lo, hi) if pattern.search(self.text(i))]
        # No literal to look for: one regex pass over the decoded region, mapped back to lines.
        base = int(self.starts[lo])
        region = self.buf[base : int(self.next_starts[hi - 1])]
        text = region.decode(self.encoding, "replace")
        found: list[int] = []
        line, pos = lo, 0
        for m in re.compile(regex, re.MULTILINE).finditer(text):
            line += text.count("\n", pos, m.start())  # the match's line, counted incrementally
            pos = m.start()
            if line < hi and (not found or found[-1] != line) and pattern.search(self.text(line)):
                found.append(line)
        return found

    def read(self, rows: Idx, ncols: int, needed: Sequence[int]) -> DataTable:
        """The data rows ``rows`` (line indices, ascending) as string columns ``needed``."""
        n = len(rows)
        names = [f"c{i}" for i in range(ncols)]
        include = [names[i] for i in self._include(needed)]
        if n == 0:
            return DataTable({i: pa.array([], pa.string()) for i in needed}, np.zeros(0, dtype=np.int64))
        breaks = np.flatnonzero(np.diff(rows) != 1)
        run_starts = np.concatenate(([0], breaks + 1))
        run_ends = np.concatenate((breaks, [n - 1]))
        whole = pa.py_buffer(self.buf)
        pieces = []
        for a, b in zip(run_starts.tolist(), run_ends.tolist(), strict=True):
            start, end = self._span(int(rows[a]), int(rows[b]))
            pieces.append(whole.slice(start, end - start))  # zero-copy view of the run of lines
        if len(pieces) == 1 and self.buf[end - 1 : end] == b"\n":
            block: pa.Buffer = pieces[0]
        else:  # several runs (blank or rule lines between): one buffer, each run ending with a newline
            block = pa.py_buffer(b"".join(p.to_pybytes().rstrip(b"\n") + b"\n" for p in pieces))
        # One thread: measured faster than Arrow's threaded reader for string columns, and it numbers the
        # rows it hands to the invalid-row handler.
        table, invalid = self._arrow(block, names, include, threads=False)
        if len(table) + len(invalid) != n:
            # A quote opening a field and left open on its line (quotes paired on the line, so the file is
            # not multiline): Arrow reads on into the next lines. Read these lines one by one, as records()
            # does.
            return self._by_line(rows, needed)
        self._check(rows, table, invalid)
        if invalid and self.encoding != "utf-8":
            raise NotUtf8("rows with another field count in a file read as GBK: decode it whole")
        widths = np.full(len(table), ncols, dtype=np.int64)
        columns = {i: self._text_column(table.column(names[i]).combine_chunks()) for i in needed}
        if not invalid:
            return DataTable(columns, widths)
        # Rows with another field count: read them with the csv module and put them back in file order.
        if any(
            number is None for number, _ in invalid
        ):  # pragma: no cover - single-threaded reads number rows
            raise RuntimeError("Arrow did not number an invalid row")
        bad_pos = np.array([(number or 0) - 1 for number, _ in invalid], dtype=np.int64)  # 0-based ordinal
        good_pos = np.setdiff1d(np.arange(n), bad_pos)
        extra_cells = [split_cells(text, self.delimiter, self.quote) for _, text in invalid]
        order = np.argsort(np.concatenate((good_pos, bad_pos)), kind="stable")
        merged: dict[int, pa.Array] = {}
        for i in needed:
            extra = pa.array([c[i] if i < len(c) else "" for c in extra_cells], pa.string())
            merged[i] = pa.concat_arrays([columns[i], extra]).take(pa.array(order))
        all_widths = np.concatenate((widths, np.array([len(c) for c in extra_cells], dtype=np.int64)))
        return DataTable(merged, all_widths[order])

    def _include(self, needed: Sequence[int]) -> Sequence[int]:
        return needed

    def _span(self, first: int, last: int) -> tuple[int, int]:
        """Bytes from line ``first``'s start to the start of the line after ``last``."""
        return int(self.starts[first]), int(self.next_starts[last])

    def _check(self, rows: Idx, table: pa.Table, invalid: list[tuple[int | None, str]]) -> None:
        """Every line is indexed: nothing to check (``QuickLines`` checks the lines it did not index)."""

    def chunks(self, rows: Idx, size: int) -> list[Idx]:
        """``rows`` in slices of ``size`` (at least one slice)."""
        return [rows[lo : lo + size] for lo in range(0, max(len(rows), 1), size)]

    def check_read(self, rows: Idx) -> None:
        """Every line is indexed: any rows may be read."""

    def _by_line(self, rows: Idx, needed: Sequence[int]) -> DataTable:
        """The rows split by the csv module, each line on its own."""
        try:
            texts = [
                self.buf[int(self.starts[i]) : int(self.ends[i])].decode(self.encoding) for i in rows.tolist()
            ]
        except UnicodeDecodeError as exc:
            raise NotUtf8(str(exc)) from exc
        cells = [split_cells(text, self.delimiter, self.quote) for text in texts]
        columns = {i: pa.array([c[i] if i < len(c) else "" for c in cells], pa.string()) for i in needed}
        return DataTable(columns, np.array([len(c) for c in cells], dtype=np.int64))

    def _text_column(self, arr: pa.Array) -> pa.Array:
        """A column as UTF-8 strings: as read (checked here), or decoded from GBK value by distinct value."""
        if self.encoding == "utf-8":
            return _checked_utf8(arr)
        if len(arr) == 0:
            return arr.cast(pa.string())
        offsets = np.frombuffer(arr.buffers()[1], dtype=np.int32)[arr.offset : arr.offset + len(arr) + 1]
        data = arr.buffers()[2]
        body = np.frombuffer(data, dtype=np.uint8)[offsets[0] : offsets[-1]] if data is not None else None
        if body is None or not len(body) or int(body.max()) < 0x80:
            return arr.cast(pa.string())  # ASCII: the same bytes in UTF-8
        encoded = pc.dictionary_encode(arr)
        try:
            texts = [b.decode(self.encoding) for b in encoded.dictionary.to_pylist()]
        except UnicodeDecodeError as exc:
            raise NotUtf8(str(exc)) from exc
        return pa.array(texts, pa.string()).take(encoded.indices)

    def _arrow(
        self, block: pa.Buffer, names: list[str], include: list[str], *, threads: bool
    ) -> tuple[pa.Table, list[tuple[int | None, str]]]:
        invalid: list[tuple[int | None, str]] = []

        def handler(row: pacsv.InvalidRow) -> str:
            invalid.append((row.number, row.text))
            return "skip"

        try:
            table = pacsv.read_csv(
                pa.BufferReader(block),
                read_options=pacsv.ReadOptions(column_names=names, use_threads=threads),
                parse_options=pacsv.ParseOptions(
                    delimiter=self.delimiter,
                    quote_char=self.quote if self.quoted else False,
                    double_quote=True,
                    escape_char=False,
                    newlines_in_values=False,
                    ignore_empty_lines=self._skip_empty_lines,
                    invalid_row_handler=handler,
                ),
                convert_options=pacsv.ConvertOptions(
                    column_types=dict.fromkeys(
                        names, pa.string() if self.encoding == "utf-8" else pa.binary()
                    ),
                    include_columns=include,
                    strings_can_be_null=False,
                    quoted_strings_can_be_null=False,
                    # checked per column afterwards (_checked_utf8): measured quicker than Arrow's check
                    check_utf8=False,
                ),
            )
        except pa.ArrowInvalid as exc:
            if "UTF8" in str(exc) or "utf8" in str(exc).lower():
                raise NotUtf8(str(exc)) from exc
            raise
        except UnicodeDecodeError as exc:  # an invalid row's text, in a file read as GBK
            raise NotUtf8(str(exc)) from exc
        return table, invalid


QUICK_BYTES = 1 << 25  # buffers from 32 MiB are indexed quickly (below, the full scan costs little)
_EDGE_BYTES = 1 << 20  # head and tail indexed line by line: preamble, header, summary and footers are there


def _next_line(buf: bytes, pos: int, stop: int) -> int:
    """The start of the first line starting at or after ``pos`` (``stop`` when none before it)."""
    if pos <= 0:
        return 0
    found = buf.find(b"\n", pos - 1, stop)
    return stop if found < 0 else found + 1


def index_lines(
    buf: bytes,
    *,
    delimiter: str,
    quote: str,
    encoding: str = "utf-8",
    marks: frozenset[int] | None = None,
    rows_per_block: int = 1 << 18,
) -> BufferLines:
    """The lines of ``buf``: ``QuickLines`` when it may serve (``marks``: the first bytes of the literal starts
    of every rule and section looked for after the header; None: one has none, index every line), else
    ``BufferLines``."""
    size = len(buf)
    head_end = _next_line(buf, _EDGE_BYTES, size)
    tail_start = _next_line(buf, size - _EDGE_BYTES, size)
    plain_delimiter = len(delimiter) == 1 and delimiter.isascii() and not delimiter.isspace()
    if (
        marks is not None
        and size >= QUICK_BYTES
        and encoding == "utf-8"
        and plain_delimiter
        and ord(delimiter) not in marks
        and head_end < tail_start
    ):
        head = BufferLines(buf[:head_end], delimiter=delimiter, quote=quote)
        tail = BufferLines(buf[tail_start:], delimiter=delimiter, quote=quote)
        if not (head.lone_cr or tail.lone_cr or head.quoted or tail.quoted):
            parts = _block_parts(
                buf, head_end, tail_start, line=head.count, quote=quote, rows_per_block=rows_per_block
            )
            if parts is not None:
                return QuickLines(
                    buf, head, tail, tail_start=tail_start, marks=marks, parts=parts, delimiter=delimiter
                )
    return BufferLines(buf, delimiter=delimiter, quote=quote, encoding=encoding)


_COUNT_BYTES = 1 << 18  # bytes counted at a time: the slice is still in cache when searched for a quote


def _block_parts(
    buf: bytes, lo: int, stop: int, *, line: int, quote: str, rows_per_block: int
) -> tuple[list[int], list[int], int] | None:
    """The lines from byte ``lo`` (line ``line``) to ``stop``, counted a slice of whole lines at a time and
    grouped into parts of at least ``rows_per_block`` lines: (first line of each part, its byte offset,
    the line after the last). None when the bytes hold ``quote``."""
    arr = np.frombuffer(buf, dtype=np.uint8)
    mark = quote.encode() if quote else b""
    starts: list[int] = []
    bounds: list[int] = []
    mask = np.empty(_COUNT_BYTES, dtype=bool)
    in_part = rows_per_block
    while lo < stop:
        hi = _next_line(buf, lo + _COUNT_BYTES, stop)
        if in_part >= rows_per_block:
            starts.append(line)
            bounds.append(lo)
            in_part = 0
        part = arr[lo:hi]
        if len(part) > len(mask):  # (a line longer than a slice)
            mask = np.empty(len(part), dtype=bool)
        counted = int(np.count_nonzero(np.equal(part, 10, out=mask[: len(part)])))
        if mark and buf.find(mark, lo, hi) >= 0:
            return None
        line += counted
        in_part += counted
        lo = hi
    return starts, bounds, line


class QuickLines(BufferLines):
    """Lines of a large UTF-8 buffer without quotes, where only the head and the tail (``_EDGE_BYTES`` each)
    are indexed line by line. The lines between, the block, are counted (its LF bytes) and taken to be
    plain data rows: not blank, none starting as a rule or section looked for after the header does (no
    first byte in ``marks``). Arrow reads the block as the rows it holds, which checks that: every line
    comes out as one row (a lone CR would make two), and ``_check`` looks at the rows' first cells and
    field counts. A row that breaks it raises ``LinesNotPlain`` (the parse starts over with every line
    indexed); so do a layout that does not read the whole block and a look at one of its lines' text.

    This saves the scan for every line end, and each line's neighbouring bytes, over the whole buffer."""

    _skip_empty_lines = False  # an empty line in the block must come out as a row (and fail the check)

    def __init__(
        self,
        buf: bytes,
        head: BufferLines,
        tail: BufferLines,
        *,
        tail_start: int,
        marks: frozenset[int],
        parts: tuple[list[int], list[int], int],
        delimiter: str,
    ) -> None:
        self.encoding = "utf-8"
        self.buf = buf
        self.delimiter = delimiter
        self.quote = head.quote
        self.quoted = False
        self.multiline = False
        self.lone_cr = False
        self.marks = marks
        self._head, self._tail = head, tail
        self._tail_start = tail_start
        starts, bounds, line = parts
        self._block = (head.count, line)  # [first, end) line indices of the block
        # each part's first line and its byte offset, then the tail's (reads need where a slice starts)
        self._part_lines = np.array([*starts, line], dtype=np.int64)
        self._part_bytes = [*bounds, tail_start]
        self._tail_base = line
        self.count = line + tail.count
        blank = np.zeros(self.count, dtype=bool)
        blank[: head.count] = head.blank
        blank[line:] = tail.blank
        self.blank = blank

    def _in_block(self, rows: Idx) -> int:
        """How many of ``rows`` (ascending) are lines of the block."""
        lo, hi = np.searchsorted(rows, self._block).tolist()
        return int(hi - lo)

    def _side(self, i: int) -> tuple[BufferLines, int, int]:
        """(head or tail, the line's index there, the byte offset of its buffer)."""
        if i < self._block[0]:
            return self._head, i, 0
        if i >= self._tail_base:
            return self._tail, i - self._tail_base, self._tail_start
        raise LinesNotPlain(f"line {i + 1} is inside the block, which is not indexed")

    def text(self, i: int) -> str:
        lines, at, _ = self._side(i)
        return lines.text(at)

    def find(self, regex: str, lo: int, hi: int) -> list[int]:
        prefix = literal_prefix(regex)
        if prefix is None or prefix.encode("utf-8")[0] not in self.marks:
            raise LinesNotPlain(f"{regex!r} is looked for without its start in the marks")
        found = self._head.find(regex, lo, min(hi, self._block[0]))
        base = self._tail_base
        found += [base + i for i in self._tail.find(regex, max(lo, base) - base, hi - base)]
        return found  # (the block's lines start with no mark: checked as they are read)

    def _span(self, first: int, last: int) -> tuple[int, int]:
        return self._start(first), self._start(last + 1)

    def _start(self, i: int) -> int:
        """Byte offset of line ``i``'s start (``len(buf)`` past the last line)."""
        if i == self.count:
            return len(self.buf)
        at = int(np.searchsorted(self._part_lines, i))
        if at < len(self._part_bytes) and int(self._part_lines[at]) == i:
            return self._part_bytes[at]  # a part's first line (or the tail's first)
        lines, local, base = self._side(i)
        return base + int(lines.starts[local])

    def read(self, rows: Idx, ncols: int, needed: Sequence[int]) -> DataTable:
        if ncols < 2 and self._in_block(rows):
            raise LinesNotPlain("one column: a blank line would read as a row")
        return super().read(rows, ncols, needed)

    def _include(self, needed: Sequence[int]) -> Sequence[int]:
        return sorted({0, *needed})  # the first cells: how each line starts (checked, else not kept)

    def _check(self, rows: Idx, table: pa.Table, invalid: list[tuple[int | None, str]]) -> None:
        """The block's lines among ``rows`` are plain rows: two fields at least (so not blank: the delimiter
        is no whitespace) and a first byte that is no mark (an empty first cell starts with the delimiter,
        no mark either)."""
        lo, hi = np.searchsorted(rows, self._block).tolist()  # (rows ascending: the block's are a run)
        if lo == hi:
            return
        marks = {bytes([m]) for m in self.marks}
        bad_pos = []
        for number, text in invalid:
            if number is None:
                raise LinesNotPlain("Arrow did not number an invalid row")
            bad_pos.append(number - 1)
            if lo <= number - 1 < hi and (
                len(split_cells(text, self.delimiter, self.quote)) < 2
                or text.encode("utf-8", "replace")[:1] in marks
            ):
                raise LinesNotPlain(f"line {int(rows[number - 1]) + 1} is no plain data row")
        if bad_pos:  # the rows Arrow read: the others
            read = np.delete(np.arange(len(rows)), bad_pos)
            lo, hi = np.searchsorted(read, [lo, hi]).tolist()
        marked = np.zeros(256, dtype=bool)
        marked[list(self.marks)] = True
        at = 0
        unfilled: list[Idx] = []
        for firsts in table.column("c0").chunks:  # each first cell's first byte (an empty one has none)
            n = len(firsts)
            a, b = max(lo - at, 0), min(hi - at, n)
            data = firsts.buffers()[2]
            if a < b and data is not None and data.size:
                at_a = firsts.offset + a
                offsets = np.frombuffer(firsts.buffers()[1], dtype=np.int32)[at_a : at_a + b - a + 1]
                lead = np.frombuffer(data, dtype=np.uint8).take(offsets[:-1], mode="clip")
                filled = offsets[1:] > offsets[:-1]
                if bool(np.any(marked[lead] & filled)):
                    raise LinesNotPlain("a line inside the block starts as a rule or section does")
                if not filled.all():
                    unfilled.append(at + a + np.flatnonzero(~filled))
            elif a < b:
                unfilled.append(np.arange(at + a, at + b))
            at += n
        if unfilled:
            # Arrow reads an empty line as a row of empty values: one with every cell read empty may be one
            emptied = table.take(pa.array(np.concatenate(unfilled)))
            blank = np.ones(len(emptied), dtype=bool)
            for col in emptied.columns:
                blank &= np.asarray(pc.binary_length(col.combine_chunks())) == 0
            if blank.any():
                raise LinesNotPlain("a row inside the block reads empty: maybe an empty line")

    def chunks(self, rows: Idx, size: int) -> list[Idx]:
        """``rows`` cut where the block's parts start (reads need the bytes where a slice starts)."""
        cuts = np.searchsorted(rows, self._part_lines[1:-1])
        return np.split(rows, cuts) if len(rows) else [rows]

    def check_read(self, rows: Idx) -> None:
        """Raise ``LinesNotPlain`` unless ``rows`` hold every line of the block (each is checked as read)."""
        first, end = self._block
        if self._in_block(rows) != end - first:
            raise LinesNotPlain("the data rows do not cover the block")

    def _by_line(self, rows: Idx, needed: Sequence[int]) -> DataTable:
        raise LinesNotPlain("the block's lines and the rows Arrow read differ (a lone CR?)")


def _checked_utf8(arr: pa.Array) -> pa.Array:
    """``arr`` (a string column read without Arrow's UTF-8 check), checked: an ASCII column by its bytes'
    maximum, any other by Arrow's full validation."""
    if all_ascii(arr):
        return arr
    try:
        arr.validate(full=True)
    except pa.ArrowInvalid as exc:
        raise NotUtf8(str(exc)) from exc
    return arr


class RecordLines:
    """Records already split into cells: spreadsheet rows, JSON records, or CSV read with the csv module."""

    def __init__(self, line_numbers: Sequence[int], texts: Sequence[str], cells: Sequence[list[str]]) -> None:
        self._line_nos = np.asarray(line_numbers, dtype=np.int64)
        self._texts = list(texts)
        self._cells = list(cells)
        self.count = len(self._texts)
        self.blank = np.array([t.strip() == "" for t in self._texts], dtype=bool)
        self.multiline = False

    @classmethod
    def from_csv_text(cls, text: str, *, delimiter: str, quote: str) -> RecordLines:
        """CSV with quoted values spanning lines: one record per CSV record, numbered by its first line."""
        nums: list[int] = []
        texts: list[str] = []
        cells: list[list[str]] = []
        for rec in records(text):
            nums.append(rec.line)
            texts.append(rec.raw)
            cells.append([] if rec.blank else split_cells(rec.raw, delimiter, quote))
        return cls(nums, texts, cells)

    @classmethod
    def from_rows(cls, rows: Sequence[Sequence[str]], *, first_line: int = 1) -> RecordLines:
        cells = [list(r) for r in rows]
        texts = []
        for row in cells:
            end = len(row)
            while end and row[end - 1].strip() == "":
                end -= 1
            texts.append(",".join(row[:end]))
        return cls(range(first_line, first_line + len(cells)), texts, cells)

    def chunks(self, rows: Idx, size: int) -> list[Idx]:
        """``rows`` in slices of ``size`` (at least one slice)."""
        return [rows[lo : lo + size] for lo in range(0, max(len(rows), 1), size)]

    def check_read(self, rows: Idx) -> None:
        """Every record is at hand: any rows may be read."""

    def line_no(self, i: int) -> int:
        return int(self._line_nos[i])

    def line_nos(self, idx: Idx) -> npt.NDArray[np.int64]:
        return self._line_nos[idx]

    def text(self, i: int) -> str:
        return self._texts[i]

    def cells(self, i: int) -> list[str]:
        return self._cells[i]

    def find(self, regex: str, lo: int, hi: int) -> list[int]:
        pattern = re.compile(regex)
        return [i for i in range(lo, hi) if pattern.search(self._texts[i])]

    def read(self, rows: Idx, ncols: int, needed: Sequence[int]) -> DataTable:
        picked = [self._cells[int(i)] for i in rows]
        columns = {i: pa.array([c[i] if i < len(c) else "" for c in picked], pa.string()) for i in needed}
        return DataTable(columns, np.array([len(c) for c in picked], dtype=np.int64))


Lines = BufferLines | RecordLines  # (QuickLines is a BufferLines)
