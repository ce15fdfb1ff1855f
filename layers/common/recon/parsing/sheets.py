"""Row containers: Excel (.xls via xlrd, .xlsx via openpyxl), JSON records and PDF tables -> rows of text cells.

Spreadsheet numbers are IEEE doubles: a cell is written as the shortest decimal that reads back as the
same double (what the person typed, e.g. 16.78), never rounded; an amount with more digits than the
currency allows is then rejected like any other. Dates become ``yyyy-MM-dd HH:mm:ss``.
"""

from __future__ import annotations

import io
import json
import math
import zipfile
from datetime import date, datetime, time
from decimal import Decimal
from typing import Any

from ._common import MAX_UNPACKED_BYTES, fatal, is_workbook

OLE2_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
PDF_MAGIC = b"%PDF"


def is_xls(data: bytes) -> bool:
    return data.startswith(OLE2_MAGIC)


def is_xlsx(data: bytes) -> bool:
    return is_workbook(data)


def is_pdf(data: bytes) -> bool:
    return data.lstrip()[:4] == PDF_MAGIC


def number_text(value: float | int) -> str:
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, int):
        return str(value)
    if math.isnan(value) or math.isinf(value):
        return str(value)
    if value.is_integer() and abs(value) < 1e15:
        return str(int(value))
    return format(Decimal(repr(value)), "f")


def cell_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, bool | int | float):
        return number_text(value)
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M:%S")
    if isinstance(value, date):
        return value.strftime("%Y-%m-%d")
    if isinstance(value, time):
        return value.strftime("%H:%M:%S")
    return str(value)


def xls_rows(data: bytes, file: str, sheet: int | str = 0) -> list[list[str]]:
    import xlrd

    try:
        book = xlrd.open_workbook(file_contents=data, on_demand=True)
        try:
            ws = book.sheet_by_name(sheet) if isinstance(sheet, str) else book.sheet_by_index(sheet)
            rows: list[list[str]] = []
            for r in range(ws.nrows):
                out = []
                for c in ws.row(r):
                    if c.ctype == xlrd.XL_CELL_DATE:
                        out.append(cell_text(xlrd.xldate_as_datetime(c.value, book.datemode)))
                    elif c.ctype == xlrd.XL_CELL_ERROR:
                        out.append("#ERROR")
                    elif c.ctype == xlrd.XL_CELL_BOOLEAN:
                        out.append("TRUE" if c.value else "FALSE")
                    else:
                        out.append(cell_text(c.value))
                rows.append(out)
            return rows
        finally:
            book.release_resources()
    except Exception as exc:  # xlrd raises many types on corrupt files; all mean "not readable"
        raise fatal(file, f"corrupt xls workbook: {type(exc).__name__}: {exc}") from exc


def xlsx_rows(data: bytes, file: str, sheet: int | str = 0) -> list[list[str]]:
    import openpyxl

    try:
        with zipfile.ZipFile(io.BytesIO(data)) as zf:
            total = sum(i.file_size for i in zf.infolist())
        if total > MAX_UNPACKED_BYTES:
            raise fatal(file, f"xlsx parts add up to {total} bytes, more than {MAX_UNPACKED_BYTES}")
        book = openpyxl.load_workbook(io.BytesIO(data), read_only=True, data_only=True)
        try:
            ws = book[sheet] if isinstance(sheet, str) else book.worksheets[sheet]
            return [[cell_text(v) for v in row] for row in ws.iter_rows(values_only=True)]
        finally:
            book.close()
    except Exception as exc:
        if hasattr(exc, "errors") and hasattr(exc, "parsed"):
            raise
        raise fatal(file, f"corrupt xlsx workbook: {type(exc).__name__}: {exc}") from exc


def json_rows(text: str, file: str, path: str | None) -> tuple[list[str], list[list[str]], list[bool]]:
    """(header, rows, is_object) of a JSON array of records. Numbers keep their literal text (exact)."""
    try:
        doc: Any = json.loads(text, parse_float=lambda s: s, parse_int=lambda s: s)
    except (json.JSONDecodeError, RecursionError) as exc:
        row = getattr(exc, "lineno", 0)
        raise fatal(file, f"malformed JSON: {exc}", row=row) from exc
    for key in (path or "").split(".") if path else []:
        if not isinstance(doc, dict) or key not in doc:
            raise fatal(file, f"JSON has no records at {path!r}")
        doc = doc[key]
    if isinstance(doc, dict) and path is None:
        lists = [v for v in doc.values() if isinstance(v, list)]
        if len(lists) == 1:
            doc = lists[0]
    if not isinstance(doc, list):
        raise fatal(file, "JSON records must be an array of objects")
    header: list[str] = []
    seen: set[str] = set()
    for rec in doc:
        if isinstance(rec, dict):
            for key in rec:
                if key not in seen:
                    seen.add(key)
                    header.append(str(key))
    rows: list[list[str]] = []
    objects: list[bool] = []
    for rec in doc:
        if isinstance(rec, dict):
            rows.append([_json_text(rec.get(k)) for k in header])
            objects.append(True)
        else:
            rows.append([])
            objects.append(False)
    return header, rows, objects


def _json_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    return json.dumps(value, ensure_ascii=False)


def pdf_rows(data: bytes, file: str) -> list[list[str]]:
    """Table rows of a PDF statement, through the PDF reader when it is installed."""
    try:
        from .readers import pdf
    except ImportError:
        raise fatal(file, "PDF statements need the PDF reader (recon.parsing.readers.pdf)") from None
    return [list(row) for row in pdf.pdf_rows(data, file)]
