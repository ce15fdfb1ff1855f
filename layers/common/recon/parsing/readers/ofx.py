"""OFX 1.x (SGML) and 2.x (XML) bank and credit-card statements, read leniently through the maintained
``ofxtools`` package (formats.md 4.4).

Why ofxtools, and why lenient: ofxtools is maintained, pure Python and without dependencies (ofxparse is
unmaintained since 2021, ships no wheel and pulls lxml and BeautifulSoup). Its strict model layer
(``OFXTree.convert``) refuses real files for deviations that do not touch the money (element order,
``BANKID`` longer than 9, a missing sign-on, several ``BANKTRANLIST``): 3 of the 6 sample files. So we use
its header parser and its SGML/XML tag parser, and read the element tree ourselves, checking what matters.
When the header itself is malformed the body is taken from ``<OFX>`` on (header fallback).

Decisions:

* A "row" is one ``STMTTRN``; ``row_number`` is the physical line of its ``<STMTTRN>`` tag. The number of
  ``<STMTTRN>`` tags in the text must equal the number read (nothing silently dropped). Transactions of a
  pending list (``BANKTRANLISTP``) are skipped (rule ``ofx_pending``).
* Markup: end tags must close what is open (an end tag may close empty SGML leaves left open); misnested
  or unclosed aggregates refuse the file, except a ``BANKTRANLIST`` left open (Nubank): a tag that cannot
  be in it ends it.
* Statements: every ``STMTRS`` and ``CCSTMTRS``, each ``BANKTRANLIST`` in it (some banks repeat it).
* ``TRNAMT`` is signed (positive = money in); a decimal comma is accepted when there is no decimal point.
  Currency: ``CURRENCY/CURSYM`` of the transaction, else the statement's ``CURDEF``, else the account's.
* Dates: ``DTPOSTED`` (booked_at); a date without time is midnight in the account's time zone, a time
  without zone is GMT (the OFX default). value_date: ``DTAVAIL`` when given, else the posting date.
* ``txn_id``: ``FITID``, else ``<DTSTART>-<DTEND>:<statement>.<n>``; ``order_ref``: ``REFNUM``;
  counterparty: ``NAME`` or ``PAYEE/NAME``; memo: ``MEMO``, else the name.
* Balances: OFX states only the closing ledger balance (``LEDGERBAL``), no opening balance, so nothing
  can be checked inside one file. We expose ``closing`` = ``LEDGERBAL`` (dated ``DTASOF``) and
  ``opening`` = ``LEDGERBAL`` - Σ entries of that statement (derived, dated ``DTSTART``), so chaining
  consecutive files checks yesterday's ``LEDGERBAL`` against today's.
"""

from __future__ import annotations

import io
import re
import xml.etree.ElementTree as ET
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from ofxtools.header import parse_header  # type: ignore[import-untyped,unused-ignore]
from ofxtools.Parser import TreeBuilder  # type: ignore[import-untyped,unused-ignore]
from ofxtools.Types import DateTime as OfxDateTime  # type: ignore[import-untyped,unused-ignore]

from recon.domain.statement import TxnStatus
from recon.money import MoneyError, to_minor
from recon.parsing._common import MAX_AMOUNT_MINOR, Builder, RowFail, check_currency, fatal
from recon.parsing.registry import FormatReader, register

from ._bank import (
    Balance,
    UniqueIds,
    bank_txn_type,
    decode_bank_text,
    expose_balances,
    midnight,
    record_ends,
    reference,
    tidy,
)

FORMAT_V1 = "ofx.v1"
FORMAT_V2 = "ofx.v2"

_V1_HEADER = re.compile(rb"^\s*OFXHEADER\s*:\s*100", re.IGNORECASE)
_V2_HEADER = re.compile(rb"<\?OFX\b", re.IGNORECASE)
_OFX_ROOT = re.compile(rb"<OFX>", re.IGNORECASE)
_STMTTRN_TAG = re.compile(rb"<STMTTRN\s*>", re.IGNORECASE)
_LEDGERBAL_TAG = re.compile(rb"<LEDGERBAL\s*>", re.IGNORECASE)
_TAG_CASE = re.compile(r"<(/?)([A-Za-z0-9./_ ]+?)>")
_DATE_ONLY = re.compile(r"^\d{8}$")
_COMMA_DECIMAL = re.compile(r"^[+-]?\d+,\d+$")
_XML_ENCODING = re.compile(r"""encoding\s*=\s*["']([A-Za-z0-9._-]+)["']""")
_FEE_TYPES = frozenset({"FEE", "SRVCHG"})
_DT = OfxDateTime()


def detect(data: bytes, file: str) -> tuple[str, float] | None:
    head = data[:2048].lstrip(b"\xef\xbb\xbf")
    if _V1_HEADER.match(head):
        return FORMAT_V1, 0.95
    if _V2_HEADER.search(head):
        return FORMAT_V2, 0.95
    if _OFX_ROOT.search(head) and b"STMT" in data[:65536].upper():
        return FORMAT_V1, 0.8
    return None


def _body(data: bytes, file: str) -> tuple[str, str, str]:
    """(format, encoding, markup from <OFX> on): the ofxtools header parser, else from <OFX> on."""
    try:
        header, body = parse_header(io.BytesIO(data))
    except Exception:  # a malformed header: fall back to the markup, which is what carries the data
        text, encoding = decode_bank_text(data)
        start = re.search(r"<OFX>", text, re.IGNORECASE)
        if start is None:
            raise fatal(file, "OFX without an <OFX> element") from None
        fmt = FORMAT_V2 if re.search(r"<\?OFX\b", text[: start.start()], re.IGNORECASE) else FORMAT_V1
        return fmt, encoding, text[start.start() :]
    if type(header).__name__.endswith("V2"):
        declared = _XML_ENCODING.search(str(header))
        return FORMAT_V2, (declared.group(1).lower() if declared else "utf-8"), str(body)
    charset = str(getattr(header, "charset", "") or "")
    if str(getattr(header, "encoding", "")).upper() == "UTF-8":
        encoding = "utf-8"
    elif charset.isdigit():
        encoding = f"cp{charset}"
    else:
        encoding = "ascii"
    return FORMAT_V1, encoding, str(body)


# A transaction list holds only these (OFX DTD: DTSTART, DTEND, STMTTRN*). Some banks (Nubank's credit
# card export) never write </BANKTRANLIST>; any other tag ends the list, as an SGML parser with the DTD
# would infer. Nothing can move between statements: the list's own statement is still the open one.
_LISTS = frozenset({"BANKTRANLIST", "BANKTRANLISTP"})
_LIST_CONTENT = frozenset({"DTSTART", "DTEND", "STMTTRN"})


class _NestingChecked(TreeBuilder):
    """ofxtools' tag parser, with end tags checked against what is open (ElementTree's builder pops
    whatever is on top, so misnested markup would silently move rows between statements). An end tag
    may close empty elements left open before it (SGML leaves without text) and an unclosed transaction
    list, nothing else."""

    def __init__(self) -> None:
        super().__init__()
        self._open: list[list[Any]] = []  # [tag, number of children]

    def start(self, tag: str, attrs: dict[str, str]) -> Any:
        if self._open and self._open[-1][0] in _LISTS and tag not in _LIST_CONTENT:
            super().end(self._open.pop()[0])
        if self._open:
            self._open[-1][1] += 1
        self._open.append([tag, 0])
        return super().start(tag, attrs)

    def end(self, tag: str) -> Any:
        if not any(open_tag == tag for open_tag, _ in self._open):
            raise ValueError(f"</{tag}> closes nothing that is open")
        while self._open[-1][0] != tag:
            inner, children = self._open.pop()
            if children and inner not in _LISTS:
                raise ValueError(f"</{tag}> while <{inner}> is still open")
            super().end(inner)
        self._open.pop()
        return super().end(tag)

    def close(self) -> Any:
        if self._open:
            raise ValueError(f"<{self._open[-1][0]}> is never closed")
        return super().close()


def _tree(body: str, file: str) -> ET.Element:
    builder = _NestingChecked()
    try:
        # Tags are case-insensitive in practice; ofxtools matches upper case only.
        builder.feed(_TAG_CASE.sub(lambda m: f"<{m.group(1)}{m.group(2).upper()}>", body))
        root = builder.close()
    except Exception as exc:  # ofxtools' ParseError and ElementTree's own errors on bad nesting
        raise fatal(file, f"malformed OFX markup: {type(exc).__name__}: {exc}") from exc
    if not isinstance(root, ET.Element) or root.tag != "OFX":
        raise fatal(file, "OFX markup without an <OFX> root element")
    return root


def _text(el: ET.Element | None, *path: str) -> str:
    for name in path:
        if el is None:
            return ""
        el = el.find(name)
    return "" if el is None or el.text is None else el.text.strip()


def _when(value: str, tz: Any, column: str) -> datetime:
    if not value:
        raise RowFail(column, "date is empty")
    if _DATE_ONLY.match(value):
        try:
            return midnight(date(int(value[:4]), int(value[4:6]), int(value[6:8])), tz)
        except ValueError as exc:
            raise RowFail(column, f"not a date: {value!r}") from exc
    try:
        moment = _DT.convert(value)
    except Exception as exc:  # ofxtools raises its OFXSpecError (a ValueError) and others
        raise RowFail(column, f"not an OFX date: {value!r}") from exc
    if not isinstance(moment, datetime):
        raise RowFail(column, f"not an OFX date: {value!r}")
    return moment


def _minor(value: str, currency: str, column: str) -> int:
    text = value.strip().replace(" ", "")
    if _COMMA_DECIMAL.match(text):
        text = text.replace(",", ".")
    if not text or len(text) > 40 or "," in text:
        raise RowFail(column, f"not an amount: {value!r}")
    try:
        minor = to_minor(Decimal(text), currency)
    except (InvalidOperation, MoneyError) as exc:
        raise RowFail(column, f"not an exact {currency} amount: {value!r}") from exc
    if abs(minor) >= MAX_AMOUNT_MINOR:
        raise RowFail(column, f"amount out of range: {value!r}")
    return minor


def parse(data: bytes, b: Builder, file: str, raw_key: str) -> tuple[str, str, date | None]:
    """Parse an OFX file into ``b``; returns (format, encoding, statement date)."""
    fmt, encoding, body = _body(data, file)
    root = _tree(body, file)
    statements = [el for el in root.iter() if el.tag in ("STMTRS", "CCSTMTRS")]
    if not statements:
        raise fatal(file, "OFX file has no bank or credit card statement (STMTRS/CCSTMTRS)")
    lines = [data[: m.start()].count(b"\n") + 1 for m in _STMTTRN_TAG.finditer(data)]
    ledger_lines = [data[: m.start()].count(b"\n") + 1 for m in _LEDGERBAL_TAG.finditer(data)]
    ledgers = {id(el): k for k, el in enumerate(root.iter("LEDGERBAL"))}
    rows = {id(el): k for k, el in enumerate(root.iter("STMTTRN"))}
    if len(lines) != len(rows):
        raise fatal(file, f"the text has {len(lines)} <STMTTRN> tags but {len(rows)} could be read")
    tz = b.ctx.tz
    ids = UniqueIds()
    statement_date: date | None = None
    ends: dict[str, tuple[Balance, Balance]] = {}
    for s, stmt in enumerate(statements, start=1):
        where = f"{stmt.tag}[{s}]"
        try:
            curdef = check_currency(_text(stmt, "CURDEF"), b.ctx.currency, f"{where}/CURDEF")
        except RowFail as exc:
            b.fail(file, 0, exc.column, exc.reason)
            curdef = b.ctx.currency
        account = _text(stmt, "BANKACCTFROM", "ACCTID") or _text(stmt, "CCACCTFROM", "ACCTID") or where
        total = 0
        start: date | None = None
        for listing in [el for el in stmt if el.tag in ("BANKTRANLIST", "BANKTRANLISTP")]:
            span = f"{_text(listing, 'DTSTART')[:8]}-{_text(listing, 'DTEND')[:8]}"
            if start is None and listing.tag == "BANKTRANLIST":
                try:
                    start = _when(_text(listing, "DTSTART"), tz, "DTSTART").astimezone(tz).date()
                except RowFail:
                    start = None
            for n, trn in enumerate(listing.iter("STMTTRN"), start=1):
                row = lines[rows[id(trn)]]
                if listing.tag == "BANKTRANLISTP":
                    b.skip("ofx_pending")
                    continue
                total += _transaction(
                    b,
                    trn,
                    curdef=curdef,
                    where=f"{where}/STMTTRN[{n}]",
                    fallback_id=f"{span}:{s}.{n}",
                    ids=ids,
                    file=file,
                    row=row,
                    raw_key=raw_key,
                    tz=tz,
                )
        ledger = stmt.find("LEDGERBAL")
        # An empty BALAMT states no balance (ofxparse's "fail nice" files): the rows stand, and this
        # statement adds no opening/closing. Any other unreadable balance refuses the file.
        if ledger is not None and _text(ledger, "BALAMT"):
            k = ledgers.get(id(ledger), -1)
            ledger_line = ledger_lines[k] if 0 <= k < len(ledger_lines) else 0
            try:
                closing_minor = _minor(_text(ledger, "BALAMT"), curdef, f"{where}/LEDGERBAL/BALAMT")
                as_of = _when(_text(ledger, "DTASOF"), tz, f"{where}/LEDGERBAL/DTASOF").astimezone(tz).date()
            except RowFail as exc:
                b.fail(file, ledger_line, exc.column, exc.reason)
                continue
            closing = Balance(closing_minor, curdef, as_of)
            opening = Balance(closing_minor - total, curdef, start)
            record_ends(ends, account, opening, closing)
            statement_date = as_of
    expose_balances(b, ends, file=file)
    return fmt, encoding, statement_date


def _transaction(
    b: Builder,
    trn: ET.Element,
    *,
    curdef: str,
    where: str,
    fallback_id: str,
    ids: UniqueIds,
    file: str,
    row: int,
    raw_key: str,
    tz: Any,
) -> int:
    """One STMTTRN into ``b``; returns the amount it adds to the statement (0 when rejected)."""
    try:
        currency = check_currency(_text(trn, "CURRENCY", "CURSYM"), curdef, f"{where}/CURRENCY")
        amount = _minor(_text(trn, "TRNAMT"), currency, f"{where}/TRNAMT")
        booked_at = _when(_text(trn, "DTPOSTED"), tz, f"{where}/DTPOSTED")
        available = _text(trn, "DTAVAIL")
        value_date = _when(available, tz, f"{where}/DTAVAIL").astimezone(tz).date() if available else None
    except RowFail as exc:
        b.reject(file, row, exc.column, exc.reason)
        return 0
    name = tidy(_text(trn, "NAME") or _text(trn, "PAYEE", "NAME"))
    memo = tidy(_text(trn, "MEMO")) or name
    kind = _text(trn, "TRNTYPE").upper()
    added = b.add(
        file=file,
        row=row,
        raw_key=raw_key,
        txn_id=reference(_text(trn, "FITID")) or ids(fallback_id),
        order_ref=reference(_text(trn, "REFNUM")),
        amount_minor=amount,
        fee_minor=0,
        currency=currency,
        booked_at=booked_at,
        value_date=value_date,
        txn_type=bank_txn_type(amount, reversal=False, text=f"{name} {memo}", fee_code=kind in _FEE_TYPES),
        status=TxnStatus.SUCCESS,
        counterparty=name,
        memo=memo,
    )
    return amount if added and currency == curdef else 0


register(
    FormatReader("ofx", detect, parse, "OFX 1.x/2.x bank and credit card statements (ofxtools, lenient)")
)
