"""The bill files the fake providers serve, in the real layouts.

``BillBook`` answers "which bytes is the bill of this kind for this period": a file put there explicitly,
else one generated from the demo merchant's day (``recon_local.demo_data``, same seed, so the WeChat ALL
bill and the Alipay trade zip are byte-identical to what ``make demo`` uploads). The other bill kinds are
derived from those rows:

=============================  =========================================================================
kind                           content
=============================  =========================================================================
``wechat.tradebill.ALL``       the demo day's WeChat ALL trade bill (27 columns, backticked)
``wechat.tradebill.SUCCESS``   its payment rows in the SUCCESS layout (20 columns, 4-field summary)
``wechat.tradebill.REFUND``    its refund rows in the REFUND layout (29 columns)
``wechat.fundflowbill.BASIC``  one 收入 row per payment, one 支出 row per refund (记账 in that order)
``wechat.fundflowbill.FEES``   one 支出 row per payment fee
``wechat.fundflowbill.OPERATION``  none: WeChat answers NO_STATEMENT_EXIST for an account without flows
``alipay.trade``               the demo day's 业务明细 zip; a month merges its days
``alipay.signcustomer``        账务明细 zip: 在线支付 income, 交易退款 and 收费 (fee) expenses, a running balance
=============================  =========================================================================

Periods are ``yyyy-MM-dd`` (a day) or ``yyyy-MM`` (a month, Alipay only). Money is integer fen throughout;
text comes from ``recon.money``.
"""

from __future__ import annotations

import calendar
import csv
import io
import zipfile
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from decimal import Decimal

from recon.money import to_decimal, to_minor
from recon_local.demo_data import (
    ALIPAY_ACCOUNT,
    ALIPAY_DETAIL_END,
    ALIPAY_DETAIL_HEADER,
    ALIPAY_DETAIL_START,
    ALIPAY_USER_ID,
    CRLF,
    WECHAT_ACCOUNT,
    WECHAT_TRADE_HEADER,
    _cn_ts,
    _gbk_zip,  # the one GBK-named zip writer (Alipay's entry-name quirk)
    alipay_preamble,
    alipay_trade_zip,
    generate_day,
)

__all__ = ["ALIPAY_KINDS", "WECHAT_KINDS", "BillBook", "period_days"]

WECHAT_KINDS = (
    "wechat.tradebill.ALL",
    "wechat.tradebill.SUCCESS",
    "wechat.tradebill.REFUND",
    "wechat.fundflowbill.BASIC",
    "wechat.fundflowbill.OPERATION",
    "wechat.fundflowbill.FEES",
)
ALIPAY_KINDS = ("alipay.trade", "alipay.signcustomer")

CNY = "CNY"
_ALL = WECHAT_TRADE_HEADER.split(",")
_SUCCESS_HEADER = (
    "交易时间,公众账号ID,商户号,特约商户号,设备号,微信订单号,商户订单号,用户标识,交易类型,交易状态,付款银行,"
    "货币种类,应结订单金额,代金券金额,商品名称,商户数据包,手续费,费率,订单金额,费率备注"
)
_SUCCESS = _SUCCESS_HEADER.split(",")
_REFUND = [
    *_ALL[: _ALL.index("代金券金额") + 1],
    "退款申请时间",
    "退款成功时间",
    *_ALL[_ALL.index("代金券金额") + 1 :],
]
_ALL_SUMMARY = "总交易单数,应结订单总金额,退款总金额,充值券退款总金额,手续费总金额,订单总金额,申请退款总金额"
_SUCCESS_SUMMARY = "总交易单数,应结订单总金额,手续费总金额,订单总金额"
_FUNDFLOW = (
    "记账时间,微信支付业务单号,资金流水单号,业务名称,业务类型,收支类型,收支金额(元),账户结余(元),"
    "资金变更提交申请人,备注,业务凭证号"
)
_FUNDFLOW_SUMMARY = "资金流水总笔数,收入笔数,收入金额,支出笔数,支出金额"
_ALIPAY = ALIPAY_DETAIL_HEADER.split(",")
_ACCOUNT_HEADER = (
    "账务流水号,业务流水号,商户订单号,商品名称,发生时间,对方账号,收入金额（+元）,支出金额（-元）,账户余额（元）,"
    "交易渠道,业务类型,备注"
)
_ACCOUNT_START = "#" + "-" * 41 + "账务明细列表" + "-" * 40
_ACCOUNT_END = "#" + "-" * 40 + "账务明细列表结束" + "-" * 37
_OPENING_BALANCE = 1_000_000_00  # fen on the Alipay balance before the period


def period_days(period: str) -> tuple[date, date]:
    """First and last day of ``yyyy-MM-dd`` or ``yyyy-MM``."""
    if len(period) == 7:
        first = date.fromisoformat(period + "-01")
        return first, first.replace(day=calendar.monthrange(first.year, first.month)[1])
    day = date.fromisoformat(period)
    return day, day


@dataclass
class BillBook:
    """Bill bytes by (kind, period): explicit files first, else generated from the demo merchant."""

    seed: int = 7
    orders: int = 120

    def __post_init__(self) -> None:
        self._files: dict[tuple[str, str], bytes | None] = {}
        self._days: dict[date, dict[str, bytes]] = {}

    def put(self, kind: str, period: str, data: bytes | None) -> None:
        """Serve ``data`` for (kind, period); ``None`` means no bill exists for it."""
        self._files[(kind, period)] = data

    def get(self, kind: str, period: str) -> bytes | None:
        if (kind, period) in self._files:
            return self._files[(kind, period)]
        return self.generate(kind, period)

    def empty(self, kind: str, period: str) -> bytes:
        """A bill with no rows for the period (Alipay's EMPTY_DATA_WITH_BILL_FILE; WeChat has none)."""
        first, last = period_days(period)
        if kind == "alipay.trade":
            return _alipay_trade_zip([], first, last)
        if kind == "alipay.signcustomer":
            return _alipay_account_zip([], first, last)
        raise ValueError(f"no empty bill for {kind!r}")

    def generate(self, kind: str, period: str) -> bytes | None:
        first, last = period_days(period)
        days = [first + timedelta(days=n) for n in range((last - first).days + 1)]
        if kind.startswith("wechat."):
            if first != last:
                raise ValueError("WeChat Pay bills are daily")
            return _wechat(kind, self._demo(first)[WECHAT_ACCOUNT])
        if kind == "alipay.trade":
            if first == last:
                return self._demo(first)[ALIPAY_ACCOUNT]
            rows = [row for day in days for row in _alipay_rows(self._demo(day)[ALIPAY_ACCOUNT])]
            return _alipay_trade_zip(rows, first, last)
        if kind == "alipay.signcustomer":
            rows = [row for day in days for row in _alipay_rows(self._demo(day)[ALIPAY_ACCOUNT])]
            return _alipay_account_zip(rows, first, last)
        raise ValueError(f"unknown bill kind {kind!r}")

    def _demo(self, day: date) -> dict[str, bytes]:
        if day not in self._days:
            generated = generate_day(day, seed=self.seed, orders=self.orders)
            self._days[day] = {account: content for account, (_, content) in generated.files.items()}
        return self._days[day]


# ----------------------------------------------------------------------------------------------- WeChat


def _wechat_rows(all_bill: bytes) -> list[dict[str, str]]:
    lines = all_bill.decode("utf-8").splitlines()
    summary_at = next(i for i, line in enumerate(lines) if line.startswith("总交易单数"))
    return [dict(zip(_ALL, (v[1:] for v in line.split(",")), strict=True)) for line in lines[1:summary_at]]


def _backticked(values: Iterable[str]) -> str:
    return ",".join("`" + v for v in values)


def _yuan(minor: int) -> str:
    return str(to_decimal(minor, CNY))


def _fee5(minor: int) -> str:
    return str(to_decimal(minor, CNY).quantize(Decimal("0.00001")))


def _sum(rows: list[dict[str, str]], column: str) -> int:
    return sum(to_minor(r[column], CNY) for r in rows)


def _text(lines: list[str]) -> bytes:
    return (CRLF.join(lines) + CRLF).encode("utf-8")


def _wechat(kind: str, all_bill: bytes) -> bytes | None:
    if kind == "wechat.tradebill.ALL":
        return all_bill
    rows = _wechat_rows(all_bill)
    payments = [r for r in rows if r["交易状态"] != "REFUND"]
    refunds = [r for r in rows if r["交易状态"] == "REFUND"]
    if kind == "wechat.tradebill.SUCCESS":
        summary = [str(len(payments)), _yuan(_sum(payments, "应结订单金额")), _fee5(_sum(payments, "手续费"))]
        summary.append(_yuan(_sum(payments, "订单金额")))
        body = [_backticked(r[c] for c in _SUCCESS) for r in payments]
        return _text([",".join(_SUCCESS), *body, _SUCCESS_SUMMARY, _backticked(summary)])
    if kind == "wechat.tradebill.REFUND":
        timed = [{**r, "退款申请时间": r["交易时间"], "退款成功时间": r["交易时间"]} for r in refunds]
        summary = [
            str(len(refunds)),
            _yuan(_sum(refunds, "应结订单金额")),
            _yuan(_sum(refunds, "退款金额")),
            _yuan(_sum(refunds, "充值券退款金额")),
            _fee5(_sum(refunds, "手续费")),
            _yuan(_sum(refunds, "订单金额")),
            _yuan(_sum(refunds, "申请退款金额")),
        ]
        body = [_backticked(r[c] for c in _REFUND) for r in timed]
        return _text([",".join(_REFUND), *body, _ALL_SUMMARY, _backticked(summary)])
    if kind == "wechat.fundflowbill.BASIC":
        flows = [
            (
                r["交易时间"],
                r["微信订单号"],
                "交易",
                "收入",
                to_minor(r["应结订单金额"], CNY),
                r["商户订单号"],
            )
            if r["交易状态"] != "REFUND"
            else (
                r["交易时间"],
                r["微信退款单号"],
                "退款",
                "支出",
                to_minor(r["退款金额"], CNY),
                r["商户退款单号"],
            )
            for r in rows
        ]
        return _fundflow(flows)
    if kind == "wechat.fundflowbill.FEES":
        fees = [
            (
                r["交易时间"],
                r["微信订单号"],
                "扣除交易手续费",
                "支出",
                to_minor(r["手续费"], CNY),
                r["商户订单号"],
            )
            for r in payments
            if to_minor(r["手续费"], CNY)
        ]
        return _fundflow(fees) if fees else None
    if kind == "wechat.fundflowbill.OPERATION":
        return None
    raise ValueError(f"unknown bill kind {kind!r}")


def _fundflow(flows: list[tuple[str, str, str, str, int, str]]) -> bytes:
    balance = 0
    lines = [_FUNDFLOW]
    for n, (when, biz_id, name, direction, amount, voucher) in enumerate(flows, start=1):
        balance += amount if direction == "收入" else -amount
        flow_id = f"{biz_id[-20:]}{n:08d}"
        lines.append(
            _backticked(
                [
                    when,
                    biz_id,
                    flow_id,
                    name,
                    name,
                    direction,
                    _yuan(amount),
                    _yuan(balance),
                    "system",
                    "",
                    voucher,
                ]
            )
        )
    income = [f for f in flows if f[3] == "收入"]
    expense = [f for f in flows if f[3] == "支出"]
    summary = [
        f"{len(flows)}.0",
        f"{len(income)}.0",
        _yuan(sum(f[4] for f in income)),
        f"{len(expense)}.0",
        _yuan(sum(f[4] for f in expense)),
    ]
    lines += [_FUNDFLOW_SUMMARY, _backticked(summary)]
    return _text(lines)


# ----------------------------------------------------------------------------------------------- Alipay


def _alipay_rows(trade_zip: bytes) -> list[list[str]]:
    """The 业务明细 data rows of a trade zip, fields as written (trailing TABs kept)."""
    with zipfile.ZipFile(io.BytesIO(trade_zip)) as archive:
        detail = next(
            archive.read(i).decode("gbk")
            for i in archive.infolist()
            if archive.read(i).decode("gbk").startswith("#支付宝业务明细查询")
        )
    lines = detail.splitlines()
    start = lines.index(ALIPAY_DETAIL_START) + 2  # marker, then the header
    end = lines.index(ALIPAY_DETAIL_END)
    return [next(csv.reader([line])) for line in lines[start:end]]


def _stamp(last: date) -> datetime:
    return datetime.combine(last + timedelta(days=1), time(5, 30, 0))


def _stem(first: date, last: date) -> str:
    return f"{ALIPAY_USER_ID}_{first:%Y%m%d}" if first == last else f"{ALIPAY_USER_ID}_{first:%Y%m}"


def _col(row: list[str], name: str) -> str:
    return row[_ALIPAY.index(name)].strip()


def _alipay_trade_zip(rows: list[list[str]], first: date, last: date) -> bytes:
    trades = [r for r in rows if _col(r, "业务类型") == "交易"]
    refunds = [r for r in rows if _col(r, "业务类型") == "退款"]

    def total(subset: list[list[str]], name: str) -> int:
        return sum(to_minor(_col(r, name), CNY) for r in subset)

    return alipay_trade_zip(
        _stem(first, last),
        [",".join(r) for r in rows],
        first=first,
        last=last,
        trades=len(trades),
        refunds=len(refunds),
        trade_received=total(trades, "商家实收（元）"),
        refund_received=total(refunds, "商家实收（元）"),
        order_sum=total(rows, "订单金额（元）"),
        received=total(rows, "商家实收（元）"),
        fee_sum=total(rows, "服务费（元）"),
        exported=_stamp(last),
    )


def _alipay_account_zip(rows: list[list[str]], first: date, last: date) -> bytes:
    # (time, business id, order no, product, counterparty, signed fen, kind) in booking order.
    moves: list[tuple[str, str, str, str, str, int, str]] = []
    for r in rows:
        when, trade_no, order_no = _col(r, "完成时间"), _col(r, "支付宝交易号"), _col(r, "商户订单号")
        product, who = _col(r, "商品名称"), _col(r, "对方账户")
        amount = to_minor(_col(r, "商家实收（元）"), CNY)
        fee = to_minor(_col(r, "服务费（元）"), CNY)
        if _col(r, "业务类型") == "交易":
            moves.append((when, trade_no, order_no, product, who, amount, "在线支付"))
            if fee:
                moves.append(
                    (when, trade_no, order_no, product, "支付宝(中国)网络技术有限公司", -fee, "收费")
                )
        else:
            moves.append((when, trade_no, order_no, product, who, amount, "交易退款"))
            if fee:  # the refunded share of the fee comes back
                moves.append(
                    (when, trade_no, order_no, product, "支付宝(中国)网络技术有限公司", -fee, "收费退回")
                )
    moves.sort(key=lambda m: m[0])
    balance = _OPENING_BALANCE
    body = []
    for n, (when, trade_no, order_no, product, who, amount, kind) in enumerate(moves, start=1):
        balance += amount
        income, expense = (_yuan(amount), "0.00") if amount >= 0 else ("0.00", _yuan(amount))
        flow_id = f"{when[:10].replace('-', '')}{n:010d}"
        body.append(
            ",".join(
                [f"{flow_id}\t", f"{trade_no}\t", f"{order_no}\t", f"{product}\t", when, f"{who}\t", income, expense,
                 _yuan(balance), "支付宝", kind, ""]
            )
        )  # fmt: skip
    incomes = [m[5] for m in moves if m[5] >= 0]
    expenses = [m[5] for m in moves if m[5] < 0]
    stamp = _cn_ts(_stamp(last))
    detail = [
        *alipay_preamble("#支付宝账务明细查询", first, last),
        _ACCOUNT_START,
        _ACCOUNT_HEADER,
        *body,
        _ACCOUNT_END,
        f"#支出合计：{len(expenses)}笔，共{_yuan(sum(expenses))}元",
        f"#收入合计：{len(incomes)}笔，共{_yuan(sum(incomes))}元",
        f"#导出时间：[{stamp}]",
    ]
    stem = _stem(first, last)
    return _gbk_zip([(f"{stem}_账务明细.csv", (CRLF.join(detail) + CRLF).encode("gbk"))], _stamp(last))
