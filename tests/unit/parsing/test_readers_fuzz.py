"""Property: whatever bytes arrive, every parser either returns a statement whose row accounting balances
and whose totals agree, or raises the documented StatementParseError naming the problem, never another
exception and never a silently wrong row.

Inputs: random bytes (bare and behind each format's signature) and mutations (bytes changed, inserted,
deleted; lines dropped, repeated, swapped; digits altered; truncation) of real samples and of synthetic
files of every format: MT940/MT942, BAI2, OFX v1/v2, camt.053, camt.054, PDF tables, and the WeChat,
Alipay and ERP files of the demo day (the profile engine's formats)."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from functools import cache
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from recon.domain import Source
from recon.money import to_minor
from recon.parsing import ParsedStatement, StatementParseError, parse_statement
from recon.parsing.readers.pdf import pdf_rows

from ._support import SAMPLES, assert_accounting
from .test_readers_pdf import make_pdf

_FUZZ = settings(
    max_examples=120,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

_MT940 = (
    ":20:STMT1\n:25:NL91ABNA0417164300\n:28C:1/1\n:60F:C240501EUR100,00\n"
    ":61:2405010501C5,00NTRFORDER-1//BANKREF1\n:86:/EREF/E2E//REMI/USTD//Payout/\n"
    ":61:2405010501D1,50NCHGNONREF//BANKREF2\n:86:fee\n:62F:C240501EUR103,50\n-\n"
    ":20:STMT2\n:25:NL91ABNA0417164300\n:28C:2/1\n:60F:C240502EUR103,50\n:62F:C240502EUR103,50\n-\n"
)
_MT942 = (
    ":20:I1\n:25:PL29114010810000267002001002\n:28C:1/1\n:34F:PLN0,\n:13D:1701191815+0100\n"
    ":61:1701190119CN0,01NTRFNONREF//MB1\n:86:x\n:90D:0PLN0,00\n:90C:1PLN0,01\n-\n"
)
_BAI2 = (
    "01,SENDER,RECEIVER,240502,0600,FILE7,,,2/\n02,RECEIVER,SENDER,1,240501,,USD,2/\n"
    "03,ACC1,USD,010,10000,,,015,10100,,/\n16,165,150,0,B1,O1,PAYOUT/\n88,MORE TEXT\n16,475,50,0,,,CHECK/\n"
    "49,20300,5/\n98,20300,1,7/\n99,20300,1,9/\n"
)
_OFX_V1 = (
    "OFXHEADER:100\nDATA:OFXSGML\nVERSION:102\nSECURITY:NONE\nENCODING:USASCII\nCHARSET:1252\n"
    "COMPRESSION:NONE\nOLDFILEUID:NONE\nNEWFILEUID:NONE\n\n<OFX><BANKMSGSRSV1><STMTTRNRS><STMTRS>"
    "<CURDEF>USD<BANKACCTFROM><ACCTID>12345</BANKACCTFROM><BANKTRANLIST><DTSTART>20240501<DTEND>20240502\n"
    "<STMTTRN><TRNTYPE>CREDIT<DTPOSTED>20240501<TRNAMT>1.50<FITID>F1<NAME>A</STMTTRN>\n"
    "<STMTTRN><TRNTYPE>DEBIT<DTPOSTED>20240501120000[+8:CST]<TRNAMT>-0.25<FITID>F2</STMTTRN>\n"
    "</BANKTRANLIST><LEDGERBAL><BALAMT>10.00<DTASOF>20240502</LEDGERBAL></STMTRS></STMTTRNRS>"
    "</BANKMSGSRSV1></OFX>\n"
)
_CAMT054 = (
    '<?xml version="1.0" encoding="UTF-8"?><Document xmlns="urn:iso:std:iso:20022:tech:xsd:camt.054.001.04">'
    "<BkToCstmrDbtCdtNtfctn><GrpHdr><MsgId>M</MsgId></GrpHdr><Ntfctn><Id>N</Id><Acct><Ccy>CNY</Ccy></Acct>"
    "<TxsSummry><TtlNtries><NbOfNtries>1</NbOfNtries><Sum>1.00</Sum></TtlNtries></TxsSummry>"
    '<Ntry><Amt Ccy="CNY">1.00</Amt><CdtDbtInd>CRDT</CdtDbtInd><Sts>BOOK</Sts><BookgDt><Dt>2024-05-02</Dt>'
    "</BookgDt><AcctSvcrRef>R</AcctSvcrRef></Ntry></Ntfctn></BkToCstmrDbtCdtNtfctn></Document>"
)
_SIGNATURES = (
    b":20:X\n:25:Y\n:60F:",
    b"01,",
    b"OFXHEADER:100\n",
    b'<?xml version="1.0"?><?OFX ?><OFX>',
    b"%PDF-1.4\n",
)


@cache
def _demo_files() -> tuple[tuple[str, bytes, Source], ...]:
    demo_data = pytest.importorskip("recon_local.demo_data")
    sources = {"erp": Source.ERP, "wechat": Source.WECHAT, "alipay": Source.ALIPAY, "bank": Source.BANK}
    day = demo_data.generate_day(date(2026, 11, 20))
    return tuple(
        (name, content, next(s for prefix, s in sources.items() if key.startswith(prefix)))
        for key, (name, content) in day.files.items()
    )


def _sample_paths() -> list[Path]:
    patterns = (
        "mt940/*/*.sta",
        "mt940/ASNB/*.txt",
        "OCA-bank-statement-import/*/*.*",
        "bai2/*.bai2",
        "ofxparse/*.ofx",
        "ofxtools/*.ofx",
        "camt/*.xml",
        "WxJava/*.csv",
    )
    return sorted(p for pattern in patterns for p in SAMPLES.glob(pattern))


@cache
def _seeds() -> tuple[tuple[str, bytes, Source], ...]:
    synthetic = [
        ("s.sta", _MT940.encode(), Source.BANK),
        ("i.sta", _MT942.encode(), Source.BANK),
        ("s.bai2", _BAI2.encode(), Source.BANK),
        ("s.ofx", _OFX_V1.encode(), Source.BANK),
        ("n.xml", _CAMT054.encode(), Source.BANK),
    ]
    real = [
        (p.name, p.read_bytes(), Source.WECHAT if "WxJava" in p.parts else Source.BANK)
        for p in _sample_paths()
        if p.stat().st_size < 64 * 1024
    ]
    return (*synthetic, *real, *_demo_files())


def _balance_minor(text: str) -> tuple[int, str]:
    amount, currency = text.split()[:2]
    return to_minor(Decimal(amount), currency), currency


def check(data: bytes, name: str, source: Source) -> None:
    """The property itself."""
    try:
        p = parse_statement(
            data,
            filename=name,
            raw_key=f"raw/{name}",
            statement_id="stmt-1",
            source=source,
            account_id="acct-1",
            currency="EUR" if source is Source.BANK else "CNY",
            timezone="UTC" if source is Source.BANK else "Asia/Shanghai",
        )
    except StatementParseError as exc:
        assert exc.errors, "a refusal names its problems"
        assert all(e.reason for e in exc.errors)
        if exc.parsed is not None:
            assert_accounting(exc.parsed)
        return
    assert_accounting(p)
    if not p.errors:
        assert all(c.ok for c in p.control_totals), p.control_totals
        _check_balances(p)


def _check_balances(p: ParsedStatement) -> None:
    """Independently of the readers' checks: Σ amounts = closing - opening (one account, one currency)."""
    t = {c.name: c.stated for c in p.control_totals}
    if "opening" not in t or "closing" not in t or p.format.startswith("camt"):
        return
    opening, ccy = _balance_minor(t["opening"])
    closing, ccy2 = _balance_minor(t["closing"])
    moved = sum(x.amount_minor for x in p.transactions if x.currency == ccy)
    assert ccy == ccy2 and opening + moved == closing, (p.format, t, moved)


@st.composite
def _mutated(draw: st.DrawFn) -> tuple[str, bytes, Source]:
    seeds = _seeds()
    name, data, source = seeds[draw(st.integers(0, len(seeds) - 1))]
    buf = bytearray(data)
    for _ in range(draw(st.integers(1, 4))):
        kind = draw(st.sampled_from(["byte", "insert", "delete", "digit", "line", "truncate"]))
        at = draw(st.integers(0, max(len(buf) - 1, 0)))
        if kind == "byte" and buf:
            buf[at] = draw(st.integers(0, 255))
        elif kind == "insert":
            buf[at:at] = draw(st.binary(min_size=1, max_size=12))
        elif kind == "delete":
            del buf[at : at + draw(st.integers(1, 40))]
        elif kind == "digit":
            digits = [i for i, c in enumerate(buf) if 48 <= c <= 57]
            if digits:
                buf[digits[draw(st.integers(0, len(digits) - 1))]] = draw(st.integers(48, 57))
        elif kind == "line":
            lines = bytes(buf).split(b"\n")
            i = draw(st.integers(0, len(lines) - 1))
            j = draw(st.integers(0, len(lines) - 1))
            action = draw(st.sampled_from(["drop", "repeat", "swap"]))
            if action == "drop":
                del lines[i]
            elif action == "repeat":
                lines.insert(i, lines[j])
            else:
                lines[i], lines[j] = lines[j], lines[i]
            buf = bytearray(b"\n".join(lines))
        else:
            del buf[at:]
    return name, bytes(buf), source


@_FUZZ
@given(case=_mutated())
def test_mutated_files_parse_or_are_refused_with_the_documented_error(
    case: tuple[str, bytes, Source],
) -> None:
    name, data, source = case
    check(data, name, source)


@_FUZZ
@given(prefix=st.sampled_from([b"", *_SIGNATURES]), body=st.binary(max_size=600))
def test_random_bytes_parse_or_are_refused(prefix: bytes, body: bytes) -> None:
    check(prefix + body, "random.bin", Source.BANK)


@_FUZZ
@given(
    text=st.text(alphabet=st.sampled_from(list(":0123456789CDRNTF,/-\n{}ABEUR ")), max_size=400),
    prefix=st.sampled_from([":20:A\n:25:B\n", ":20:A\n:25:B\n:60F:C240501EUR1,00\n"]),
)
def test_mt940_shaped_noise_is_parsed_or_refused(text: str, prefix: str) -> None:
    check((prefix + text).encode(), "noise.sta", Source.BANK)


@_FUZZ
@given(data=st.data())
def test_mutated_pdfs_give_rows_or_the_documented_error(data: st.DataObject) -> None:
    pdf = bytearray(make_pdf([[["Date", "Amount"], ["2024-05-01", "1.00"]]], ruled=data.draw(st.booleans())))
    for _ in range(data.draw(st.integers(1, 3))):
        at = data.draw(st.integers(0, len(pdf) - 1))
        if data.draw(st.booleans()):
            pdf[at] = data.draw(st.integers(0, 255))
        else:
            del pdf[at : at + data.draw(st.integers(1, 30))]
    try:
        rows = pdf_rows(bytes(pdf), "m.pdf")
    except StatementParseError as exc:
        assert exc.errors and exc.errors[0].reason
        return
    assert all(isinstance(cell, str) for row in rows for cell in row)
    assert all(row.page >= 1 and row.row >= 1 for row in rows)


def test_every_seed_satisfies_the_property_unmutated() -> None:
    seeds = _seeds()
    assert len(seeds) >= 9
    for name, data, source in seeds:
        check(data, name, source)
