"""Shared machinery: containers, decoding, CSV records with physical line numbers, field cleaning,
amount/time parsing and the row-accounting builder every format parser writes into."""

from __future__ import annotations

import csv
import io
import re
import unicodedata
import zipfile
import zlib
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, tzinfo
from decimal import Decimal, InvalidOperation
from typing import Any
from zoneinfo import ZoneInfo

from pydantic import ValidationError

from recon.domain.common import Source
from recon.domain.statement import ControlTotal, RowError, Transaction, TxnStatus, TxnType
from recon.money import MoneyError, to_decimal, to_minor

from .model import PROFILE_VERSION, ParsedStatement, StatementParseError, TotalCheck, TotalKind, finish

# Guards against decompression bombs and absurd inputs (a daily bill is far below these).
MAX_UNPACKED_BYTES = 512 * 1024 * 1024
MAX_ZIP_MEMBERS = 64
MAX_AMOUNT_MINOR = 10**15  # fits int64 with headroom; anything larger is a broken file

FILE_LEVEL_ROW = 0  # RowError.row for problems with the whole file (container, encoding, format)


# --------------------------------------------------------------------------------------------- errors


class RowFail(Exception):
    """A data row fails validation; the builder records it as a rejected row."""

    def __init__(self, column: str | None, reason: str) -> None:
        super().__init__(reason)
        self.column = column
        self.reason = reason


def fatal(
    file: str, reason: str, row: int = FILE_LEVEL_ROW, column: str | None = None
) -> StatementParseError:
    return StatementParseError([RowError(file=file, row=row, column=column, reason=reason)])


# ------------------------------------------------------------------------------------------ containers


@dataclass(frozen=True)
class Member:
    """One file inside the upload: the upload itself, its gunzipped body, or one zip member."""

    name: str | None  # zip member name (decoded), None for a plain or gzipped file
    data: bytes


def gunzip(data: bytes, file: str) -> bytes:
    """Decompress a gzip body (all concatenated members), with a size limit."""
    out = bytearray()
    rest = data
    try:
        while rest:
            dec = zlib.decompressobj(wbits=31)
            out += dec.decompress(rest, MAX_UNPACKED_BYTES - len(out) + 1)
            if len(out) > MAX_UNPACKED_BYTES:
                raise fatal(file, f"gzip body larger than {MAX_UNPACKED_BYTES} bytes")
            if not dec.eof:
                raise fatal(file, "corrupt gzip container: truncated stream")
            rest = dec.unused_data.lstrip(b"\x00")
    except zlib.error as exc:
        raise fatal(file, f"corrupt gzip container: {exc}") from exc
    return bytes(out)


def zip_member_name(info: zipfile.ZipInfo) -> str:
    """Entry names without the UTF-8 flag were decoded as cp437 by zipfile; Alipay writes them in GBK."""
    if info.flag_bits & 0x800:
        return info.filename
    try:
        return info.filename.encode("cp437").decode("gbk")
    except (UnicodeEncodeError, UnicodeDecodeError):
        return info.filename


def unzip(data: bytes, file: str) -> list[Member]:
    """All file members of a zip archive (directories left out), names decoded."""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as zf:
            infos = [i for i in zf.infolist() if not i.is_dir()]
            if len(infos) > MAX_ZIP_MEMBERS:
                raise fatal(file, f"zip has {len(infos)} members, more than {MAX_ZIP_MEMBERS}")
            total = sum(i.file_size for i in infos)
            if total > MAX_UNPACKED_BYTES:
                raise fatal(file, f"zip members add up to {total} bytes, more than {MAX_UNPACKED_BYTES}")
            members = []
            for info in infos:
                with zf.open(info) as fh:
                    body = fh.read(MAX_UNPACKED_BYTES + 1)
                if len(body) > MAX_UNPACKED_BYTES:
                    raise fatal(file, f"zip member larger than {MAX_UNPACKED_BYTES} bytes")
                members.append(Member(zip_member_name(info), body))
            return members
    except StatementParseError:
        raise
    except (
        zipfile.BadZipFile,
        zipfile.LargeZipFile,
        NotImplementedError,
        EOFError,
        OSError,
        ValueError,
    ) as exc:
        raise fatal(file, f"corrupt zip container: {exc}") from exc
    except (zlib.error, RuntimeError, KeyError, IndexError, OverflowError) as exc:
        raise fatal(file, f"corrupt zip container: {type(exc).__name__}: {exc}") from exc


def is_gzip(data: bytes) -> bool:
    return data[:2] == b"\x1f\x8b"


def is_zip(data: bytes) -> bool:
    return data[:4] in (b"PK\x03\x04", b"PK\x05\x06")


def is_workbook(data: bytes) -> bool:
    """An .xlsx workbook is a zip too: it is one file, not an archive of statements."""
    if data[:4] != b"PK\x03\x04":
        return False
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as zf:
            return "xl/workbook.xml" in zf.namelist()
    except (zipfile.BadZipFile, OSError, ValueError, EOFError, KeyError):
        return False


def unpack(data: bytes, file: str) -> list[Member]:
    """The upload as a list of members: gzip is opened (once), zip archives are listed (an .xlsx workbook
    stays one member)."""
    if is_gzip(data):
        data = gunzip(data, file)
    if is_zip(data) and not is_workbook(data):
        return unzip(data, file)
    return [Member(None, data)]


# -------------------------------------------------------------------------------------------- decoding


def decode(data: bytes, file: str, *, prefer_gbk: bool = False) -> tuple[str, str]:
    """Decode text trying utf-8-sig (BOM), utf-8, then GBK/GB18030; returns (text, encoding used).

    ``prefer_gbk`` tries GBK before UTF-8 (Alipay members are GBK; a GBK text can occasionally also be
    valid UTF-8 for short files, which would silently garble it).
    """
    if data.startswith(b"\xef\xbb\xbf"):
        order = ["utf-8-sig", "gbk", "gb18030"]
    elif prefer_gbk:
        order = ["gbk", "gb18030", "utf-8"]
    else:
        order = ["utf-8", "gbk", "gb18030"]
    failures: list[UnicodeDecodeError] = []
    for enc in order:
        try:
            return data.decode(enc), enc
        except UnicodeDecodeError as exc:
            failures.append(exc)
    # Report where the encoding that read furthest broke down: that is the file's encoding, gone bad.
    best = max(failures, key=lambda e: e.start)
    at = best.start + len(data) - len(best.object)  # utf-8-sig decodes (and counts) after the BOM
    line = data[:at].count(b"\n") + 1
    raise fatal(
        file,
        f"undecodable text: byte 0x{data[at]:02x} at offset {at} is not valid "
        f"{best.encoding} (nor UTF-8, GBK or GB18030 as a whole)",
        row=line,
    )


# ---------------------------------------------------------------------------------------- CSV records

_LINE = re.compile(r"[^\r\n]*(?:\r\n|\n|\r)|[^\r\n]+$")


@dataclass(frozen=True)
class Record:
    line: int  # 1-based physical line where the record starts
    raw: str  # the record's text without its final line ending
    fields: list[str] | None  # None for comment lines (prefix) and blank lines

    @property
    def blank(self) -> bool:
        return self.raw.strip() == ""


def records(text: str, *, comment_prefix: str | None = None) -> Iterator[Record]:
    """CSV records with their starting physical line numbers.

    A record continues over following lines while its double quotes are unbalanced (a quoted field with
    a line break). Lines starting with ``comment_prefix`` (at the start of a record) are not split.
    """
    lines = _LINE.findall(text)
    i = 0
    n = len(lines)
    while i < n:
        start = i
        first = lines[i].rstrip("\r\n")
        i += 1
        if first.strip() == "" or (comment_prefix is not None and first.lstrip().startswith(comment_prefix)):
            yield Record(start + 1, first, None)
            continue
        parts = [lines[start]]
        quotes = lines[start].count('"')
        while quotes % 2 == 1 and i < n:
            parts.append(lines[i])
            quotes += lines[i].count('"')
            i += 1
        raw = "".join(parts).rstrip("\r\n")
        try:
            row = next(csv.reader([raw], strict=False), [])
        except csv.Error:
            row = raw.split(",")
        yield Record(start + 1, raw, row)


# ------------------------------------------------------------------------------------ field cleaning


def clean(value: str) -> str:
    """Strip whitespace and TABs (Alipay id padding) and one leading backtick (WeChat Excel guard)."""
    value = value.strip()
    if value.startswith("`"):
        value = value[1:].strip()
    return value


def norm_header(name: str) -> str:
    """Normalise a column header for lookup: NFKC (full-width （元） -> (元)), no spaces/backticks/BOM."""
    name = unicodedata.normalize("NFKC", name.replace("\ufeff", ""))
    return re.sub(r"[\s`]", "", name)


_AMOUNT = re.compile(r"^[+-]?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?$")


def parse_amount(value: str, currency: str, column: str) -> int:
    """Exact amount in minor units; sub-minor-unit digits that are not zero are an error."""
    text = value.strip() if value.isascii() else unicodedata.normalize("NFKC", value).strip()
    text = text.replace("¥", "").replace("$", "")
    if text == "":
        raise RowFail(column, "amount is empty")
    if len(text) > 40 or not _AMOUNT.match(text):
        raise RowFail(column, f"not an amount: {value!r}")
    try:
        minor = to_minor(text.replace(",", ""), currency)
    except MoneyError as exc:
        raise RowFail(column, f"{exc} (value {value!r})") from exc
    if abs(minor) >= MAX_AMOUNT_MINOR:
        raise RowFail(column, f"amount out of range: {value!r}")
    return minor


def parse_count(value: str, column: str) -> int:
    """A count as stated by a summary (``48``; the fund-flow bill writes ``20.0``)."""
    text = unicodedata.normalize("NFKC", value).strip()
    if len(text) > 20:
        raise RowFail(column, f"not a count: {value!r}")
    try:
        dec = Decimal(text)
    except InvalidOperation as exc:
        raise RowFail(column, f"not a count: {value!r}") from exc
    if not dec.is_finite() or dec != dec.to_integral_value() or dec < 0:
        raise RowFail(column, f"not a count: {value!r}")
    return int(dec)


def fmt_amount(minor: int, currency: str) -> str:
    return str(to_decimal(minor, currency))


_DT_FORMATS = (
    "%Y-%m-%d %H:%M:%S",
    "%Y/%m/%d %H:%M:%S",
    "%Y-%m-%dT%H:%M:%S",
    "%Y-%m-%d %H:%M",
    "%Y/%m/%d %H:%M",
    "%Y%m%d%H%M%S",
)


_FAST_DT = re.compile(r"^(\d{4})-(\d{2})-(\d{2}) (\d{2}):(\d{2}):(\d{2})$")


def parse_datetime(value: str, tz: tzinfo, column: str) -> datetime:
    """A timestamp; naive values are in ``tz`` (Chinese files: Asia/Shanghai). Always aware."""
    text = value.strip() if value.isascii() else unicodedata.normalize("NFKC", value).strip()
    if text == "":
        raise RowFail(column, "time is empty")
    fast = _FAST_DT.match(text)
    if fast:
        try:
            y, mo, d, h, mi, sec = (int(g) for g in fast.groups())
            return datetime(y, mo, d, h, mi, sec, tzinfo=tz)
        except ValueError as exc:
            raise RowFail(column, f"not a time: {value!r}") from exc
    if len(text) <= 40:
        for fmt in _DT_FORMATS:
            try:
                return datetime.strptime(text, fmt).replace(tzinfo=tz)
            except ValueError:
                continue
        try:
            parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
        except ValueError:
            pass
        else:
            return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=tz)
    raise RowFail(column, f"not a time: {value!r}")


def parse_date(value: str, column: str) -> date:
    text = unicodedata.normalize("NFKC", value).strip()
    try:
        return date.fromisoformat(text[:10]) if len(text) >= 10 else date.fromisoformat(text)
    except ValueError as exc:
        raise RowFail(column, f"not a date: {value!r}") from exc


def local_date(moment: datetime, tz: tzinfo) -> date:
    return moment.astimezone(tz).date()


_CURRENCY = re.compile(r"^[A-Z]{3}$")


def check_currency(value: str, default: str, column: str) -> str:
    text = value.strip().upper()
    if text == "":
        return default
    if not _CURRENCY.match(text):
        raise RowFail(column, f"not a currency code: {value!r}")
    return text


def zone(name: str, file: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ValueError, OSError, KeyError) as exc:  # ZoneInfoNotFoundError is a KeyError
        raise fatal(file, f"unknown time zone {name!r}") from exc


# ------------------------------------------------------------------------------------ header mapping


class Row:
    """One data record addressed by standard field names through a declarative header mapping."""

    __slots__ = ("_columns", "_values")

    def __init__(self, values: list[str], columns: dict[str, tuple[str, int]]) -> None:
        self._values = values  # raw cells of the record
        self._columns = columns  # standard field -> (header name in the file, cell index)

    @property
    def width(self) -> int:
        """Number of cells in the record."""
        return len(self._values)

    def has(self, fld: str) -> bool:
        return fld in self._columns

    def column(self, fld: str) -> str:
        found = self._columns.get(fld)
        return fld if found is None else found[0]

    def get(self, fld: str) -> str:
        found = self._columns.get(fld)
        if found is None or found[1] >= len(self._values):
            return ""
        return clean(self._values[found[1]])

    def require(self, fld: str) -> str:
        value = self.get(fld)
        if value == "":
            raise RowFail(self.column(fld), "required value is empty")
        return value

    def amount(self, fld: str, currency: str, *, default: int | None = None) -> int:
        if not self.has(fld) or (default is not None and self.get(fld) == ""):
            if default is not None:
                return default
            raise RowFail(self.column(fld), "required column is missing")
        return parse_amount(self.get(fld), currency, self.column(fld))

    def time(self, fld: str, tz: tzinfo) -> datetime:
        return parse_datetime(self.get(fld), tz, self.column(fld))


def map_columns(header: list[str], fields: dict[str, tuple[str, ...]]) -> dict[str, tuple[str, int]]:
    """Standard field -> (the file's header name, its index), first alias present wins (normalised names)."""
    present: dict[str, tuple[str, int]] = {}
    for index, name in enumerate(header):
        present.setdefault(norm_header(name), (name.strip().lstrip("\ufeff"), index))
    out: dict[str, tuple[str, int]] = {}
    for fld, aliases in fields.items():
        for alias in aliases:
            key = norm_header(alias)
            if key in present:
                out[fld] = present[key]
                break
    return out


# ------------------------------------------------------------------------------------------- builder


@dataclass(frozen=True)
class Context:
    filename: str
    raw_key: str
    statement_id: str
    source: Source
    account_id: str
    currency: str
    tz: ZoneInfo


@dataclass
class Builder:
    """Collects transactions, skips, rejections and control totals with exact row accounting."""

    ctx: Context
    profile: str
    rows_read: int = 0
    transactions: list[Transaction] = field(default_factory=list)
    errors: list[RowError] = field(default_factory=list)
    skipped: Counter[str] = field(default_factory=Counter)
    checks: list[TotalCheck] = field(default_factory=list)
    fatal_errors: list[RowError] = field(default_factory=list)
    batches: list[Any] = field(default_factory=list)  # pa.Table: rows converted column by column

    def skip(self, rule: str) -> None:
        self.rows_read += 1
        self.skipped[rule] += 1

    def reject(self, file: str, row: int, column: str | None, reason: str) -> None:
        self.rows_read += 1
        self.errors.append(RowError(file=file, row=row, column=column, reason=reason))

    def fail(self, file: str, row: int, column: str | None, reason: str) -> None:
        """A file-level problem found while reading (does not consume a row)."""
        self.fatal_errors.append(RowError(file=file, row=row, column=column, reason=reason))

    def add(
        self,
        *,
        file: str,
        row: int,
        raw_key: str,
        txn_id: str,
        amount_minor: int,
        fee_minor: int,
        currency: str,
        booked_at: datetime,
        value_date: date | None,
        txn_type: TxnType,
        status: TxnStatus,
        order_ref: str | None = None,
        refund_ref: str | None = None,
        counterparty: str | None = None,
        memo: str | None = None,
    ) -> bool:
        ctx = self.ctx
        if self.batches:
            raise ValueError("rows are added either one by one or as tables, not both")
        try:
            txn = Transaction(
                txn_uid=f"{ctx.source}:{ctx.account_id}:{txn_id}",
                source=ctx.source,
                account_id=ctx.account_id,
                statement_id=ctx.statement_id,
                txn_id=txn_id,
                order_ref=order_ref or None,
                refund_ref=refund_ref or None,
                amount_minor=amount_minor,
                fee_minor=fee_minor,
                net_minor=amount_minor - fee_minor,
                currency=currency,
                booked_at=booked_at,
                value_date=value_date if value_date is not None else local_date(booked_at, ctx.tz),
                txn_type=txn_type,
                status=status,
                counterparty=counterparty or None,
                memo=memo or None,
                raw_key=raw_key,
                row_number=max(row, 1),
                profile=self.profile,
                profile_version=PROFILE_VERSION,
            )
        except ValidationError as exc:
            first = exc.errors()[0]
            loc = ".".join(str(p) for p in first.get("loc", ()))
            self.reject(file, row, loc or None, f"invalid transaction: {first.get('msg', exc)}")
            return False
        self.rows_read += 1
        self.transactions.append(txn)
        return True

    def add_rows(self, rows: Any) -> None:
        """Rows converted column by column (a ``pa.Table`` in ``recon.tables.ROW_SCHEMA``), after every row
        added so far. A builder takes its rows one way: ``add`` or ``add_rows``."""
        if self.transactions:
            raise ValueError("rows are added either one by one or as tables, not both")
        self.rows_read += rows.num_rows
        self.batches.append(rows)

    def total(
        self,
        name: str,
        stated: str,
        computed: str,
        *,
        file: str,
        row: int,
        column: str | None,
        kind: TotalKind = "amount",
    ) -> None:
        self.checks.append(
            TotalCheck(ControlTotal(name=name, stated=stated, computed=computed), file, row, column, kind)
        )

    def amount_total(
        self,
        name: str,
        stated_text: str,
        computed_minor: int,
        currency: str,
        *,
        file: str,
        row: int,
        column: str,
    ) -> None:
        try:
            stated = fmt_amount(parse_amount(stated_text, currency, column), currency)
        except RowFail as exc:
            self.fail(file, row, column, f"control total {name}: {exc.reason}")
            return
        self.total(name, stated, fmt_amount(computed_minor, currency), file=file, row=row, column=column)

    def count_total(
        self, name: str, stated_text: str, computed: int, *, file: str, row: int, column: str
    ) -> None:
        try:
            stated = str(parse_count(stated_text, column))
        except RowFail as exc:
            self.fail(file, row, column, f"control total {name}: {exc.reason}")
            return
        self.total(name, stated, str(computed), file=file, row=row, column=column, kind="count")

    def result(self, *, format: str, encoding: str, statement_date: date | None) -> ParsedStatement:
        """The parse result; raises StatementParseError on a file-level problem or a disagreeing total.

        Counts are always enforced. Amount totals are enforced only when every data row parsed: with
        rejected rows the sums cannot agree and the rejections (reported row by row) are the cause.
        The rows become the Arrow table (dedupe key = txn_id, in-file duplicates flagged).
        """
        from recon.tables import from_rows, to_table

        if self.batches and self.transactions:
            raise ValueError("rows are added either one by one or as tables, not both")
        table = from_rows(self.batches) if self.batches else to_table(self.transactions)
        parsed = ParsedStatement(
            format=format,
            encoding=encoding,
            profile=self.profile,
            profile_version=PROFILE_VERSION,
            statement_date=statement_date,
            table=table,
            rows_read=self.rows_read,
            rows_skipped=sum(self.skipped.values()),
            skipped_by_rule=dict(self.skipped),
            errors=self.errors,
            control_totals=[c.total for c in self.checks],
        )
        return finish(parsed, self.checks, self.fatal_errors)
