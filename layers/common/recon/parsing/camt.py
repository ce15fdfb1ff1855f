"""ISO 20022 camt.053 bank-to-customer statements, versions 001.02 to 001.08 (formats.md 4.2).

Elements are matched on local names (namespaces ignored), with the standard library's ElementTree.
Documents with a DTD are refused (no entity expansion).

Decisions:

* A "row" of a camt file is one entry: each ``Ntry``, or each ``TxDtls`` of an ``Ntry`` that is split.
  ``row_number`` is the 1-based ordinal of that row in the file (all statements, document order).
* An ``Ntry`` with several ``TxDtls`` that all carry an amount in the entry's currency (``Amt``, else
  ``AmtDtls/TxAmt``, else ``AmtDtls/CntrValAmt``) is split into one transaction per ``TxDtls``: txn_id
  ``<entry id>`` for the first, ``<entry id>#<n>`` for the n-th (n >= 2); the split amounts must add up to
  the entry amount (a control total). Otherwise one transaction per ``Ntry``.
* Entry id: ``Ntry/AcctSvcrRef``, else ``NtryRef``, else the first ``TxDtls/Refs`` ``AcctSvcrRef``,
  ``EndToEndId`` (not NOTPROVIDED), ``TxId``, ``InstrId``; else ``<Stmt/Id>:<entry ordinal in Stmt>``.
* Sign: ``CdtDbtInd`` (DBIT negative). ``RvslInd=true`` does NOT flip it: per ISO 20022 usage the
  indicator of a reversal entry already states the direction of the booking (a reversed debit is
  reported CRDT). Reversal entries get txn_type ``adjustment``. The balance check below would expose a
  bank that reads it the other way.
* Status: BOOK -> success, PDNG -> pending; INFO entries (not booked) are skipped (rule ``info_entry``).
* Control totals per statement: opening (OPBD, else PRCD) + booked entries = closing (CLBD), and
  ``TxsSummry`` counts/sums when present.
* Balances for chaining files (``readers/_bank.py``): per account (``Acct/Id/IBAN``, else ``Othr/Id``), the
  first statement's opening and the last statement's closing balance, dated by their ``Bal/Dt``, as the
  totals ``opening`` and ``closing`` (``opening[****1234]`` ... when the file holds several accounts).
"""

from __future__ import annotations

import io
import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from datetime import date, datetime, time
from typing import Protocol
from zoneinfo import ZoneInfo

from recon.domain.statement import TxnStatus, TxnType

from ._common import (
    FILE_LEVEL_ROW,
    Builder,
    Context,
    RowFail,
    check_currency,
    fatal,
    fmt_amount,
    parse_amount,
    parse_datetime,
)
from .model import ParsedStatement
from .readers._bank import _CHANNEL, _FEE_MEMO, Balance, expose_balances, record_ends

_NS_VERSION = re.compile(r"camt\.053\.001\.(\d{2})")
_DTD = re.compile(rb"<!\s*(DOCTYPE|ENTITY)", re.IGNORECASE)
_XML_ENCODING = re.compile(rb"""^\s*<\?xml[^>]*encoding\s*=\s*["']([A-Za-z0-9._-]+)["']""")
_FEE_CODES = {"CHRG", "COMM", "FEES", "FEE"}
_STATUS = {"BOOK": TxnStatus.SUCCESS, "PDNG": TxnStatus.PENDING, "": TxnStatus.SUCCESS}


_LOCAL_NAMES: dict[str, str] = {}


def local(tag: object) -> str:
    """Local name of an element tag (namespace dropped); memoised: a statement repeats few tags."""
    if not isinstance(tag, str):
        return ""
    name = _LOCAL_NAMES.get(tag)
    if name is None:
        name = _LOCAL_NAMES[tag] = tag.rsplit("}", 1)[-1]
    return name


def kids(el: ET.Element | None, name: str) -> list[ET.Element]:
    return [] if el is None else [c for c in el if local(c.tag) == name]


_CHILD_INDEX: dict[int, tuple[ET.Element, dict[str, ET.Element]]] = {}
_CHILD_INDEX_SIZE = 4096  # bounded: an entry's elements are looked up many times, then never again


def _children(el: ET.Element) -> dict[str, ET.Element]:
    """First child element by local name (memoised for the elements in use; each entry keeps its element
    alive, so an id is never reused while it is cached)."""
    hit = _CHILD_INDEX.get(id(el))
    if hit is not None and hit[0] is el:
        return hit[1]
    index: dict[str, ET.Element] = {}
    for c in el:
        index.setdefault(local(c.tag), c)
    if len(_CHILD_INDEX) >= _CHILD_INDEX_SIZE:
        _CHILD_INDEX.clear()
    _CHILD_INDEX[id(el)] = (el, index)
    return index


def child(el: ET.Element | None, *path: str) -> ET.Element | None:
    for name in path:
        if el is None:
            return None
        el = _children(el).get(name)
    return el


def text(el: ET.Element | None, *path: str) -> str:
    found = child(el, *path)
    return "" if found is None or found.text is None else found.text.strip()


def descendants(el: ET.Element | None, name: str) -> list[ET.Element]:
    return [] if el is None else [d for d in el.iter() if local(d.tag) == name]


def version_of(root: ET.Element) -> str:
    """``camt.053.001.NN`` from the namespace, ``camt.053`` when it carries no version."""
    found = _NS_VERSION.search(root.tag if isinstance(root.tag, str) else "")
    return f"camt.053.001.{found.group(1)}" if found else "camt.053"


def load(data: bytes, file: str) -> tuple[ET.Element, str]:
    """Parse the XML document safely; returns (root, encoding as declared or utf-8)."""
    encoding = _declared_encoding(data, file)
    try:
        root = ET.fromstring(data)  # noqa: S314 - DTDs refused above
    except ET.ParseError as exc:
        line, col = exc.position
        raise fatal(file, f"malformed XML: {exc}", row=line, column=f"column {col}") from exc
    except (ValueError, LookupError, UnicodeError, RecursionError) as exc:
        raise fatal(file, f"malformed XML: {type(exc).__name__}: {exc}") from exc
    return root, encoding


_HEAD_ROOT = re.compile(rb"<(?:[A-Za-z_][\w.-]*:)?Document[\s>/]")
_HEAD_STMT = re.compile(rb"<(?:[A-Za-z_][\w.-]*:)?BkToCstmrStmt[\s>/]")


def sniff_camt053(data: bytes) -> str | None:
    """The camt.053 version when the document's head shows a Document/BkToCstmrStmt, without parsing the
    whole file (detection sees every upload); ``parse`` then reads it fully and strictly."""
    head = data[: 1 << 16]
    if _DTD.search(head) or not _HEAD_ROOT.search(head) or not _HEAD_STMT.search(head):
        return None
    found = _NS_VERSION.search(head.decode("utf-8", "replace"))
    return f"camt.053.001.{found.group(1)}" if found else "camt.053"


def is_camt053(root: ET.Element) -> bool:
    return local(root.tag) == "Document" and child(root, "BkToCstmrStmt") is not None


# ------------------------------------------------------------------------------------------- parsing


def _when(el: ET.Element | None, tz: ZoneInfo, column: str) -> datetime | None:
    """``Dt`` (midnight local) or ``DtTm`` of a date choice element."""
    if el is None:
        return None
    day = text(el, "Dt")
    if day:
        try:
            return datetime.combine(date.fromisoformat(day[:10]), time(0), tzinfo=tz)
        except ValueError as exc:
            raise RowFail(column, f"not a date: {day!r}") from exc
    moment = text(el, "DtTm")
    if moment:
        return parse_datetime(moment, tz, column)
    return None


def _signed(amount_el: ET.Element | None, indicator: str, default_ccy: str, column: str) -> tuple[int, str]:
    if amount_el is None or not (amount_el.text or "").strip():
        raise RowFail(column, "amount missing")
    ccy = check_currency(amount_el.get("Ccy", ""), default_ccy, f"{column}@Ccy")
    minor = parse_amount(amount_el.text or "", ccy, column)
    if minor < 0:
        raise RowFail(column, "camt amounts are unsigned (the sign is CdtDbtInd)")
    if indicator not in ("CRDT", "DBIT"):
        raise RowFail(
            column.rsplit("/", 1)[0] + "/CdtDbtInd", f"CdtDbtInd must be CRDT or DBIT, got {indicator!r}"
        )
    return (minor if indicator == "CRDT" else -minor), ccy


def _party(tx: ET.Element | None, role: str) -> str:
    parties = child(tx, "RltdPties")
    for path in ((role, "Nm"), (role, "Pty", "Nm"), ("Ultmt" + role, "Nm"), ("Ultmt" + role, "Pty", "Nm")):
        name = text(parties, *path)
        if name:
            return name
    return ""


def _codes(el: ET.Element | None) -> set[str]:
    bk = child(el, "BkTxCd")
    return {
        c
        for c in (
            text(bk, "Domn", "Cd"),
            text(bk, "Domn", "Fmly", "Cd"),
            text(bk, "Domn", "Fmly", "SubFmlyCd"),
            text(bk, "Prtry", "Cd"),
        )
        if c
    }


def _memo(ntry: ET.Element, tx: ET.Element | None) -> str:
    unstructured = [u.text.strip() for u in kids(child(tx, "RmtInf"), "Ustrd") if u.text and u.text.strip()]
    if unstructured:
        return " ".join(unstructured)
    return text(tx, "AddtlTxInf") or text(ntry, "AddtlNtryInf")


def _order_ref(tx: ET.Element | None) -> str:
    for strd in kids(child(tx, "RmtInf"), "Strd"):
        ref = text(strd, "CdtrRefInf", "Ref")
        if ref:
            return ref
    e2e = text(tx, "Refs", "EndToEndId")
    return "" if e2e.upper() == "NOTPROVIDED" else e2e


def _entry_id(ntry: ET.Element, txs: list[ET.Element], fallback: str) -> str:
    for value in (text(ntry, "AcctSvcrRef"), text(ntry, "NtryRef")):
        if value:
            return value
    first = txs[0] if txs else None
    for name in ("AcctSvcrRef", "EndToEndId", "TxId", "InstrId"):
        value = text(first, "Refs", name)
        if value and value.upper() != "NOTPROVIDED":
            return value
    return fallback


# Where a TxDtls states its amount: its own Amt, the underlying transaction's, the counter value.
_TX_AMOUNTS = (("Amt",), ("AmtDtls", "TxAmt", "Amt"), ("AmtDtls", "CntrValAmt", "Amt"))


def _tx_amounts(tx: ET.Element) -> list[ET.Element]:
    """Every amount a TxDtls states (an Element without children is falsy: compare with None)."""
    return [el for path in _TX_AMOUNTS if (el := child(tx, *path)) is not None]


def _tx_amount(tx: ET.Element, ccy: str) -> ET.Element | None:
    """The TxDtls amount in the entry's currency ``ccy`` (an amount without Ccy is in it), else None.

    A foreign-currency payment states its own amount in that currency (Credit Suisse: entry CHF 579.21,
    TxDtls/Amt EUR 522.39) and the entry's in ``CntrValAmt``; splitting on the foreign amounts would add
    EUR to CHF.
    """
    return next((el for el in _tx_amounts(tx) if el.get("Ccy", ccy).strip().upper() == ccy), None)


@dataclass
class _StmtTotals:
    booked: dict[str, int]
    count: int = 0
    credits: int = 0
    credit_sum: int = 0
    debits: int = 0
    debit_sum: int = 0
    abs_sum: int = 0


def _type_for(
    amount: int, reversal: bool, *, ntry: ET.Element, tx: ET.Element | None, party: str, memo: str
) -> TxnType:
    if reversal:
        return TxnType.ADJUSTMENT
    if amount >= 0:
        return TxnType.SETTLEMENT if _CHANNEL.search(f"{party} {memo}") else TxnType.TRANSFER
    if (_codes(ntry) | _codes(tx)) & _FEE_CODES or _FEE_MEMO.search(memo):
        return TxnType.FEE
    return TxnType.TRANSFER


def _entry(
    b: Builder,
    ntry: ET.Element,
    *,
    s: int,
    k: int,
    stmt_id: str,
    acct_ccy: str,
    file: str,
    raw_key: str,
    ordinal: int,
    totals: _StmtTotals,
) -> int:
    """Parse one Ntry into ``b``; returns the number of rows it accounted for."""
    tz = b.ctx.tz
    where = f"Stmt[{s}]/Ntry[{k}]"
    status_text = (text(ntry, "Sts", "Cd") or text(ntry, "Sts")).upper()
    txs = descendants(child(ntry, "NtryDtls"), "TxDtls")
    try:
        indicator = text(ntry, "CdtDbtInd").upper()
        amount, ccy = _signed(child(ntry, "Amt"), indicator, acct_ccy, f"{where}/Amt")
    except RowFail as exc:
        b.reject(file, ordinal, exc.column, exc.reason)
        return 1
    totals.count += 1
    totals.abs_sum += abs(amount)
    if amount >= 0:
        totals.credits += 1
        totals.credit_sum += amount
    else:
        totals.debits += 1
        totals.debit_sum -= amount
    if status_text == "INFO":
        b.skip("info_entry")
        return 1
    if status_text == "BOOK":
        totals.booked[ccy] = totals.booked.get(ccy, 0) + amount
    try:
        if status_text not in _STATUS:
            raise RowFail(f"{where}/Sts", f"unknown entry status {status_text!r}")
        booked_at = _when(child(ntry, "BookgDt"), tz, f"{where}/BookgDt")
        value_at = _when(child(ntry, "ValDt"), tz, f"{where}/ValDt")
        booked_at = booked_at or value_at
        if booked_at is None:
            raise RowFail(f"{where}/BookgDt", "entry has neither BookgDt nor ValDt")
        value_date = (value_at or booked_at).astimezone(tz).date()
        reversal = text(ntry, "RvslInd").lower() in ("true", "1")
        entry_id = _entry_id(ntry, txs, f"{stmt_id or f'Stmt{s}'}:{k}")
        split = len(txs) > 1 and all(_tx_amount(tx, ccy) is not None for tx in txs)
        parts: list[tuple[ET.Element | None, int, str]] = []
        if split:
            for n, tx in enumerate(txs, start=1):
                ind = (text(tx, "CdtDbtInd") or indicator).upper()
                part, _ = _signed(_tx_amount(tx, ccy), ind, ccy, f"{where}/TxDtls[{n}]/Amt")
                parts.append((tx, part, entry_id if n == 1 else f"{entry_id}#{n}"))
        else:
            parts.append((txs[0] if txs else None, amount, entry_id))
    except RowFail as exc:
        b.reject(file, ordinal, exc.column, exc.reason)
        return 1
    if split:
        b.total(
            f"{where}.TxDtls sum",
            fmt_amount(amount, ccy),
            fmt_amount(sum(p[1] for p in parts), ccy),
            file=file,
            row=ordinal,
            column=f"{where}/Amt",
        )
    for n, (detail, part, txn_id) in enumerate(parts):
        party = _party(detail, "Dbtr" if part >= 0 else "Cdtr")
        memo = _memo(ntry, detail)
        b.add(
            file=file,
            row=ordinal + n,
            raw_key=raw_key,
            txn_id=txn_id,
            order_ref=_order_ref(detail),
            amount_minor=part,
            fee_minor=0,
            currency=ccy,
            booked_at=booked_at,
            value_date=value_date,
            txn_type=_type_for(part, reversal, ntry=ntry, tx=detail, party=party, memo=memo),
            status=_STATUS[status_text],
            counterparty=party,
            memo=memo,
        )
    return len(parts)


def _balance(b: Builder, stmt: ET.Element, code: str, *, s: int, file: str, acct_ccy: str) -> Balance | None:
    """The statement's balance of type ``code``, dated by its ``Dt`` (None when the date does not read)."""
    for bal in kids(stmt, "Bal"):
        if (text(bal, "Tp", "CdOrPrtry", "Cd") or text(bal, "Tp", "CdOrPrtry", "Prtry")).upper() != code:
            continue
        try:
            minor, ccy = _signed(
                child(bal, "Amt"), text(bal, "CdtDbtInd").upper(), acct_ccy, f"Stmt[{s}]/Bal[{code}]/Amt"
            )
        except RowFail as exc:
            b.fail(file, FILE_LEVEL_ROW, exc.column, exc.reason)
            return None
        return Balance(minor, ccy, _day(text(bal, "Dt", "Dt") or text(bal, "Dt", "DtTm")))
    return None


def _day(value: str) -> date | None:
    """The date an ISO date or date-time starts with; None when there is none."""
    try:
        return date.fromisoformat(value[:10]) if value else None
    except ValueError:
        return None


def _summary(b: Builder, stmt: ET.Element, t: _StmtTotals, *, s: int, file: str, ccy: str) -> None:
    summ = child(stmt, "TxsSummry")
    if summ is None:
        return
    checks = (
        ("TtlNtries", t.count, t.abs_sum),
        ("TtlCdtNtries", t.credits, t.credit_sum),
        ("TtlDbtNtries", t.debits, t.debit_sum),
    )
    for name, count, total in checks:
        el = child(summ, name)
        if el is None:
            continue
        col = f"Stmt[{s}]/TxsSummry/{name}"
        nb = text(el, "NbOfNtries")
        if nb:
            b.count_total(
                f"Stmt[{s}].TxsSummry.{name}.NbOfNtries", nb, count, file=file, row=FILE_LEVEL_ROW, column=col
            )
        stated_sum = text(el, "Sum")
        if stated_sum:
            b.amount_total(
                f"Stmt[{s}].TxsSummry.{name}.Sum",
                stated_sum,
                total,
                ccy,
                file=file,
                row=FILE_LEVEL_ROW,
                column=col,
            )


def _declared_encoding(data: bytes, file: str) -> str:
    if _DTD.search(data):
        raise fatal(file, "XML with a DTD/entity declaration is not accepted")
    declared = _XML_ENCODING.match(data)
    encoding = declared.group(1).decode("ascii").lower() if declared else "utf-8"
    return "utf-8-sig" if data.startswith(b"\xef\xbb\xbf") else encoding


@dataclass
class StmtState:
    """One statement while it streams in: its context is read when its first entry (or its end) arrives."""

    s: int
    el: ET.Element
    entries: int = 0
    stmt_id: str = ""
    account: str = ""
    acct_ccy: str = ""
    ready: bool = False
    totals: _StmtTotals | None = None


class EntryRuns(Protocol):
    """Entries read elsewhere (``camt_fast``): each run of a statement's entries is replaced in the document
    by one element named ``tag`` whose ``run`` attribute numbers it."""

    tag: str

    def take(self, b: Builder, stmt: StmtState, run: int, ordinal: int) -> int:
        """Account for the run's entries in ``b`` and ``stmt`` (its entries count, its totals); returns the
        rows they make."""
        ...


class NotRead(Exception):
    """``parse`` met an entry that ``runs`` should have read."""


def read(data: bytes, ctx: Context, *, profile: str, file: str, raw_key: str) -> ParsedStatement:
    """A camt.053 statement: the column-at-a-time reader (``camt_fast``) when the document is in the plain
    form it reads, otherwise ``parse`` element by element. Both give the same result."""
    from . import camt_fast

    fast = camt_fast.read(data, ctx, profile=profile, file=file, raw_key=raw_key)
    if fast is not None:
        return fast
    b = Builder(ctx, profile=profile)
    fmt, encoding, statement_date = parse(data, b, file=file, raw_key=raw_key)
    return b.result(format=fmt, encoding=encoding, statement_date=statement_date)


def parse(
    data: bytes, b: Builder, *, file: str, raw_key: str, runs: EntryRuns | None = None
) -> tuple[str, str, date | None]:
    """Parse a camt.053 document into ``b``; returns (format, encoding, statement date).

    The document is streamed (``iterparse``): each ``Ntry`` is converted when it ends and then cleared, so
    memory stays flat however many entries a statement has. With ``runs``, the entries have been cut out
    of ``data`` and are accounted for by ``runs`` where their placeholders stand (a real ``Ntry`` then
    raises ``NotRead``).
    """
    encoding = _declared_encoding(data, file)
    depth = 0  # of the element an event belongs to: 1 the root, 2 BkToCstmrStmt, 3 Stmt, 4 Ntry
    root: ET.Element | None = None
    body_seen = False
    current: StmtState | None = None
    statements = 0
    ordinal = 1
    statement_date: date | None = None
    ends: dict[str, tuple[Balance, Balance]] = {}  # per account: its first opening, its last closing
    try:
        for event, el in ET.iterparse(io.BytesIO(data), events=("start", "end")):  # noqa: S314 - DTDs refused
            if event == "start":
                depth += 1
                if depth > 3:
                    continue  # inside a statement: only ends of its entries matter
                if depth == 1:
                    root = el
                elif depth == 2:
                    body_seen = body_seen or (
                        local(el.tag) == "BkToCstmrStmt"
                        and root is not None
                        and local(root.tag) == "Document"
                    )
                elif body_seen and local(el.tag) == "Stmt":
                    statements += 1
                    current = StmtState(statements, el)
                continue
            depth -= 1
            if depth == 3 and current is not None and runs is not None and local(el.tag) == runs.tag:
                _ready(b, current, file)
                ordinal += runs.take(b, current, int(el.get("run", "-1")), ordinal)
                el.clear()
            elif depth == 3 and current is not None and local(el.tag) == "Ntry":
                if runs is not None:
                    raise NotRead("an entry was left in the document")
                _ready(b, current, file)
                current.entries += 1
                assert current.totals is not None
                ordinal += _entry(
                    b,
                    el,
                    s=current.s,
                    k=current.entries,
                    stmt_id=current.stmt_id,
                    acct_ccy=current.acct_ccy,
                    file=file,
                    raw_key=raw_key,
                    ordinal=ordinal,
                    totals=current.totals,
                )
                el.clear()
            elif depth == 2 and current is not None and el is current.el:
                _ready(b, current, file)
                found = _close_statement(b, current, file=file, ends=ends)
                statement_date = statement_date or found
                el.clear()
                current = None
    except ET.ParseError as exc:
        line, col = exc.position
        raise fatal(file, f"malformed XML: {exc}", row=line, column=f"column {col}") from exc
    except (ValueError, LookupError, UnicodeError, RecursionError) as exc:
        raise fatal(file, f"malformed XML: {type(exc).__name__}: {exc}") from exc
    if root is None or not body_seen:
        tag = local(root.tag) if root is not None else ""
        raise fatal(file, f"not a camt.053 document: root <{tag}> without <BkToCstmrStmt>")
    if not statements:
        raise fatal(file, "camt.053 document has no <Stmt> (statement) element: nothing to reconcile")
    expose_balances(b, ends, file=file)
    return version_of(root), encoding, statement_date


def _ready(b: Builder, stmt: StmtState, file: str) -> None:
    """Read the statement's id and account currency (they precede its entries) once."""
    if stmt.ready:
        return
    stmt.ready = True
    stmt.stmt_id = text(stmt.el, "Id")
    stmt.account = text(stmt.el, "Acct", "Id", "IBAN") or text(stmt.el, "Acct", "Id", "Othr", "Id")
    stmt.totals = _StmtTotals(booked={})
    try:
        stmt.acct_ccy = check_currency(
            text(stmt.el, "Acct", "Ccy"), b.ctx.currency, f"Stmt[{stmt.s}]/Acct/Ccy"
        )
    except RowFail as exc:
        b.fail(file, FILE_LEVEL_ROW, exc.column, exc.reason)
        stmt.acct_ccy = b.ctx.currency


def _close_statement(
    b: Builder, st: StmtState, *, file: str, ends: dict[str, tuple[Balance, Balance]]
) -> date | None:
    """Balances and TxsSummry of a finished statement (its balances kept in ``ends`` for chaining files);
    returns its date (closing balance, else period end)."""
    stmt, s, acct_ccy = st.el, st.s, st.acct_ccy
    totals = st.totals
    assert totals is not None
    opening = _balance(b, stmt, "OPBD", s=s, file=file, acct_ccy=acct_ccy) or _balance(
        b, stmt, "PRCD", s=s, file=file, acct_ccy=acct_ccy
    )
    closing = _balance(b, stmt, "CLBD", s=s, file=file, acct_ccy=acct_ccy)
    previous = ends.get(st.account)
    if previous is not None and opening is not None and previous[1].currency == opening.currency:
        # consecutive statements of one account in one file chain, as MT940's do (file order)
        b.total(
            f"Stmt[{s}].previous CLBD of the account = opening",
            previous[1].text(),
            opening.text(),
            file=file,
            row=FILE_LEVEL_ROW,
            column=f"Stmt[{s}]/Bal",
        )
    record_ends(ends, st.account, opening, closing)
    if opening is not None and closing is not None:
        o_ccy = opening.currency
        others = sorted(c for c in totals.booked if c != o_ccy)
        computed = f"{fmt_amount(opening.minor + totals.booked.get(o_ccy, 0), o_ccy)} {o_ccy}" + (
            f" (+ entries in {', '.join(others)})" if others else ""
        )
        b.total(
            f"Stmt[{s}].balance opening+booked=CLBD",
            closing.text(),
            computed,
            file=file,
            row=FILE_LEVEL_ROW,
            column=f"Stmt[{s}]/Bal[CLBD]",
        )
    _summary(b, stmt, totals, s=s, file=file, ccy=acct_ccy)
    clbd = next(
        (bal for bal in kids(stmt, "Bal") if text(bal, "Tp", "CdOrPrtry", "Cd").upper() == "CLBD"),
        None,
    )
    return _day(text(clbd, "Dt", "Dt") or text(clbd, "Dt", "DtTm") or text(stmt, "FrToDt", "ToDtTm"))
