"""ERP order export CSV (our documented layout).

Header: ``order_no,refund_no,type,channel,amount,currency,created_at,paid_at,status,customer,memo``
(mapped by name; column order and extra columns tolerated). UTF-8 with or without BOM, or GBK.

* txn_id = order_no; refunds ``order_no#refund_no``; order_ref = order_no; refund_ref = refund_no.
* amount as written, signed: payments >= 0, refunds <= 0 (a sign against the type rejects the row).
* fee 0; booked_at = paid_at, else created_at.
* ``channel`` is not kept: Transaction has no channel field, and mixing it into memo would pollute the
  customer's text (see the package report).
* Duplicated rows are all kept (the matcher reports duplicates).
"""

from __future__ import annotations

from recon.domain.statement import TxnStatus, TxnType

from ._common import Builder, Row, RowFail, check_currency, map_columns, records
from .layouts import ERP_LAYOUT

_TYPES = {"payment": TxnType.PAYMENT, "refund": TxnType.REFUND}
_STATUS = {
    "paid": TxnStatus.SUCCESS,
    "refunded": TxnStatus.SUCCESS,
    "closed": TxnStatus.CLOSED,
    "pending": TxnStatus.PENDING,
}


def _row(row: Row, b: Builder, file: str, line: int, raw_key: str) -> None:
    ctx = b.ctx
    order_no = row.require("order_no")
    kind = row.get("type").lower()
    if kind not in _TYPES:
        raise RowFail(row.column("type"), f"type must be payment or refund, got {row.get('type')!r}")
    status = row.get("status").lower()
    if status not in _STATUS:
        raise RowFail(
            row.column("status"), f"status must be one of {', '.join(_STATUS)}, got {row.get('status')!r}"
        )
    currency = check_currency(row.get("currency"), ctx.currency, row.column("currency"))
    amount = row.amount("amount", currency)
    refund_no = row.get("refund_no")
    txn_id = order_no
    if kind == "refund":
        if not refund_no:
            raise RowFail(row.column("refund_no"), "refund row without refund_no")
        if amount > 0:
            raise RowFail(row.column("amount"), "refund amount must be negative")
        txn_id = f"{order_no}#{refund_no}"
    elif amount < 0:
        raise RowFail(row.column("amount"), "payment amount must not be negative")
    booked_at = row.time("paid_at" if row.get("paid_at") else "created_at", ctx.tz)
    b.add(
        file=file,
        row=line,
        raw_key=raw_key,
        txn_id=txn_id,
        order_ref=order_no,
        refund_ref=refund_no or None,
        amount_minor=amount,
        fee_minor=0,
        currency=currency,
        booked_at=booked_at,
        value_date=None,
        txn_type=_TYPES[kind],
        status=_STATUS[status],
        counterparty=row.get("customer"),
        memo=row.get("memo"),
    )


def parse(text: str, b: Builder, *, file: str, raw_key: str) -> str:
    header: list[str] | None = None
    columns: dict[str, tuple[str, int]] = {}
    for rec in records(text):
        if rec.blank or rec.fields is None:
            b.skip("blank")
            continue
        if header is None:
            b.skip("header")
            header = [h.strip().lstrip("\ufeff") for h in rec.fields]
            if not ERP_LAYOUT.matches(header):
                missing = [h for h in ERP_LAYOUT.signature if h not in header]
                b.fail(file, rec.line, ", ".join(missing), "not the ERP order export header: columns missing")
                return ERP_LAYOUT.format
            columns = map_columns(header, ERP_LAYOUT.fields)
            continue
        if len(rec.fields) != len(header):
            b.reject(file, rec.line, None, f"expected {len(header)} fields, got {len(rec.fields)}")
            continue
        try:
            _row(Row(rec.fields, columns), b, file, rec.line, raw_key)
        except RowFail as exc:
            b.reject(file, rec.line, exc.column, exc.reason)
    if header is None:
        b.fail(file, 1, None, "empty file: no ERP order export header")
    return ERP_LAYOUT.format
