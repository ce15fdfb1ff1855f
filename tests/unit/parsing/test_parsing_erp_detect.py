"""ERP order export, content-based detection, and fuzzing: only StatementParseError may escape."""

from __future__ import annotations

import gzip
import io
import zipfile

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from recon.domain import Source, TxnStatus, TxnType
from recon.parsing import ParsedStatement, StatementParseError, detect_format, parse_statement

from ._support import (
    STEM,
    ali_detail,
    ali_row,
    ali_summary,
    assert_accounting,
    at,
    gbk_zip,
    parse,
    wx_bill,
    wx_payment,
    wx_refund,
)

ERP_HEADER = "order_no,refund_no,type,channel,amount,currency,created_at,paid_at,status,customer,memo"
ERP_ROWS = [
    'SO-1,,payment,wechat,199.00,CNY,2024-05-01 09:00:00,2024-05-01 09:01:00,paid,张三,"咖啡, 大杯"',
    'SO-1,,payment,wechat,199.00,CNY,2024-05-01 09:00:00,2024-05-01 09:01:00,paid,张三,"咖啡, 大杯"',
    "SO-2,RF-1,refund,alipay,-50.00,CNY,2024-05-01 10:00:00,,refunded,李四,",
    "SO-3,,payment,alipay,10.00,,2024-05-01 11:00:00,,pending,王五,",
]


def erp_csv(rows: list[str], *, bom: bool = True, encoding: str = "utf-8") -> bytes:
    return (b"\xef\xbb\xbf" if bom else b"") + ("\r\n".join([ERP_HEADER, *rows]) + "\r\n").encode(encoding)


def test_erp_bom_duplicates_and_refunds() -> None:
    data = erp_csv(ERP_ROWS)
    assert detect_format(data, "orders.xlsx") == ("erp.orders.csv", 0.99)
    p = parse(data, "orders.csv", Source.ERP)
    assert_accounting(p)
    assert (p.format, p.encoding, p.skipped_by_rule, p.errors) == (
        "erp.orders.csv",
        "utf-8-sig",
        {"header": 1},
        [],
    )
    first, dup, refund, pending = p.transactions
    assert first.txn_id == dup.txn_id == "SO-1"  # duplicates kept, both rows
    assert (first.row_number, dup.row_number) == (2, 3)
    assert first.memo == "咖啡, 大杯" and first.counterparty == "张三" and first.fee_minor == 0
    assert first.booked_at == at("2024-05-01 09:01:00")  # paid_at
    assert refund.txn_id == "SO-2#RF-1" and refund.refund_ref == "RF-1" and refund.order_ref == "SO-2"
    assert (refund.amount_minor, refund.txn_type, refund.status) == (-5000, TxnType.REFUND, TxnStatus.SUCCESS)
    assert refund.booked_at == at("2024-05-01 10:00:00")  # created_at when paid_at is empty
    assert (pending.status, pending.currency) == (TxnStatus.PENDING, "CNY")


def test_erp_plain_utf8_and_gbk() -> None:
    assert parse(erp_csv(ERP_ROWS, bom=False), "o.csv", Source.ERP).encoding == "utf-8"
    p = parse(erp_csv(ERP_ROWS, bom=False, encoding="gbk"), "o.csv", Source.ERP)
    assert p.encoding == "gbk" and p.transactions[0].counterparty == "张三"


def test_erp_invalid_rows_are_rejected_with_columns() -> None:
    rows = [
        "SO-4,,payment,wechat,abc,CNY,2024-05-01 09:00:00,,paid,c,",
        "SO-5,,gift,wechat,1.00,CNY,2024-05-01 09:00:00,,paid,c,",
        "SO-6,,payment,wechat,1.00,CNY,2024-05-01 09:00:00,,shipped,c,",
        "SO-7,,refund,wechat,-1.00,CNY,2024-05-01 09:00:00,,refunded,c,",
        "SO-8,R,refund,wechat,1.00,CNY,2024-05-01 09:00:00,,refunded,c,",
        ",,payment,wechat,1.00,CNY,2024-05-01 09:00:00,,paid,c,",
        "SO-9,,payment,wechat,1.00,CNY,yesterday,,paid,c,",
        "SO-10,,payment,wechat,1.00",
    ]
    p = parse(erp_csv(rows), "o.csv", Source.ERP)
    assert_accounting(p)
    assert p.transactions == []
    assert [(e.row, e.column) for e in p.errors] == [
        (2, "amount"),
        (3, "type"),
        (4, "status"),
        (5, "refund_no"),
        (6, "amount"),
        (7, "order_no"),
        (8, "created_at"),
        (9, None),
    ]


def test_detection_is_by_content_not_name() -> None:
    wx = wx_bill([wx_payment("1", "2", "1.00", "0")], "`1,`1.00,`0.00,`0.00,`0,`1.00,`0.00")
    ali = gbk_zip(
        [
            (
                f"{STEM}_业务明细.csv",
                ali_detail([], "#交易合计：0笔，商家实收共0.00元", "#退款合计：0笔，商家实收退款共0.00元"),
            ),
            (f"{STEM}_业务明细(汇总).csv", ali_summary("合计,,0,0,0.00,0.00,0.00,0.00,0.00,0.00,0.00,0.00")),
        ]
    )
    assert detect_format(wx, "orders.csv")[0] == "wechat.tradebill.all"
    assert detect_format(gzip.compress(wx), "x.xml")[0] == "wechat.tradebill.all"
    assert detect_format(ali, "x.csv")[0] == "alipay.trade.zip"
    assert detect_format(erp_csv(ERP_ROWS), "bill.zip")[0] == "erp.orders.csv"
    assert detect_format(b"hello,world\n1,2\n", "x.csv") == ("unknown", 0.0)
    assert detect_format(b"PK\x03\x04garbage", "x.zip") == ("unknown", 0.0)
    assert detect_format(b"", "x") == ("unknown", 0.0)


def test_single_member_zip_of_another_format() -> None:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("orders.csv", erp_csv(ERP_ROWS))
    p = parse(buf.getvalue(), "orders.zip", Source.ERP)
    assert p.format == "erp.orders.csv" and len(p.transactions) == 4
    assert p.transactions[0].raw_key == "raw/orders.zip!orders.csv"


def test_unknown_format_and_bad_parameters_raise_parse_errors() -> None:
    with pytest.raises(StatementParseError, match="unknown statement format"):
        parse(b"a,b,c\n1,2,3\n", "x.csv", Source.ERP)
    for empty in (b"", b" \r\n\n"):
        with pytest.raises(StatementParseError) as info:
            parse(empty, "export.csv", Source.ERP)
        (error,) = info.value.errors
        assert str(error).startswith("export.csv: the file as a whole: the file is empty (")
    with pytest.raises(StatementParseError, match="time zone"):
        parse(erp_csv(ERP_ROWS), "x.csv", Source.ERP, timezone="Mars/Olympus")
    with pytest.raises(StatementParseError, match="currency"):
        parse(erp_csv(ERP_ROWS), "x.csv", Source.ERP, currency="yuan")


# ---------------------------------------------------------------------------------------------- fuzz

_VALID: list[bytes] = [
    erp_csv(ERP_ROWS),
    wx_bill(
        [
            wx_payment("4200000001", "SO-1", "100.00", "0.60000"),
            wx_refund("4200000001", "SO-1", "5030000001", "RF-1", "20.00", "-0.12000"),
        ],
        "`2,`100.00,`20.00,`0.00,`0.48000,`100.00,`20.00",
    ),
    gbk_zip(
        [
            (
                f"{STEM}_业务明细.csv",
                ali_detail(
                    [ali_row("2019091622001458860515315453", "o", "交易", "1.00", "0.01")],
                    "#交易合计：1笔，商家实收共1.00元",
                    "#退款合计：0笔，商家实收退款共0.00元",
                ),
            ),
            (f"{STEM}_业务明细(汇总).csv", ali_summary("合计,,1,0,1.00,1.00,0.00,0.00,0.00,0.01,0.00,0.99")),
        ]
    ),
    (
        b"<?xml version='1.0'?><Document xmlns='urn:iso:std:iso:20022:tech:xsd:camt.053.001.02'><BkToCstmrStmt>"
        b"<Stmt><Id>S</Id><Acct><Ccy>EUR</Ccy></Acct><Bal><Tp><CdOrPrtry><Cd>OPBD</Cd></CdOrPrtry></Tp>"
        b"<Amt Ccy='EUR'>1.00</Amt><CdtDbtInd>CRDT</CdtDbtInd><Dt><Dt>2024-01-01</Dt></Dt></Bal>"
        b"<Bal><Tp><CdOrPrtry><Cd>CLBD</Cd></CdOrPrtry></Tp><Amt Ccy='EUR'>3.00</Amt><CdtDbtInd>CRDT</CdtDbtInd>"
        b"<Dt><Dt>2024-01-01</Dt></Dt></Bal><Ntry><Amt Ccy='EUR'>2.00</Amt><CdtDbtInd>CRDT</CdtDbtInd>"
        b"<Sts>BOOK</Sts><BookgDt><Dt>2024-01-01</Dt></BookgDt><AcctSvcrRef>R</AcctSvcrRef></Ntry></Stmt>"
        b"</BkToCstmrStmt></Document>"
    ),
]
_VALID.append(gzip.compress(_VALID[1]))


def _run(data: bytes) -> ParsedStatement | None:
    detect_format(data, "fuzz.bin")  # must never raise
    try:
        p = parse_statement(
            data,
            filename="fuzz.bin",
            raw_key="raw/fuzz.bin",
            statement_id="stmt-1",
            source=Source.WECHAT,
            account_id="acct-1",
        )
    except StatementParseError as exc:
        assert exc.errors
        if exc.parsed is not None:
            assert exc.parsed.balanced
        return None
    assert_accounting(p)
    return p


def test_valid_fuzz_seeds_parse() -> None:
    for data in _VALID:
        assert _run(data) is not None


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=2048))
def test_random_bytes_only_raise_parse_errors(data: bytes) -> None:
    _run(data)


@st.composite
def _mutated(draw: st.DrawFn) -> bytes:
    data = bytearray(draw(st.sampled_from(_VALID)))
    for _ in range(draw(st.integers(1, 6))):
        op = draw(st.sampled_from(["flip", "insert", "delete", "truncate", "dup"]))
        pos = draw(st.integers(0, max(len(data) - 1, 0)))
        if op == "flip" and data:
            data[pos] = draw(st.integers(0, 255))
        elif op == "insert":
            data[pos:pos] = draw(
                st.sampled_from(
                    [
                        b",",
                        b"\n",
                        b"\r",
                        b'"',
                        b"`",
                        b"\t",
                        b"#",
                        b"<",
                        b"-",
                        b"9",
                        b".",
                        b"\xff",
                        "元".encode("gbk"),
                        b"\x00",
                    ]
                )
            )
        elif op == "delete":
            del data[pos : pos + draw(st.integers(1, 40))]
        elif op == "truncate":
            del data[pos:]
        elif op == "dup":
            data[pos:pos] = data[pos : pos + draw(st.integers(1, 120))]
    return bytes(data)


@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_mutated())
def test_mutated_valid_files_only_raise_parse_errors(data: bytes) -> None:
    _run(data)
