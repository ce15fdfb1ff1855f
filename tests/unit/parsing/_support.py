"""Helpers shared by the parsing tests: sample lookup, parsing shortcut, accounting invariants, builders."""

from __future__ import annotations

import io
import zipfile
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from recon.domain import Source
from recon.parsing import ParsedStatement, StatementParseError, parse_statement

REPO = Path(__file__).resolve().parents[3]
SAMPLES = REPO.parent / "shared" / "samples"


def samples(sub: str) -> Path:
    folder = SAMPLES / sub
    if not folder.is_dir():
        pytest.skip(f"{sub} in ../shared/samples absent")
    return folder


def parse(data: bytes, filename: str, source: Source = Source.WECHAT, **kw: Any) -> ParsedStatement:
    return parse_statement(
        data,
        filename=filename,
        raw_key=f"raw/{filename}",
        statement_id="stmt-1",
        source=source,
        account_id="acct-1",
        **kw,
    )


def parse_or_partial(
    data: bytes, filename: str, source: Source = Source.WECHAT
) -> tuple[ParsedStatement, list[str]]:
    """The result, or the partial result carried by the error plus the error texts."""
    try:
        return parse(data, filename, source), []
    except StatementParseError as exc:
        assert exc.parsed is not None, str(exc)
        return exc.parsed, [str(e) for e in exc.errors]


def assert_accounting(p: ParsedStatement) -> None:
    assert p.rows_read == len(p.transactions) + p.rows_skipped + len(p.errors)
    assert p.rows_skipped == sum(p.skipped_by_rule.values())
    for t in p.transactions:
        assert type(t.amount_minor) is int
        assert type(t.fee_minor) is int
        assert type(t.net_minor) is int
        assert t.net_minor == t.amount_minor - t.fee_minor
        assert t.booked_at.tzinfo is not None and t.booked_at.utcoffset() is not None
        assert t.txn_uid == f"{t.source}:{t.account_id}:{t.txn_id}"
        assert t.profile == p.profile and t.profile_version == p.profile_version
        assert t.statement_id == "stmt-1"
        assert "\t" not in t.txn_id and "`" not in t.txn_id


# ----------------------------------------------------------------------------------- WeChat builder

_WX_ALL = (
    "交易时间,公众账号ID,商户号,特约商户号,设备号,微信订单号,商户订单号,用户标识,交易类型,交易状态,付款银行,"
    "货币种类,应结订单金额,代金券金额,微信退款单号,商户退款单号,退款金额,充值券退款金额,退款类型,退款状态,"
    "商品名称,商户数据包,手续费,费率,订单金额,申请退款金额,费率备注"
)
WX_ALL_HEADER = _WX_ALL.split(",")
WX_SUMMARY_HEADER = (
    "总交易单数,应结订单总金额,退款总金额,充值券退款总金额,手续费总金额,订单总金额,申请退款总金额"
)


def wx_row(**values: str) -> str:
    base = dict.fromkeys(WX_ALL_HEADER, "")
    base.update(
        {
            "特约商户号": "0",
            "货币种类": "CNY",
            "代金券金额": "0.00",
            "充值券退款金额": "0.00",
            "费率": "0.60%",
        }
    )
    base.update(values)
    return ",".join("`" + base[h] for h in WX_ALL_HEADER)


def wx_payment(txn: str, order: str, amount: str, fee: str, when: str = "2024-05-01 10:00:00") -> str:
    return wx_row(
        交易时间=when,
        公众账号ID="wxapp",
        商户号="1900000001",
        微信订单号=txn,
        商户订单号=order,
        用户标识="oUser",
        交易类型="JSAPI",
        交易状态="SUCCESS",
        付款银行="CFT",
        应结订单金额=amount,
        微信退款单号="0",
        商户退款单号="0",
        退款金额="0.00",
        商品名称="咖啡",
        手续费=fee,
        订单金额=amount,
        申请退款金额="0.00",
    )


def wx_refund(txn: str, order: str, refund_id: str, refund_no: str, amount: str, fee: str) -> str:
    return wx_row(
        交易时间="2024-05-01 12:00:00",
        公众账号ID="wxapp",
        商户号="1900000001",
        微信订单号=txn,
        商户订单号=order,
        用户标识="oUser",
        交易类型="JSAPI",
        交易状态="REFUND",
        付款银行="CFT",
        应结订单金额="0.00",
        微信退款单号=refund_id,
        商户退款单号=refund_no,
        退款金额=amount,
        退款类型="ORIGINAL",
        退款状态="SUCCESS",
        商品名称="咖啡",
        手续费=fee,
        订单金额="0.00",
        申请退款金额=amount,
    )


def wx_bill(rows: list[str], summary: str, *, newline: str = "\n", bom: bool = False) -> bytes:
    text = newline.join([",".join(WX_ALL_HEADER), *rows, WX_SUMMARY_HEADER, summary]) + newline
    return (b"\xef\xbb\xbf" if bom else b"") + text.encode("utf-8")


# ----------------------------------------------------------------------------------- Alipay builder

_ALIPAY = (
    "支付宝交易号,商户订单号,业务类型,商品名称,创建时间,完成时间,门店编号,门店名称,操作员,终端号,对方账户,"
    "订单金额（元）,商家实收（元）,支付宝红包（元）,集分宝（元）,支付宝优惠（元）,商家优惠（元）,券核销金额（元）,"
    "券名称,商家红包消费金额（元）,卡消费金额（元）,退款批次号/请求号,服务费（元）,分润（元）,备注"
)
ALIPAY_HEADER = _ALIPAY.split(",")
ALIPAY_SUMMARY_HEADER = (
    "门店编号,门店名称,交易订单总笔数,退款订单总笔数,订单金额（元）,商家实收（元）,支付宝优惠（元）,"
    "商家优惠（元）,卡消费金额（元）,服务费（元）,分润（元）,实收净额（元）"
)
DETAIL_START = (
    "#-----------------------------------------业务明细列表----------------------------------------"
)
DETAIL_END = "#-----------------------------------------业务明细列表结束------------------------------------"
SUMMARY_START = (
    "#-----------------------------------------业务汇总列表----------------------------------------"
)
SUMMARY_END = "#----------------------------------------业务汇总列表结束-------------------------------------"
_TAB = (
    "支付宝交易号",
    "商户订单号",
    "业务类型",
    "门店编号",
    "门店名称",
    "操作员",
    "终端号",
    "对方账户",
    "商家红包消费金额（元）",
    "退款批次号/请求号",
)


def ali_row(
    trade_no: str,
    order_no: str,
    kind: str,
    amount: str,
    fee: str,
    refund_no: str = "",
    completed: str = "2019-09-16 10:55:23",
    **extra: str,
) -> str:
    base = dict.fromkeys(ALIPAY_HEADER, "0.00")
    base.update(
        {
            "支付宝交易号": trade_no,
            "商户订单号": order_no,
            "业务类型": kind,
            "商品名称": "下单测试",
            "创建时间": "2019-09-16 10:55:16",
            "完成时间": completed,
            "门店编号": "alipay_store",
            "门店名称": "alipay_store",
            "操作员": "alipay",
            "终端号": "",
            "对方账户": "*津水(602***@qq.com)",
            "订单金额（元）": amount,
            "商家实收（元）": amount,
            "券名称": "",
            "退款批次号/请求号": refund_no,
            "服务费（元）": fee,
            "备注": "",
        }
    )
    base.update(extra)
    return ",".join(base[h] + ("\t" if h in _TAB else "") for h in ALIPAY_HEADER)


def ali_detail(rows: list[str], trade_footer: str, refund_footer: str, *, newline: str = "\r\n") -> bytes:
    lines = [
        "#支付宝业务明细查询",
        "#账号：[20880211096256330156]",
        "#起始日期：[2019年09月16日 00:00:00]   终止日期：[2019年09月17日 00:00:00]",
        DETAIL_START,
        ",".join(ALIPAY_HEADER),
        *rows,
        DETAIL_END,
        trade_footer,
        refund_footer,
        "#导出时间：[2019年09月17日 05:46:49]",
    ]
    return (newline.join(lines) + newline).encode("gbk")


def ali_summary(total_row: str, *, newline: str = "\r\n") -> bytes:
    lines = [
        "#支付宝业务汇总查询",
        "#账号：[20880211096256330156]",
        "#起始日期：[2019年09月16日 00:00:00]   终止日期：[2019年09月17日 00:00:00]",
        SUMMARY_START,
        ALIPAY_SUMMARY_HEADER,
        "alipay_store,alipay_store," + total_row.split(",", 2)[2],
        total_row,
        SUMMARY_END,
        "#导出时间：[2019年09月17日 05:46:49]",
    ]
    return (newline.join(lines) + newline).encode("gbk")


class _RawNameInfo(zipfile.ZipInfo):
    """Writes the entry name as raw GBK bytes without the UTF-8 flag, as Alipay does."""

    raw_name: bytes = b""

    def _encodeFilenameFlags(self) -> tuple[bytes, int]:  # zipfile's private hook
        return self.raw_name, self.flag_bits & ~0x800


def gbk_zip(members: list[tuple[str, bytes]]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, body in members:
            info = _RawNameInfo(name, date_time=(2019, 9, 17, 5, 46, 49))
            info.raw_name = name.encode("gbk")
            info.compress_type = zipfile.ZIP_DEFLATED
            zf.writestr(info, body)
    return buf.getvalue()


STEM = "20880211096256330156_20190916"


def at(text: str) -> datetime:
    from zoneinfo import ZoneInfo

    return datetime.strptime(text, "%Y-%m-%d %H:%M:%S").replace(tzinfo=ZoneInfo("Asia/Shanghai"))
