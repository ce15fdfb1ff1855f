"""The profile engine: runs any ``Profile`` over a file, column at a time.

1. Members: the upload (gzip opened), or a zip's members by role (data / summary sections).
2. Encoding: decided by decoding (BOM, then the profile's order, checking its first-line marker).
3. Layout: numpy line offsets; preamble, header, data, rule lines (footers, markers), sections, trailing.
4. Read: the data lines in one ``pyarrow.csv.read_csv`` call (only the columns used, all as strings), or
   spreadsheet / JSON / PDF rows.
5. Convert: every field with ``pyarrow.compute``/numpy; each check yields a mask, and a row failing any is
   rejected naming file, line, column and reason (the first failing check in the profile's order).
6. Totals: stated counts and sums compared exactly with the rows; dedupe key and in-file duplicates.

The result is a ``ParsedStatement`` whose ``table`` follows ``recon.tables.TRANSACTION_SCHEMA``.
"""

from __future__ import annotations

import re
import unicodedata
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc

from recon.domain.statement import RowError
from recon.tables import TRANSACTION_SCHEMA, bucket_of, mark_duplicates

from . import sheets, vector
from ._common import (
    FILE_LEVEL_ROW,
    Context,
    Member,
    RowFail,
    clean,
    decode,
    fmt_amount,
    norm_header,
    parse_amount,
    parse_count,
    records,
)
from .lines import (
    Lines,
    LinesNotPlain,
    NotUtf8,
    QuickLines,
    RecordLines,
    index_lines,
    literal_prefix,
    split_cells,
)
from .model import ParsedStatement, StatementParseError, TotalCheck, TotalKind, finish
from .profiles import (
    ALL_ROWS,
    TEXT_FIELDS,
    AmountFormat,
    ArchiveMember,
    Columns,
    Condition,
    FieldSpec,
    Profile,
    RowKind,
    Section,
    strptime_format,
    template_parts,
)

Idx = npt.NDArray[np.intp]
SAMPLE_BYTES = 1 << 20
# Data rows converted at a time: bounds the working memory (and measured the fastest of 2^15 .. 2^18).
CHUNK_ROWS = 1 << 18
DELIMITERS = (",", "\t", ";", "|")
_UTF8 = ("utf-8", "utf-8-sig")


def first_line(text: str) -> str:
    for line in text.splitlines():
        stripped = line.strip().lstrip("\ufeff").strip()
        if stripped:
            return stripped
    return ""


# ------------------------------------------------------------------------------------------ encoding


@dataclass
class Decoded:
    buf: bytes  # UTF-8 (no BOM), or the original bytes when ``native``
    encoding: str
    checked: bool  # the whole buffer was validated (else the columns read are validated as they are read)
    native: bool = False  # buf is still in ``encoding`` (a large GBK file: columns are decoded when read)


def _sample(data: bytes, size: int = SAMPLE_BYTES) -> bytes:
    """The head of ``data``, cut after a line end (never inside a multi-byte character)."""
    if len(data) <= size:
        return data
    cut = data.rfind(b"\n", 0, size)
    return data[: cut + 1] if cut > 0 else data[:size]


def decode_text(
    data: bytes,
    file: str,
    encodings: Iterable[str],
    markers: Iterable[str] = (),
    *,
    trust_utf8: bool = True,
    native_ok: bool = False,
) -> Decoded:
    """Pick the encoding by decoding: a UTF-8 BOM wins; then the first of ``encodings`` that decodes (and,
    when ``markers`` are given, whose first line starts with one). Large UTF-8 files are decoded from a
    sample; Arrow validates the columns it reads (``trust_utf8=False`` forces a full decode). With
    ``native_ok`` a large GBK/GB18030 file is not transcoded: the columns read are decoded (and so
    validated) as they are read."""
    marks = tuple(m for m in markers if m)
    order = list(dict.fromkeys(encodings))
    if data.startswith(b"\xef\xbb\xbf"):
        order = ["utf-8-sig", *[e for e in order if e != "utf-8"]]
    sample = _sample(data)
    whole = len(sample) == len(data)
    fallback: str | None = None
    for enc in order:
        try:
            head = sample.decode(enc)
        except UnicodeDecodeError:
            continue
        if marks and not first_line(head).startswith(marks):
            fallback = fallback or enc
            continue
        found = _full(data, enc, whole=whole, trust_utf8=trust_utf8, native_ok=native_ok)
        if found is not None:
            return found
    if fallback is not None:
        found = _full(data, fallback, whole=whole, trust_utf8=trust_utf8, native_ok=native_ok)
        if found is not None:
            return found
    text, enc = decode(data, file, prefer_gbk=bool(order) and order[0] != "utf-8")  # raises the located error
    return Decoded(text.encode("utf-8"), enc, True)


def _full(data: bytes, enc: str, *, whole: bool, trust_utf8: bool, native_ok: bool = False) -> Decoded | None:
    body = data[3:] if enc == "utf-8-sig" else data
    if native_ok and trust_utf8 and not whole and enc not in _UTF8:
        return Decoded(data, enc, False, native=True)
    if enc in _UTF8:
        if whole or not trust_utf8:
            try:
                body.decode("utf-8")
            except UnicodeDecodeError:
                return None
        return Decoded(body, enc, whole or not trust_utf8)
    try:
        return Decoded(data.decode(enc).encode("utf-8"), enc, True)
    except UnicodeDecodeError:
        return None


def sniff_delimiter(lines: list[str], header: Iterable[str]) -> str:
    """The delimiter that splits a line into cells holding the header names (else: most frequent)."""
    wanted = {norm_header(h) for h in header}
    for line in lines:
        for delim in DELIMITERS:
            cells = {norm_header(clean(c)) for c in split_cells(line, delim, '"')}
            if wanted and wanted <= cells:
                return delim
    counts = Counter[str]()
    for line in lines[:20]:
        for delim in DELIMITERS:
            counts[delim] += line.count(delim)
    best = counts.most_common(1)
    return best[0][0] if best and best[0][1] else ","


# ------------------------------------------------------------------------------------------ members


@dataclass
class Part:
    """One member read as lines."""

    file: str  # name in messages (upload!member)
    raw_key: str
    lines: Lines
    encoding: str
    virtual_header: bool = False  # JSON: the header is not a line of the file
    objects: list[bool] | None = None  # JSON: which records are objects


def open_part(
    member: Member,
    profile: Profile,
    *,
    filename: str,
    raw_key: str,
    trust_utf8: bool = True,
    quick: bool = False,
) -> Part:
    file = filename if member.name is None else f"{filename}!{member.name}"
    key = raw_key if member.name is None else f"{raw_key}!{member.name}"
    data = member.data
    container = profile.container
    if container == "xls":
        return Part(file, key, RecordLines.from_rows(sheets.xls_rows(data, file, profile.sheet)), "binary")
    if container == "xlsx":
        return Part(file, key, RecordLines.from_rows(sheets.xlsx_rows(data, file, profile.sheet)), "binary")
    if container == "pdf":
        return Part(file, key, RecordLines.from_rows(sheets.pdf_rows(data, file)), "binary")
    encodings = profile.encodings if profile.encoding == "auto" else [profile.encoding]
    # GBK's trail bytes never collide with these delimiters, quotes or line ends: Arrow can split the
    # bytes as they are and only the columns read are decoded.
    native_ok = container == "csv" and profile.delimiter in (",", "\t", ";") and profile.quote in ('"', "")
    decoded = decode_text(
        data, file, encodings, profile.match.first_line, trust_utf8=trust_utf8, native_ok=native_ok
    )
    if container == "json":
        header, rows, objects = sheets.json_rows(decoded.buf.decode("utf-8"), file, profile.json_records)
        lines = RecordLines.from_rows([header, *rows], first_line=0)
        lines.blank[1:][~np.array(objects, dtype=bool)] = False  # a non-object record is a row to reject
        return Part(file, key, lines, decoded.encoding, virtual_header=True, objects=objects)
    delimiter = profile.delimiter
    if delimiter == "auto":
        head = _sample(decoded.buf, 1 << 16).decode("utf-8", "replace").splitlines()[: profile.header_scan]
        delimiter = sniff_delimiter(head, profile.header_names())
    native = decoded.encoding if decoded.native else "utf-8"
    buffer = index_lines(
        decoded.buf,
        delimiter=delimiter,
        quote=profile.quote,
        encoding=native,
        marks=_marks(profile) if quick else None,
        rows_per_block=CHUNK_ROWS,
    )
    if buffer.multiline and decoded.native:
        raise NotUtf8("quoted values span lines: decode the whole file first")
    if buffer.multiline:  # quoted values span lines: read records with the csv module
        text = decoded.buf.decode("utf-8") if decoded.checked else _checked(decoded, file)
        return Part(
            file,
            key,
            RecordLines.from_csv_text(text, delimiter=delimiter, quote=profile.quote),
            decoded.encoding,
        )
    return Part(file, key, buffer, decoded.encoding)


def _marks(profile: Profile) -> frozenset[int] | None:
    """The first bytes (UTF-8) of the literal starts of the line rules and sections looked for after the
    header (``BufferLines.find``'s candidates); None when one has no literal start."""
    regexes = [r.regex for r in profile.lines if r.scope in ("any", "after_header")]
    regexes += [sec.start for sec in profile.sections]
    marks: set[int] = set()
    for regex in regexes:
        prefix = literal_prefix(regex)
        if prefix is None:
            return None
        marks.add(prefix.encode("utf-8")[0])
    return frozenset(marks)


def _checked(decoded: Decoded, file: str) -> str:
    try:
        return decoded.buf.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise NotUtf8(str(exc)) from exc


# -------------------------------------------------------------------------------------------- layout


@dataclass
class SectionHit:
    name: str
    spec: Section | ArchiveMember | None
    rows: list[int]  # line indices (non-blank) in the section
    file: str
    lines: Lines


@dataclass
class Layout:
    header: int | None = None
    header_cells: list[str] = field(default_factory=list)
    data: list[tuple[int, int]] = field(default_factory=list)  # [start, end) runs of data lines
    skipped: Counter[str] = field(default_factory=Counter)
    rule_lines: list[tuple[str, int]] = field(default_factory=list)  # (rule, line index)
    sections: list[SectionHit] = field(default_factory=list)
    errors: list[RowError] = field(default_factory=list)

    def data_rows(self, lines: Lines) -> Idx:
        if not self.data:
            return np.zeros(0, dtype=np.intp)
        idx = np.concatenate([np.arange(a, b, dtype=np.intp) for a, b in self.data])
        return idx[~lines.blank[idx]] if len(idx) else idx


def _header_at(lines: Lines, profile: Profile, rules: Sequence[tuple[str, re.Pattern[str]]]) -> int | None:
    names = {norm_header(h) for h in profile.header_names()}
    for i in range(min(lines.count, profile.header_scan)):
        if lines.blank[i]:
            continue
        if names:
            cells = {norm_header(clean(c)) for c in lines.cells(i)}
            if names <= cells:
                return i
        elif not any(regex.search(lines.text(i)) for _, regex in rules):
            return i
    return None


def layout(part: Part, profile: Profile) -> Layout:
    import re

    lines = part.lines
    out = Layout()
    n = lines.count
    before = [(r.name, re.compile(r.regex)) for r in profile.lines if r.scope in ("any", "before_header")]
    header = (0 if n else None) if part.virtual_header else _header_at(lines, profile, before)
    last = lines.line_no(n - 1) if n else 1
    if header is None:
        for i in range(n):
            out.skipped["blank" if lines.blank[i] else "preamble"] += 1
        wanted = ", ".join(profile.header_names()) or "a header row"
        what = "empty file" if n == 0 or bool(np.all(lines.blank)) else "no column header found"
        out.errors.append(
            RowError(file=part.file, row=max(last, 1), column=None, reason=f"{what}: expected {wanted}")
        )
        return out
    out.header = header
    out.header_cells = [clean(c).lstrip("\ufeff") for c in lines.cells(header)]
    for i in range(header):
        if lines.blank[i]:
            out.skipped["blank"] += 1
            continue
        name = next((rule for rule, regex in before if regex.search(lines.text(i))), "preamble")
        out.skipped[name] += 1
        out.rule_lines.append((name, i))
    if not part.virtual_header:
        out.skipped["header"] += 1

    lo = header + 1
    after_rules = [r for r in profile.lines if r.scope in ("any", "after_header")]
    rule_at: dict[int, int] = {}
    for k, rule in enumerate(after_rules):
        for i in lines.find(rule.regex, lo, n):
            rule_at.setdefault(i, k)
    section_at: dict[int, int] = {}
    for k, sec in enumerate(profile.sections):
        for i in lines.find(sec.start, lo, n):
            section_at.setdefault(i, k)
    blank_idx = (lo + np.flatnonzero(lines.blank[lo:])).tolist()
    events = sorted(set(rule_at) | set(section_at) | set(blank_idx))
    state = "data"
    i = lo
    e = 0
    while i < n:
        while e < len(events) and events[e] < i:
            e += 1
        nxt = events[e] if e < len(events) else n
        if nxt > i:
            if state == "data":
                out.data.append((i, nxt))
            else:
                for j in range(i, nxt):
                    out.skipped["trailing"] += 1
                    if len(out.errors) < 50:
                        out.errors.append(
                            RowError(
                                file=part.file,
                                row=lines.line_no(j),
                                column=None,
                                reason="unexpected content after the data: " + lines.text(j)[:60],
                            )
                        )
            i = nxt
            continue
        if lines.blank[i]:
            out.skipped["blank"] += 1
            i += 1
        elif i in section_at:
            sec = profile.sections[section_at[i]]
            rows: list[int] = []
            j = i
            while j < n and (sec.lines is None or len(rows) < sec.lines):
                if lines.blank[j]:
                    out.skipped["blank"] += 1
                else:
                    rows.append(j)
                    out.skipped[sec.name] += 1
                j += 1
            out.sections.append(SectionHit(sec.name, sec, rows, part.file, lines))
            state = "after"
            i = j
        else:
            rule = after_rules[rule_at[i]]
            out.skipped[rule.name] += 1
            out.rule_lines.append((rule.name, i))
            if rule.ends_data:
                state = "after"
            i += 1
    return out


# --------------------------------------------------------------------------------------- conversion


class Cells:
    """The data columns of one slice of rows, addressed by header aliases; each is cleaned (trimmed, prefix
    removed) when first asked for."""

    def __init__(
        self,
        index: dict[str, int],
        names: list[str],
        raw: dict[int, pa.Array],
        n: int,
        *,
        strip: str = "",
        prefix: str = "",
    ) -> None:
        self.index = index  # normalised header name -> column position
        self.names = names  # header as written
        self.n = n
        self._raw = raw
        self._clean: dict[int, pa.Array] = {}
        self._strip = strip
        self._prefix = prefix
        self._found: dict[tuple[str, ...], int | None] = {}
        self._amounts: dict[tuple[int, str, int], npt.NDArray[np.int64] | None] = {}
        self._filled: set[int] = set()  # columns known to hold no empty value (read as amounts)
        # the columns read as amounts: (format and exponent, their text, the amounts)
        self._parsed: list[tuple[tuple[str, int], pa.Array, npt.NDArray[np.int64]]] = []

    def find(self, aliases: Iterable[str]) -> int | None:
        key = tuple(aliases)
        if key not in self._found:
            self._found[key] = next(
                (self.index[h] for h in (norm_header(a) for a in key) if h in self.index), None
            )
        return self._found[key]

    def get(self, aliases: Iterable[str]) -> pa.Array | None:
        pos = self.find(aliases)
        if pos is None:
            return None
        found = self._clean.get(pos)
        if found is None:
            found = self._clean[pos] = vector.clean(
                self._raw.pop(pos), strip=self._strip, prefix=self._prefix
            )
        return found

    def amounts(
        self, aliases: Iterable[str], exps: npt.NDArray[np.int64], fmt: AmountFormat
    ) -> npt.NDArray[np.int64] | None:
        """The column's amounts read from its text as it stands, without a cleaned copy
        (``vector.prefixed_amounts``): such a column holds no empty value and rejects no row. None: parse
        ``get``'s cleaned text."""
        pos = self.find(aliases)
        if pos is None or not self._prefix or not len(exps) or not bool(np.all(exps == exps[0])):
            return None
        how = (fmt.model_dump_json(), int(exps[0]))
        key = (pos, *how)
        if key not in self._amounts:
            raw = self._raw.get(pos)
            minor = None
            if raw is not None:
                # a column repeating one read already (订单金额 and 应结订单金额 without coupons): not parsed again
                minor = next((m for h, text, m in self._parsed if h == how and text.equals(raw)), None)
                if minor is None:
                    minor = vector.prefixed_amounts(raw, exps, fmt, prefix=self._prefix, strip=self._strip)
                    if minor is not None:
                        self._parsed.append((how, raw, minor))
            self._amounts[key] = minor
            if minor is not None:
                self._filled.add(pos)
        return self._amounts[key]

    def single(self, aliases: Iterable[str]) -> str | None:
        """The cleaned value every row holds, when they all hold the same one; told from the text as it stands
        when the column is not cleaned yet (cleaning is value by value: one value cleaned is enough)."""
        pos = self.find(aliases)
        if pos is None or not self.n:
            return None
        cleaned = self._clean.get(pos)
        if cleaned is not None:
            return vector.single_value(cleaned)
        raw = self._raw.get(pos)
        one = vector.single_value(raw) if raw is not None else None
        if one is None:
            return None
        cleaned = vector.clean(pa.array([one], pa.string()), strip=self._strip, prefix=self._prefix)
        found: str = cleaned[0].as_py()
        return found

    def filled(self, aliases: Iterable[str]) -> bool:
        """The column holds no empty value, known without cleaning it."""
        return self.find(aliases) in self._filled

    def name(self, aliases: Columns) -> str:
        pos = self.find(aliases)
        return self.names[pos] if pos is not None else aliases[0]

    def empty_column(self) -> pa.Array:
        return vector.const("", self.n)

    def rows(self, rows: Idx) -> Cells:
        """These rows' cells alone (``rows`` ascending): each column taken when asked for."""
        return _RowsOf(self, rows)


class _RowsOf(Cells):
    """Some rows of a ``Cells``: a column cleaned there already is taken, any other is taken, then cleaned
    (cleaning is row by row: the same values)."""

    def __init__(self, whole: Cells, rows: Idx) -> None:
        super().__init__(whole.index, whole.names, {}, len(rows), strip=whole._strip, prefix=whole._prefix)
        self._whole = whole
        self._take = pa.array(rows)

    def get(self, aliases: Iterable[str]) -> pa.Array | None:
        pos = self.find(aliases)
        if pos is None:
            return None
        found = self._clean.get(pos)
        if found is None:
            whole = self._whole
            cleaned = whole._clean.get(pos)
            found = self._clean[pos] = (
                cleaned.take(self._take)
                if cleaned is not None
                else vector.clean(whole._raw[pos].take(self._take), strip=self._strip, prefix=self._prefix)
            )
        return found


@dataclass
class Slot:
    order: float
    failure: vector.Failure


class _Partition:
    """The rows of one row kind: its fields (the profile's, overridden by the kind's) and checks."""

    def __init__(
        self,
        profile: Profile,
        kind: RowKind | None,
        cols: Cells,
        ctx: Context,
        captures: dict[str, str],
        *,
        applies: npt.NDArray[np.bool_],
        shared: dict[object, object],
    ) -> None:
        self.profile = profile
        self.kind = kind
        self.c = cols
        self.ctx = ctx
        self.captures = captures
        self.n = cols.n
        self.applies = applies  # the rows of this kind; columns are computed for all rows (no takes)
        self.slots: list[Slot] = []
        self.specs = profile.kind_fields(kind)
        self.order = {f: i for i, f in enumerate(self.specs)}
        self.spread: set[str] = set()  # fields whose values are empty outside this kind's rows
        # Shared by the kinds of one file: amount parses and currencies are computed once.
        self._amount_cache: dict[tuple[int, str], tuple[pa.Array, vector.Amounts]] = shared.setdefault(  # type: ignore[assignment]
            "amounts", {}
        )
        self._shared = shared

    # ---------------------------------------------------------------------------------- sources
    def _source(self, spec: FieldSpec) -> tuple[pa.Array, Callable[[Idx], list[str | None]]]:
        c = self.c
        if spec.column is not None:
            arr = c.get(spec.column)
            name = c.name(spec.column)
            return (arr if arr is not None else c.empty_column()), (lambda rows: [name] * len(rows))
        if spec.first_of is not None:
            present = [(name, c.get([name])) for name in spec.first_of]
            present = [(name, a) for name, a in present if a is not None]
            if not present:
                return c.empty_column(), (lambda rows: [spec.first_of[0]] * len(rows))  # type: ignore[index]
            result = present[-1][1]
            chosen = np.full(self.n, len(present) - 1, dtype=np.int64)
            for k in range(len(present) - 2, -1, -1):
                filled = ~vector.empty(present[k][1])
                result = vector.where(filled, present[k][1], result)
                chosen[filled] = k
            names = [c.name([name]) for name, _ in present]
            return result, (lambda rows: [names[int(chosen[r])] for r in rows])
        if spec.template is not None:
            template = template_parts(spec.template)

            def piece(is_col: bool, text: str) -> pa.Array:
                arr = c.get([text]) if is_col else vector.const(text, self.n)
                return arr if arr is not None else c.empty_column()

            between = {text for is_col, text in template[1::2] if not is_col}
            if (
                len(template) > 1
                and len(template) % 2
                and all(is_col for is_col, _ in template[::2])
                and len(between) == 1
                and not any(is_col for is_col, _ in template[1::2])
            ):  # "{a}#{b}": the columns joined with the one literal between them as the separator
                out = pc.binary_join_element_wise(*[piece(True, t) for _, t in template[::2]], between.pop())
            else:
                pieces = [piece(is_col, text) for is_col, text in template]
                out = pieces[0] if len(pieces) == 1 else pc.binary_join_element_wise(*pieces, "")
            label = next((t for is_col, t in template if is_col), spec.template)
            return out, (lambda rows: [label] * len(rows))
        if spec.join is not None:
            parts = []
            for name in spec.join:
                arr = c.get([name])
                if arr is not None:
                    parts.append(
                        pc.if_else(pc.equal(pc.binary_length(arr), 0), pa.scalar(None, pa.string()), arr)
                    )
            if not parts:
                return c.empty_column(), (lambda rows: [None] * len(rows))
            joined = pc.binary_join_element_wise(*parts, spec.sep, null_handling="skip")
            return pc.fill_null(joined, ""), (lambda rows: [spec.join[0]] * len(rows))  # type: ignore[index]
        if spec.const is not None:
            return vector.const(spec.const, self.n), (lambda rows: [None] * len(rows))
        if spec.digest is not None:
            return self._digest(spec.digest), (lambda rows: [None] * len(rows))
        raise AssertionError("amount columns are read by _amount")

    def _digest(self, names: list[str]) -> pa.Array:
        import pandas as pd

        parts = [self.c.get([name]) for name in names]
        cols = [p if p is not None else self.c.empty_column() for p in parts]
        joined = pc.binary_join_element_wise(*cols, "\x1f") if len(cols) > 1 else cols[0]
        hashed = pd.util.hash_array(
            np.asarray(joined.to_numpy(zero_copy_only=False), dtype=object), categorize=False
        )
        digits = pc.cast(pa.array(hashed, pa.uint64()), pa.string())
        return pc.binary_join_element_wise(pa.scalar("h"), digits, "")

    def _text(self, spec: FieldSpec) -> tuple[pa.Array, Callable[[Idx], list[str | None]]]:
        """The field's cleaned text (computed once per spec: kinds share the fields they do not override)."""
        key = ("text", id(spec))
        hit = self._shared.get(key)
        if hit is None:
            hit = self._shared[key] = self._text_of(spec)
        return hit  # type: ignore[return-value]

    def _text_of(self, spec: FieldSpec) -> tuple[pa.Array, Callable[[Idx], list[str | None]]]:
        arr, column = self._source(spec)
        arr = vector.blank_to(arr, spec.null_values)
        for old, new in spec.replace.items():
            arr = pc.replace_substring(arr, old, new)
        if spec.extract is not None:
            found = pc.extract_regex(
                arr, spec.extract if "(?P<" in spec.extract else f"(?P<v>{spec.extract})"
            )
            arr = pc.fill_null(pc.struct_field(found, 0), "")
        if spec.default is not None:
            arr = pc.if_else(pc.equal(pc.binary_length(arr), 0), pa.scalar(spec.default), arr)
        return arr, column

    def _add(self, fld: str, sub: float, failure: vector.Failure) -> None:
        self._slot(self.order[fld] + sub / 10, failure)

    def _slot(self, order: float, failure: vector.Failure) -> None:
        mask = failure.mask & self.applies
        if mask.any():
            self.slots.append(Slot(order, vector.Failure(mask, failure.describe)))

    def _required(
        self, fld: str, spec: FieldSpec, arr: pa.Array, column: Callable[[Idx], list[str | None]]
    ) -> None:
        if spec.required or fld == "txn_id":
            mask = vector.empty(arr)
            reason = spec.required_reason
            self._add(fld, 0, vector.Failure(mask, lambda rows: [(col, reason) for col in column(rows)]))

    # ---------------------------------------------------------------------------------- fields
    def run(self) -> dict[str, object]:
        values: dict[str, object] = {}
        specs = self.specs
        values["currency"] = self._currency(specs.get("currency"))
        currency = values["currency"]
        assert isinstance(currency, pa.Array)
        key = ("exponents", id(currency))  # (kinds sharing the currency column share its exponents)
        hit = self._shared.get(key)
        if not isinstance(hit, tuple):
            hit = self._shared[key] = (currency, vector.exponents_of(currency))  # (keeps the id unique)
        exps: npt.NDArray[np.int64] = hit[1]
        self.exps = exps
        if "amount" in specs:
            values["amount"] = self._amount("amount", specs["amount"], exps, values)
        values["fee"] = (
            self._amount("fee", specs["fee"], exps, values)
            if "fee" in specs
            else np.zeros(self.n, dtype=np.int64)
        )
        if "gross" in specs:
            values["gross"] = self._gross(specs["gross"], exps)
        booked = specs.get("booked_at")
        if booked is not None:
            values["booked_local"] = self._moment("booked_at", booked)
        own = self._own_rows()
        for fld, spec in specs.items():
            if fld in TEXT_FIELDS or fld in ("txn_type", "status"):
                if own is not None and self.kind is not None and fld in self.kind.fields:
                    values[fld] = self._spread(fld, spec, *own)
                else:
                    values[fld] = self._value(fld, spec)
            elif fld == "value_date":
                values["value_local"] = self._moment("value_date", spec)
        for fld, default in (("txn_type", "other"), ("status", "success")):
            values.setdefault(fld, vector.const(default, self.n))
        return values

    def _own_rows(self) -> tuple[_Partition, Idx] | None:
        """A partition of this kind's rows alone, for the text fields only the kind has (a refund's template
        id, its status map), when the kind holds at most a fifth of the rows: those fields are computed on
        its rows, not on every row (the kind's columns are taken, the values spread back: measured as slow
        as every row at about a quarter)."""
        if self.kind is None or not self.kind.fields:
            return None
        rows = np.flatnonzero(self.applies)
        if 5 * len(rows) > self.n:
            return None
        own = _Partition(
            self.profile,
            self.kind,
            self.c.rows(rows),
            self.ctx,
            self.captures,
            applies=np.ones(len(rows), dtype=bool),
            shared={},
        )
        return own, rows

    def _value(self, fld: str, spec: FieldSpec) -> pa.Array:
        """A text field, the type or the status."""
        if fld in TEXT_FIELDS:
            arr, column = self._text(spec)
            self._required(fld, spec, arr, column)
            return arr
        return self._enum(fld, spec)

    def _spread(self, fld: str, spec: FieldSpec, own: _Partition, rows: Idx) -> pa.Array:
        """``_value`` computed by ``own`` (on ``rows``) for every row (empty on the others), and the
        rejections it found, as this partition's."""
        arr = own._value(fld, spec)
        self.spread.add(fld)
        for slot in own.slots:
            mask = np.zeros(self.n, dtype=bool)
            mask[rows] = slot.failure.mask
            self._slot(slot.order, vector.Failure(mask, _on_rows(slot.failure.describe, rows)))
        own.slots.clear()
        return vector.spread(arr, rows, self.n)

    def _currency(self, spec: FieldSpec | None) -> pa.Array:
        if spec is None:
            return vector.const(self.ctx.currency, self.n)
        key = ("currency", id(spec))
        hit = self._shared.get(key)
        if not isinstance(hit, tuple):
            hit = self._currency_of(spec)
            self._shared[key] = hit
        arr, failures = hit
        for sub, failure in failures:
            self._add("currency", sub, failure)
        return arr

    def _currency_of(self, spec: FieldSpec) -> tuple[pa.Array, list[tuple[int, vector.Failure]]]:
        """The currency column and its failures (for every row: each kind masks its own)."""
        failures: list[tuple[int, vector.Failure]] = []
        maps = spec.map is not None or spec.contains is not None
        one = None if maps or not _as_read(spec) else self.c.single(spec.column or [])
        if one is not None:  # (not even a cleaned copy of the column)
            arr, column = vector.const(one, self.n), _named(self.c.name(spec.column or []))
        else:
            arr, column = self._text(spec)
        if maps:
            mapped = vector.map_values(
                arr,
                exact={**({"": ""}), **(spec.map or {})} if spec.map is not None else None,
                contains=spec.contains,
                ignore_case=spec.ignore_case,
                default=spec.map_default,
                reason=spec.unknown_reason,
                column=column,
            )
            failures.append((1, mapped.failure))
            arr = mapped.values
        n = len(arr)
        single = vector.single_value(arr)
        if single is not None:  # one currency in every row (the usual bill): checked once
            arr = pa.array([single], pa.string())
        arr = pc.utf8_upper(arr)
        arr = pc.if_else(pc.equal(pc.binary_length(arr), 0), pa.scalar(self.ctx.currency), arr)
        bad = ~vector.bools(pc.match_substring_regex(arr, r"^[A-Z]{3}$"))
        if single is not None:
            arr, bad = vector.const(arr[0].as_py(), n), np.full(n, bool(bad[0]))
        raw = arr

        def describe(rows: Idx) -> list[tuple[str | None, str]]:
            values = vector.text_at(raw, rows)
            cols = column(rows)
            return [(cols[i], f"not a currency code: {values[i]!r}") for i in range(len(rows))]

        failures.append((2, vector.Failure(bad, describe)))
        if single is not None:
            return (vector.const(self.ctx.currency, n) if bad[0] else arr), failures
        return pc.if_else(pa.array(bad), pa.scalar(self.ctx.currency), arr), failures

    def _parse_amount(
        self,
        arr: pa.Array,
        column: Callable[[Idx], list[str | None]],
        fmt: AmountFormat,
        exps: npt.NDArray[np.int64],
    ) -> vector.Amounts:
        """A column parsed as amounts, empty values read as 0 (cached: totals and fields share parses)."""
        key = (id(arr), fmt.model_dump_json())
        hit = self._amount_cache.get(key)
        if hit is not None:
            return hit[1]
        fast = vector.fast_amounts(arr, exps, fmt)  # (never with empty values)
        if fast is not None:
            parsed = vector.Amounts(fast, vector.no_failure(len(arr)))
        else:
            zeroed = arr
            if pc.any(pc.equal(pc.binary_length(arr), 0)).as_py():
                zeroed = pc.if_else(pc.equal(pc.binary_length(arr), 0), pa.scalar("0"), arr)
            parsed = vector.amounts(zeroed, exps, self._cur_fn(), fmt, column)
        self._amount_cache[key] = (arr, parsed)  # keeps arr alive: its id stays unique
        return parsed

    def _cur_fn(self) -> Callable[[Idx], list[str]]:
        cur = self._currency_values

        def at(rows: Idx) -> list[str]:
            return vector.text_at(cur, rows) if cur is not None else [self.ctx.currency] * len(rows)

        return at

    _currency_values: pa.Array | None = None

    def _amount(
        self, fld: str, spec: FieldSpec, exps: npt.NDArray[np.int64], values: dict[str, object]
    ) -> npt.NDArray[np.int64]:
        c = self.c
        minor: npt.NDArray[np.int64]
        column: Callable[[Idx], list[str | None]]
        found = values.get("currency")
        self._currency_values = found if isinstance(found, pa.Array) else None
        if spec.credit is not None or spec.debit is not None:
            total = np.zeros(self.n, dtype=np.int64)
            credit = debit = None
            for sub, cols, sign in ((1, spec.credit, 1), (2, spec.debit, -1)):
                if cols is None:
                    continue
                arr = c.get(cols)
                arr = vector.blank_to(arr if arr is not None else c.empty_column(), spec.null_values)
                name = c.name(cols)
                parsed = self._parse_amount(arr, _named(name), spec.amount, exps)
                self._add(fld, sub, parsed.failure)
                if sign > 0:
                    credit = (parsed.minor, name)
                    total += parsed.minor
                else:
                    debit = (parsed.minor, name)
                    total -= np.abs(parsed.minor)
            if credit is not None:
                neg = credit[0] < 0
                cname = credit[1]
                self._add(
                    fld, 3, vector.Failure(neg, lambda rows: [(cname, f"negative {cname}")] * len(rows))
                )
            if credit is not None and debit is not None:
                both = (credit[0] != 0) & (debit[0] != 0)
                msg = f"a row with both {credit[1]} and {debit[1]}"
                dname = debit[1]
                self._add(fld, 4, vector.Failure(both, lambda rows: [(dname, msg)] * len(rows)))
            minor = total
            column = _named(c.name(spec.credit or spec.debit or [fld]))

        elif (plain := self._plain_amount(spec, exps)) is not None:
            minor, column = plain, _named(c.name(spec.column or [fld]))  # (nothing empty, nothing rejected)
        else:
            arr, column = self._text(spec)
            self._required(fld, spec, arr, column)
            parsed = self._parse_amount(arr, column, spec.amount, exps)
            blank = vector.empty(arr)
            self._add(
                fld,
                0.9,
                vector.Failure(blank, lambda rows: [(col, "amount is empty") for col in column(rows)]),
            )
            self._add(fld, 1, parsed.failure)
            minor = parsed.minor
            if spec.unsigned:
                reason = spec.unsigned_reason
                self._add(
                    fld, 2, vector.Failure(minor < 0, lambda rows: [(col, reason) for col in column(rows)])
                )
        if spec.sign_from is not None:
            sf = spec.sign_from
            ind = c.get(sf.column)
            ind = ind if ind is not None else c.empty_column()
            mapped = vector.map_values(
                ind,
                exact=dict(sf.map),
                contains=None,
                ignore_case=sf.ignore_case,
                default=None,
                reason=sf.reason,
                column=lambda rows: [c.name(sf.column)] * len(rows),
            )
            self._add(fld, 0.5, mapped.failure)
            minus = vector.bools(pc.equal(mapped.values, "-"))
            minor = np.where(minus, -np.abs(minor), np.abs(minor))
        if spec.abs:
            minor = np.abs(minor)
        if spec.sign_of == "amount":
            amount = values.get("amount")
            base = amount if isinstance(amount, np.ndarray) else np.zeros(self.n, dtype=np.int64)
            minor = np.where(base >= 0, np.abs(minor), -np.abs(minor))
        if spec.negate:
            minor = -minor
        if spec.min is not None or spec.max is not None:
            low = np.full(self.n, np.iinfo(np.int64).min, dtype=np.int64)
            high = np.full(self.n, np.iinfo(np.int64).max, dtype=np.int64)
            for e in np.unique(exps).tolist():
                rows = exps == e
                if spec.min is not None:
                    low[rows] = vector.decimal_minor(spec.min, int(e))
                if spec.max is not None:
                    high[rows] = vector.decimal_minor(spec.max, int(e))
            out = (minor < low) | (minor > high)
            reason = spec.range_reason or f"{fld} out of range"
            self._add(fld, 5, vector.Failure(out, lambda rows: [(col, reason) for col in column(rows)]))
        return minor

    def _gross(
        self, spec: FieldSpec, exps: npt.NDArray[np.int64]
    ) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.bool_]] | None:
        """The amount before merchant-funded discounts (its column as written) and where it is stated: an
        empty cell is no amount, not 0; None when the file has no such column (an older layout). A value
        that is not an amount rejects the row."""
        if spec.column is None or self.c.find(spec.column) is None:
            return None
        plain = self._plain_amount(spec, exps)
        if plain is not None:  # (nothing empty)
            return plain, np.ones(self.n, dtype=bool)
        arr, column = self._text(spec)
        parsed = self._parse_amount(arr, column, spec.amount, exps)
        self._add("gross", 1, parsed.failure)
        return parsed.minor, ~vector.empty(arr)

    def _plain_amount(self, spec: FieldSpec, exps: npt.NDArray[np.int64]) -> npt.NDArray[np.int64] | None:
        """A column's amounts as ``Cells.amounts`` reads them, when the field takes the column as it is."""
        return self.c.amounts(spec.column, exps, spec.amount) if _as_read(spec) and spec.column else None

    def _moment(self, fld: str, spec: FieldSpec) -> npt.NDArray[np.int64]:
        if spec.const is not None:
            arr, column = vector.const(spec.const, self.n), _named(None)
        else:
            arr, column = self._text(spec)
        formats = [strptime_format(p) for p in spec.formats] or ["%Y-%m-%d %H:%M:%S"]
        year = self._capture_int(spec.year_from)
        month = self._capture_int(spec.month_from)
        # Kinds reading the same column the same way share one parse (each words its own rejections).
        key = ("moments", id(arr), tuple(formats), year, month)
        hit = self._shared.get(key)
        if not isinstance(hit, tuple):
            hit = self._shared[key] = (arr, vector.moments(arr, formats, column, year=year, month=month))
        found: vector.Moments = hit[1]
        self._add(fld, 1, vector.Failure(found.failure.mask, found.describe_with(column)))
        return found.local_micros

    def _capture_int(self, name: str | None) -> int | None:
        if name is None:
            return None
        text = self.captures.get(name, "")
        digits = "".join(ch for ch in unicodedata.normalize("NFKC", text) if ch.isdigit())
        return int(digits) if digits else None

    def _enum(self, fld: str, spec: FieldSpec) -> pa.Array:
        arr, column = self._text(spec)
        if spec.const is not None:
            return arr
        mapped = vector.map_values(
            arr,
            exact=spec.map,
            contains=spec.contains,
            ignore_case=spec.ignore_case,
            default=spec.map_default,
            reason=spec.unknown_reason,
            column=column,
        )
        self._add(fld, 1, mapped.failure)
        return mapped.values

    # ---------------------------------------------------------------------------------- checks
    def checks(self, cell: Callable[[list[str]], pa.Array | None]) -> None:
        if self.kind is None:
            return
        for k, check in enumerate(self.kind.checks):
            holds = vector.condition(check.require, cell, self.n, self.c.filled)
            col = check.column or _first_column(check.require)
            reason = check.reason
            self._slot(-0.5 + k / 1000, vector.Failure(~holds, _described(col, reason)))


def _named(name: str | None) -> Callable[[Idx], list[str | None]]:
    def column(rows: Idx) -> list[str | None]:
        return [name] * len(rows)

    return column


def _as_read(spec: FieldSpec) -> bool:
    """The field is a column's cleaned text as it is (no null values, replacements, extraction or default)."""
    return (
        spec.column is not None
        and not spec.null_values
        and not spec.replace
        and spec.extract is None
        and spec.default is None
    )


def _on_rows(describe: vector.Describe, rows: Idx) -> vector.Describe:
    """``describe`` of values computed on ``rows`` alone, for rows numbered among all."""

    def at(found: Idx) -> list[tuple[str | None, str]]:
        return describe(np.searchsorted(rows, found))

    return at


def _described(column: str | None, reason: str) -> vector.Describe:
    def describe(rows: Idx) -> list[tuple[str | None, str]]:
        return [(column, reason)] * len(rows)

    return describe


def _first_column(cond: Condition) -> str | None:
    for cols in cond.columns():
        return cols[0]
    return None


# ----------------------------------------------------------------------------------------- the run


_PartOut = tuple[Idx, "_Partition", dict[str, object], dict[tuple[int, int], npt.NDArray[np.int64]]]


@dataclass
class _Member:
    member: Member
    role: str
    spec: ArchiveMember | None


def _roles(members: list[Member], profile: Profile, filename: str) -> tuple[list[_Member], list[RowError]]:
    if profile.archive is None:
        if len(members) != 1:
            return [], [
                RowError(
                    file=filename,
                    row=FILE_LEVEL_ROW,
                    column=None,
                    reason=f"expected one file, the archive holds {len(members)}",
                )
            ]
        return [_Member(members[0], "data", None)], []
    out: list[_Member] = []
    errors: list[RowError] = []
    for m in members:
        head = ""
        try:
            head = first_line(
                decode_text(_sample(m.data), filename, profile.encodings, ())
                .buf[: 1 << 14]
                .decode("utf-8", "replace")
            )
        except StatementParseError:
            head = ""
        role = None
        for spec in profile.archive.members:
            marks = spec.first_line or (profile.match.first_line if spec.role == "data" else [])
            if (marks and head.startswith(tuple(marks))) or (
                m.name and spec.name_suffix and m.name.endswith(tuple(spec.name_suffix))
            ):
                role = spec
                break
        out.append(_Member(m, role.role if role else "unknown", role))
    for spec in profile.archive.members:
        found = sum(x.role == spec.role for x in out)
        if (spec.required or spec.role == "data") and found != 1:
            what = "data" if spec.role == "data" else spec.role
            suffix = f" ({', '.join(spec.name_suffix)})" if spec.name_suffix else ""
            errors.append(
                RowError(
                    file=filename,
                    row=FILE_LEVEL_ROW,
                    column=None,
                    reason=f"expected one {what} member{suffix}, found {found}",
                )
            )
    return out, errors


def run_profile(profile: Profile, members: list[Member], ctx: Context) -> ParsedStatement:
    """Parse with ``profile``; raises ``StatementParseError`` (with the partial result when there is one)."""
    try:
        return _run(profile, members, ctx, trust_utf8=True, quick=True)
    except LinesNotPlain:
        pass  # a line the quick index took for a plain data row is not one: index every line
    except NotUtf8:
        return _run(profile, members, ctx, trust_utf8=False)
    try:
        return _run(profile, members, ctx, trust_utf8=True)
    except NotUtf8:
        return _run(profile, members, ctx, trust_utf8=False)


def _run(
    profile: Profile, members: list[Member], ctx: Context, *, trust_utf8: bool, quick: bool = False
) -> ParsedStatement:
    filename = ctx.filename
    roles, role_errors = _roles(members, profile, filename)
    data = [r for r in roles if r.role == "data"]
    skipped: Counter[str] = Counter()
    fatal_errors: list[RowError] = list(role_errors)
    rows_read = 0
    section_hits: list[SectionHit] = []
    captures: dict[str, str] = {}
    for r in roles:
        if r.role == "data":
            continue
        file = f"{filename}!{r.member.name}" if r.member.name else filename
        try:
            decoded = decode_text(
                r.member.data, file, profile.encodings, (r.spec.first_line if r.spec else ())
            )
        except StatementParseError as exc:
            fatal_errors += exc.errors
            continue
        text = decoded.buf.decode("utf-8", "replace")
        recs = list(records(text))
        name = r.role if r.spec is not None else "unknown_member"
        skipped[name] += len(recs)
        rows_read += len(recs)
        if r.spec is None:
            if profile.archive is not None and profile.archive.unknown_members == "reject":
                fatal_errors.append(
                    RowError(
                        file=file, row=FILE_LEVEL_ROW, column=None, reason="unexpected member in the archive"
                    )
                )
            continue
        rl = RecordLines(
            [x.line for x in recs],
            [x.raw for x in recs],
            [split_cells(x.raw, ",", '"') if not x.blank else [] for x in recs],
        )
        section_hits.append(
            SectionHit(r.role, r.spec, [i for i in range(rl.count) if not rl.blank[i]], file, rl)
        )
    if len(data) != 1:
        raise StatementParseError(
            fatal_errors or [RowError(file=filename, row=FILE_LEVEL_ROW, reason="no data member")],
            _empty(profile, rows_read, skipped, fatal_errors),
        )
    part = open_part(
        data[0].member, profile, filename=filename, raw_key=ctx.raw_key, trust_utf8=trust_utf8, quick=quick
    )
    lay = layout(part, profile)
    lines = part.lines
    skipped.update(lay.skipped)
    fatal_errors += lay.errors
    section_hits = lay.sections + section_hits
    _captures(profile, lay, part, hits=section_hits, out=captures, errors=fatal_errors)
    statement_date = _statement_date(profile, captures, part, fatal_errors)
    data_idx = lay.data_rows(lines)
    lines.check_read(data_idx)  # (QuickLines: the rows must hold every line it did not index)
    rows_read += lines.count - (1 if part.virtual_header and lines.count else 0)
    if lay.header is None:
        return finish(
            _empty(
                profile,
                rows_read,
                skipped,
                fatal_errors,
                encoding=part.encoding,
                statement_date=statement_date,
            ),
            [],
            fatal_errors,
        )

    header = lay.header_cells
    index: dict[str, int] = {}
    for pos, name in enumerate(header):
        index.setdefault(norm_header(name), pos)
    cols0 = Cells(index, header, {}, 0)
    missing, needed = _needed(profile, cols0)
    if missing:
        lines.check_read(data_idx[:0])  # nothing is read: QuickLines cannot tell its block's blank lines
        fatal_errors.append(
            RowError(
                file=part.file,
                row=lines.line_no(lay.header),
                column=", ".join(missing),
                reason="required columns missing",
            )
        )
        rows_read_data = len(data_idx)
        skipped["unread"] += rows_read_data
        return finish(
            _empty(
                profile,
                rows_read,
                skipped,
                fatal_errors,
                encoding=part.encoding,
                statement_date=statement_date,
            ),
            [],
            fatal_errors,
        )

    # The data rows are converted a slice at a time: every result is per row (sums and counts add up), the
    # working set stays in cache and memory stays flat however long the file is.
    try:
        chunks = [
            _convert(profile, part, rows, cols0, needed=sorted(needed), ctx=ctx, captures=captures)
            for rows in lines.chunks(data_idx, CHUNK_ROWS)
        ]
    except NotUtf8 as exc:
        if isinstance(lines, QuickLines):  # (it read lines the exact index may not: start over with that)
            raise LinesNotPlain(str(exc)) from exc
        raise
    counts = Counter[str]({ALL_ROWS: len(data_idx)})
    sum_totals: dict[tuple[int, int], int] = {}
    errors: list[RowError] = []
    for chunk in chunks:
        counts.update(chunk.counts)
        for key, total in chunk.sums.items():
            sum_totals[key] = sum_totals.get(key, 0) + total
        errors += chunk.errors
    checks = _control_totals(
        profile, section_hits, lay, part, counts=counts, sums=sum_totals, ctx=ctx, errors=fatal_errors
    )
    out_table = _table(chunks, raw_key=part.raw_key, profile=profile, ctx=ctx)
    parsed = ParsedStatement(
        format=profile.name,
        encoding=part.encoding,
        profile=profile.name,
        profile_version=profile.version,
        statement_date=statement_date,
        table=out_table,
        rows_read=rows_read,
        rows_skipped=sum(skipped.values()),
        skipped_by_rule=dict(skipped),
        errors=errors,
        control_totals=[c.total for c in checks],
    )
    return finish(parsed, checks, fatal_errors)


@dataclass
class _Chunk:
    """One slice of data rows, converted: the valid rows' values (``_ROW_COLUMNS``), the rejections, the
    rows per kind and the control-total sums over valid rows."""

    columns: dict[str, pa.Array]
    errors: list[RowError]
    counts: Counter[str]
    sums: dict[tuple[int, int], int]
    buckets: npt.NDArray[np.uint64] | None = None  # recon.tables.bucket_of(txn_id), while it is at hand


def _convert(
    profile: Profile,
    part: Part,
    data_idx: Idx,
    cols0: Cells,
    *,
    needed: list[int],
    ctx: Context,
    captures: dict[str, str],
) -> _Chunk:
    lines = part.lines
    table = lines.read(data_idx, len(cols0.names), needed)
    n = len(data_idx)
    cols = Cells(cols0.index, cols0.names, table.columns, n, strip=profile.strip, prefix=profile.strip_prefix)
    line_nos = lines.line_nos(data_idx)

    # Row kinds (first match wins), for field overrides and control-total groups.
    kind_of = np.full(n, -1, dtype=np.int64)
    for k, kind in enumerate(profile.kinds):
        hit = vector.condition(kind.when, cols.get, n) if kind.when is not None else np.ones(n, dtype=bool)
        kind_of[hit & (kind_of == -1)] = k

    width_fail = _width_failure(profile, part, table.widths, len(cols0.names), n)
    parts_out: list[_PartOut] = []
    shared: dict[object, object] = {}
    everyone = np.arange(n, dtype=np.intp)
    for k in np.unique(kind_of).tolist():
        applies = kind_of == k
        row_kind = profile.kinds[k] if k >= 0 else None
        p = _Partition(profile, row_kind, cols, ctx, captures, applies=applies, shared=shared)
        values = p.run()
        sums = _total_columns(profile, p, cols, k)
        p.checks(cols.get)
        parts_out.append((np.flatnonzero(applies), p, values, sums))

    entries: list[tuple[float, Idx, npt.NDArray[np.bool_], vector.Describe]] = [
        (-1.0, everyone, width_fail.mask, width_fail.describe)
    ]
    for _rows, p, _values, _sums in parts_out:
        entries += [(slot.order, everyone, slot.failure.mask, slot.failure.describe) for slot in p.slots]
    entries.sort(key=lambda e: e[0])
    first_fail = np.full(n, -1, dtype=np.int64)
    for j, (_order, rows, mask, _describe) in enumerate(entries):
        if not mask.any():
            continue
        candidates = rows[mask]
        first_fail[candidates[first_fail[candidates] == -1]] = j
    errors = _row_errors(first_fail, entries, part.file, line_nos)
    valid = first_fail == -1
    counts = Counter[str]()
    for k, kind in enumerate(profile.kinds):
        counts[kind.name] = int(np.sum(kind_of == k))
    columns = _rows_out(_assemble(parts_out), valid, line_nos, ctx=ctx)
    return _Chunk(
        columns=columns,
        errors=errors,
        counts=counts,
        sums=_sum_totals(parts_out, valid),
        buckets=bucket_of(columns["txn_id"]),
    )


def _row_errors(
    first_fail: npt.NDArray[np.int64],
    entries: list[tuple[float, Idx, npt.NDArray[np.bool_], vector.Describe]],
    file: str,
    line_nos: npt.NDArray[np.int64],
) -> list[RowError]:
    """One RowError per rejected row: its first failing check, worded only for the rows it rejects."""
    found: list[tuple[int, RowError]] = []
    failing = first_fail[first_fail >= 0]
    for j in np.unique(failing).tolist() if len(failing) else []:
        _order, rows, _mask, describe = entries[j]
        hit = np.flatnonzero(first_fail == j)
        if not len(hit):
            continue
        local = np.searchsorted(rows, hit)
        for r, (col, reason) in zip(hit.tolist(), describe(local), strict=True):
            line = int(line_nos[r])
            found.append((line, RowError(file=file, row=line, column=col, reason=reason)))
    found.sort(key=lambda e: e[0])
    return [e for _, e in found]


def _width_failure(
    profile: Profile, part: Part, widths: npt.NDArray[np.int64], ncols: int, n: int
) -> vector.Failure:
    if part.objects is not None:
        objects = np.array(part.objects, dtype=bool) if n else np.zeros(0, dtype=bool)
        mask = ~objects

        def width(rows: Idx) -> list[tuple[str | None, str]]:
            return [(None, "record is not an object")] * len(rows)

        return vector.Failure(mask, width)
    if isinstance(part.lines, RecordLines) and profile.container != "csv":
        return vector.no_failure(n)
    mask = ((widths < ncols) & (profile.missing_fields == "reject")) | (
        (widths > ncols) & (profile.extra_fields == "reject")
    )

    def counted(rows: Idx) -> list[tuple[str | None, str]]:
        return [(None, f"expected {ncols} fields, got {int(widths[r])}") for r in rows]

    return vector.Failure(mask, counted)


def _needed(profile: Profile, cols: Cells) -> tuple[list[str], set[int]]:
    """(missing required columns, positions of every column read)."""
    missing: list[str] = []
    needed: set[int] = set()

    def want(aliases: Columns, required: bool) -> None:
        pos = cols.find(aliases)
        if pos is None:
            if required and aliases[0] not in missing:
                missing.append(aliases[0])
        else:
            needed.add(pos)

    for spec_map in (profile.fields, *(k.fields for k in profile.kinds)):
        for spec in spec_map.values():
            if spec.first_of is not None:
                present = [cols.find([c]) for c in spec.first_of]
                if all(p is None for p in present) and not spec.optional:
                    missing.append(spec.first_of[0])
                needed |= {p for p in present if p is not None}
                continue
            if spec.join is not None:
                for name in spec.join:
                    want([name], False)
                continue
            for aliases in spec.source_columns():
                want(aliases, not spec.optional)
    for kind in profile.kinds:
        conds = [kind.when] if kind.when else []
        conds += [c.require for c in kind.checks]
        for cond in conds:
            for aliases in cond.columns():
                want(aliases, False)
    for total in profile.control_totals:
        for value in total.values:
            if value.sum is not None:
                want(value.sum, False)
    return missing, needed


def _total_columns(
    profile: Profile, p: _Partition, sub: Cells, kind: int
) -> dict[tuple[int, int], npt.NDArray[np.int64]]:
    """Parse the summed columns of control totals (rows whose kind the total sums); a bad value rejects."""
    out: dict[tuple[int, int], npt.NDArray[np.int64]] = {}
    kind_name = profile.kinds[kind].name if kind >= 0 else ""
    for t, total in enumerate(profile.control_totals):
        for v, value in enumerate(total.values):
            if value.sum is None or value.sum_kind not in (ALL_ROWS, kind_name):
                continue
            plain = sub.amounts(value.sum, p.exps, value.amount)
            if plain is not None:
                out[(t, v)] = np.abs(plain) if value.sum_abs else plain
                continue
            arr = sub.get(value.sum)
            if arr is None:
                out[(t, v)] = np.zeros(sub.n, dtype=np.int64)
                continue
            name = sub.name(value.sum)
            parsed = p._parse_amount(arr, _named(name), value.amount, p.exps)
            p._slot(500 + t + v / 100, parsed.failure)
            out[(t, v)] = np.abs(parsed.minor) if value.sum_abs else parsed.minor
    return out


def _sum_totals(parts_out: list[_PartOut], valid: npt.NDArray[np.bool_]) -> dict[tuple[int, int], int]:
    out: dict[tuple[int, int], int] = {}
    for _rows, p, _values, sums in parts_out:
        counted = p.applies & valid
        for key, arr in sums.items():
            out[key] = out.get(key, 0) + int(arr @ counted)  # integer dot product: exact, and quick
    return out


def _assemble(parts_out: list[_PartOut]) -> dict[str, object]:
    """The kinds' values (each computed for all rows) merged: every row takes its own kind's."""
    out: dict[str, object] = {}
    for key in (
        "txn_id",
        "order_ref",
        "refund_ref",
        "counterparty",
        "memo",
        "currency",
        "txn_type",
        "status",
    ):
        merged: pa.Array | None = None
        blank = False  # merged is empty on the rows of the kinds not merged yet
        for _rows, p, values, _ in parts_out:
            arr = values.get(key)
            if not isinstance(arr, pa.Array | pa.ChunkedArray):  # the kind has no such value: empty
                if merged is None:
                    merged, blank = vector.const("", p.n), True
                elif not blank:
                    merged = vector.where(p.applies, vector.const("", p.n), merged)
                continue
            arr = vector.strings(arr)
            if merged is None:
                merged, blank = arr, key in p.spread
            elif merged is not arr:  # (a field no kind overrides: one array already)
                merged = vector.where(p.applies, arr, merged)
        out[key] = merged if merged is not None else pa.array([], pa.string())
    out["gross"] = _gross_of(parts_out)
    for key in ("amount", "fee", "booked_local", "value_local"):
        numbers: npt.NDArray[np.int64] | None = None
        missing = False
        for _rows, p, values, _ in parts_out:
            found = values.get(key)
            if found is None:
                missing = True
                found = np.zeros(p.n, dtype=np.int64)
            arr = np.asarray(found, dtype=np.int64)
            numbers = arr if numbers is None or numbers is arr else np.where(p.applies, arr, numbers)
        if key == "value_local" and missing:
            out[key] = None
        else:
            out[key] = numbers if numbers is not None else np.zeros(0, dtype=np.int64)
    return out


def _gross_of(parts_out: list[_PartOut]) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.bool_]] | None:
    """The kinds' amounts before discounts merged (each row its own kind's; a kind without one: none)."""
    gross: npt.NDArray[np.int64] | None = None
    stated: npt.NDArray[np.bool_] | None = None
    for _rows, p, values, _ in parts_out:
        found = values.get("gross")
        if not isinstance(found, tuple):
            continue
        minor, has = found
        if gross is None or stated is None:
            gross, stated = np.zeros(p.n, dtype=np.int64), np.zeros(p.n, dtype=bool)
        take = p.applies & has
        np.copyto(gross, minor, where=take)
        stated |= take
    return None if gross is None or stated is None else (gross, stated)


def _rows_out(
    columns: dict[str, object], valid: npt.NDArray[np.bool_], line_nos: npt.NDArray[np.int64], *, ctx: Context
) -> dict[str, pa.Array]:
    """The valid rows' own values (``_ROW_COLUMNS``), in file order."""
    everything = bool(valid.all())
    keep = pa.array(valid)

    def s(name: str) -> pa.Array:
        arr = columns[name]
        assert isinstance(arr, pa.Array)
        return arr if everything else pc.filter(arr, keep)

    def opt(name: str) -> pa.Array:
        return vector.nulls_for_empty(s(name))

    def num(name: str) -> npt.NDArray[np.int64]:
        arr = np.asarray(columns[name])
        return arr if everything else arr[valid]

    amount = num("amount")
    found = columns.get("gross")
    if isinstance(found, tuple):
        gross, stated = (found[0], found[1]) if everything else (found[0][valid], found[1][valid])
        gross_minor = pa.array(gross, pa.int64(), mask=None if stated.all() else ~stated)
    else:
        gross_minor = pa.nulls(len(amount), pa.int64())
    booked_local = num("booked_local")
    days = vector.local_days(num("value_local") if columns.get("value_local") is not None else booked_local)
    return {
        "txn_id": s("txn_id"),
        "order_ref": opt("order_ref"),
        "refund_ref": opt("refund_ref"),
        "amount_minor": pa.array(amount, pa.int64()),
        "fee_minor": pa.array(num("fee"), pa.int64()),
        "gross_minor": gross_minor,
        "currency": s("currency"),
        "booked_at": pa.array(vector.to_utc(booked_local, ctx.tz), pa.int64()).cast(
            pa.timestamp("us", tz="UTC")
        ),
        "value_date": pa.array(days, pa.int32()).cast(pa.date32()),
        "txn_type": s("txn_type"),
        "status": s("status"),
        "counterparty": opt("counterparty"),
        "memo": opt("memo"),
        "row_number": pa.array((line_nos if everything else line_nos[valid]).astype(np.int32), pa.int32()),
    }


def _table(chunks: list[_Chunk], *, raw_key: str, profile: Profile, ctx: Context) -> pa.Table:
    """The statement's rows in ``TRANSACTION_SCHEMA``: the chunks' rows joined (one Arrow chunk per column),
    the constant lineage columns, the dedupe key and the in-file duplicate flags."""
    data: dict[str, pa.Array] = {}
    for name in list(chunks[0].columns):
        pieces = [c.columns.pop(name) for c in chunks]
        data[name] = pieces[0] if len(pieces) == 1 else pa.concat_arrays(pieces)
    n = len(data["txn_id"])
    txn_id = data["txn_id"]
    amount = data["amount_minor"]
    fee = data["fee_minor"]
    data.update(
        # the prefix inserted before every id (measured quicker than joining it on)
        txn_uid=pc.binary_replace_slice(
            txn_id, start=0, stop=0, replacement=f"{ctx.source}:{ctx.account_id}:"
        ),
        source=vector.const(str(ctx.source), n),
        account_id=vector.const(ctx.account_id, n),
        statement_id=vector.const(ctx.statement_id, n),
        net_minor=pc.subtract(amount, fee),
        raw_key=vector.const(raw_key, n),
        profile=vector.const(profile.name, n),
        profile_version=vector.const(profile.version, n),
    )
    buckets: npt.NDArray[np.uint64] | None = None
    if list(profile.dedupe_key) == ["txn_id"]:
        dedupe = txn_id  # (never null)
        found = [c.buckets for c in chunks]
        if all(b is not None for b in found):
            buckets = np.concatenate(found)  # type: ignore[arg-type]
    else:
        key_parts = []
        for fld in profile.dedupe_key:
            col = {"amount": "amount_minor", "fee": "fee_minor", "gross": "gross_minor"}.get(fld, fld)
            key_parts.append(pc.fill_null(pc.cast(data[col], pa.string()), ""))
        dedupe = key_parts[0] if len(key_parts) == 1 else pc.binary_join_element_wise(*key_parts, "|")
    data["dedupe_key"] = dedupe
    data["in_file_duplicate"] = mark_duplicates(dedupe, buckets)
    return pa.Table.from_pydict(
        {name: data[name] for name in TRANSACTION_SCHEMA.names}, schema=TRANSACTION_SCHEMA
    )


# ------------------------------------------------------------------------------------ totals & captures


def _captures(
    profile: Profile,
    lay: Layout,
    part: Part,
    *,
    hits: list[SectionHit],
    out: dict[str, str],
    errors: list[RowError],
) -> None:
    import re

    if not profile.captures:
        return
    texts: list[str] = [part.lines.text(i) for _, i in sorted(lay.rule_lines, key=lambda x: x[1])]
    for hit in hits:
        texts += [hit.lines.text(i) for i in hit.rows]
    for cap in profile.captures:
        regex = re.compile(cap.regex)
        for text in texts:
            m = regex.search(unicodedata.normalize("NFKC", text))
            if m:
                named = m.groupdict()
                if named:
                    out[cap.name] = "-".join(v or "" for v in named.values())
                else:
                    out[cap.name] = m.group(1) if m.re.groups else m.group(0)
                break


def _statement_date(
    profile: Profile, captures: dict[str, str], part: Part, errors: list[RowError]
) -> date | None:
    value = captures.get("statement_date")
    if not value:
        return None
    try:
        y, m, d = (int(x) for x in value.split("-")[:3])
        return date(y, m, d)
    except ValueError:
        errors.append(
            RowError(
                file=part.file, row=FILE_LEVEL_ROW, column="statement_date", reason=f"not a date: {value!r}"
            )
        )
        return None


def _section_table(hit: SectionHit, profile: Profile) -> tuple[list[str], list[str], int] | None:
    """(header cells, values cells, values line number) of a section; header 'file' uses the data header."""
    spec = hit.spec
    lines = hit.lines
    import re

    def cells(i: int) -> list[str]:
        return [
            clean(c) if not profile.strip_prefix else _strip_prefix(clean(c), profile.strip_prefix)
            for c in lines.cells(i)
        ]

    if not hit.rows:
        return None
    header_rule = spec.table_header if spec is not None and spec.table_header is not None else "start"
    values_rule = spec.table_values if spec is not None and spec.table_values is not None else "next"
    head_at: int | None
    if header_rule == "start":
        head_at = 0
    elif header_rule == "file":
        head_at = None
    else:
        pattern = re.compile(header_rule)
        head_at = next(
            (
                k
                for k, i in enumerate(hit.rows)
                if pattern.search(unicodedata.normalize("NFKC", lines.text(i)))
            ),
            -1,
        )
        if head_at == -1:
            return None
    if values_rule == "next":
        at = (head_at or 0) + 1
    elif values_rule == "start":
        at = 0
    else:
        pattern = re.compile(values_rule)
        start = (head_at or 0) + (0 if head_at is None else 1)
        at = next(
            (
                k
                for k in range(start, len(hit.rows))
                if pattern.search(cells(hit.rows[k])[0] if cells(hit.rows[k]) else "")
            ),
            -1,
        )
        if at == -1:
            return None
    if at >= len(hit.rows):
        return None
    header = cells(hit.rows[head_at]) if head_at is not None else []
    return header, cells(hit.rows[at]), lines.line_no(hit.rows[at])


def _strip_prefix(value: str, prefix: str) -> str:
    return value[len(prefix) :].strip() if value.startswith(prefix) else value


def _control_totals(
    profile: Profile,
    hits: list[SectionHit],
    lay: Layout,
    part: Part,
    *,
    counts: Counter[str],
    sums: dict[tuple[int, int], int],
    ctx: Context,
    errors: list[RowError],
) -> list[TotalCheck]:
    import re

    checks: list[TotalCheck] = []
    currency = ctx.currency
    last_line = part.lines.line_no(part.lines.count - 1) if part.lines.count else 1
    for t, total in enumerate(profile.control_totals):
        if total.section is not None:
            found = [h for h in hits if h.name == total.section]
            if not found:
                if total.required or _section_required(profile, total.section):
                    msg = total.missing or _section_missing(profile, total.section)
                    errors.append(RowError(file=part.file, row=last_line, column=None, reason=msg))
                continue
            hit = found[0]
            table = _section_table(hit, profile)
            if table is None:
                errors.append(
                    RowError(
                        file=hit.file,
                        row=FILE_LEVEL_ROW,
                        column=None,
                        reason=f"{total.section} has no header or no values row",
                    )
                )
                continue
            header, values, line = table
            if header == [] and hit.spec is not None and getattr(hit.spec, "table_header", None) == "file":
                header = lay.header_cells
            if (
                len(values) != len(header)
                and profile.extra_fields == "reject"
                and header is not lay.header_cells
            ):
                errors.append(
                    RowError(
                        file=hit.file,
                        row=line,
                        column=None,
                        reason=f"{total.section} row has {len(values)} fields, its header {len(header)}",
                    )
                )
                continue
            stated: dict[str, tuple[str, str]] = {}
            for h, v in zip(header, values, strict=False):
                stated.setdefault(norm_header(h), (h, v))
            for v_i, value in enumerate(total.values):
                assert value.column is not None
                hit_value = next(
                    (stated[norm_header(a)] for a in value.column if norm_header(a) in stated), None
                )
                if hit_value is None:
                    if value.required:
                        errors.append(
                            RowError(
                                file=hit.file,
                                row=line,
                                column=value.column[0],
                                reason=f"{total.section} row lacks this column",
                            )
                        )
                    continue
                col, text = hit_value
                name = f"{total.name}.{value.key or col}"
                checks.extend(
                    _check(
                        name,
                        text,
                        value,
                        counts=counts,
                        sums=sums,
                        key=(t, v_i),
                        currency=currency,
                        file=hit.file,
                        row=line,
                        column=col,
                        errors=errors,
                    )
                )
        else:
            assert total.line is not None
            pattern = re.compile(total.line)
            candidates = [(rule, i) for rule, i in lay.rule_lines if total.rule is None or rule == total.rule]
            found_line = None
            for _rule, i in candidates:
                text = unicodedata.normalize("NFKC", part.lines.text(i)).strip()
                if pattern.search(text):
                    found_line = (i, text)
                    break
            label = total.label or total.name
            if found_line is None:
                if total.required:
                    errors.append(
                        RowError(
                            file=part.file,
                            row=last_line,
                            column=label,
                            reason=total.missing or f"{total.name} missing: file truncated?",
                        )
                    )
                continue
            i, text = found_line
            line = part.lines.line_no(i)
            for v_i, value in enumerate(total.values):
                assert value.regex is not None
                m = re.search(value.regex, text)
                key = value.key or label
                if m is None:
                    errors.append(
                        RowError(
                            file=part.file,
                            row=line,
                            column=label,
                            reason=f"{total.name}: no {key} value in {text!r}",
                        )
                    )
                    continue
                stated_text = m.group(1) if m.re.groups else m.group(0)
                checks.extend(
                    _check(
                        f"{total.name}.{key}",
                        stated_text,
                        value,
                        counts=counts,
                        sums=sums,
                        key=(t, v_i),
                        currency=currency,
                        file=part.file,
                        row=line,
                        column=label,
                        errors=errors,
                    )
                )
    return checks


def _section_required(profile: Profile, name: str) -> bool:
    return any(s.name == name and s.required for s in profile.sections)


def _section_missing(profile: Profile, name: str) -> str:
    for s in profile.sections:
        if s.name == name and s.missing:
            return s.missing
    return f"{name} section missing: file truncated?"


def _check(
    name: str,
    text: str,
    value: object,
    *,
    counts: Counter[str],
    sums: dict[tuple[int, int], int],
    key: tuple[int, int],
    currency: str,
    file: str,
    row: int,
    column: str,
    errors: list[RowError],
) -> list[TotalCheck]:
    from recon.domain.statement import ControlTotal

    from .profiles import TotalValue

    assert isinstance(value, TotalValue)
    try:
        if value.count is not None:
            stated = str(parse_count(text, column))
            computed = str(counts.get(value.count, 0))
            kind: TotalKind = "count"
        else:
            stated = fmt_amount(parse_amount(text, currency, column), currency)
            computed = fmt_amount(sums.get(key, 0), currency)
            kind = "amount"
    except RowFail as exc:
        errors.append(
            RowError(file=file, row=row, column=column, reason=f"control total {name}: {exc.reason}")
        )
        return []
    return [TotalCheck(ControlTotal(name=name, stated=stated, computed=computed), file, row, column, kind)]


def _empty(
    profile: Profile,
    rows_read: int,
    skipped: Counter[str],
    errors: list[RowError],
    *,
    encoding: str = "",
    statement_date: date | None = None,
) -> ParsedStatement:
    return ParsedStatement(
        format=profile.name,
        encoding=encoding,
        profile=profile.name,
        profile_version=profile.version,
        statement_date=statement_date,
        table=TRANSACTION_SCHEMA.empty_table(),
        rows_read=rows_read,
        rows_skipped=sum(skipped.values()),
        skipped_by_rule=dict(skipped),
        errors=[],
        control_totals=[],
    )
