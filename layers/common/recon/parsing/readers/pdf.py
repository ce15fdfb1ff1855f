"""Tables from PDF statements that have a text layer, for the parsing profiles.

A PDF statement is tabular: its columns are mapped by a parsing profile (``recon.parsing.profiles``), so
this module is not a ``FormatReader``. It turns the document into rows of cell texts, each row knowing
its page and its row on that page for error messages; the profile engine does the rest.

The extraction itself is ``recon.pdf_tables`` (one implementation, importable without the dataframe
libraries). Where it runs is chosen by the caller: in this process by default (pdfplumber installed:
local runs, ``recon parse``, tests), or through whatever ``reading_with`` installs for the current context;
the parse stage installs its ``PdfTableReader`` (in AWS the extract_pdf function, see
docs/formats-bank.md). A context variable rather than a parameter, because the rows are asked for deep
inside the profile engine, whose interface stays ``pdf_rows(data, file)``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar

from recon.parsing._common import fatal
from recon.pdf_tables import MAX_PAGES, PdfRefusal, PdfRow, extract_rows, is_pdf

RowsOf = Callable[[bytes], list[PdfRow]]  # PDF bytes -> rows; raises PdfRefusal

_rows_of: ContextVar[RowsOf] = ContextVar("pdf_rows_of", default=extract_rows)


@contextmanager
def reading_with(rows_of: RowsOf) -> Iterator[None]:
    """Read the PDFs met inside the block with ``rows_of`` instead of in this process."""
    token = _rows_of.set(rows_of)
    try:
        yield
    finally:
        _rows_of.reset(token)


def pdf_rows(data: bytes, file: str) -> list[PdfRow]:
    """Every table row of every page, as cell texts with page/row numbers; raises StatementParseError."""
    try:
        return _rows_of.get()(data)
    except PdfRefusal as exc:
        raise fatal(file, exc.reason) from exc


__all__ = ["MAX_PAGES", "PdfRow", "RowsOf", "is_pdf", "pdf_rows", "reading_with"]
