"""Alipay 业务明细 zip bills built from formats.md 1.3 (no real merchant bill is public)."""

from __future__ import annotations

import io
import zipfile
from datetime import date

import pyarrow as pa
import pytest

from recon.domain import Source, TxnType
from recon.parsing import StatementParseError, detect_format

from ._support import (
    STEM,
    ali_detail,
    ali_row,
    ali_summary,
    assert_accounting,
    at,
    gbk_zip,
    parse,
)

DETAIL = f"{STEM}_业务明细.csv"
SUMMARY = f"{STEM}_业务明细(汇总).csv"
ROWS = [
    ali_row("2019091622001458860515315453", "service_1", "交易", "0.01", "0.00"),
    ali_row(
        "2019091622001458860515315454", "service_2", "交易", "100.00", "0.60", completed="2019-09-16 23:10:00"
    ),
    ali_row("2019091622001458860515315455", "service_3", "交易", "50.00", "0.30"),
    ali_row("2019091622001458860515315454", "service_2", "退款", "-20.00", "-0.12", refund_no="service_2_r1"),
]
TRADE_FOOTER = "#交易合计：3笔，商家实收共150.01元，商家优惠共0.00元"
REFUND_FOOTER = "#退款合计：1笔，商家实收退款共-20.00元，商家优惠退款共0.00元"
TOTAL_ROW = "合计,,3,1,130.01,130.01,0.00,0.00,0.00,0.78,0.00,129.23"


def bill(
    rows: list[str] = ROWS, trade: str = TRADE_FOOTER, refund: str = REFUND_FOOTER, total: str = TOTAL_ROW
) -> bytes:
    return gbk_zip([(DETAIL, ali_detail(rows, trade, refund)), (SUMMARY, ali_summary(total))])


def test_happy_path() -> None:
    data = bill()
    assert detect_format(data, "whatever.bin") == ("alipay.trade.zip", 0.99)
    p = parse(data, "bill.zip", Source.ALIPAY)
    assert_accounting(p)
    assert (p.format, p.encoding, p.statement_date) == ("alipay.trade.zip", "gbk", date(2019, 9, 16))
    assert p.errors == []
    assert p.skipped_by_rule == {"preamble": 3, "marker": 2, "header": 1, "footer": 3, "summary": 9}
    assert p.rows_read == 13 + 9  # detail: 3 preamble, 2 markers, header, 4 rows, 3 footers
    assert len(p.control_totals) == 8 and all(c.ok for c in p.control_totals)
    names = {c.name for c in p.control_totals}
    assert {"footer.交易合计.笔", "footer.退款合计.商家实收退款", "summary.合计.服务费（元）"} <= names

    small, big, _, refund = p.transactions
    assert small.txn_id == "2019091622001458860515315453"  # trailing TAB stripped
    assert small.order_ref == "service_1" and small.counterparty == "*津水(602***@qq.com)"
    assert small.memo == "下单测试" and small.refund_ref is None
    assert small.raw_key == f"raw/bill.zip!{DETAIL}"
    assert small.row_number == 6  # 3 preamble lines, start marker, header
    assert big.booked_at == at("2019-09-16 23:10:00")  # 完成时间
    assert (big.amount_minor, big.fee_minor, big.net_minor) == (10000, 60, 9940)
    assert refund.txn_id == "2019091622001458860515315454#service_2_r1"
    assert refund.refund_ref == "service_2_r1" and refund.order_ref == "service_2"
    assert refund.txn_type is TxnType.REFUND
    assert (refund.amount_minor, refund.fee_minor, refund.net_minor) == (-2000, -12, -1988)
    assert refund.txn_uid == "alipay:acct-1:2019091622001458860515315454#service_2_r1"


def test_fee_written_negative_on_payments_keeps_our_sign_convention() -> None:
    rows = [ali_row("2019091622001458860515315460", "o1", "交易", "100.00", "-0.60")]
    data = bill(
        rows,
        "#交易合计：1笔，商家实收共100.00元",
        "#退款合计：0笔，商家实收退款共0.00元",
        "合计,,1,0,100.00,100.00,0.00,0.00,0.00,-0.60,0.00,99.40",
    )
    (txn,) = parse(data, "bill.zip", Source.ALIPAY).transactions
    assert (txn.amount_minor, txn.fee_minor, txn.net_minor) == (10000, 60, 9940)


def test_footer_total_that_disagrees_names_the_footer() -> None:
    data = bill(trade="#交易合计：3笔，商家实收共150.02元，商家优惠共0.00元")
    with pytest.raises(StatementParseError) as info:
        parse(data, "bill.zip", Source.ALIPAY)
    (error,) = info.value.errors
    assert error.file == f"bill.zip!{DETAIL}"
    assert error.row == 11 and error.column == "交易合计"
    assert (
        "footer.交易合计.商家实收" in error.reason and "150.02" in error.reason and "150.01" in error.reason
    )
    assert "footer.交易合计" in str(info.value)
    assert info.value.parsed is not None and len(info.value.parsed.transactions) == 4


def test_summary_total_row_that_disagrees_names_the_column() -> None:
    data = bill(total="合计,,4,1,130.01,130.01,0.00,0.00,0.00,0.78,0.00,129.23")
    with pytest.raises(StatementParseError) as info:
        parse(data, "bill.zip", Source.ALIPAY)
    (error,) = info.value.errors
    assert error.file == f"bill.zip!{SUMMARY}" and error.column == "交易订单总笔数" and error.row == 7


def test_bad_amount_is_rejected_with_row_and_column() -> None:
    rows = [*ROWS[:2], ali_row("2019091622001458860515315455", "service_3", "交易", "5O.00", "0.30"), ROWS[3]]
    p = parse(bill(rows), "bill.zip", Source.ALIPAY)
    assert_accounting(p)
    (error,) = p.errors
    assert (error.file, error.row, error.column) == (f"bill.zip!{DETAIL}", 8, "商家实收（元）")
    assert "5O.00" in error.reason
    assert len(p.transactions) == 3
    counts = {c.name: c for c in p.control_totals if c.name.endswith("笔")}
    assert counts["footer.交易合计.笔"].ok  # the rejected row still counts as a row of the file


def test_sub_fen_amount_and_missing_refund_batch_are_rejected() -> None:
    rows = [
        ali_row("2019091622001458860515315456", "o1", "交易", "1.001", "0.00"),
        ali_row("2019091622001458860515315457", "o2", "退款", "-1.00", "0.00", refund_no=""),
    ]
    p = parse(
        bill(
            rows,
            "#交易合计：1笔，商家实收共1.00元",
            "#退款合计：1笔，商家实收退款共-1.00元",
            "合计,,1,1,0.00,0.00,0.00,0.00,0.00,0.00,0.00,0.00",
        ),
        "bill.zip",
        Source.ALIPAY,
    )
    assert_accounting(p)
    assert [(e.row, e.column) for e in p.errors] == [(6, "商家实收（元）"), (7, "退款批次号/请求号")]


def test_member_names_are_gbk_without_the_utf8_flag() -> None:
    data = bill()
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        infos = zf.infolist()
    assert all(not i.flag_bits & 0x800 for i in infos)
    assert DETAIL not in [i.filename for i in infos]  # zipfile alone shows cp437 mojibake
    p = parse(data, "bill.zip", Source.ALIPAY)
    assert {t.raw_key for t in p.transactions} == {f"raw/bill.zip!{DETAIL}"}


def test_members_found_by_content_whatever_their_names() -> None:
    data = gbk_zip(
        [("b.csv", ali_summary(TOTAL_ROW)), ("a.csv", ali_detail(ROWS, TRADE_FOOTER, REFUND_FOOTER))]
    )
    p = parse(data, "bill.zip", Source.ALIPAY)
    assert len(p.transactions) == 4 and all(c.ok for c in p.control_totals)


def test_truncated_detail_without_footers_is_refused() -> None:
    detail = ali_detail(ROWS, TRADE_FOOTER, REFUND_FOOTER).decode("gbk").split("\r\n")[:9]
    data = gbk_zip([(DETAIL, "\r\n".join(detail).encode("gbk")), (SUMMARY, ali_summary(TOTAL_ROW))])
    with pytest.raises(StatementParseError, match="footer #交易合计 missing"):
        parse(data, "bill.zip", Source.ALIPAY)


def test_missing_summary_member_is_refused() -> None:
    data = gbk_zip([(DETAIL, ali_detail(ROWS, TRADE_FOOTER, REFUND_FOOTER))])
    with pytest.raises(StatementParseError, match="summary member"):
        parse(data, "bill.zip", Source.ALIPAY)


def test_bare_detail_csv_and_extra_columns() -> None:
    rows = [r + ",extra" for r in ROWS]
    text = (
        ali_detail(rows, TRADE_FOOTER, REFUND_FOOTER)
        .decode("gbk")
        .replace("分润（元）,备注", "分润（元）,备注,新列", 1)
    )
    data = text.encode("gbk")
    assert detect_format(data, "x.csv")[0] == "alipay.trade.csv"
    p = parse(data, "detail.csv", Source.ALIPAY)
    assert p.format == "alipay.trade.csv" and len(p.transactions) == 4
    assert p.transactions[0].raw_key == "raw/detail.csv"


def test_corrupt_zip_is_refused() -> None:
    data = bill()
    with pytest.raises(StatementParseError, match="zip"):
        parse(data[: len(data) // 2] + b"\x00" * 10 + data[-22:], "bill.zip", Source.ALIPAY)


def test_signcustomer_account_bill() -> None:
    lines = [
        "#支付宝账务明细查询",
        "#账号：[20888011365400330156]",
        "#起始日期：[2012年12月29日 00:00:00]   终止日期：[2012年12月30日 00:00:00]",
        "#-----------------------------------------账务明细列表----------------------------------------",
        "账务流水号,业务流水号,商户订单号,商品名称,发生时间,对方账号,收入金额（+元）,支出金额（-元）,账户余额（元）,"
        "交易渠道,业务类型,备注",
        "54632446537371\t,2012122923922029\t,3226563\t,海航机票\t,2012-12-29 21:02:06,陈晶 (kuangzhe@126.com)\t,"
        "2274.00,0.00,14533.03,支付宝,在线支付,",
        "54632446537372\t,2012122923922030\t,3226564\t,手续费\t,2012-12-29 21:05:00,\t,0.00,-5.00,14528.03,"
        "支付宝,收费,",
        "#----------------------------------------账务明细列表结束-------------------------------------",
        "#支出合计：1笔，共-5.00元",
        "#收入合计：1笔，共2274.00元",
        "#导出时间：[2012年12月31日 13:19:01]",
    ]
    data = gbk_zip([("20888011365400330156_20121229_账务明细.csv", "\r\n".join(lines).encode("gbk"))])
    p = parse(data, "acct.zip", Source.ALIPAY)
    assert_accounting(p)
    assert p.format == "alipay.signcustomer.zip" and p.statement_date == date(2012, 12, 29)
    income, fee = p.transactions
    assert (income.txn_id, income.order_ref, income.amount_minor, income.txn_type) == (
        "54632446537371",
        "3226563",
        227400,
        TxnType.PAYMENT,
    )
    assert (fee.amount_minor, fee.txn_type) == (-500, TxnType.FEE)
    assert len(p.control_totals) == 4 and all(c.ok for c in p.control_totals)


def _big_detail(rows: int, *, bad: bytes | None = None) -> bytes:
    """A bare 业务明细 CSV over 1 MiB, so the GBK bytes are read as they are (columns decoded when read)."""
    lines = [
        ali_row(
            f"20190916220014588605{i:08d}",
            f"o{i}",
            "交易" if i % 5 else "退款",
            "1.00" if i % 5 else "-1.00",
            "0.01" if i % 5 else "-0.01",
            refund_no="" if i % 5 else f"r{i}",
            商品名称=f"商品{i % 7}",
        )
        for i in range(rows)
    ]
    trades = sum(1 for i in range(rows) if i % 5)
    data = ali_detail(
        lines,
        f"#交易合计：{trades}笔，商家实收共{trades}.00元",
        f"#退款合计：{rows - trades}笔，商家实收退款共-{rows - trades}.00元",
    )
    if bad is not None:
        data = data.replace("商品3".encode("gbk"), bad, 1)
    return data


def test_large_gbk_bill_is_read_without_transcoding_and_equals_the_exact_path(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from recon.parsing import builtin_profiles
    from recon.parsing._common import Context, Member, zone
    from recon.parsing.engine import _run
    from recon.parsing.lines import BufferLines

    read_as: list[str] = []
    original = BufferLines._text_column

    def spy(self: BufferLines, arr: pa.Array) -> pa.Array:
        read_as.append(self.encoding)
        return original(self, arr)

    monkeypatch.setattr(BufferLines, "_text_column", spy)
    data = _big_detail(6000)
    assert len(data) > 1 << 20
    p = parse(data, "detail.csv", Source.ALIPAY)
    assert set(read_as) == {"gbk"}  # the columns were decoded from GBK as read, not the file transcoded
    assert_accounting(p)
    assert (p.format, p.encoding, len(p.transactions), p.errors) == ("alipay.trade.csv", "gbk", 6000, [])
    assert all(c.ok for c in p.control_totals)
    assert {t.memo for t in p.transactions} == {f"商品{k}" for k in range(7)}
    ctx = Context(
        "detail.csv", "raw/detail.csv", "stmt-1", Source.ALIPAY, "acct-1", "CNY", zone("Asia/Shanghai", "x")
    )
    exact = _run(builtin_profiles().get("alipay.trade.csv"), [Member(None, data)], ctx, trust_utf8=False)
    assert exact.table.equals(p.table)


def test_large_gbk_bill_with_a_bad_byte_names_its_line() -> None:
    data = _big_detail(6000, bad=b"\x81\x20")
    line = data[: data.index(b"\x81\x20")].count(b"\n") + 1
    with pytest.raises(StatementParseError) as info:
        parse(data, "detail.csv", Source.ALIPAY)
    (error,) = info.value.errors
    assert "undecodable" in error.reason and error.row == line
