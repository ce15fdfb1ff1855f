"""Format detection (from content) and the ``parse_statement`` entry point."""

from __future__ import annotations

from recon.domain.common import Source

from . import alipay, camt, erp, readers, wechat
from ._common import (
    Builder,
    Context,
    Member,
    RowFail,
    check_currency,
    decode,
    fatal,
    is_gzip,
    is_zip,
    records,
    unpack,
    zone,
)
from .layouts import ERP_HEADER, ERP_LAYOUT
from .model import UNKNOWN_FORMAT, ParsedStatement, StatementParseError
from .registry import best_reader, reader_for

assert readers  # imported for its side effect: every reader module registers itself

_XML_START = (b"<", b"\xef\xbb\xbf<")


def _looks_xml(data: bytes) -> bool:
    return data.lstrip().startswith(_XML_START) or data.lstrip(b"\xef\xbb\xbf").lstrip().startswith(b"<")


def _detect_text(data: bytes, filename: str) -> tuple[str, float]:
    """Format of one (unpacked) file from its content."""
    builtin = _detect_builtin(data, filename)
    found = best_reader(data, filename)
    if found is not None and found[2] > builtin[1]:
        return found[1], found[2]
    return builtin


def _detect_builtin(data: bytes, filename: str) -> tuple[str, float]:
    if _looks_xml(data):
        try:
            root, _ = camt.load(data, filename)
        except StatementParseError:
            return UNKNOWN_FORMAT, 0.0
        return (camt.version_of(root), 0.99) if camt.is_camt053(root) else (UNKNOWN_FORMAT, 0.0)
    try:
        text, _ = decode(data, filename)
    except StatementParseError:
        return UNKNOWN_FORMAT, 0.0
    head = alipay.first_line(text)
    if head.startswith(alipay.TRADE_DETAIL):
        return "alipay.trade.csv", 0.95
    if head.startswith(alipay.ACCOUNT_DETAIL):
        return "alipay.signcustomer.csv", 0.95
    for rec in records(text):
        if rec.fields is None:
            continue
        header = [h.strip().lstrip("\ufeff") for h in rec.fields]
        found = wechat.identify(header)
        if found is not None:
            return found[1].format, 0.95
        if tuple(header[: len(ERP_HEADER)]) == ERP_HEADER:
            return ERP_LAYOUT.format, 0.99
        if ERP_LAYOUT.matches(header):
            return ERP_LAYOUT.format, 0.9
        break
    return UNKNOWN_FORMAT, 0.0


def _detect_members(members: list[Member], filename: str) -> tuple[str, float]:
    if len(members) == 1 and members[0].name is None:
        return _detect_text(members[0].data, filename)
    kinds = []
    for m in members:
        try:
            text, _ = decode(m.data, f"{filename}!{m.name}", prefer_gbk=True)
        except StatementParseError:
            continue
        kinds.append(alipay.member_kind(m.name, text))
    if alipay.TRADE_DETAIL in kinds:
        return "alipay.trade.zip", 0.99
    if alipay.ACCOUNT_DETAIL in kinds:
        return "alipay.signcustomer.zip", 0.95
    if len(members) == 1:  # any other format, zipped alone
        fmt, confidence = _detect_text(members[0].data, filename)
        return fmt, confidence * 0.95
    return UNKNOWN_FORMAT, 0.0


def detect_format(data: bytes, filename: str) -> tuple[str, float]:
    """(format, confidence) from the content (gzip and zip containers are opened); never raises.

    ``filename`` is only used in messages: a misnamed file is detected by what it holds.
    """
    try:
        members = unpack(data, filename)
    except StatementParseError:
        return UNKNOWN_FORMAT, 0.0
    return _detect_members(members, filename)


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
) -> ParsedStatement:
    """Parse one raw statement file into normalized transactions with full row accounting.

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
    fmt, _confidence = _detect_members(members, filename)
    if fmt == UNKNOWN_FORMAT:
        if len(members) == 1:  # name the precise problem: malformed XML, a bad byte, a foreign XML root
            only = members[0]
            file = filename if only.name is None else f"{filename}!{only.name}"
            if _looks_xml(only.data):
                root, _ = camt.load(only.data, file)
                child = next(iter(root), None)
                raise fatal(
                    file,
                    f"unknown statement format: XML <{camt.local(root.tag)}>"
                    f"{f'/<{camt.local(child.tag)}>' if child is not None else ''} is not a camt.053 "
                    "statement (Document/BkToCstmrStmt)",
                )
            decode(only.data, file)
        container = "gzip " if is_gzip(data) else "zip " if is_zip(data) else ""
        raise fatal(
            filename,
            f"unknown statement format: the {container}content is not a WeChat Pay bill, an Alipay bill, "
            "a camt.053 statement or an ERP order export",
        )
    ctx = Context(
        filename=filename,
        raw_key=raw_key,
        statement_id=statement_id,
        source=source,
        account_id=account_id,
        currency=currency,
        tz=tz,
    )
    b = Builder(ctx, profile=fmt)
    if fmt.startswith("alipay."):
        zipped = fmt.endswith(".zip")
        fmt, encoding, statement_date = alipay.parse(
            members, b, filename=filename, raw_key=raw_key, zipped=zipped
        )
        return b.result(format=fmt, encoding=encoding, statement_date=statement_date)

    member = members[0]
    file = filename if member.name is None else f"{filename}!{member.name}"
    key = raw_key if member.name is None else f"{raw_key}!{member.name}"
    reader = reader_for(fmt) if not fmt.startswith(("camt.053", "wechat.", "erp.")) else None
    if reader is not None:
        fmt, encoding, statement_date = reader.parse(member.data, b, file, key)
        return b.result(format=fmt, encoding=encoding, statement_date=statement_date)
    if fmt.startswith("camt.053"):
        fmt, encoding, statement_date = camt.parse(member.data, b, file=file, raw_key=key)
        return b.result(format=fmt, encoding=encoding, statement_date=statement_date)
    text, encoding = decode(member.data, file)
    if fmt.startswith("wechat."):
        fmt = wechat.parse(text, b, file=file, raw_key=key)
    else:
        fmt = erp.parse(text, b, file=file, raw_key=key)
    return b.result(format=fmt, encoding=encoding, statement_date=None)
