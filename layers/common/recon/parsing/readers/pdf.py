"""Tables from PDF statements that have a text layer, through the maintained ``pdfplumber`` package.

A PDF statement is tabular: its columns are mapped by a parsing profile (``recon.parsing.profiles``), so
this module is not a ``FormatReader``. It turns the document into rows of cell texts, each row knowing
its page and its row on that page for error messages; the profile engine does the rest.

Decisions:

* Per page, ruled tables first (pdfplumber's ``lines`` strategy); a page without ruled tables is read with
  the ``text`` strategy (columns from aligned words). Rows of all tables of a page are numbered 1, 2, ...
  in reading order; nothing is dropped (blank rows included: the profile skips them by rule).
* A line break inside a cell is a wrap: it is removed between CJK characters or digits (a name or amount
  cut in two) and becomes a space elsewhere.
* Refused with ``StatementParseError``: not a PDF, encrypted, corrupt, more than ``MAX_PAGES`` pages, or no
  text layer at all (a scan: OCR is out of scope).
* pdfplumber is imported on first use: it is too large for the parse function's Lambda budget (see
  docs/formats-bank.md), so a runtime without it refuses PDFs with a clear reason instead of failing to
  import the whole parsing package.
"""

from __future__ import annotations

import io
import re
from typing import Any

from recon.parsing._common import fatal
from recon.parsing.model import StatementParseError

MAX_PAGES = 2000
_MAGIC = re.compile(rb"^\s*%PDF-\d")
_WRAP_TIGHT = re.compile(r"(?<=[\u3000-\u9fff\uff00-\uffef0-9])\n(?=[\u3000-\u9fff\uff00-\uffef0-9])")
_LINES = {"vertical_strategy": "lines", "horizontal_strategy": "lines"}
_TEXT = {"vertical_strategy": "text", "horizontal_strategy": "text"}


class PdfRow(list[str]):
    """The cells of one table row, with where it is: ``page`` (1-based) and ``row`` on that page."""

    def __init__(self, cells: list[str], *, page: int, row: int) -> None:
        super().__init__(cells)
        self.page = page
        self.row = row

    @property
    def where(self) -> str:
        return f"page {self.page}, row {self.row}"


def is_pdf(data: bytes) -> bool:
    return bool(_MAGIC.match(data[:1024]))


def _cell(value: Any) -> str:
    if value is None:
        return ""
    text = _WRAP_TIGHT.sub("", str(value).replace("\r", ""))
    return re.sub(r"[ \t]*\n[ \t]*", " ", text).strip()


def pdf_rows(data: bytes, file: str) -> list[PdfRow]:
    """Every table row of every page, as cell texts with page/row numbers; raises StatementParseError."""
    if not is_pdf(data):
        raise fatal(file, "not a PDF document (no %PDF- header)")
    try:
        import pdfplumber  # type: ignore[import-untyped,unused-ignore]
        from pdfplumber.utils.exceptions import (  # type: ignore[import-untyped,unused-ignore]
            PdfminerException,
        )
    except ImportError as exc:
        raise fatal(file, "PDF statements need pdfplumber, which this runtime does not include") from exc
    rows: list[PdfRow] = []
    has_text = False
    try:
        with pdfplumber.open(io.BytesIO(data)) as pdf:
            pages = pdf.pages
            if len(pages) > MAX_PAGES:
                raise fatal(file, f"PDF has {len(pages)} pages, more than {MAX_PAGES}")
            for page_no, page in enumerate(pages, start=1):
                has_text = has_text or bool(page.chars)
                tables = page.extract_tables(_LINES) or (page.extract_tables(_TEXT) if page.chars else [])
                number = 0
                for table in tables:
                    for cells in table:
                        number += 1
                        rows.append(PdfRow([_cell(c) for c in cells], page=page_no, row=number))
                page.close()  # frees the page's parsed objects: statements can run to many pages
    except StatementParseError:
        raise
    except PdfminerException as exc:
        cause = exc.args[0] if exc.args else exc
        reason = "encrypted PDF (password protected)" if "Password" in type(cause).__name__ else "corrupt PDF"
        raise fatal(file, f"{reason}: {type(cause).__name__}") from exc
    except Exception as exc:  # pdfminer/pdfplumber raise many kinds on damaged documents: all are "corrupt"
        raise fatal(file, f"corrupt PDF: {type(exc).__name__}: {exc}") from exc
    if not has_text:
        raise fatal(file, "PDF has no text layer (a scanned image?): only PDFs with text can be read")
    return rows
