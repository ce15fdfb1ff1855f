"""ISO 20022 camt.054 debit/credit notifications (``BkToCstmrDbtCdtNtfctn``), versions 001.02 and later.

A notification carries entries exactly like a camt.053 statement but no balances, so the entry reading
of ``recon.parsing.camt`` is reused as is (one way to read an ``Ntry``: ids, signs, ``RvslInd``, split
``TxDtls``, ``Dt``/``DtTm``, INFO entries skipped). Its column names say ``Stmt[n]`` for the n-th
``Ntfctn``.

Decisions:

* A "row" is one entry (``Ntry``, or each ``TxDtls`` of a split entry), numbered in document order over
  all notifications, as for camt.053.
* Control totals: ``TxsSummry`` counts and sums when the notification states them (camt.053 rules). There
  are no balances, hence no ``opening``/``closing`` totals.
* Statement date: the ``ToDtTm`` of the first notification's ``FrToDt``, else its ``CreDtTm``.
"""

from __future__ import annotations

import re
from datetime import date

from recon.parsing import camt
from recon.parsing._common import FILE_LEVEL_ROW, Builder, RowFail, check_currency, fatal
from recon.parsing.registry import FormatReader, register

NAME = "camt.054"
_ROOT = "BkToCstmrDbtCdtNtfctn"
_VERSION = re.compile(r"camt\.054\.001\.(\d{2})")


def detect(data: bytes, file: str) -> tuple[str, float] | None:
    head = data[:4096]
    if _ROOT.encode() not in head:
        return None
    found = _VERSION.search(head.decode("ascii", "replace"))
    return (f"{NAME}.001.{found.group(1)}" if found else NAME), 0.99


def parse(data: bytes, b: Builder, file: str, raw_key: str) -> tuple[str, str, date | None]:
    """Parse a camt.054 document into ``b``; returns (format, encoding, statement date)."""
    root, encoding = camt.load(data, file)
    body = camt.child(root, _ROOT)
    if camt.local(root.tag) != "Document" or body is None:
        raise fatal(file, f"not a camt.054 document: root <{camt.local(root.tag)}> without <{_ROOT}>")
    found = _VERSION.search(root.tag if isinstance(root.tag, str) else "")
    fmt = f"{NAME}.001.{found.group(1)}" if found else NAME
    notifications = camt.kids(body, "Ntfctn")
    if not notifications:
        raise fatal(file, "camt.054 document has no <Ntfctn> (notification) element: nothing to reconcile")
    statement_date: date | None = None
    ordinal = 1
    for s, ntfctn in enumerate(notifications, start=1):
        try:
            ccy = check_currency(camt.text(ntfctn, "Acct", "Ccy"), b.ctx.currency, f"Ntfctn[{s}]/Acct/Ccy")
        except RowFail as exc:
            b.fail(file, FILE_LEVEL_ROW, exc.column, exc.reason)
            ccy = b.ctx.currency
        totals = camt._StmtTotals(booked={})
        for k, ntry in enumerate(camt.kids(ntfctn, "Ntry"), start=1):
            ordinal += camt._entry(
                b,
                ntry,
                s=s,
                k=k,
                stmt_id=camt.text(ntfctn, "Id"),
                acct_ccy=ccy,
                file=file,
                raw_key=raw_key,
                ordinal=ordinal,
                totals=totals,
            )
        camt._summary(b, ntfctn, totals, s=s, file=file, ccy=ccy)
        if statement_date is None:
            day = camt.text(ntfctn, "FrToDt", "ToDtTm") or camt.text(ntfctn, "CreDtTm")
            try:
                statement_date = date.fromisoformat(day[:10]) if day else None
            except ValueError:
                statement_date = None
    return fmt, encoding, statement_date


register(FormatReader(NAME, detect, parse, "ISO 20022 camt.054 debit/credit notifications"))
