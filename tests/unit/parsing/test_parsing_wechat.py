"""WeChat Pay bills: the real WxJava samples and synthetic bills built from formats.md 2.5/2.6."""

from __future__ import annotations

import gzip

import pytest

from recon.domain import Source, TxnStatus, TxnType
from recon.parsing import StatementParseError, detect_format

from ._support import (
    assert_accounting,
    at,
    parse,
    parse_or_partial,
    samples,
    wx_bill,
    wx_payment,
    wx_refund,
)

# --------------------------------------------------------------------------------------- real samples


@pytest.mark.needs_samples
def test_real_legacy_all_bill_parses_with_every_total_verified() -> None:
    data = (samples("WxJava") / "PAY_BILL_RESULT_ALL_CONTENT_1.csv").read_bytes()
    p = parse(data, "ALL_1.csv")
    assert_accounting(p)
    assert p.format == "wechat.tradebill.all_legacy"
    assert p.encoding == "utf-8"
    assert p.errors == []
    assert p.skipped_by_rule == {"header": 1, "summary": 2}
    assert {c.name for c in p.control_totals} >= {
        "summary.总交易单数",
        "summary.总交易额",
        "summary.手续费总金额",
    }
    assert all(c.ok for c in p.control_totals)
    first, second = p.transactions
    assert first.txn_id == "1001690740201411100005734289"
    assert first.order_ref == "1415640626"
    assert first.amount_minor == 1 and first.fee_minor == 0 and first.net_minor == 1
    # The legacy file writes times with full-width colons: 2014-11-10 16：33：45
    assert first.booked_at == at("2014-11-10 16:33:45")
    assert first.row_number == 2 and second.row_number == 3
    assert first.txn_type is TxnType.PAYMENT and first.status is TxnStatus.SUCCESS
    assert first.counterparty == "085e9858e3ba5186aafcbaed1" and first.memo == "被扫支付测试"


# The other three WxJava texts are excerpts: the test class kept one detail row but the summary of the
# whole bill (ALL states 48 rows and 5.76 yuan, its single row alone is 6.00). No reading of the summary
# makes them agree, so they must be refused; the partial result still maps the row.
@pytest.mark.needs_samples
@pytest.mark.parametrize(
    ("name", "fmt", "stated_count"),
    [
        ("PAY_BILL_RESULT_ALL_CONTENT.csv", "wechat.tradebill.all", "48"),
        ("PAY_BILL_RESULT_SUCCESS_CONTENT.csv", "wechat.tradebill.success", "31"),
        ("PAY_BILL_RESULT_REFUND_CONTENT.csv", "wechat.tradebill.refund", "4"),
    ],
)
def test_real_excerpt_bills_are_refused_for_their_summary(name: str, fmt: str, stated_count: str) -> None:
    data = (samples("WxJava") / name).read_bytes()
    assert detect_format(data, name) == (fmt, 0.95)
    with pytest.raises(StatementParseError) as info:
        parse(data, name)
    err = info.value
    count_errors = [e for e in err.errors if e.column == "总交易单数"]
    assert len(count_errors) == 1
    assert count_errors[0].file == name and count_errors[0].row == 4
    assert f"states {stated_count}" in count_errors[0].reason and "add up to 1" in count_errors[0].reason
    p = err.parsed
    assert p is not None
    assert_accounting(p)
    assert p.format == fmt and len(p.transactions) == 1 and p.rows_read == 4


@pytest.mark.needs_samples
def test_real_all_and_refund_rows_are_mapped() -> None:
    folder = samples("WxJava")
    p, _ = parse_or_partial((folder / "PAY_BILL_RESULT_ALL_CONTENT.csv").read_bytes(), "all.csv")
    (pay,) = p.transactions
    assert (pay.txn_id, pay.order_ref, pay.amount_minor, pay.fee_minor, pay.net_minor) == (
        "XXXXXXXXXXXXX",
        "XXXXXXXXXX",
        600,
        4,
        596,
    )
    assert pay.refund_ref is None and pay.txn_type is TxnType.PAYMENT
    p, _ = parse_or_partial((folder / "PAY_BILL_RESULT_REFUND_CONTENT.csv").read_bytes(), "refund.csv")
    (refund,) = p.transactions
    assert refund.txn_id == "xxx#xxxx"  # 微信订单号#微信退款单号
    assert refund.order_ref == "xxxx" and refund.refund_ref == "xxx"
    assert refund.amount_minor == -1 and refund.fee_minor == 0
    assert refund.txn_type is TxnType.REFUND and refund.status is TxnStatus.SUCCESS
    assert refund.booked_at == at("2019-07-23 20:53:40")  # 退款成功时间


# ---------------------------------------------------------------------------------- synthetic bills

ROWS = [
    wx_payment("4200000001", "SO-1", "100.00", "0.60000"),
    wx_payment("4200000002", "SO-2", "50.00", "0.30000", when="2024-05-01 23:59:59"),
    wx_refund("4200000001", "SO-1", "5030000001", "RF-1", "20.00", "-0.12000"),
]
SUMMARY = "`3,`150.00,`20.00,`0.00,`0.78000,`150.00,`20.00"


@pytest.mark.parametrize("newline", ["\n", "\r\n"])
@pytest.mark.parametrize("bom", [False, True])
@pytest.mark.parametrize("gzipped", [False, True])
def test_consistent_all_bill(newline: str, bom: bool, gzipped: bool) -> None:
    data = wx_bill(ROWS, SUMMARY, newline=newline, bom=bom)
    if gzipped:
        data = gzip.compress(data)
    assert detect_format(data, "bill.bin")[0] == "wechat.tradebill.all"
    p = parse(data, "bill.csv")
    assert_accounting(p)
    assert p.encoding == ("utf-8-sig" if bom else "utf-8")
    assert all(c.ok for c in p.control_totals) and len(p.control_totals) == 7
    pay1, pay2, refund = p.transactions
    assert (pay1.amount_minor, pay1.fee_minor, pay1.net_minor) == (10000, 60, 9940)
    assert pay2.booked_at == at("2024-05-01 23:59:59") and str(pay2.value_date) == "2024-05-01"
    assert refund.txn_id == "4200000001#5030000001"
    assert refund.refund_ref == "RF-1" and refund.order_ref == "SO-1"
    assert (refund.amount_minor, refund.fee_minor, refund.net_minor) == (-2000, -12, -1988)
    assert [t.row_number for t in p.transactions] == [2, 3, 4]
    assert pay1.raw_key == "raw/bill.csv" and pay1.txn_uid == "wechat:acct-1:4200000001"


def test_summary_disagreement_names_summary_cell() -> None:
    data = wx_bill(ROWS, "`3,`150.00,`20.00,`0.00,`0.79000,`150.00,`20.00")
    with pytest.raises(StatementParseError) as info:
        parse(data, "bill.csv")
    (error,) = info.value.errors
    assert (error.file, error.row, error.column) == ("bill.csv", 6, "手续费总金额")
    assert "0.79" in error.reason and "0.78" in error.reason


def test_fee_with_sub_fen_digits_rejects_that_row_only() -> None:
    rows = [*ROWS[:2], wx_payment("4200000003", "SO-3", "1.00", "0.00600")]
    data = wx_bill(rows, "`3,`151.00,`0.00,`0.00,`0.91000,`151.00,`0.00")
    p = parse(data, "bill.csv")  # amount totals are informational once a row is rejected; the count holds
    assert_accounting(p)
    (error,) = p.errors
    assert (error.row, error.column) == (4, "手续费")
    assert "precision" in error.reason
    assert [t.txn_id for t in p.transactions] == ["4200000001", "4200000002"]


def test_missing_order_id_and_bad_date_are_rejected_with_columns() -> None:
    rows = [
        wx_payment("", "SO-9", "1.00", "0.00000"),
        wx_payment("4200000009", "SO-9", "1.00", "0", when="2024-13-01"),
    ]
    p = parse(wx_bill(rows, "`2,`2.00,`0.00,`0.00,`0.00000,`2.00,`0.00"), "bill.csv")
    assert_accounting(p)
    assert [(e.row, e.column) for e in p.errors] == [(2, "微信订单号"), (3, "交易时间")]
    assert p.transactions == []


def test_truncated_bill_without_summary_is_refused() -> None:
    data = ("\n".join([",".join(wx_payment("1", "2", "1.00", "0").split(",")), ""])).encode()
    header_and_row = wx_bill(ROWS[:1], SUMMARY).decode().splitlines()[:2]
    with pytest.raises(StatementParseError, match="summary"):
        parse("\n".join(header_and_row).encode(), "bill.csv")
    with pytest.raises(StatementParseError, match="unknown statement format"):
        parse(data, "bill.csv")


def test_undecodable_text_names_the_line() -> None:
    data = wx_bill(ROWS, SUMMARY).replace("咖啡".encode(), b"\xff\xfe\xff", 1)
    with pytest.raises(StatementParseError) as info:
        parse(data, "bill.csv")
    (error,) = info.value.errors
    assert error.file == "bill.csv" and error.row == 2 and "undecodable" in error.reason


@pytest.mark.parametrize("bom", [b"", b"\xef\xbb\xbf"])
def test_undecodable_text_names_the_byte_at_its_offset_in_the_file(bom: bytes) -> None:
    data = bom + wx_bill(ROWS, SUMMARY).replace("咖啡".encode(), b"\xff\xfe\xff", 1)
    with pytest.raises(StatementParseError) as info:
        parse(data, "bill.csv")
    (error,) = info.value.errors
    offset = data.index(b"\xff\xfe\xff")
    assert f"byte 0xff at offset {offset} " in error.reason and error.row == 2


def test_corrupt_gzip_is_refused() -> None:
    data = gzip.compress(wx_bill(ROWS, SUMMARY))[:-12]
    with pytest.raises(StatementParseError, match="gzip"):
        parse(data, "bill.csv.gz")


def test_fund_flow_bill() -> None:
    text = "\n".join(
        [
            "记账时间,微信支付业务单号,资金流水单号,业务名称,业务类型,收支类型,收支金额(元),账户结余(元),"
            "资金变更提交申请人,备注,业务凭证号",
            "`2018-02-01 04:21:23,`4200000068201801293084726067,`1900009231201802015884652186,`交易,`交易,"
            "`收入,`0.20,`0.20,`system,`,`",
            "`2018-02-01 04:21:24,`50000305742018020103387128253,`1900009231201802015884652187,`退款,`退款,"
            "`支出,`0.02,`0.18,`system,`缺货,`REF4200000068201801293084726067",
            "资金流水总笔数,收入笔数,收入金额,支出笔数,支出金额",
            "`2.0,`1.0,`0.20,`1.0,`0.02",
        ]
    )
    data = text.encode()
    assert detect_format(data, "x")[0] == "wechat.fundflow"
    p = parse(data, "flow.csv")
    assert_accounting(p)
    assert all(c.ok for c in p.control_totals) and len(p.control_totals) == 5
    income, expense = p.transactions
    assert (income.amount_minor, income.txn_type) == (20, TxnType.PAYMENT)
    assert (expense.amount_minor, expense.txn_type) == (-2, TxnType.REFUND)
    assert expense.txn_id == "1900009231201802015884652187"


def test_wechat_source_is_only_a_label() -> None:
    p = parse(wx_bill(ROWS, SUMMARY), "bill.csv", Source.BANK)
    assert p.transactions[0].txn_uid.startswith("bank:acct-1:")


def test_every_row_kind_checks_the_currency_and_rows_keep_file_order() -> None:
    rows = [
        wx_payment("4200000001", "SO-1", "100.00", "0.60000").replace("`CNY", "`yuan"),
        wx_refund("4200000001", "SO-1", "5030000001", "RF-1", "20.00", "-0.12000").replace("`CNY", "`yuan"),
        wx_payment("4200000002", "SO-2", "50.00", "0.30000"),
    ]
    p = parse(wx_bill(rows, "`3,`150.00,`20.00,`0.00,`0.78000,`150.00,`20.00"), "bill.csv")
    assert_accounting(p)
    assert [(e.row, e.column, e.reason) for e in p.errors] == [
        (2, "货币种类", "not a currency code: 'YUAN'"),
        (3, "货币种类", "not a currency code: 'YUAN'"),
    ]
    assert [t.txn_id for t in p.transactions] == ["4200000002"]
