"""BAI2 cash-management balance reports, through the maintained ``bai2`` package (formats.md 4.3).

The package reads the record structure (01 file, 02 group, 03 account with status/summary items,
16 detail with its 88 continuations, 49/98/99 trailers) without its own integrity checks; every check is
made here as a control total, so a disagreement shows the stated and the computed value.

Decisions:

* A "row" is one ``16`` transaction detail (its ``88`` continuations included); ``row_number`` is the
  physical line of the ``16``.
* Amounts are integers in the currency's minor unit (BAI2 writes no decimal point); the currency is the
  account's (``03``), else the group's (``02``), else USD (the BAI2 default). Detail amounts are unsigned:
  the type code gives the sign (credit codes in, debit codes out). ``890`` (non-monetary information) is
  skipped (rule ``bai2_non_monetary``).
* ``txn_id``: the bank reference, else ``<file id>:<group>.<account>.<n>``; ``order_ref``: the customer
  reference; memo: the text (``88`` continuations joined), else the type code's description.
* booked_at: the group's as-of date (midnight, account time zone); value_date: the value date of funds
  type ``V``, else the as-of date.
* Control totals: each ``49`` against its account (Σ status/summary amounts + Σ detail amounts as written,
  and the number of records), each ``98`` against its accounts' ``49`` totals, number of accounts and of
  records, the ``99`` against the groups' ``98`` totals, number of groups and of records; per account,
  opening ledger (010) + details = closing ledger (015), and the summary totals 100 (total credits) and
  400 (total debits) with their item counts; consecutive groups of one account chain (015 -> 010).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import date, datetime
from typing import Any

from bai2 import bai2 as bai2_lib  # type: ignore[import-untyped,unused-ignore]
from bai2.constants import RecordCode, TypeCodeTransaction  # type: ignore[import-untyped,unused-ignore]
from bai2.helpers import IteratorHelper, RecordBuilderFactory  # type: ignore[import-untyped,unused-ignore]
from bai2.models import Record  # type: ignore[import-untyped,unused-ignore]
from bai2.parsers import Bai2FileParser  # type: ignore[import-untyped,unused-ignore]

from recon.domain.statement import TxnStatus
from recon.parsing._common import MAX_AMOUNT_MINOR, Builder, RowFail, check_currency, fatal
from recon.parsing.registry import FormatReader, register

from ._bank import (
    Balance,
    StatementTally,
    UniqueIds,
    bank_txn_type,
    decode_bank_text,
    expose_balances,
    mask,
    midnight,
    record_ends,
    reference,
    tidy,
)

FORMAT = "bai2"
_RECORD = re.compile(rb"^\s*(\d{2}),")
# Where a "/" that ends a record is followed, on the same line, by the next record: some banks pack
# records ("...,2/   02,..."). Only the record codes of BAI2 start a record.
_CODES = "01|02|03|16|49|88|98|99"
_PACKED = re.compile(rf"(?<=/)\s+(?=(?:{_CODES}),)")
_PACKED_BYTES = re.compile(_PACKED.pattern.encode())
_STARTS_RECORD = re.compile(rf"^(?:{_CODES}),")
_FEE_CODES = frozenset({"698", "699"})  # miscellaneous fees, per BAI2's type code list

assert bai2_lib  # the package's entry module; its parser classes are used directly for line tracking


def detect(data: bytes, file: str) -> tuple[str, float] | None:
    head = data[:8192].lstrip(b"\xef\xbb\xbf").lstrip()
    if not head.startswith(b"01,"):
        return None
    records = [r for line in head.splitlines()[:8] for r in _PACKED_BYTES.split(line)]
    codes = {m.group(1) for m in (_RECORD.match(r) for r in records) if m}
    if b"02" in codes and b"03" in codes:
        return FORMAT, 0.95
    return (FORMAT, 0.8) if b"02" in codes else None


class _Lines:
    """The records fed to the package (stripped, one per entry), remembering the physical line each starts on.

    A line may hold several records, each ended by ``/``, when the file is written that way: its first line
    (the ``01`` header, which has no free text) holds more than one record. Elsewhere a ``/`` inside a
    ``16`` text stays text. A line that starts with no record code continues the record before it when that
    record was not ended by ``/`` (a record wrapped by the writer); anywhere else it is refused, naming it.
    """

    def __init__(self, text: str, file: str) -> None:
        self.numbers: list[int] = []
        self.lines: list[str] = []
        packed = False
        for number, raw in enumerate(text.splitlines(), start=1):
            if not raw.strip():
                continue
            if not self.lines:
                packed = _PACKED.search(raw.strip()) is not None
            for record in _PACKED.split(raw.strip()) if packed else [raw.strip()]:
                if _STARTS_RECORD.match(record) or not self.lines:
                    self.numbers.append(number)
                    self.lines.append(record)
                elif not self.lines[-1].endswith("/"):
                    self.lines[-1] = f"{self.lines[-1]} {record}"
                else:
                    raise fatal(
                        file,
                        f"line {number} is not a BAI2 record (it starts with no record code, and the record "
                        "before it is ended by '/')",
                        row=number,
                    )
        self.pulled = 0

    def current(self, helper: Any) -> int:
        """Physical line of the record the package was reading (it looks one line ahead)."""
        rows = getattr(getattr(helper, "current_record", None), "rows", None) or [None]
        ahead = 0 if self.pulled == len(self.lines) and self._ends_with(rows) else 1
        start = max(self.pulled - ahead - len(rows), 0)
        return self.numbers[min(start, len(self.numbers) - 1)]

    def _ends_with(self, rows: list[Any]) -> bool:
        last = rows[-1]
        return isinstance(last, tuple) and len(last) == 2 and self.lines[-1][3:] == last[1]

    def __iter__(self) -> Iterator[str]:
        for line in self.lines:
            self.pulled += 1
            yield line


# Availability fields that follow a funds type in an 03 summary (BAI2 funds types S, V and D).
_AVAILABILITY = {"S": 3, "V": 2}


def _account_record(rows: list[tuple[Any, str]]) -> Any:
    """An 03 record with its 88 continuations, as the package's ``Record``.

    The package joins continuations by counting commas (a multiple of 4 per summary), which breaks when a
    summary carries availability fields (funds type S/V/D) or a record is continued between two fields of
    one summary (BAI2's own sample: ``...,190/`` then ``88,500000,...``); it then glues two fields into one
    type code. Here the fields are read in order: the ``/`` that ends a record also ends a field, and an
    empty field right before a ``/`` where a type code is due is the writer's trailing comma, not a field.
    """
    tokens: list[str] = []
    row_ends: set[int] = set()
    for _, text in rows:
        body = text[:-1] if text.endswith("/") else text
        tokens.extend(body.split(","))
        row_ends.add(len(tokens) - 1)
    fields = tokens[:2]
    i = 2
    while i < len(tokens):
        if tokens[i] == "" and i in row_ends:
            i += 1
            continue
        summary = tokens[i : i + 4]
        fields.extend(summary)
        i += len(summary)
        funds = summary[3].strip().upper() if len(summary) == 4 else ""
        extra = _AVAILABILITY.get(funds, 0)
        if funds == "D":
            count = tokens[i].strip() if i < len(tokens) else ""
            extra = 1 + 2 * int(count) if count.isdigit() else 1
        fields.extend(_zero_defaults(funds, tokens[i : i + extra]))
        i += extra
    return Record(code=rows[0][0], fields=fields, rows=rows)


def _zero_defaults(funds: str, availability: list[str]) -> list[str]:
    """Availability amounts left empty are zero (BAI2's own sample writes ``S,,200000,300000``)."""
    if funds == "S":
        return [a.strip() or "0" for a in availability]
    if funds == "D":  # count, then (days, amount) pairs
        return [a.strip() or "0" if k and k % 2 == 0 else a for k, a in enumerate(availability)]
    return availability


def _record_groups(lines: Iterator[str]) -> Iterator[Any]:
    """The package's record generator (a record with its 88 continuations), with ``_account_record``."""
    group: list[tuple[Any, str]] = []
    for line in lines:
        row = (RecordCode(line[:2]), line[3:])
        if group and row[0] != RecordCode.continuation:
            yield _build(group)
            group = []
        group.append(row)
    if group:
        yield _build(group)


def _build(rows: list[tuple[Any, str]]) -> Any:
    if rows[0][0] == RecordCode.account_identifier:
        return _account_record(rows)
    record = RecordBuilderFactory[rows[0][0]](rows)
    if rows[0][0] == RecordCode.transaction_detail and len(record.fields) > 3:
        funds = record.fields[2].strip().upper()
        head = 4 + 2 * int(record.fields[3]) if funds == "D" and record.fields[3].strip().isdigit() else 6
        record.fields[3:head] = _zero_defaults(funds, record.fields[3:head])
    return record


class _Records(IteratorHelper):  # type: ignore[misc,unused-ignore]
    """The package's record iterator over ``_record_groups``."""

    def __init__(self, lines: Iterator[str]) -> None:
        self._generator = _record_groups(lines)
        self.current_record = None
        self.advance()


def _code(item: Any) -> str:
    return str(getattr(item.type_code, "code", "") or "")


def _records(section: Any) -> int:
    """Physical records of a section (header, children, trailer), 88 continuations included."""
    rows = len(section.header.rows) + len(section.trailer.rows)
    for child in section.children:
        rows += _records(child) if hasattr(child, "header") else len(child.rows)
    return rows


def _when(day: Any, tz: Any) -> datetime | None:
    return midnight(day, tz) if isinstance(day, date) else None


def parse(data: bytes, b: Builder, file: str, raw_key: str) -> tuple[str, str, date | None]:
    """Parse a BAI2 file into ``b``; returns (format, encoding, statement date)."""
    text, encoding = decode_bank_text(data)
    lines = _Lines(text, file)
    if not lines.lines:
        raise fatal(file, "empty BAI2 file")
    if not lines.lines[-1].startswith("99,"):
        # Also a guard: the package loops forever on a file that ends inside an account.
        raise fatal(file, "BAI2 file does not end with a 99 file trailer (truncated?)", row=lines.numbers[-1])
    helper = None
    try:
        helper = _Records(iter(lines))
        parsed = Bai2FileParser(helper, check_integrity=False).parse()
    except Exception as exc:  # the package raises many kinds on a malformed record: the file is unreadable
        raise fatal(
            file, f"BAI2 structure cannot be read: {type(exc).__name__}: {exc}", row=lines.current(helper)
        ) from exc
    tz = b.ctx.tz
    file_id = tidy(str(getattr(parsed.header, "file_id", "") or "")) or "BAI2"
    position = len(parsed.header.rows)  # index into lines.numbers of the next record
    ids = UniqueIds()
    statement_date: date | None = None
    previous: dict[str, StatementTally] = {}
    ends: dict[str, tuple[Balance, Balance]] = {}
    group_totals: list[int] = []
    for g, group in enumerate(parsed.children, start=1):
        g_line = lines.numbers[position]
        position += len(group.header.rows)
        as_of = group.header.as_of_date if isinstance(group.header.as_of_date, date) else None
        statement_date = as_of or statement_date
        try:
            group_ccy = check_currency(str(group.header.currency or ""), "USD", f"02[{g}] currency")
        except RowFail as exc:
            b.fail(file, g_line, exc.column, exc.reason)
            group_ccy = "USD"
        account_totals: list[int] = []
        for a, account in enumerate(group.children, start=1):
            a_line = lines.numbers[position]
            position += len(account.header.rows)
            number = tidy(str(account.header.customer_account_number or ""))
            label = f"02[{g}]/03[{a}] {mask(number)}"
            try:
                ccy = check_currency(str(account.header.currency or ""), group_ccy, f"{label} currency")
            except RowFail as exc:
                b.fail(file, a_line, exc.column, exc.reason)
                ccy = group_ccy
            acct = StatementTally(label, ccy)
            summaries = {_code(s): s for s in account.header.summary_items}
            if "010" in summaries and summaries["010"].amount is not None:
                acct.opening = Balance(int(summaries["010"].amount), ccy, as_of)
            if "015" in summaries and summaries["015"].amount is not None:
                acct.closing = Balance(int(summaries["015"].amount), ccy, as_of)
            written = sum(int(s.amount or 0) for s in account.header.summary_items)
            for n, detail in enumerate(account.children, start=1):
                row = lines.numbers[position]
                position += len(detail.rows)
                written += int(detail.amount or 0)
                _detail(
                    b,
                    detail,
                    acct=acct,
                    as_of=as_of,
                    fallback_id=f"{file_id}:{g}.{a}.{n}",
                    ids=ids,
                    file=file,
                    row=row,
                    raw_key=raw_key,
                    tz=tz,
                )
            t_line = lines.numbers[position]
            position += len(account.trailer.rows)
            _account_totals(b, acct, account, summaries, written, file=file, row=t_line)
            acct.check_follows(b, previous.get(number), file=file, column=f"{label} 010", row=a_line)
            record_ends(ends, number, acct.opening, acct.closing)
            previous[number] = acct
            account_totals.append(int(account.trailer.account_control_total or 0))
        trailer_line = lines.numbers[position]
        position += len(group.trailer.rows)
        trailer = group.trailer
        where = f"98[{g}]"
        b.total(
            f"{where} group control total",
            str(trailer.group_control_total),
            str(sum(account_totals)),
            file=file,
            row=trailer_line,
            column=f"{where} control total",
        )
        b.count_total(
            f"{where} number of accounts",
            str(trailer.number_of_accounts),
            len(group.children),
            file=file,
            row=trailer_line,
            column=f"{where} number of accounts",
        )
        b.count_total(
            f"{where} number of records",
            str(trailer.number_of_records),
            _records(group),
            file=file,
            row=trailer_line,
            column=f"{where} number of records",
        )
        group_totals.append(int(trailer.group_control_total or 0))
    end = parsed.trailer
    end_line = lines.numbers[min(position, len(lines.numbers) - 1)]
    b.total(
        "99 file control total",
        str(end.file_control_total),
        str(sum(group_totals)),
        file=file,
        row=end_line,
        column="99 control total",
    )
    b.count_total(
        "99 number of groups",
        str(end.number_of_groups),
        len(parsed.children),
        file=file,
        row=end_line,
        column="99 number of groups",
    )
    b.count_total(
        "99 number of records",
        str(end.number_of_records),
        _records(parsed),
        file=file,
        row=end_line,
        column="99 number of records",
    )
    expose_balances(b, ends, file=file)
    return FORMAT, encoding, statement_date


def _detail(
    b: Builder,
    detail: Any,
    *,
    acct: StatementTally,
    as_of: date | None,
    fallback_id: str,
    ids: UniqueIds,
    file: str,
    row: int,
    raw_key: str,
    tz: Any,
) -> None:
    code = _code(detail)
    direction = getattr(detail.type_code, "transaction", None)
    if direction is TypeCodeTransaction.misc:
        b.skip("bai2_non_monetary")
        return
    try:
        if direction not in (TypeCodeTransaction.credit, TypeCodeTransaction.debit):
            raise RowFail("type code", f"type code {code} is not a credit or debit detail")
        if detail.amount is None:
            raise RowFail("amount", "amount is empty")
        amount = int(detail.amount)
        if amount < 0:
            raise RowFail("amount", "BAI2 detail amounts are unsigned (the type code gives the sign)")
        if amount >= MAX_AMOUNT_MINOR:
            raise RowFail("amount", f"amount out of range: {amount}")
        booked_at = _when(as_of, tz)
        if booked_at is None:
            raise RowFail("as-of date", "the group header has no as-of date")
    except RowFail as exc:
        b.reject(file, row, exc.column, exc.reason)
        return
    minor = amount if direction is TypeCodeTransaction.credit else -amount
    availability = detail.availability if isinstance(detail.availability, dict) else {}
    value_day = availability.get("date") if isinstance(availability.get("date"), date) else as_of
    memo = tidy(detail.text) or tidy(getattr(detail.type_code, "description", ""))
    if b.add(
        file=file,
        row=row,
        raw_key=raw_key,
        txn_id=reference(detail.bank_reference) or ids(fallback_id),
        order_ref=reference(detail.customer_reference),
        amount_minor=minor,
        fee_minor=0,
        currency=acct.currency,
        booked_at=booked_at,
        value_date=value_day,
        txn_type=bank_txn_type(minor, reversal=False, text=memo, fee_code=code in _FEE_CODES),
        status=TxnStatus.SUCCESS,
        counterparty=None,
        memo=memo,
    ):
        acct.add(acct.currency, minor)


def _account_totals(
    b: Builder,
    acct: StatementTally,
    account: Any,
    summaries: dict[str, Any],
    written: int,
    *,
    file: str,
    row: int,
) -> None:
    trailer = account.trailer
    b.total(
        f"{acct.label} 49 account control total",
        str(trailer.account_control_total),
        str(written),
        file=file,
        row=row,
        column="49 control total",
    )
    b.count_total(
        f"{acct.label} 49 number of records",
        str(trailer.number_of_records),
        _records(account),
        file=file,
        row=row,
        column="49 number of records",
    )
    acct.check_balance(b, file=file, column=f"{acct.label} 015", row=row)
    for code, name, count, total in (
        ("100", "total credits", acct.credits, acct.credit_sum),
        ("400", "total debits", acct.debits, acct.debit_sum),
    ):
        summary = summaries.get(code)
        if summary is None or summary.amount is None:
            continue
        b.total(
            f"{acct.label} {code} {name}",
            Balance(int(summary.amount), acct.currency, None).text(),
            Balance(total, acct.currency, None).text(),
            file=file,
            row=row,
            column=f"03 {code}",
        )
        if summary.item_count is not None:
            b.count_total(
                f"{acct.label} {code} {name} item count",
                str(summary.item_count),
                count,
                file=file,
                row=row,
                column=f"03 {code} item count",
            )


register(FormatReader(FORMAT, detect, parse, "BAI2 balance and transaction reports (bai2 package)"))
