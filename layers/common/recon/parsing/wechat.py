"""WeChat Pay merchant bills (formats.md 2.5 trade bill, 2.6 fund-flow bill).

Layout: detail header, detail rows (every field prefixed with a backtick), summary header, summary row.
Conventions (amount_minor positive = money in to the merchant):

* payment row: amount = 应结订单金额 (legacy: 总金额), txn_type payment, txn_id = 微信订单号;
* refund row (交易状态 REFUND or 微信退款单号 not in ("", "0")): amount = -退款金额, txn_type refund,
  txn_id = 微信订单号#微信退款单号, refund_ref = 商户退款单号, booked_at = 退款成功时间 when the bill has it;
* fee_minor = 手续费 as written (positive on payments, negative on refunds = fee given back);
  net = amount - fee. 手续费 has 5 decimals: non-zero digits beyond the fen reject the row.
* fund-flow: amount = 收支金额 signed by 收支类型 (收入 +, 支出 -), txn_type from 业务名称.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from recon.domain.statement import TxnStatus, TxnType

from ._common import (
    Builder,
    Row,
    RowFail,
    check_currency,
    clean,
    norm_header,
    records,
)
from .layouts import (
    WECHAT_FUNDFLOW_LAYOUTS,
    WECHAT_FUNDFLOW_SUMMARY_FIRST,
    WECHAT_FUNDFLOW_TOTALS,
    WECHAT_TRADE_LAYOUTS,
    WECHAT_TRADE_SUMMARY_FIRST,
    WECHAT_TRADE_TOTALS,
    CsvLayout,
    Tally,
    TotalSpec,
    map_layout,
    read_data_row,
)

_PAY_STATUS = {
    "SUCCESS": TxnStatus.SUCCESS,
    "CLOSED": TxnStatus.CLOSED,
    "REVOKED": TxnStatus.REVERSED,
    "NOTPAY": TxnStatus.PENDING,
    "USERPAYING": TxnStatus.PENDING,
    "PAYERROR": TxnStatus.FAILED,
}
_REFUND_STATUS = {
    "": TxnStatus.SUCCESS,  # a REFUND row of the bill is a refund that went through
    "SUCCESS": TxnStatus.SUCCESS,
    "PROCESSING": TxnStatus.PENDING,
    "REFUNDCLOSE": TxnStatus.CLOSED,
    "CLOSED": TxnStatus.CLOSED,
    "CHANGE": TxnStatus.FAILED,
    "ABNORMAL": TxnStatus.FAILED,
    "FAIL": TxnStatus.FAILED,
}
_NO_ID = ("", "0")


@dataclass(frozen=True)
class _Bill:
    layouts: tuple[CsvLayout, ...]
    summary_first: str
    totals: tuple[TotalSpec, ...]
    classify: Callable[[Row], set[str]]
    convert: Callable[[Row, Builder, str, int, str], dict[str, int]]


def _trade_groups(row: Row) -> set[str]:
    refund = row.get("status").upper() == "REFUND" or row.get("refund_id") not in _NO_ID
    return {"refund"} if refund else {"payment"}


def _optional_amount(row: Row, fld: str, currency: str) -> int:
    return row.amount(fld, currency, default=0)


def _trade_row(row: Row, b: Builder, file: str, line: int, raw_key: str) -> dict[str, int]:
    ctx = b.ctx
    currency = check_currency(row.get("currency"), ctx.currency, row.column("currency"))
    order_id = row.require("txn_id")
    status_raw = row.get("status").upper()
    refund_id = row.get("refund_id")
    is_refund = status_raw == "REFUND" or refund_id not in _NO_ID
    fee = row.amount("fee", currency)
    values = {
        "fee": fee,
        "refund_amount": _optional_amount(row, "refund_amount", currency),
        "coupon_refund": _optional_amount(row, "coupon_refund", currency),
        "order_amount": _optional_amount(row, "order_amount", currency),
        "refund_request_amount": _optional_amount(row, "refund_request_amount", currency),
    }
    booked_at = row.time("time", ctx.tz)
    if is_refund:
        if refund_id in _NO_ID:
            raise RowFail(row.column("refund_id"), "refund row without 微信退款单号")
        refund_status = row.get("refund_status").upper()
        if refund_status not in _REFUND_STATUS:
            raise RowFail(row.column("refund_status"), f"unknown refund status {refund_status!r}")
        if not row.has("refund_amount") or row.get("refund_amount") == "":
            raise RowFail(row.column("refund_amount"), "refund row without 退款金额")
        if row.has("refund_time") and row.get("refund_time") != "":
            booked_at = row.time("refund_time", ctx.tz)
        refund_ref = row.get("refund_ref")
        values["amount"] = _optional_amount(row, "amount", currency)
        b.add(
            file=file,
            row=line,
            raw_key=raw_key,
            txn_id=f"{order_id}#{refund_id}",
            order_ref=row.get("order_ref"),
            refund_ref=None if refund_ref in _NO_ID else refund_ref,
            amount_minor=-values["refund_amount"],
            fee_minor=fee,
            currency=currency,
            booked_at=booked_at,
            value_date=None,
            txn_type=TxnType.REFUND,
            status=_REFUND_STATUS[refund_status],
            counterparty=row.get("counterparty"),
            memo=row.get("memo"),
        )
    else:
        if status_raw not in _PAY_STATUS:
            raise RowFail(row.column("status"), f"unknown trade status {status_raw!r}")
        values["amount"] = row.amount("amount", currency)
        b.add(
            file=file,
            row=line,
            raw_key=raw_key,
            txn_id=order_id,
            order_ref=row.get("order_ref"),
            amount_minor=values["amount"],
            fee_minor=fee,
            currency=currency,
            booked_at=booked_at,
            value_date=None,
            txn_type=TxnType.PAYMENT,
            status=_PAY_STATUS[status_raw],
            counterparty=row.get("counterparty"),
            memo=row.get("memo"),
        )
    return values


def _flow_groups(row: Row) -> set[str]:
    direction = row.get("direction")
    return {"income"} if direction == "收入" else {"expense"} if direction == "支出" else set()


# 业务名称 -> txn_type, by substring, first match wins.
_FLOW_TYPES: tuple[tuple[str, TxnType], ...] = (
    ("退款", TxnType.REFUND),
    ("手续费", TxnType.FEE),
    ("服务费", TxnType.FEE),
    ("提现", TxnType.SETTLEMENT),
    ("结算", TxnType.SETTLEMENT),
    ("交易", TxnType.PAYMENT),
    ("转账", TxnType.TRANSFER),
    ("充值", TxnType.TRANSFER),
    ("调账", TxnType.ADJUSTMENT),
    ("补差", TxnType.ADJUSTMENT),
)


def _flow_type(name: str) -> TxnType:
    for needle, kind in _FLOW_TYPES:
        if needle in name:
            return kind
    return TxnType.OTHER


def _fundflow_row(row: Row, b: Builder, file: str, line: int, raw_key: str) -> dict[str, int]:
    ctx = b.ctx
    txn_id = row.require("txn_id")
    direction = row.get("direction")
    if direction not in ("收入", "支出"):
        raise RowFail(row.column("direction"), f"收支类型 must be 收入 or 支出, got {direction!r}")
    amount = row.amount("amount", ctx.currency)
    if amount < 0:
        raise RowFail(row.column("amount"), "收支金额 must be unsigned (the sign is 收支类型)")
    biz_name = row.get("biz_name")
    memo = row.get("memo").replace("\\1", " ")
    b.add(
        file=file,
        row=line,
        raw_key=raw_key,
        txn_id=txn_id,
        amount_minor=amount if direction == "收入" else -amount,
        fee_minor=0,
        currency=ctx.currency,
        booked_at=row.time("time", ctx.tz),
        value_date=None,
        txn_type=_flow_type(biz_name),
        status=TxnStatus.SUCCESS,
        memo=" / ".join(p for p in (biz_name, row.get("biz_type"), memo) if p),
    )
    return {"amount_abs": amount}


TRADE = _Bill(
    WECHAT_TRADE_LAYOUTS, WECHAT_TRADE_SUMMARY_FIRST, WECHAT_TRADE_TOTALS, _trade_groups, _trade_row
)
FUNDFLOW = _Bill(
    WECHAT_FUNDFLOW_LAYOUTS,
    WECHAT_FUNDFLOW_SUMMARY_FIRST,
    WECHAT_FUNDFLOW_TOTALS,
    _flow_groups,
    _fundflow_row,
)


def identify(header: list[str]) -> tuple[_Bill, CsvLayout] | None:
    for bill in (TRADE, FUNDFLOW):
        for layout in bill.layouts:
            if layout.matches(header):
                return bill, layout
    return None


def parse(text: str, b: Builder, *, file: str, raw_key: str) -> str:
    """Parse one WeChat bill text into ``b``; returns the format (layout) name."""
    header: list[str] | None = None
    bill: _Bill | None = None
    layout: CsvLayout | None = None
    columns: dict[str, tuple[str, int]] = {}
    summary_header: list[str] | None = None
    summary_line = 0
    summary_values: list[str] | None = None
    tally = Tally()
    last_line = 0

    for rec in records(text):
        last_line = rec.line
        if rec.blank or rec.fields is None:
            b.skip("blank")
            continue
        fields = rec.fields
        if header is None:
            found = identify(fields)
            b.skip("header")
            if found is None:
                b.fail(file, rec.line, None, "not a WeChat Pay bill header")
                return "wechat.unknown"
            bill, layout = found
            header = fields
            mapped = map_layout(b, header, layout, file=file, line=rec.line)
            if mapped is None:
                return layout.format
            columns = mapped
            continue
        assert bill is not None
        if summary_header is None:
            if norm_header(clean(fields[0])) == bill.summary_first:
                summary_header = [clean(f) for f in fields]
                b.skip("summary")
                continue
            read_data_row(
                b,
                tally,
                Row(fields, columns),
                classify=bill.classify,
                convert=bill.convert,
                expected_fields=len(header),
                extra_fields_ok=False,
                file=file,
                line=rec.line,
                raw_key=raw_key,
            )
            continue
        if summary_values is None:
            summary_values = [clean(f) for f in fields]
            summary_line = rec.line
            b.skip("summary")
            continue
        b.skip("trailing")
        b.fail(file, rec.line, None, "unexpected content after the summary row")

    assert layout is not None or header is None
    if header is None or layout is None or bill is None:
        b.fail(file, max(last_line, 1), None, "empty file: no WeChat Pay bill header")
        return "wechat.unknown"
    if summary_header is None or summary_values is None:
        b.fail(file, last_line, None, f"summary section ({bill.summary_first}…) missing: file truncated?")
        return layout.format
    if len(summary_values) != len(summary_header):
        b.fail(
            file,
            summary_line,
            None,
            f"summary row has {len(summary_values)} fields, its header {len(summary_header)}",
        )
        return layout.format
    stated = {norm_header(h): (h, v) for h, v in zip(summary_header, summary_values, strict=True)}
    for spec in bill.totals:
        hit = next((stated[norm_header(n)] for n in spec.names if norm_header(n) in stated), None)
        if hit is None:
            continue
        name, value = hit
        if spec.kind == "count":
            b.count_total(
                f"summary.{name}", value, tally.computed(spec), file=file, row=summary_line, column=name
            )
        else:
            b.amount_total(
                f"summary.{name}",
                value,
                tally.computed(spec),
                b.ctx.currency,
                file=file,
                row=summary_line,
                column=name,
            )
    return layout.format
