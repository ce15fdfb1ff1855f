"""OFX v1 (SGML) and v2 (XML): the ofxparse/ofxtools/OCA samples value by value (the expected values are
the files' own STMTTRN elements), the lenient cases ofxtools' strict models refuse, and synthetic files."""

from __future__ import annotations

from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

import pytest

from recon.domain import TxnType
from recon.parsing import detect_format
from recon.parsing.readers import ofx as reader

from ._bank_support import parse_bank, parse_bank_or_partial, refusal, totals
from ._support import samples

# (folder, file) -> (format, [(txn_id, amount_minor, currency, booked_at UTC, counterparty)], ledger)
_EXPECTED = {
    ("ofxparse", "checking.ofx"): (
        "ofx.v1",
        [
            ("0000486", 1, "USD", datetime(2011, 3, 31, 12, tzinfo=UTC), "DIVIDEND EARNED FOR PERIOD OF 03"),
            (
                "0000487",
                -3451,
                "USD",
                datetime(2011, 4, 5, 12, tzinfo=UTC),
                "AUTOMATIC WITHDRAWAL, ELECTRIC BILL",
            ),
            (
                "0000488",
                -2500,
                "USD",
                datetime(2011, 4, 7, 12, tzinfo=UTC),
                "RETURNED CHECK FEE, CHECK # 319",
            ),
        ],
        ("160.49 USD 2000-01-01", "100.99 USD 2013-05-25"),
    ),
    ("ofxparse", "anzcc.ofx"): (
        "ofx.v2",
        [("201705080001", -550, "AUD", datetime(2017, 5, 8, tzinfo=UTC), None)],
        ("-117.95 AUD 2017-03-11", "-123.45 AUD 2017-05-10"),
    ),
    ("ofxparse", "suncorp.ofx"): (
        "ofx.v2",
        [("1", -1685, "AUD", datetime(2013, 12, 15, tzinfo=UTC), "EFTPOS WDL HANDYWAY ALDI STORE")],
        ("1250.97 AUD 2013-06-18", "1234.12 AUD 2013-12-15"),
    ),
    ("ofxtools", "stmtrs.ofx"): (
        "ofx.v2",
        [
            ("00002", -20000, "USD", datetime(2005, 10, 4, tzinfo=UTC), None),
            ("00003", -30000, "USD", datetime(2005, 10, 20, tzinfo=UTC), None),
        ],
        ("700.29 USD 2005-10-01", "200.29 USD 2005-10-29"),
    ),
}


@pytest.mark.needs_samples
@pytest.mark.parametrize(("folder", "name"), sorted(_EXPECTED))
def test_samples_give_their_transactions_and_ledger_balance(folder: str, name: str) -> None:
    path = samples(folder) / name
    fmt, want, (opening, closing) = _EXPECTED[(folder, name)]
    p = parse_bank(path.read_bytes(), path.name)
    assert p.format == fmt and p.errors == []
    got = [(t.txn_id, t.amount_minor, t.currency, t.booked_at, t.counterparty) for t in p.transactions]
    assert got == want
    assert totals(p)["opening"] == (opening, opening)
    assert totals(p)["closing"] == (closing, closing)
    assert detect_format(path.read_bytes(), path.name) == (fmt, 0.95)


@pytest.mark.needs_samples
def test_checking_sample_types_memos_and_lines() -> None:
    path = samples("ofxparse") / "checking.ofx"
    p = parse_bank(path.read_bytes(), path.name)
    assert p.encoding == "cp1252"  # CHARSET:1252 in the v1 header
    assert [t.row_number for t in p.transactions] == [46, 54, 62]
    assert [t.txn_type for t in p.transactions] == [TxnType.TRANSFER, TxnType.TRANSFER, TxnType.FEE]
    assert p.transactions[2].memo == "RETURNED CHECK FEE, CHECK # 319 FOR $45.33 ON 04/07/11"


@pytest.mark.needs_samples
def test_oca_sample_with_repeated_transaction_lists_and_two_accounts() -> None:
    """ofxtools' strict models refuse this file (element order); the lenient reading keeps every row."""
    path = samples("OCA-bank-statement-import") / "ofx" / "test_ofx.ofx"
    p = parse_bank(path.read_bytes(), path.name, currency="USD")
    got = [(t.txn_id, t.amount_minor, t.counterparty) for t in p.transactions]
    assert got == [
        ("219378", -8000, "Agrolait"),
        ("219379", -9000, "China Export"),
        ("219380", -10000, "Axelor Scuba"),
        ("219381", -9000, "China Scuba"),
    ]
    t = totals(p)
    assert t["closing[****3456]"] == ("2156.56 USD 2013-08-31",) * 2
    assert t["opening[****3456]"] == ("2516.56 USD 2013-08-01",) * 2
    assert t["closing[****1234]"] == ("-562.00 USD 2013-08-31",) * 2


@pytest.mark.needs_samples
def test_sample_without_statement_is_refused() -> None:
    path = samples("ofxparse") / "bank_small.ofx"
    (error,) = refusal(path.read_bytes(), path.name).errors
    assert error.reason == "OFX file has no bank or credit card statement (STMTRS/CCSTMTRS)"


# ------------------------------------------------------------------------------------------- synthetic

_V1_HEADER = (
    "OFXHEADER:100\nDATA:OFXSGML\nVERSION:102\nSECURITY:NONE\nENCODING:USASCII\nCHARSET:1252\n"
    "COMPRESSION:NONE\nOLDFILEUID:NONE\nNEWFILEUID:NONE\n\n"
)


def _v1(transactions: str, *, curdef: str = "CNY", ledger: str = "100.00") -> str:
    return (
        _V1_HEADER
        + "<OFX><BANKMSGSRSV1><STMTTRNRS><TRNUID>1<STMTRS><CURDEF>"
        + curdef
        + "<BANKACCTFROM><BANKID>123456789012<ACCTID>6222020200001234<ACCTTYPE>CHECKING</BANKACCTFROM>\n"
        + "<BANKTRANLIST><DTSTART>20240501<DTEND>20240502\n"
        + transactions
        + f"</BANKTRANLIST><LEDGERBAL><BALAMT>{ledger}<DTASOF>20240502</LEDGERBAL>"
        + "</STMTRS></STMTTRNRS></BANKMSGSRSV1></OFX>\n"
    )


def _trn(amount: str, fitid: str = "", *, posted: str = "20240501", extra: str = "") -> str:
    fit = f"<FITID>{fitid}" if fitid else ""
    return f"<STMTTRN><TRNTYPE>CREDIT<DTPOSTED>{posted}<TRNAMT>{amount}{fit}{extra}</STMTTRN>\n"


def test_date_only_is_local_midnight_and_times_are_gmt() -> None:
    data = _v1(_trn("1.00", "A", posted="20240501") + _trn("2.00", "B", posted="20240501235900[+8:CST]"))
    p = parse_bank(data.encode(), "a.ofx", currency="CNY", timezone="Asia/Shanghai")
    first, second = p.transactions
    assert first.booked_at == datetime(2024, 5, 1, tzinfo=ZoneInfo("Asia/Shanghai"))
    assert second.booked_at == datetime(2024, 5, 1, 15, 59, tzinfo=UTC)
    assert second.value_date == date(2024, 5, 1)


def test_lenient_amounts_case_and_fallback_ids() -> None:
    data = _v1(
        _trn("12,50", "")
        + "<stmttrn><trntype>DEBIT<dtposted>20240501<trnamt>-0.10<name>WeChat Pay fee</stmttrn>\n"
        + _trn("5", "", extra="<REFNUM>ORDER-1<NAME>ALIPAY<MEMO>T+1 settlement"),
        curdef="JPY",
    ).replace("<TRNAMT>5<", "<TRNAMT>5<")
    p, _ = parse_bank_or_partial(data.encode(), "a.ofx", currency="JPY")
    # 12,50 JPY and -0.10 JPY have more precision than JPY allows: rejected rows, named.
    assert [(e.row, e.column) for e in p.errors] == [
        (13, "STMTRS[1]/STMTTRN[1]/TRNAMT"),
        (14, "STMTRS[1]/STMTTRN[2]/TRNAMT"),
    ]
    (txn,) = p.transactions
    assert (txn.txn_id, txn.amount_minor, txn.order_ref, txn.memo) == (
        "20240501-20240502:1.3",
        5,
        "ORDER-1",
        "T+1 settlement",
    )
    assert txn.txn_type is TxnType.SETTLEMENT


def test_currency_of_a_transaction_overrides_curdef() -> None:
    data = _v1(_trn("3.5", "X", extra="<CURRENCY><CURRATE>1<CURSYM>USD</CURRENCY>"))
    (txn,) = parse_bank(data.encode(), "a.ofx", currency="CNY").transactions
    assert (txn.amount_minor, txn.currency) == (350, "USD")


def test_bad_date_and_missing_amount_are_rejected_rows() -> None:
    data = _v1(
        _trn("1.00", "A", posted="2024") + "<STMTTRN><TRNTYPE>CREDIT<DTPOSTED>20240501<FITID>B</STMTTRN>\n"
    )
    p, _ = parse_bank_or_partial(data.encode(), "a.ofx")
    assert [(e.column, e.reason) for e in p.errors] == [
        ("STMTRS[1]/STMTTRN[1]/DTPOSTED", "not an OFX date: '2024'"),
        ("STMTRS[1]/STMTTRN[2]/TRNAMT", "not an amount: ''"),
    ]
    assert p.transactions == []


def test_malformed_header_falls_back_to_the_markup() -> None:
    data = _v1(_trn("1.00", "A")).replace("VERSION:102", "VERSION:banana")
    p = parse_bank(data.encode(), "a.ofx")
    assert p.format == "ofx.v1" and len(p.transactions) == 1


def test_broken_markup_is_refused() -> None:
    data = _v1(_trn("1.00", "A")).replace("<TRNAMT>1.00", "<TRNAMT>1.00</TRNAMT>stray text")
    (error,) = refusal(data.encode(), "a.ofx").errors
    assert error.reason.startswith("malformed OFX markup")


def test_detect() -> None:
    assert reader.detect(_v1("").encode(), "x") == ("ofx.v1", 0.95)
    assert reader.detect(b'<?xml version="1.0"?><?OFX OFXHEADER="200"?><OFX>', "x") == ("ofx.v2", 0.95)
    assert reader.detect(b"<Document>", "x") is None
