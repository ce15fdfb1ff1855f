"""Declarative layouts: which header names carry which standard field, how a variant is recognised, and
which totals a file states about itself.

Everything positional is avoided on purpose: a later issue turns these tables into data-driven profiles.
Header names are compared after ``norm_header`` (NFKC, so full-width ``（元）`` equals ``(元)``).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

from ._common import Builder, Row, RowFail, TotalKind, map_columns, norm_header

Fields = dict[str, tuple[str, ...]]  # standard field -> header names (aliases, first present wins)


@dataclass(frozen=True)
class CsvLayout:
    """One CSV variant: recognised when every ``signature`` header is present and no ``absent`` one is."""

    format: str
    signature: tuple[str, ...]
    fields: Fields
    required: tuple[str, ...]  # standard fields whose column must exist
    absent: tuple[str, ...] = ()

    def matches(self, header: list[str]) -> bool:
        names = {norm_header(h) for h in header}
        return all(norm_header(s) in names for s in self.signature) and not any(
            norm_header(a) in names for a in self.absent
        )


@dataclass(frozen=True)
class TotalSpec:
    """A total the file states: ``names`` are the aliases of its summary column / footer label.

    ``kind="count"`` counts data rows in ``group`` (rejected rows included: they are rows of the file);
    ``kind="amount"`` sums standard field ``field`` over parsed rows in ``group``, as written in the file.
    """

    names: tuple[str, ...]
    kind: TotalKind
    field: str | None = None
    group: str = "all"


@dataclass
class Tally:
    """Running counts and sums per row group, for control totals."""

    counts: Counter[str] = field(default_factory=Counter)
    sums: Counter[tuple[str, str]] = field(default_factory=Counter)

    def count(self, groups: set[str]) -> None:
        self.counts["all"] += 1
        for g in groups:
            self.counts[g] += 1

    def add(self, groups: set[str], values: dict[str, int]) -> None:
        for g in {"all", *groups}:
            for fld, minor in values.items():
                self.sums[(fld, g)] += minor

    def computed(self, spec: TotalSpec) -> int:
        if spec.kind == "count":
            return self.counts[spec.group]
        assert spec.field is not None
        return self.sums[(spec.field, spec.group)]


Classify = Callable[[Row], set[str]]
Convert = Callable[[Row, Builder, str, int, str], dict[str, int]]


def map_layout(
    b: Builder, header: list[str], layout: CsvLayout, *, file: str, line: int
) -> dict[str, tuple[str, int]] | None:
    """Map a header row onto the layout's fields; None (and a file error) when a required column is missing."""
    columns = map_columns(header, layout.fields)
    missing = [layout.fields[f][0] for f in layout.required if f not in columns]
    if missing:
        b.fail(file, line, ", ".join(missing), "required columns missing")
        return None
    return columns


def read_data_row(
    b: Builder,
    tally: Tally,
    row: Row,
    *,
    classify: Classify,
    convert: Convert,
    expected_fields: int,
    extra_fields_ok: bool,
    file: str,
    line: int,
    raw_key: str,
) -> None:
    """Count a data row towards the control totals and convert it, or reject it naming row and column."""
    groups = classify(row)
    tally.count(groups)
    got = row.width
    if got < expected_fields or (got > expected_fields and not extra_fields_ok):
        b.reject(file, line, None, f"expected {expected_fields} fields, got {got}")
        return
    try:
        values = convert(row, b, file, line, raw_key)
    except RowFail as exc:
        b.reject(file, line, exc.column, exc.reason)
        return
    tally.add(groups, values)


# ------------------------------------------------------------------------------ WeChat Pay trade bill

WECHAT_TRADE_FIELDS: Fields = {
    "time": ("交易时间",),
    "txn_id": ("微信订单号",),
    "order_ref": ("商户订单号",),
    "counterparty": ("用户标识",),
    "status": ("交易状态",),
    "currency": ("货币种类",),
    "amount": ("应结订单金额", "总金额"),  # legacy (before 免充值券): 总金额
    "refund_id": ("微信退款单号",),
    "refund_ref": ("商户退款单号",),
    "refund_amount": ("退款金额",),
    "coupon_refund": ("充值券退款金额", "代金券或立减优惠退款金额"),
    "refund_status": ("退款状态",),
    "refund_time": ("退款成功时间",),
    "memo": ("商品名称",),
    "fee": ("手续费",),
    "order_amount": ("订单金额",),
    "refund_request_amount": ("申请退款金额",),
}
_WX_REQ = ("time", "txn_id", "order_ref", "status", "amount", "fee")

# Order matters: the first matching variant wins.
WECHAT_TRADE_LAYOUTS: tuple[CsvLayout, ...] = (
    CsvLayout(
        "wechat.tradebill.refund",
        ("交易时间", "公众账号ID", "退款申请时间", "退款成功时间", "应结订单金额"),
        WECHAT_TRADE_FIELDS,
        (*_WX_REQ, "refund_id", "refund_amount"),
    ),
    CsvLayout(
        "wechat.tradebill.refund_legacy",
        ("交易时间", "公众账号ID", "退款申请时间", "总金额"),
        WECHAT_TRADE_FIELDS,
        (*_WX_REQ, "refund_id", "refund_amount"),
    ),
    CsvLayout(
        "wechat.tradebill.all",
        ("交易时间", "公众账号ID", "应结订单金额", "微信退款单号"),
        WECHAT_TRADE_FIELDS,
        (*_WX_REQ, "refund_id", "refund_amount"),
    ),
    CsvLayout(
        "wechat.tradebill.all_legacy",
        ("交易时间", "公众账号ID", "总金额", "微信退款单号"),
        WECHAT_TRADE_FIELDS,
        (*_WX_REQ, "refund_id", "refund_amount"),
    ),
    CsvLayout(
        "wechat.tradebill.success",
        ("交易时间", "公众账号ID", "应结订单金额"),
        WECHAT_TRADE_FIELDS,
        _WX_REQ,
        absent=("微信退款单号",),
    ),
    CsvLayout(
        "wechat.tradebill.success_legacy",
        ("交易时间", "公众账号ID", "总金额"),
        WECHAT_TRADE_FIELDS,
        _WX_REQ,
        absent=("微信退款单号",),
    ),
)

WECHAT_TRADE_SUMMARY_FIRST = "总交易单数"
WECHAT_TRADE_TOTALS: tuple[TotalSpec, ...] = (
    TotalSpec(("总交易单数",), "count"),
    TotalSpec(("应结订单总金额", "总交易额"), "amount", "amount", "payment"),
    TotalSpec(("退款总金额", "总退款金额"), "amount", "refund_amount"),
    TotalSpec(("充值券退款总金额", "总代金券或立减优惠退款金额"), "amount", "coupon_refund"),
    TotalSpec(("手续费总金额",), "amount", "fee"),
    TotalSpec(("订单总金额",), "amount", "order_amount"),
    TotalSpec(("申请退款总金额",), "amount", "refund_request_amount"),
)

# --------------------------------------------------------------------------- WeChat Pay fund-flow bill

WECHAT_FUNDFLOW_FIELDS: Fields = {
    "time": ("记账时间",),
    "biz_id": ("微信支付业务单号",),
    "txn_id": ("资金流水单号",),
    "biz_name": ("业务名称",),
    "biz_type": ("业务类型",),
    "direction": ("收支类型",),
    "amount": ("收支金额(元)",),
    "balance": ("账户结余(元)",),
    "applicant": ("资金变更提交申请人",),
    "memo": ("备注",),
    "voucher": ("业务凭证号",),
}
WECHAT_FUNDFLOW_LAYOUTS: tuple[CsvLayout, ...] = (
    CsvLayout(
        "wechat.fundflow",
        ("记账时间", "资金流水单号", "收支类型"),
        WECHAT_FUNDFLOW_FIELDS,
        ("time", "txn_id", "biz_name", "direction", "amount"),
    ),
)
WECHAT_FUNDFLOW_SUMMARY_FIRST = "资金流水总笔数"
WECHAT_FUNDFLOW_TOTALS: tuple[TotalSpec, ...] = (
    TotalSpec(("资金流水总笔数",), "count"),
    TotalSpec(("收入笔数",), "count", group="income"),
    TotalSpec(("收入金额",), "amount", "amount_abs", "income"),
    TotalSpec(("支出笔数",), "count", group="expense"),
    TotalSpec(("支出金额",), "amount", "amount_abs", "expense"),
)

# ---------------------------------------------------------------------- Alipay 业务明细 (trade) bill

ALIPAY_TRADE_FIELDS: Fields = {
    "txn_id": ("支付宝交易号",),
    "order_ref": ("商户订单号",),
    "biz_type": ("业务类型",),
    "memo": ("商品名称",),
    "created_at": ("创建时间",),
    "completed_at": ("完成时间",),
    "counterparty": ("对方账户",),
    "amount": ("订单金额（元）",),
    "received": ("商家实收（元）",),
    "refund_id": ("退款批次号/请求号",),
    "fee": ("服务费（元）",),
    "remark": ("备注",),
}
ALIPAY_TRADE_LAYOUT = CsvLayout(
    "alipay.trade",
    ("支付宝交易号", "业务类型", "订单金额（元）"),
    ALIPAY_TRADE_FIELDS,
    ("txn_id", "biz_type", "amount", "received", "completed_at"),
)
# Footers: "#交易合计：6笔，商家实收共0.06元，…" / "#退款合计：4笔，商家实收退款共-0.04元，…"
ALIPAY_TRADE_FOOTERS: dict[str, tuple[TotalSpec, TotalSpec]] = {
    "交易合计": (
        TotalSpec(("笔",), "count", group="trade"),
        TotalSpec(("商家实收共",), "amount", "received", "trade"),
    ),
    "退款合计": (
        TotalSpec(("笔",), "count", group="refund"),
        TotalSpec(("商家实收退款共",), "amount", "received", "refund"),
    ),
}
# The 业务明细(汇总) member's 合计 row.
ALIPAY_TRADE_SUMMARY_TOTALS: tuple[TotalSpec, ...] = (
    TotalSpec(("交易订单总笔数",), "count", group="trade"),
    TotalSpec(("退款订单总笔数",), "count", group="refund"),
    TotalSpec(("商家实收（元）",), "amount", "received"),
    TotalSpec(("服务费（元）",), "amount", "fee_written"),
)

# ----------------------------------------------------------------- Alipay 账务明细 (signcustomer) bill

ALIPAY_ACCOUNT_FIELDS: Fields = {
    "txn_id": ("账务流水号",),
    "biz_id": ("业务流水号",),
    "order_ref": ("商户订单号",),
    "memo": ("商品名称",),
    "time": ("发生时间",),
    "counterparty": ("对方账号", "对方账户"),
    "income": ("收入金额（+元）",),
    "expense": ("支出金额（-元）",),
    "balance": ("账户余额（元）",),
    "channel": ("交易渠道",),
    "biz_type": ("业务类型",),
    "remark": ("备注",),
}
ALIPAY_ACCOUNT_LAYOUT = CsvLayout(
    "alipay.signcustomer",
    ("账务流水号", "收入金额（+元）", "支出金额（-元）"),
    ALIPAY_ACCOUNT_FIELDS,
    ("txn_id", "time", "income", "expense"),
)
ALIPAY_ACCOUNT_FOOTERS: dict[str, tuple[TotalSpec, TotalSpec]] = {
    "收入合计": (
        TotalSpec(("笔",), "count", group="income"),
        TotalSpec(("共",), "amount", "income", "income"),
    ),
    "支出合计": (
        TotalSpec(("笔",), "count", group="expense"),
        TotalSpec(("共",), "amount", "expense", "expense"),
    ),
}

# ---------------------------------------------------------------------------------- ERP order export

ERP_HEADER = (
    "order_no",
    "refund_no",
    "type",
    "channel",
    "amount",
    "currency",
    "created_at",
    "paid_at",
    "status",
    "customer",
    "memo",
)
ERP_FIELDS: Fields = {name: (name,) for name in ERP_HEADER}
ERP_LAYOUT = CsvLayout("erp.orders.csv", ERP_HEADER, ERP_FIELDS, ERP_HEADER)
