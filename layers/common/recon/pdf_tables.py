"""Table rows of PDF statements that have a text layer, through the maintained ``pdfplumber`` package.

The one extraction implementation: ``recon.parsing.readers.pdf`` uses it in-process, and the extract_pdf
function (deployed without the AWS SDK for pandas layer) runs it for the parse function. This module
therefore imports only the standard library; ``pdfplumber`` is imported on first use.

Decisions:

* Per page, ruled tables first (pdfplumber's ``lines`` strategy); a page without ruled tables is read with
  the ``text`` strategy (columns from aligned words). Rows of all tables of a page are numbered 1, 2, ...
  in reading order; nothing is dropped (blank rows included: the profile skips them by rule).
* A line break inside a cell is a wrap: it is removed between CJK characters or digits (a name or amount
  cut in two) and becomes a space elsewhere.
* Refused with ``PdfRefusal``: not a PDF, encrypted, corrupt, more than ``MAX_PAGES`` pages, or no text
  layer at all (a scan: OCR is out of scope). The parse path turns the reason into a
  ``StatementParseError`` naming the file.
* Rows travel between functions as a gzipped JSON document (``rows_document`` / ``rows_from_document``),
  written byte-identically for the same rows so that its key can be content-addressed.
"""

from __future__ import annotations

import gzip
import io
import json
import re
from typing import Any

MAX_PAGES = 2000
ROWS_FORMAT = "recon.pdf-rows/1"
_MAGIC = re.compile(rb"^\s*%PDF-\d")
_WRAP_TIGHT = re.compile(r"(?<=[\u3000-\u9fff\uff00-\uffef0-9])\n(?=[\u3000-\u9fff\uff00-\uffef0-9])")
_LINES = {"vertical_strategy": "lines", "horizontal_strategy": "lines"}
_TEXT = {"vertical_strategy": "text", "horizontal_strategy": "text"}
NEEDS_PDFPLUMBER = "PDF statements need pdfplumber, which this runtime does not include"


class PdfRefusal(Exception):
    """The document cannot be read as a PDF statement; ``reason`` says why (without the file name)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


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


def cell_text(value: Any) -> str:
    if value is None:
        return ""
    text = _WRAP_TIGHT.sub("", str(value).replace("\r", ""))
    return re.sub(r"[ \t]*\n[ \t]*", " ", text).strip()


def extract_rows(data: bytes) -> list[PdfRow]:
    """Every table row of every page, as cell texts with page/row numbers; raises ``PdfRefusal``."""
    if not is_pdf(data):
        raise PdfRefusal("not a PDF document (no %PDF- header)")
    try:
        import pdfplumber  # type: ignore[import-untyped,unused-ignore]
        from pdfplumber.utils.exceptions import (  # type: ignore[import-untyped,unused-ignore]
            PdfminerException,
        )
    except ImportError as exc:
        raise PdfRefusal(NEEDS_PDFPLUMBER) from exc
    rows: list[PdfRow] = []
    has_text = False
    try:
        with pdfplumber.open(io.BytesIO(data)) as pdf:
            pages = pdf.pages
            if len(pages) > MAX_PAGES:
                raise PdfRefusal(f"PDF has {len(pages)} pages, more than {MAX_PAGES}")
            for page_no, page in enumerate(pages, start=1):
                has_text = has_text or bool(page.chars)
                tables = page.extract_tables(_LINES) or (page.extract_tables(_TEXT) if page.chars else [])
                number = 0
                for table in tables:
                    for cells in table:
                        number += 1
                        rows.append(PdfRow([cell_text(c) for c in cells], page=page_no, row=number))
                page.close()  # frees the page's parsed objects: statements can run to many pages
    except PdfRefusal:
        raise
    except PdfminerException as exc:
        cause = exc.args[0] if exc.args else exc
        reason = "encrypted PDF (password protected)" if "Password" in type(cause).__name__ else "corrupt PDF"
        raise PdfRefusal(f"{reason}: {type(cause).__name__}") from exc
    except Exception as exc:  # pdfminer/pdfplumber raise many kinds on damaged documents: all are "corrupt"
        raise PdfRefusal(f"corrupt PDF: {type(exc).__name__}: {exc}") from exc
    if not has_text:
        raise PdfRefusal("PDF has no text layer (a scanned image?): only PDFs with text can be read")
    return rows


def rows_document(rows: list[PdfRow], *, sha256: str) -> bytes:
    """The rows as stored between functions: gzipped JSON, the same bytes for the same rows (mtime 0)."""
    body = {"format": ROWS_FORMAT, "sha256": sha256, "rows": [[r.page, r.row, list(r)] for r in rows]}
    text = json.dumps(body, ensure_ascii=False, separators=(",", ":"))
    return gzip.compress(text.encode("utf-8"), mtime=0)


def rows_from_document(document: bytes, *, sha256: str) -> list[PdfRow]:
    """Read back ``rows_document``; a document of another format or another PDF raises ``ValueError``."""
    body = json.loads(gzip.decompress(document))
    if body.get("format") != ROWS_FORMAT or body.get("sha256") != sha256:
        raise ValueError(f"not the {ROWS_FORMAT} rows of PDF {sha256}")
    return [
        PdfRow([str(c) for c in cells], page=int(page), row=int(row)) for page, row, cells in body["rows"]
    ]


__all__ = [
    "MAX_PAGES",
    "NEEDS_PDFPLUMBER",
    "PdfRefusal",
    "PdfRow",
    "cell_text",
    "extract_rows",
    "is_pdf",
    "rows_document",
    "rows_from_document",
]
