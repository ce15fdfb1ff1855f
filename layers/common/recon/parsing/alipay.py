"""Alipay merchant bills (formats.md 1.3): the 业务明细 (trade) zip and the 账务明细 (signcustomer) zip.

A zip holds two GBK CSVs (entry names GBK without the UTF-8 flag). ``#`` lines are preamble, list markers
and footers; id-like values end with a TAB. Conventions (amount_minor positive = money in to the merchant):

* trade bill: txn_id = 支付宝交易号 (refunds: 支付宝交易号#退款批次号/请求号, refund_ref = the batch number),
  amount = 订单金额（元） as signed in the file (refunds negative), booked_at = 完成时间 (else 创建时间).
* fee_minor = 服务费（元） by magnitude, signed by direction: charged on a payment (positive), given back on
  a refund (negative); net = amount - fee. Public sources disagree on the sign Alipay writes, so the sign
  is derived rather than trusted; the control totals compare the values as written.
* signcustomer bill: txn_id = 账务流水号, amount = 收入金额 - |支出金额|, txn_type from 业务类型.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date

from recon.domain.statement import TxnStatus, TxnType

from ._common import (
    FILE_LEVEL_ROW,
    Builder,
    Member,
    Row,
    RowFail,
    decode,
    norm_header,
    parse_amount,
    records,
)
from .layouts import (
    ALIPAY_ACCOUNT_FOOTERS,
    ALIPAY_ACCOUNT_LAYOUT,
    ALIPAY_TRADE_FOOTERS,
    ALIPAY_TRADE_LAYOUT,
    ALIPAY_TRADE_SUMMARY_TOTALS,
    CsvLayout,
    Tally,
    TotalSpec,
    map_layout,
    read_data_row,
)

TRADE_DETAIL = "#支付宝业务明细查询"
TRADE_SUMMARY = "#支付宝业务汇总查询"
ACCOUNT_DETAIL = "#支付宝账务明细查询"
ACCOUNT_SUMMARY = "#支付宝账务汇总查询"

_MARKER = re.compile(r"^#-+(业务|账务)(明细|汇总)列表(结束)?-+$")
_START_DATE = re.compile(r"起始日期:\[(\d{4})年(\d{1,2})月(\d{1,2})日")
_FOOTER = re.compile(r"^#([^:]+):(.*)$")
_NUM = r"([+-]?[\d,]+(?:\.\d+)?)"


def first_line(text: str) -> str:
    for line in text.splitlines():
        stripped = line.strip().lstrip("\ufeff").strip()
        if stripped:
            return stripped
    return ""


def member_kind(name: str | None, text: str) -> str | None:
    """Which part of an Alipay bill a member is: by its first line, else by its entry name."""
    head = first_line(text)
    for kind in (TRADE_DETAIL, TRADE_SUMMARY, ACCOUNT_DETAIL, ACCOUNT_SUMMARY):
        if head.startswith(kind):
            return kind
    if name:
        if name.endswith("_业务明细(汇总).csv"):
            return TRADE_SUMMARY
        if name.endswith("_业务明细.csv"):
            return TRADE_DETAIL
        if name.endswith("_账务明细(汇总).csv"):
            return ACCOUNT_SUMMARY
        if name.endswith("_账务明细.csv"):
            return ACCOUNT_DETAIL
    return None


# ------------------------------------------------------------------------------------------- rows


def _trade_groups(row: Row) -> set[str]:
    kind = row.get("biz_type")
    return {"trade"} if kind == "交易" else {"refund"} if kind == "退款" else set()


def _trade_row(row: Row, b: Builder, file: str, line: int, raw_key: str) -> dict[str, int]:
    ctx = b.ctx
    cur = ctx.currency
    trade_no = row.require("txn_id")
    kind = row.get("biz_type")
    amount = row.amount("amount", cur)
    received = row.amount("received", cur)
    fee_written = row.amount("fee", cur, default=0)
    refund_ref: str | None = None
    txn_id = trade_no
    if kind == "交易":
        txn_type = TxnType.PAYMENT
        if amount < 0:
            raise RowFail(row.column("amount"), "交易 row with a negative amount")
    elif kind == "退款":
        txn_type = TxnType.REFUND
        refund_ref = row.require("refund_id")
        txn_id = f"{trade_no}#{refund_ref}"
        if amount > 0:
            raise RowFail(row.column("amount"), "退款 row with a positive amount")
    elif kind == "":
        raise RowFail(row.column("biz_type"), "required value is empty")
    else:
        txn_type = TxnType.OTHER
    when = "completed_at" if row.get("completed_at") else "created_at"
    booked_at = row.time(when, ctx.tz)
    fee = abs(fee_written) if amount >= 0 else -abs(fee_written)
    b.add(
        file=file,
        row=line,
        raw_key=raw_key,
        txn_id=txn_id,
        order_ref=row.get("order_ref"),
        refund_ref=refund_ref,
        amount_minor=amount,
        fee_minor=fee,
        currency=cur,
        booked_at=booked_at,
        value_date=None,
        txn_type=txn_type,
        status=TxnStatus.SUCCESS,
        counterparty=row.get("counterparty"),
        memo=row.get("memo"),
    )
    return {"received": received, "fee_written": fee_written}


def _nonzero(text: str) -> bool:
    try:
        return parse_amount(text, "CNY", "") != 0
    except RowFail:
        return text.strip() != ""


def _account_groups(row: Row) -> set[str]:
    if _nonzero(row.get("income")):
        return {"income"}
    if _nonzero(row.get("expense")):
        return {"expense"}
    return set()


_ACCOUNT_TYPES: tuple[tuple[str, TxnType], ...] = (
    ("退款", TxnType.REFUND),
    ("提现", TxnType.SETTLEMENT),
    ("服务费", TxnType.FEE),
    ("手续费", TxnType.FEE),
    ("收费", TxnType.FEE),
    ("转账", TxnType.TRANSFER),
    ("充值", TxnType.TRANSFER),
    ("在线支付", TxnType.PAYMENT),
    ("交易", TxnType.PAYMENT),
)


def _account_row(row: Row, b: Builder, file: str, line: int, raw_key: str) -> dict[str, int]:
    ctx = b.ctx
    cur = ctx.currency
    income = row.amount("income", cur, default=0)
    expense = row.amount("expense", cur, default=0)
    if income < 0:
        raise RowFail(row.column("income"), "negative 收入金额")
    if income and expense:
        raise RowFail(row.column("expense"), "a row with both 收入金额 and 支出金额")
    kind = row.get("biz_type")
    txn_type = next((t for needle, t in _ACCOUNT_TYPES if needle in kind), TxnType.OTHER)
    b.add(
        file=file,
        row=line,
        raw_key=raw_key,
        txn_id=row.require("txn_id"),
        order_ref=row.get("order_ref"),
        amount_minor=income - abs(expense),
        fee_minor=0,
        currency=cur,
        booked_at=row.time("time", ctx.tz),
        value_date=None,
        txn_type=txn_type,
        status=TxnStatus.SUCCESS,
        counterparty=row.get("counterparty"),
        memo=row.get("memo") or row.get("remark"),
    )
    return {"income": income, "expense": expense}


@dataclass(frozen=True)
class _Kind:
    layout: CsvLayout
    footers: dict[str, tuple[TotalSpec, TotalSpec]]
    classify: Callable[[Row], set[str]]
    convert: Callable[[Row, Builder, str, int, str], dict[str, int]]


TRADE = _Kind(ALIPAY_TRADE_LAYOUT, ALIPAY_TRADE_FOOTERS, _trade_groups, _trade_row)
ACCOUNT = _Kind(ALIPAY_ACCOUNT_LAYOUT, ALIPAY_ACCOUNT_FOOTERS, _account_groups, _account_row)


# ----------------------------------------------------------------------------------------- members


def _footer(b: Builder, kind: _Kind, tally: Tally, text: str, *, file: str, line: int) -> str | None:
    """Check one ``#label：…`` footer line; returns the label when it is a known total."""
    match = _FOOTER.match(unicodedata.normalize("NFKC", text).strip())
    if match is None:
        return None
    label = match.group(1).lstrip("#").strip()
    specs = kind.footers.get(label)
    if specs is None:
        return None
    rest = match.group(2)
    for spec in specs:
        key = spec.names[0]
        pattern = _NUM + re.escape(key) if spec.kind == "count" else re.escape(key) + _NUM + "元"
        found = re.search(pattern, rest)
        name = f"footer.{label}.{key.rstrip('共')}"
        if found is None:
            b.fail(file, line, label, f"footer {label}: no {key} value in {text.strip()!r}")
            continue
        if spec.kind == "count":
            b.count_total(name, found.group(1), tally.computed(spec), file=file, row=line, column=label)
        else:
            b.amount_total(
                name, found.group(1), tally.computed(spec), b.ctx.currency, file=file, row=line, column=label
            )
    return label


def parse_detail(text: str, b: Builder, kind: _Kind, *, file: str, raw_key: str, tally: Tally) -> date | None:
    """One detail member: preamble, start marker, header, rows, end marker, footers."""
    statement_date: date | None = None
    header: list[str] | None = None
    columns: dict[str, tuple[str, int]] = {}
    ended = False
    seen_footers: set[str] = set()
    last_line = 0
    for rec in records(text, comment_prefix="#"):
        last_line = rec.line
        raw = rec.raw.strip().lstrip("\ufeff").strip()
        if raw == "":
            b.skip("blank")
            continue
        if raw.startswith("#"):
            if _MARKER.match(raw):
                b.skip("marker")
                if header is not None:
                    ended = True
            elif header is None:
                b.skip("preamble")
                found = _START_DATE.search(unicodedata.normalize("NFKC", raw))
                if found and statement_date is None:
                    try:
                        statement_date = date(int(found[1]), int(found[2]), int(found[3]))
                    except ValueError:
                        b.fail(file, rec.line, "起始日期", f"not a date: {raw!r}")
            else:
                ended = True
                b.skip("footer")
                label = _footer(b, kind, tally, raw, file=file, line=rec.line)
                if label:
                    seen_footers.add(label)
            continue
        fields = rec.fields or []
        if header is None:
            b.skip("header")
            header = fields
            if not kind.layout.matches(header):
                b.fail(file, rec.line, None, f"not a {kind.layout.format} header: {raw[:80]!r}")
                return statement_date
            mapped = map_layout(b, header, kind.layout, file=file, line=rec.line)
            if mapped is None:
                return statement_date
            columns = mapped
            continue
        if ended:
            b.skip("trailing")
            b.fail(file, rec.line, None, "data row after the end of the detail list")
            continue
        read_data_row(
            b,
            tally,
            Row(fields, columns),
            classify=kind.classify,
            convert=kind.convert,
            expected_fields=len(header),
            extra_fields_ok=True,
            file=file,
            line=rec.line,
            raw_key=raw_key,
        )
    if header is None:
        b.fail(file, max(last_line, 1), None, "no column header in the detail list")
    for label in kind.footers:
        if label not in seen_footers and header is not None:
            b.fail(file, last_line, label, f"footer #{label} missing: file truncated?")
    return statement_date


def parse_trade_summary(text: str, b: Builder, *, file: str, tally: Tally) -> None:
    """The 业务明细(汇总) member: every line is skipped as "summary"; its 合计 row is a control total."""
    header: list[str] | None = None
    total_row: list[str] | None = None
    total_line = 0
    for rec in records(text, comment_prefix="#"):
        b.skip("summary")
        if rec.fields is None:
            continue
        cells = [c.strip() for c in rec.fields]
        if header is None and any(norm_header(c) == "交易订单总笔数" for c in cells):
            header = cells
        elif header is not None and cells and cells[0].startswith("合计"):
            total_row, total_line = cells, rec.line
    if header is None or total_row is None:
        b.fail(file, FILE_LEVEL_ROW, None, "summary member has no header or no 合计 row")
        return
    stated = {norm_header(h): (h, v) for h, v in zip(header, total_row, strict=False)}
    for spec in ALIPAY_TRADE_SUMMARY_TOTALS:
        key = norm_header(spec.names[0])
        if key not in stated:
            b.fail(file, total_line, spec.names[0], "合计 row lacks this column")
            continue
        col, value = stated[key]
        name = f"summary.合计.{col}"
        if spec.kind == "count":
            b.count_total(name, value, tally.computed(spec), file=file, row=total_line, column=col)
        else:
            b.amount_total(
                name, value, tally.computed(spec), b.ctx.currency, file=file, row=total_line, column=col
            )


def parse(
    members: list[Member], b: Builder, *, filename: str, raw_key: str, zipped: bool
) -> tuple[str, str, date | None]:
    """Parse an Alipay bill (zip members, or one bare detail CSV); returns (format, encoding, date)."""
    decoded: list[tuple[Member, str, str, str | None]] = []
    for m in members:
        file = f"{filename}!{m.name}" if m.name is not None else filename
        text, enc = decode(m.data, file, prefer_gbk=True)
        if not first_line(text).startswith("#支付宝") and enc != "utf-8-sig":
            try:  # a re-saved UTF-8 member would decode as GBK mojibake: prefer UTF-8 when it reads right
                utf8 = m.data.decode("utf-8")
            except UnicodeDecodeError:
                pass
            else:
                if first_line(utf8).startswith("#支付宝"):
                    text, enc = utf8, "utf-8"
        decoded.append((m, text, enc, member_kind(m.name, text)))
    details = [d for d in decoded if d[3] in (TRADE_DETAIL, ACCOUNT_DETAIL)]
    if len(details) != 1:
        b.fail(
            filename,
            FILE_LEVEL_ROW,
            None,
            f"expected one 业务明细/账务明细 detail member, found {len(details)}",
        )
        return "alipay.unknown", "gbk", None
    member, text, encoding, detail_kind = details[0]
    kind = TRADE if detail_kind == TRADE_DETAIL else ACCOUNT
    base = "alipay.trade" if kind is TRADE else "alipay.signcustomer"
    fmt = f"{base}.zip" if zipped else f"{base}.csv"
    tally = Tally()
    file = f"{filename}!{member.name}" if member.name is not None else filename
    key = f"{raw_key}!{member.name}" if member.name is not None else raw_key
    statement_date = parse_detail(text, b, kind, file=file, raw_key=key, tally=tally)
    summaries = 0
    for m, mtext, _enc, mkind in decoded:
        if m is member:
            continue
        mfile = f"{filename}!{m.name}"
        if mkind == TRADE_SUMMARY and kind is TRADE:
            summaries += 1
            parse_trade_summary(mtext, b, file=mfile, tally=tally)
        elif mkind == ACCOUNT_SUMMARY and kind is ACCOUNT:
            summaries += 1
            for _rec in records(mtext, comment_prefix="#"):
                b.skip("summary")
        else:
            for _rec in records(mtext, comment_prefix="#"):
                b.skip("unknown_member")
            b.fail(mfile, FILE_LEVEL_ROW, None, "unexpected member in an Alipay bill archive")
    if zipped and kind is TRADE and summaries != 1:
        b.fail(
            filename, FILE_LEVEL_ROW, None, f"expected one 业务明细(汇总) summary member, found {summaries}"
        )
    return fmt, encoding, statement_date
