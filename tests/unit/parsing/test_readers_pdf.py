"""PDF statements with a text layer: table rows with page/row numbers from tiny PDFs written here (Type1
Helvetica text, optionally ruled), and the refusals (not a PDF, corrupt, no text layer, no pdfplumber)."""

from __future__ import annotations

import sys
from datetime import date

import pytest

from recon.parsing import StatementParseError
from recon.parsing.readers.pdf import PdfRow, is_pdf, pdf_rows
from recon.pdf_tables import cell_text as _cell

_STATEMENT = [
    ["Date", "Reference", "Amount"],
    ["2024-05-01", "REF001", "1,234.56"],
    ["2024-05-02", "REF002", "-7.00"],
]


def make_pdf(pages: list[list[list[str]]], *, ruled: bool = True, text: bool = True) -> bytes:
    """A minimal valid PDF: one table per page, each cell's text drawn in Helvetica, ruling optional."""
    objects: list[bytes] = [b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>", b""]
    kids = []
    for rows in pages:
        ops = []
        left, top, width, height = 50, 750, 120, 20
        columns = max(len(r) for r in rows)
        for i, row in enumerate(rows):
            for j, cell in enumerate(row):
                escaped = cell.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")
                if text:
                    ops.append(
                        f"BT /F1 9 Tf {left + j * width + 4} {top - i * height - 14} Td ({escaped}) Tj ET"
                    )
        if ruled:
            for i in range(len(rows) + 1):
                ops.append(f"{left} {top - i * height} m {left + columns * width} {top - i * height} l S")
            for j in range(columns + 1):
                x = left + j * width
                ops.append(f"{x} {top} m {x} {top - len(rows) * height} l S")
        stream = "\n".join(ops).encode("latin-1")
        objects.append(b"<< /Length %d >>\nstream\n" % len(stream) + stream + b"\nendstream")
        content = len(objects)
        objects.append(
            b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] "
            b"/Resources << /Font << /F1 1 0 R >> >> /Contents %d 0 R >>" % content
        )
        kids.append(len(objects))
    objects[1] = b"<< /Type /Pages /Kids [%s] /Count %d >>" % (
        b" ".join(b"%d 0 R" % k for k in kids),
        len(kids),
    )
    objects.append(b"<< /Type /Catalog /Pages 2 0 R >>")
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % number + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    out += b"trailer\n<< /Size %d /Root %d 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (
        len(objects) + 1,
        len(objects),
        xref,
    )
    return bytes(out)


def test_ruled_tables_give_rows_with_page_and_row_numbers() -> None:
    data = make_pdf([_STATEMENT, [_STATEMENT[0], ["2024-05-03", "REF003", "10.00"]]])
    rows = pdf_rows(data, "s.pdf")
    assert [list(r) for r in rows] == [*_STATEMENT, _STATEMENT[0], ["2024-05-03", "REF003", "10.00"]]
    assert [r.where for r in rows] == [
        "page 1, row 1",
        "page 1, row 2",
        "page 1, row 3",
        "page 2, row 1",
        "page 2, row 2",
    ]
    assert all(isinstance(r, PdfRow) for r in rows)


def test_unruled_page_is_read_by_text_alignment() -> None:
    rows = pdf_rows(make_pdf([_STATEMENT], ruled=False), "s.pdf")
    data_rows = [list(r) for r in rows if any(r)]
    assert data_rows == _STATEMENT
    assert all(r.page == 1 for r in rows)
    assert [r.row for r in rows] == list(range(1, len(rows) + 1))


def test_reading_is_deterministic() -> None:
    data = make_pdf([_STATEMENT])
    assert [(list(r), r.where) for r in pdf_rows(data, "s.pdf")] == [
        (list(r), r.where) for r in pdf_rows(data, "s.pdf")
    ]


def test_wrapped_cells_are_joined() -> None:
    assert _cell("支付宝\n结算") == "支付宝结算"
    assert (
        _cell("1,234\n.56") == "1,234 .56"
    )  # a digit and a dot: a space, the profile's amount check decides
    assert _cell("12\n34") == "1234"
    assert _cell("ALIPAY\nSETTLEMENT ") == "ALIPAY SETTLEMENT"
    assert _cell(None) == ""


def test_refusals() -> None:
    with pytest.raises(StatementParseError, match="not a PDF document"):
        pdf_rows(b"date,amount\n", "s.pdf")
    data = make_pdf([_STATEMENT])
    with pytest.raises(StatementParseError, match=r"corrupt PDF|no text layer"):
        pdf_rows(data[:60], "s.pdf")
    with pytest.raises(StatementParseError, match="no text layer"):
        pdf_rows(make_pdf([_STATEMENT], text=False), "s.pdf")
    assert is_pdf(data) and not is_pdf(b"%PD")


def test_runtime_without_pdfplumber_refuses_with_the_reason(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "pdfplumber", None)
    with pytest.raises(StatementParseError, match="need pdfplumber"):
        pdf_rows(make_pdf([_STATEMENT]), "s.pdf")


_PDF_PROFILE = """
name: bank.example.pdf
version: "1"
description: a bank's PDF statement with a text layer, read through a user profile
source: bank
container: pdf
match:
  header: [Date, Reference, Amount]
lines:
  - {name: page_header, regex: '^Date', scope: after_header, ends_data: false}  # every page repeats the table header
fields:
  txn_id: {column: Reference}
  amount: {column: Amount}
  booked_at: {column: Date, formats: ["yyyy-MM-dd"]}
  txn_type: {const: transfer}
dedupe_key: [txn_id]
"""

# A project and documents for the parse stage's PDF tests (in-process and through the extractor function).
PDF_PROJECT = """
project_id: acme
name: Acme
version: 1
timezone: Asia/Shanghai
currency: CNY
accounts:
  - {account_id: bank-pdf, source: bank, name: Bank statements in PDF, profile: bank.example.pdf}
  - {account_id: erp, source: erp, name: ERP order book}
"""
PDF_DAY = date(2024, 5, 3)
TWO_PAGE_PDF = make_pdf([_STATEMENT, [_STATEMENT[0], ["2024-05-03", "REF003", "10.00"]]])
SCANNED_PDF = make_pdf([_STATEMENT], text=False)


def test_a_pdf_statement_is_parsed_through_a_profile_with_exact_amounts() -> None:
    from recon.domain import Source
    from recon.parsing import parse_statement
    from recon.parsing.profiles import Profile

    pytest.importorskip("pdfplumber", reason="pdfplumber (layers/common/requirements-pdf.txt) not installed")
    data = make_pdf([_STATEMENT, [_STATEMENT[0], ["2024-05-03", "REF003", "10.00"]]])
    parsed = parse_statement(
        data,
        filename="s.pdf",
        raw_key="raw/p/bank/2024-05-03/s.pdf",
        statement_id="st-pdf",
        source=Source.BANK,
        account_id="bank-pdf",
        profile=Profile.from_yaml(_PDF_PROFILE),
    )
    rows = parsed.table.select(["txn_id", "amount_minor", "value_date"]).to_pylist()
    assert [(r["txn_id"], r["amount_minor"], r["value_date"].isoformat()) for r in rows] == [
        ("REF001", 123456, "2024-05-01"),
        ("REF002", -700, "2024-05-02"),
        ("REF003", 1000, "2024-05-03"),
    ]
    # The second page repeats the header: a non-data row, skipped by its named rule, never lost.
    assert parsed.errors == [] and parsed.skipped_by_rule.get("page_header") == 1
    assert parsed.rows_read == len(rows) + parsed.rows_skipped
    assert parsed.profile == "bank.example.pdf" and parsed.profile_version == "1"
