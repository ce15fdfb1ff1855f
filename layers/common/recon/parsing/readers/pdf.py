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

Detection (scoring PDF profiles) and the profile engine both ask for the rows of the same document within
one parse; ``reading_once`` (entered by ``parse_statement``) remembers them by content for that call only,
so a PDF is extracted (or sent to the extractor function) once.
"""

from __future__ import annotations

import hashlib
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


class _ReadOnce:
    """``rows_of`` that answers each document (by SHA-256 of its bytes) from its first reading.

    A refusal is remembered as its reason: the document would be refused again. Anything else raised (the
    extractor function failing) is not: it propagates, and the next reading tries again.
    """

    def __init__(self, rows_of: RowsOf) -> None:
        self._rows_of = rows_of
        self._read: dict[str, list[PdfRow] | str] = {}

    def __call__(self, data: bytes) -> list[PdfRow]:
        key = hashlib.sha256(data).hexdigest()
        if key not in self._read:
            try:
                self._read[key] = self._rows_of(data)
            except PdfRefusal as exc:
                self._read[key] = exc.reason
        found = self._read[key]
        if isinstance(found, str):
            raise PdfRefusal(found)
        return list(found)  # a caller may reorder or drop rows of its list, never of the remembered one


@contextmanager
def reading_once() -> Iterator[None]:
    """Inside the block, each PDF is read once (with the reader installed when the block is entered).

    The memory is the block's: it ends with the block. Nested blocks share the outermost one.
    """
    current = _rows_of.get()
    if isinstance(current, _ReadOnce):
        yield
        return
    with reading_with(_ReadOnce(current)):
        yield


def pdf_rows(data: bytes, file: str) -> list[PdfRow]:
    """Every table row of every page, as cell texts with page/row numbers; raises StatementParseError."""
    try:
        return _rows_of.get()(data)
    except PdfRefusal as exc:
        raise fatal(file, exc.reason) from exc


__all__ = ["MAX_PAGES", "PdfRow", "RowsOf", "is_pdf", "pdf_rows", "reading_once", "reading_with"]
