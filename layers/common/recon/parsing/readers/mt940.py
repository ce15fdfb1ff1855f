"""SWIFT MT940 customer statements and MT942 interim reports, through the maintained ``mt-940`` package
(formats.md 4.1).

The file is first cut into messages and fields here, so that every row keeps its physical line and a bad
line rejects only itself; ``mt940`` then reads each message's statement fields and each entry (``:61:``
with its ``:86:``) on its own.

Decisions:

* A "row" is one ``:61:`` statement line; ``row_number`` is its physical line in the file.
* Messages: a new message starts at each ``:20:``. Envelope lines (``{1:…}{2:…}{4:``, ``-}``, ``-``,
  ``-XXX``, bank headers such as ``ABNANL2A``/``940``) are not data. A ``-`` line followed by more fields
  of the same message is content of the field it interrupts (hard-wrapped files), not a terminator.
* Hard wrapping (OCA ING sample): when a single-line field (``:20:``, ``:25:``, ``:28C:``, balances, …)
  continues on the next line, the message is hard-wrapped: every field's lines are joined without a
  separator, and a ``:61:``'s supplementary details start after its ``//bank reference`` (at most 16
  characters, up to the next ``/``).
* ASN Bank (``ASNBNL21``) puts an IBAN (34x) in the customer reference: its ``:61:`` is read with the
  package's ``StatementASNB`` pattern.
* Signs: ``C``/``RD`` in, ``D``/``RC`` out (``mt940.Options.all()``); ``RC``/``RD`` are reversals
  (txn_type ``adjustment``). Amounts use the decimal comma and are converted exactly to minor units of the
  statement currency (from the balances; the account's configured currency when the message has none).
* ``txn_id``: the bank reference (``//…``), else ``<:20:>/<:28C:>:<n>`` (n-th entry of that message); a
  repeated id gets ``#<k>``. ``order_ref``: ``/EREF/`` or ``EREF+`` end-to-end id, else the customer
  reference (not ``NONREF``). Counterparty: ``/CNTP/`` or ``/NAME/`` name, or the German ``?32/?33``
  name. Memo: ``/REMI/`` or the ``?2x`` purpose, else the whole ``:86:`` text.
* booked_at: the entry date (else value date) at midnight in the account's time zone; value_date: the
  value date.
* Control totals per message: opening (``:60F:``/``:60M:``) + entries = closing (``:62F:``/``:62M:``);
  MT942 ``:90D:``/``:90C:`` number and sum of debit/credit entries; each message's opening equals the
  previous message's closing of the same account (the break names both). ``opening``/``closing`` totals
  expose the file's first and last balance per account (see ``_bank``).
* Every message needs ``:20:`` and ``:25:``; an MT940 message (one without the MT942 fields ``:13D:``,
  ``:34F:``, ``:90D:``/``:90C:``) also needs both balances, else its entries would go unchecked.
* ``:86:`` fields after a closing balance are statement information (ING ``/SUM/``), not entry details.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from typing import Any

import mt940
import mt940.tags

from recon.domain.statement import TxnStatus
from recon.money import MoneyError, to_minor
from recon.parsing._common import MAX_AMOUNT_MINOR, Builder, RowFail, check_currency, fatal
from recon.parsing.registry import FormatReader, register

from ._bank import (
    Balance,
    StatementTally,
    UniqueIds,
    bank_txn_type,
    decode_bank_text,
    expose_balances,
    midnight,
    record_ends,
    reference,
    tidy,
)

# mt940 logs a failed tag with the raw field content (account numbers included): keep it out of our logs.
_LIB_LOG = logging.getLogger("mt940")
_LIB_LOG.addHandler(logging.NullHandler())
_LIB_LOG.propagate = False

FORMAT_940 = "mt940"
FORMAT_942 = "mt940.942"

_TAG_LINE = re.compile(r"^:(?P<tag>\d{2}[A-Z]?|NS):(?P<value>.*)$")
_TERMINATOR = re.compile(r"^-(?:\}.*|XXX)?$")
_ENVELOPE = re.compile(r"^\{[1-5]:")
_TRANSMISSION = "\x00\x01\x02\x03\x04"  # SOH/STX/ETX/EOT framing some banks leave around messages
_SINGLE_LINE = frozenset(
    {"20", "21", "25", "28", "28C", "60F", "60M", "62F", "62M", "64", "65", "13D", "34F", "90D", "90C"}
)
_INTERIM_TAGS = frozenset({"13D", "34F", "90D", "90C"})  # MT942: no balances, entry sums instead
_CLOSING_TAGS = frozenset({"62F", "62M", "62"})
_BANK_REF_SPLIT = re.compile(r"^(.*?//[^/\n]{1,16})(/.*)$", re.DOTALL)
_DETECT_TAG = re.compile(rb"(?m)^:(20|25|28C?|60[FM]|61|62[FM]|13D|34F|90[DC]):")
_ASN = re.compile(r"ASNBNL2")
_EREF = re.compile(r"/EREF/(?P<v>.*?)(?=//|/[A-Z]{2,4}/|$)")
_EREF_SEPA = re.compile(r"EREF\+(?P<v>[^?\s]+)")
_CNTP = re.compile(r"/CNTP/[^/]*/[^/]*/(?P<v>[^/]*)/")
_NAME = re.compile(r"/NAME/(?P<v>[^/]*)")
_REMI = re.compile(r"/REMI/(?:USTD//|STRD/[A-Z]*/)?(?P<v>.*?)(?=//|/[A-Z]{4}/|$)")
_REF_CODEWORDS = frozenset({"EREF", "PREF", "MARF", "KREF", "MREF", "NONREF"})
_FEE_TYPES = frozenset({"NCHG", "NCOM", "FCHG", "FCOM", "NFEE"})


@dataclass
class _Field:
    tag: str
    line: int  # physical line of the tag
    lines: list[str] = field(default_factory=list)

    def value(self, hard_wrapped: bool) -> str:
        if len(self.lines) == 1:
            return self.lines[0]
        if hard_wrapped or self.tag in _SINGLE_LINE:
            joined = "".join(self.lines)
            if self.tag == "61":
                split = _BANK_REF_SPLIT.match(joined)
                if split:
                    return f"{split.group(1)}\n{split.group(2)}"
            return joined
        if self.tag == "61":  # statement line + supplementary details (one line for mt940)
            return f"{self.lines[0]}\n{' '.join(s.strip() for s in self.lines[1:])}"
        return "\n".join(self.lines)


@dataclass
class _Message:
    fields: list[_Field] = field(default_factory=list)

    @property
    def hard_wrapped(self) -> bool:
        return any(f.tag in _SINGLE_LINE and len(f.lines) > 1 for f in self.fields)


def _messages(text: str) -> list[_Message]:
    """Cut the text into messages of fields with their physical lines (see module doc)."""
    messages: list[_Message] = []
    current: _Field | None = None
    held: list[str] = []  # a terminator/envelope line and what followed it, until the next tag decides
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.lstrip(_TRANSMISSION).rstrip().rstrip(_TRANSMISSION)
        found = _TAG_LINE.match(line)
        if found:
            tag = found.group("tag")
            if tag == "20" or not messages:
                messages.append(_Message())
            elif held and current is not None:  # the "terminator" was content of a wrapped field
                current.lines.extend(held)
            held = []
            current = _Field(tag, number, [found.group("value")])
            messages[-1].fields.append(current)
        elif not line.strip() or current is None:
            continue  # blank lines; anything before the first field is envelope
        elif held or _TERMINATOR.match(line) or _ENVELOPE.match(line):
            held.append(line)
        else:
            current.lines.append(line)
    return messages


def detect(data: bytes, file: str) -> tuple[str, float] | None:
    head = data[:65536]
    tags = {m.group(1).decode("ascii") for m in _DETECT_TAG.finditer(head.replace(b"\r\n", b"\n"))}
    if "20" not in tags or "25" not in tags:
        return None
    if tags & {"60F", "60M", "62F", "62M"}:
        return FORMAT_940, 0.95
    if tags & {"13D", "34F", "90D", "90C", "61"}:
        return FORMAT_942 if tags & {"13D", "34F"} else FORMAT_940, 0.9
    return None


def _library(asn: bool) -> Any:
    tags: dict[int | str, mt940.tags.Tag] | None = {61: mt940.tags.StatementASNB()} if asn else None
    return mt940.models.Transactions(tags=tags, options=mt940.Options.all())


def _error(exc: Exception) -> str:
    if isinstance(exc, RuntimeError) and exc.args and isinstance(exc.args[0], str):
        return exc.args[0].split(" from ", 1)[0].replace("<mt940.tags.", "<").split(" object at ")[0] + ">"
    return f"{type(exc).__name__}: {exc}"


def _balance(obj: Any) -> Balance | None:
    """An mt940 Balance as exact minor units (None when absent); raises RowFail when not exact."""
    if obj is None:
        return None
    amount = obj.amount
    currency = check_currency(str(amount.currency or ""), "", "currency")
    if not currency:
        raise RowFail("currency", "balance without a currency")
    return Balance(_minor(amount.amount, currency), currency, _as_date(getattr(obj, "date", None)))


def _minor(value: Decimal, currency: str) -> int:
    try:
        minor = to_minor(value, currency)
    except MoneyError as exc:
        raise RowFail("amount", str(exc)) from exc
    if abs(minor) >= MAX_AMOUNT_MINOR:
        raise RowFail("amount", f"amount out of range: {value}")
    return minor


def _as_date(value: Any) -> date | None:
    return date(value.year, value.month, value.day) if isinstance(value, date) else None


def _first(text: str, *patterns: re.Pattern[str]) -> str:
    for pattern in patterns:
        found = pattern.search(text)
        value = reference(found.group("v").rstrip("/")) if found else ""
        if value:
            return value
    return ""


def _customer_reference(value: object) -> str:
    """The :61: customer reference, unless it is a codeword saying which :86: field holds it (ING, Rabo)."""
    text = reference(str(value or ""))
    return "" if text.upper() in _REF_CODEWORDS else text


def _statement_fields(
    b: Builder, message: _Message, lib: Any, *, file: str, wrapped: bool
) -> tuple[list[_Field], bool]:
    """Feed the statement-level fields to ``lib`` one by one; returns the entry fields and success."""
    entries: list[_Field] = []
    ok = True
    closed = False
    for f in message.fields:
        if f.tag == "61" or (f.tag in ("86", "NS") and entries and not closed):
            entries.append(f)
            continue
        if f.tag == "86":
            continue  # before the first entry or after the closing balance: statement information
        closed = closed or f.tag in _CLOSING_TAGS
        try:
            lib.parse(f":{f.tag}:{f.value(wrapped)}")
        except Exception as exc:  # the package raises many kinds; a bad statement field is a file error
            b.fail(file, f.line, f":{f.tag}:", f"field :{f.tag}: cannot be read: {_error(exc)}")
            ok = False
    return entries, ok


def _entry_groups(fields: list[_Field]) -> list[list[_Field]]:
    groups: list[list[_Field]] = []
    for f in fields:
        if f.tag == "61":
            groups.append([f])
        elif groups:
            groups[-1].append(f)
    return groups


def _entry(
    b: Builder,
    group: list[_Field],
    *,
    head: dict[str, Any],
    asn: bool,
    wrapped: bool,
    stmt: StatementTally,
    fallback_id: str,
    ids: UniqueIds,
    file: str,
    raw_key: str,
) -> None:
    """One ``:61:`` with its ``:86:``/``:NS:`` fields: a transaction, or a rejected row."""
    row = group[0].line
    lib = _library(asn)
    lib.data.update(head)  # the statement's balances give the entry its currency
    try:
        lib.parse("\n".join(f":{f.tag}:{f.value(wrapped)}" for f in group))
        if len(lib) != 1:
            raise RowFail(":61:", f"statement line read as {len(lib)} entries")
        data: dict[str, Any] = lib[0].data
        amount = data["amount"]
        currency = check_currency(str(amount.currency or ""), stmt.currency, ":61:")
        if currency != stmt.currency:
            raise RowFail(":61:", f"entry currency {currency} differs from the statement's {stmt.currency}")
        minor = _minor(amount.amount, currency)
        value_day = _as_date(data.get("date"))
        if value_day is None:
            raise RowFail(":61:", "statement line without a value date")
        booked_day = _as_date(data.get("entry_date")) or value_day
    except RowFail as exc:
        b.reject(file, row, exc.column, exc.reason)
        return
    except Exception as exc:  # the package raises many kinds on a malformed line: reject the row
        b.reject(file, row, ":61:", f"statement line cannot be read: {_error(exc)}")
        return
    lines = [line for f in group if f.tag == "86" for line in f.lines]
    structured = bool(lines) and lines[0].lstrip().startswith("/")
    # Structured :86: (/EREF/…/REMI/…) is cut at 65 characters anywhere: its lines join without a gap.
    flat = "".join(lines) if (wrapped or structured) else tidy(" ".join(lines))
    status = str(data.get("status") or "").upper()
    # ASN's customer reference is the counterparty's IBAN and its supplementary details the name.
    order_ref = (
        reference(data.get("end_to_end_reference"))
        or _first(flat, _EREF, _EREF_SEPA)
        or ("" if asn else _customer_reference(data.get("customer_reference")))
    )
    counterparty = (
        _first(flat, _CNTP, _NAME)
        or tidy(data.get("applicant_name"))
        or (tidy(data.get("extra_details")) if asn else "")
    )
    memo = _first(flat, _REMI) or tidy(data.get("purpose")) or tidy(flat) or tidy(data.get("extra_details"))
    kind = str(data.get("id") or "").upper()
    bank_ref = reference(data.get("bank_reference"))
    if b.add(
        file=file,
        row=row,
        raw_key=raw_key,
        txn_id=bank_ref or ids(fallback_id),
        order_ref=order_ref,
        amount_minor=minor,
        fee_minor=0,
        currency=currency,
        booked_at=midnight(booked_day, b.ctx.tz),
        value_date=value_day,
        txn_type=bank_txn_type(
            minor, reversal=status.startswith("R"), text=f"{counterparty} {memo}", fee_code=kind in _FEE_TYPES
        ),
        status=TxnStatus.SUCCESS,
        counterparty=counterparty,
        memo=memo,
    ):
        stmt.add(currency, minor)


def _message_totals(
    b: Builder,
    stmt: StatementTally,
    head: dict[str, Any],
    previous: StatementTally | None,
    *,
    file: str,
    message: _Message,
) -> None:
    row = message.fields[0].line
    column = f"{stmt.label} :62:"
    closing_line = next((f.line for f in message.fields if f.tag in _CLOSING_TAGS), row)
    opening_line = next((f.line for f in message.fields if f.tag.startswith("60")), row)
    stmt.check_balance(b, file=file, column=column, row=closing_line)
    stmt.check_follows(b, previous, file=file, column=f"{stmt.label} :60:", row=opening_line)
    for key, tag, count, total in (
        ("sum_debit_entries", "90D", stmt.debits, stmt.debit_sum),
        ("sum_credit_entries", "90C", stmt.credits, stmt.credit_sum),
    ):
        stated = head.get(key)
        if stated is None:
            continue
        try:
            stated_minor = abs(_minor(stated.amount, stmt.currency))
        except RowFail as exc:
            b.fail(file, row, f":{tag}:", exc.reason)
            continue
        b.count_total(
            f"{stmt.label}.:{tag}: number", str(stated.number), count, file=file, row=row, column=f":{tag}:"
        )
        b.total(
            f"{stmt.label}.:{tag}: sum",
            Balance(stated_minor, stmt.currency, None).text(),
            Balance(total, stmt.currency, None).text(),
            file=file,
            row=row,
            column=f":{tag}:",
        )


def parse(data: bytes, b: Builder, file: str, raw_key: str) -> tuple[str, str, date | None]:
    """Parse an MT940/MT942 file into ``b``; returns (format, encoding, statement date)."""
    text, encoding = decode_bank_text(data)
    messages = [m for m in _messages(text) if m.fields]
    if not messages:
        raise fatal(file, "no MT940/MT942 fields (:20:, :25:, :61:, ...) found")
    asn = bool(_ASN.search(text[:4096]))
    ids = UniqueIds()
    is_942 = False
    statement_date: date | None = None
    previous: dict[str, StatementTally] = {}
    ends: dict[str, tuple[Balance, Balance]] = {}
    for k, message in enumerate(messages, start=1):
        wrapped = message.hard_wrapped
        lib = _library(asn)
        entry_fields, ok = _statement_fields(b, message, lib, file=file, wrapped=wrapped)
        head: dict[str, Any] = dict(lib.data)
        ref20 = tidy(str(head.get("transaction_reference") or ""))
        number = "/".join(
            str(v) for v in (head.get("statement_number"), head.get("sequence_number")) if v is not None
        )
        label = f"Stmt[{k}]" + (f" {number}" if number else "")
        account = tidy(str(head.get("account_identification") or ""))
        first_line = message.fields[0].line
        try:
            opening = _balance(
                head.get("final_opening_balance")
                or head.get("intermediate_opening_balance")
                or head.get("opening_balance")
            )
            closing = _balance(
                head.get("final_closing_balance")
                or head.get("intermediate_closing_balance")
                or head.get("closing_balance")
            )
            known = opening or closing
            currency = known.currency if known else check_currency(str(lib.currency or ""), "", "currency")
        except RowFail as exc:
            b.fail(file, first_line, f"{label} {exc.column}", exc.reason)
            opening = closing = None
            currency = ""
            ok = False
        interim = opening is None and closing is None and _INTERIM_TAGS & {f.tag for f in message.fields}
        is_942 = is_942 or bool(interim)
        missing = [tag for tag in ("20", "25") if not any(f.tag == tag for f in message.fields)]
        if not interim and ok:
            missing += [
                name for name, bal in ((":60F:/:60M:", opening), (":62F:/:62M:", closing)) if bal is None
            ]
        if missing:
            # Mandatory fields: without both balances the entries of this message would go unchecked.
            b.fail(file, first_line, label, f"{label} lacks {', '.join(missing)}")
            ok = False
        stmt = StatementTally(label, currency or b.ctx.currency, opening, closing)
        for n, group in enumerate(_entry_groups(entry_fields), start=1):
            _entry(
                b,
                group,
                head=head,
                asn=asn,
                wrapped=wrapped,
                stmt=stmt,
                fallback_id=f"{ref20 or 'MT940'}/{number or k}:{n}",
                ids=ids,
                file=file,
                raw_key=raw_key,
            )
        if ok:
            _message_totals(b, stmt, head, previous.get(account), file=file, message=message)
        record_ends(ends, account, opening, closing)
        previous[account] = stmt
        statement_date = (closing.day if closing else None) or _as_date(head.get("date")) or statement_date
    expose_balances(b, ends, file=file)
    return (FORMAT_942 if is_942 else FORMAT_940), encoding, statement_date


register(
    FormatReader(
        FORMAT_940,
        detect,
        parse,
        "SWIFT MT940 statements and MT942 interim reports (mt-940 package)",
    )
)
