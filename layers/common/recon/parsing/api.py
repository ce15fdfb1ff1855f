"""Format detection (from content) and the ``parse_statement`` entry point.

Detection scores every profile's ``match`` section (first-line markers, header names) on the decoded head
of each file, plus the code readers of ``registry.py`` and camt.053; the highest confidence wins (ties: the
more specific profile, then the name). gzip and zip containers are opened; an .xlsx workbook is one file.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from recon.domain.common import Source

from . import camt, readers, sheets
from ._common import (
    Builder,
    Context,
    Member,
    RowFail,
    check_currency,
    clean,
    decode,
    fatal,
    is_gzip,
    is_zip,
    norm_header,
    unpack,
    zone,
)
from .engine import _sample, decode_text, first_line, run_profile, sniff_delimiter
from .lines import split_cells
from .model import UNKNOWN_FORMAT, ParsedStatement, StatementParseError
from .profiles import Profile, builtin_profiles
from .readers import pdf
from .registry import best_reader, reader_for

assert readers  # imported for its side effect: every reader module registers itself

_XML_START = (b"<", b"\xef\xbb\xbf<")
ARCHIVE_INNER_FACTOR = 0.95  # a format zipped alone is recognised a little less surely


@dataclass(frozen=True)
class Detection:
    """What a file is: the format (profile name or reader format id) and how sure we are."""

    format: str
    confidence: float
    profile: Profile | None = None
    encoding: str | None = None
    delimiter: str | None = None
    header_line: int | None = None  # 1-based line of the column header


UNKNOWN = Detection(UNKNOWN_FORMAT, 0.0)


def _looks_xml(data: bytes) -> bool:
    return data.lstrip().startswith(_XML_START) or data.lstrip(b"\xef\xbb\xbf").lstrip().startswith(b"<")


@dataclass
class _View:
    """One unpacked file as detection sees it: its decoded head, or its spreadsheet / JSON rows."""

    data: bytes
    file: str
    _text: dict[tuple[tuple[str, ...], tuple[str, ...]], tuple[str, str] | None] = field(default_factory=dict)
    _rows: dict[str, list[list[str]] | None] = field(default_factory=dict)
    _cells: dict[tuple[str, str, str, int], list[set[str]]] = field(default_factory=dict)

    def cells(self, text: str, delimiter: str, quote: str, scan: int) -> list[set[str]]:
        """The normalised cells of the first ``scan`` lines of ``text`` (shared by the profiles tried)."""
        key = (text, delimiter, quote, scan)
        if key not in self._cells:
            lines = text.splitlines()[:scan]
            self._cells[key] = _cell_sets(split_cells(line, delimiter, quote) for line in lines)
        return self._cells[key]

    def text(self, encodings: Sequence[str], markers: Sequence[str]) -> tuple[str, str] | None:
        key = (tuple(encodings), tuple(markers))
        if key not in self._text:
            try:
                decoded = decode_text(_sample(self.data, 1 << 18), self.file, encodings, markers)
                self._text[key] = (decoded.buf.decode("utf-8", "replace"), decoded.encoding)
            except StatementParseError:
                self._text[key] = None
        return self._text[key]

    def sheet(self, container: str) -> list[list[str]] | None:
        if container not in self._rows:
            rows: list[list[str]] | None = None
            try:
                if container == "xls" and sheets.is_xls(self.data):
                    rows = sheets.xls_rows(self.data, self.file)
                elif container == "xlsx" and sheets.is_xlsx(self.data):
                    rows = sheets.xlsx_rows(self.data, self.file)
                elif container == "pdf" and sheets.is_pdf(self.data):
                    rows = sheets.pdf_rows(self.data, self.file)
            except StatementParseError:
                rows = None
            self._rows[container] = rows
        return self._rows[container]


def _binary(data: bytes) -> bool:
    return sheets.is_xls(data) or sheets.is_xlsx(data) or sheets.is_pdf(data)


def _header_hit(profile: Profile, rows: Iterable[set[str]]) -> int | None:
    """0-based index of the first row (its normalised cells) holding every header name (and none of the
    absent ones)."""
    names = {norm_header(h) for h in profile.header_names()}
    absent = {norm_header(h) for h in profile.match.header_absent}
    for i, cells in enumerate(rows):
        if i >= profile.header_scan:
            break
        if names <= cells and not (absent & cells):
            return i
    return None


def _cell_sets(rows: Iterable[list[str]]) -> list[set[str]]:
    return [{norm_header(clean(c)) for c in row} for row in rows]


def score(profile: Profile, view: _View) -> Detection | None:
    """The profile's confidence when its ``match`` holds on ``view``, else None."""
    m = profile.match
    if not m.first_line and not profile.header_names():
        return None  # a profile that says nothing about how to recognise it is only used explicitly
    container = profile.container
    encoding: str | None = None
    delimiter: str | None = None
    if container in ("xls", "xlsx", "pdf"):
        rows = view.sheet(container)
        if rows is None:
            return None
        head = next((",".join(r).strip(",") for r in rows if any(c.strip() for c in r)), "")
        sets = _cell_sets(rows[: profile.header_scan])
    else:
        if _binary(view.data):
            return None
        found = view.text(profile.encodings, m.first_line)
        if found is None:
            return None
        text, encoding = found
        head = first_line(text)
        if container == "json":
            if not head.startswith(("[", "{")):
                return None
            try:
                header, _, _ = sheets.json_rows(
                    view.data.decode("utf-8-sig", "replace"), view.file, profile.json_records
                )
            except StatementParseError:
                return None
            sets = _cell_sets([header])
        else:
            delimiter = profile.delimiter
            if delimiter == "auto":
                delimiter = sniff_delimiter(text.splitlines()[: profile.header_scan], profile.header_names())
            sets = view.cells(text, delimiter, profile.quote, profile.header_scan)
    if m.first_line and not head.lstrip("\ufeff").startswith(tuple(m.first_line)):
        return None
    line: int | None = None
    if profile.header_names() or m.header_absent:
        hit = _header_hit(profile, sets)
        if hit is None:
            return None
        line = hit + 1
    return Detection(profile.name, m.confidence, profile, encoding, delimiter, line)


def _specificity(d: Detection) -> tuple[float, int, str]:
    p = d.profile
    spec = 0 if p is None else len(p.match.header) + len(p.match.first_line) + len(p.match.header_absent)
    return (d.confidence, spec, "" if p is None else p.name)


def _best(found: Iterable[Detection]) -> Detection:
    ranked = sorted(found, key=lambda d: (-d.confidence, -_specificity(d)[1], _specificity(d)[2]))
    return ranked[0] if ranked else UNKNOWN


def _detect_file(data: bytes, file: str, profiles: Sequence[Profile]) -> Detection:
    """Format of one (unpacked) file from its content."""
    found: list[Detection] = []
    if _looks_xml(data):
        version = camt.sniff_camt053(data)
        if version is not None:
            found.append(Detection(version, 0.99))
    reader = best_reader(data, file)
    if reader is not None:
        found.append(Detection(reader[1], reader[2]))
    view = _View(data, file)
    for profile in profiles:
        if profile.archive is not None:
            continue
        try:
            hit = score(profile, view)
        except (ValueError, UnicodeError, json.JSONDecodeError):
            hit = None
        if hit is not None:
            found.append(hit)
    return _best(found)


def _member_head(member: Member, encodings: Sequence[str]) -> str:
    try:
        decoded = decode_text(_sample(member.data, 1 << 16), member.name or "", encodings, ())
    except StatementParseError:
        return ""
    return first_line(decoded.buf.decode("utf-8", "replace"))


def _detect_members(members: list[Member], filename: str, profiles: Sequence[Profile]) -> Detection:
    if len(members) == 1 and members[0].name is None:
        return _detect_file(members[0].data, filename, profiles)
    found: list[Detection] = []
    for profile in profiles:
        if profile.archive is None:
            continue
        data_spec = next(m for m in profile.archive.members if m.role == "data")
        marks = tuple(data_spec.first_line or profile.match.first_line)
        for member in members:
            head = _member_head(member, profile.encodings)
            by_name = bool(
                member.name and data_spec.name_suffix and member.name.endswith(tuple(data_spec.name_suffix))
            )
            if (marks and head.startswith(marks)) or by_name:
                found.append(Detection(profile.name, profile.match.confidence, profile))
                break
    if found:
        return _best(found)
    if len(members) == 1:  # any other format, zipped alone
        inner = _detect_file(members[0].data, f"{filename}!{members[0].name}", profiles)
        if inner.format != UNKNOWN_FORMAT:
            return Detection(
                inner.format,
                inner.confidence * ARCHIVE_INNER_FACTOR,
                inner.profile,
                inner.encoding,
                inner.delimiter,
                inner.header_line,
            )
    return UNKNOWN


def _candidates(profiles: Iterable[Profile] | None) -> list[Profile]:
    builtin = builtin_profiles().latest()
    if profiles is None:
        return builtin
    extra = list(profiles)
    names = {p.name for p in extra}
    return [*extra, *(p for p in builtin if p.name not in names)]


def detect(data: bytes, filename: str, *, profiles: Iterable[Profile] | None = None) -> Detection:
    """What ``data`` is, from its content (never from ``filename``, which only names it in messages).

    ``profiles``: user profiles considered besides the built-in ones (a user profile with a built-in's name
    replaces it). Never raises.
    """
    try:
        members = unpack(data, filename)
    except StatementParseError:
        return UNKNOWN
    return _detect_members(members, filename, _candidates(profiles))


def detect_format(
    data: bytes, filename: str, *, profiles: Iterable[Profile] | None = None
) -> tuple[str, float]:
    """(format, confidence) from the content (gzip and zip containers are opened); never raises."""
    found = detect(data, filename, profiles=profiles)
    return found.format, found.confidence


def parse_statement(
    data: bytes,
    *,
    filename: str,
    raw_key: str,
    statement_id: str,
    source: Source,
    account_id: str,
    currency: str = "CNY",
    timezone: str = "Asia/Shanghai",
    profile: Profile | None = None,
    profiles: Iterable[Profile] | None = None,
) -> ParsedStatement:
    """Parse one raw statement file into normalized rows with full row accounting.

    ``profile`` (e.g. a user's uploaded profile, or an earlier version of a built-in one) is used as given,
    without detection. Otherwise the format is detected among the built-in profiles, ``profiles`` and the
    code readers.

    Raises ``StatementParseError`` (with file/row/column errors) for an unknown format, a corrupt
    container, undecodable text or a control total that disagrees; rows failing validation are returned
    in ``errors`` instead.
    """
    tz = zone(timezone, filename)
    try:
        currency = check_currency(currency, "", "currency") or "CNY"
    except RowFail as exc:
        raise fatal(filename, exc.reason) from exc
    members = unpack(data, filename)
    ctx = Context(
        filename=filename,
        raw_key=raw_key,
        statement_id=statement_id,
        source=source,
        account_id=account_id,
        currency=currency,
        tz=tz,
    )
    with pdf.reading_once():  # detection, then the profile engine, read a PDF's tables: extract them once
        if profile is not None:
            return run_profile(profile, members, ctx)
        found = _detect_members(members, filename, _candidates(profiles))
        if found.format == UNKNOWN_FORMAT:
            _explain_unknown(members, data, filename)
        if found.profile is not None:
            return run_profile(found.profile, members, ctx)

    member = members[0]
    file = filename if member.name is None else f"{filename}!{member.name}"
    key = raw_key if member.name is None else f"{raw_key}!{member.name}"
    if found.format.startswith("camt.053"):
        return camt.read(member.data, ctx, profile=found.format, file=file, raw_key=key)
    b = Builder(ctx, profile=found.format)
    reader = reader_for(found.format)
    if reader is None:  # pragma: no cover - a detector named a format no reader claims
        raise fatal(filename, f"no reader for format {found.format!r}")
    fmt, encoding, statement_date = reader.parse(member.data, b, file, key)
    return b.result(format=fmt, encoding=encoding, statement_date=statement_date)


def _explain_unknown(members: list[Member], data: bytes, filename: str) -> None:
    """Raise the most precise error for content no profile or reader recognises."""
    if not data.strip():
        raise fatal(filename, f"the file is empty ({len(data)} bytes, no text): a failed download or export?")
    if len(members) == 1:  # name the precise problem: malformed XML, a bad byte, a foreign XML root
        only = members[0]
        file = filename if only.name is None else f"{filename}!{only.name}"
        if _looks_xml(only.data):
            root, _ = camt.load(only.data, file)
            child = next(iter(root), None)
            name = camt.local(child.tag) if child is not None else ""
            # camt.052 looks like a statement but is an intraday report: say so rather than "unknown".
            why = (
                " (a camt.052 intraday account report, which is not read)"
                if name == "BkToCstmrAcctRpt"
                else ""
            )
            raise fatal(
                file,
                f"unknown statement format: XML <{camt.local(root.tag)}>{f'/<{name}>' if name else ''}{why} is "
                "not a camt.053 statement (Document/BkToCstmrStmt) or camt.054 notification "
                "(Document/BkToCstmrDbtCdtNtfctn)",
            )
        if not _binary(only.data):
            decode(only.data, file)
    container = "gzip " if is_gzip(data) else "zip " if is_zip(data) else ""
    raise fatal(
        filename,
        f"unknown statement format: the {container}content matches no parsing profile (WeChat Pay, Alipay, "
        "bank exports, ERP orders, or a profile of yours) and no statement reader (camt.053, MT940, ...)",
    )
