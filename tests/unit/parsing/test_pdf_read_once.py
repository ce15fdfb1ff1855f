"""One parse reads a PDF's tables once: detection (scoring PDF profiles) and the profile engine share them.

The reader is an in-memory ``PdfTableReader`` that counts its calls and answers fixed rows (no pdfplumber),
installed the way the parse stage installs its reader (``reading_with``).
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from recon.domain import Source
from recon.parsing import ParsedStatement, StatementParseError, api, parse_statement
from recon.parsing.profiles import Profile
from recon.parsing.readers import pdf
from recon.pdf_tables import PdfRefusal, PdfRow
from recon.ports import PdfTableReader, StoredDocument
from tests.unit.parsing.test_readers_pdf import _PDF_PROFILE, _STATEMENT, make_pdf

PROFILE = Profile.from_yaml(_PDF_PROFILE)
DOCUMENT = make_pdf([_STATEMENT])
AT = StoredDocument(bucket="raw", key="raw/acme/bank-pdf/2024-05-03/s.pdf", version_id=None, sha256="-")


class CountingPdfTables:
    """Answers the rows of ``_STATEMENT`` (or refuses with ``refusal``) and counts the documents read."""

    def __init__(self, *, refusal: str | None = None) -> None:
        self.reads = 0
        self._refusal = refusal

    def read(self, data: bytes, *, stored_at: StoredDocument) -> list[PdfRow]:
        self.reads += 1
        if self._refusal is not None:
            raise PdfRefusal(self._refusal)
        return [PdfRow(list(cells), page=1, row=n) for n, cells in enumerate(_STATEMENT, start=1)]


@contextmanager
def installed(reader: PdfTableReader) -> Iterator[None]:
    with pdf.reading_with(functools.partial(reader.read, stored_at=AT)):
        yield


def _parse(*, profile: Profile | None = None, profiles: list[Profile] | None = None) -> ParsedStatement:
    return parse_statement(
        DOCUMENT,
        filename="s.pdf",
        raw_key=AT.key,
        statement_id="st-pdf",
        source=Source.BANK,
        account_id="bank-pdf",
        profile=profile,
        profiles=profiles,
    )


def _amounts(parsed: ParsedStatement | None) -> list[tuple[str, int]]:
    assert parsed is not None
    table = parsed.table
    return [(r["txn_id"], r["amount_minor"]) for r in table.select(["txn_id", "amount_minor"]).to_pylist()]


def test_with_a_profile_the_pdf_is_read_once() -> None:
    reader = CountingPdfTables()
    with installed(reader):
        parsed = _parse(profile=PROFILE)
    assert reader.reads == 1
    assert _amounts(parsed) == [("REF001", 123456), ("REF002", -700)]


def test_detected_by_a_pdf_profile_the_pdf_is_read_once_to_the_same_statement() -> None:
    given, detected = CountingPdfTables(), CountingPdfTables()
    with installed(given):
        by_profile = _parse(profile=PROFILE)
    with installed(detected):
        by_detection = _parse(profiles=[PROFILE])
    assert detected.reads == 1  # detection scored the PDF profile, the engine read the rows: one reading
    assert by_detection.format == by_profile.format == "bank.example.pdf"
    assert by_detection.table.equals(by_profile.table)


def test_a_refusal_is_read_once_and_reported_as_before() -> None:
    refusing = CountingPdfTables(refusal="PDF has no text layer (a scanned image?)")
    with installed(refusing), pytest.raises(StatementParseError, match="no text layer"):
        _parse(profile=PROFILE)
    assert refusing.reads == 1
    refusing = CountingPdfTables(refusal="PDF has no text layer (a scanned image?)")
    with installed(refusing), pytest.raises(StatementParseError, match="unknown statement format"):
        _parse(profiles=[PROFILE])
    assert refusing.reads == 1


def test_the_rows_are_remembered_for_one_parse_only() -> None:
    reader = CountingPdfTables()
    with installed(reader):
        _parse(profiles=[PROFILE])
        _parse(profiles=[PROFILE])
    assert reader.reads == 2


def test_a_failing_reader_is_asked_again_not_remembered() -> None:
    calls: list[bytes] = []

    def flaky(data: bytes) -> list[PdfRow]:
        calls.append(data)
        if len(calls) == 1:
            raise RuntimeError("extractor throttled")
        return [PdfRow(["x"], page=1, row=1)]

    with pdf.reading_with(flaky), pdf.reading_once():
        with pytest.raises(RuntimeError):
            pdf.pdf_rows(DOCUMENT, "s.pdf")
        assert [list(r) for r in pdf.pdf_rows(DOCUMENT, "s.pdf")] == [["x"]]
        assert [list(r) for r in pdf.pdf_rows(DOCUMENT, "s.pdf")] == [["x"]]
    assert len(calls) == 2


def test_recon_parse_without_profile_reads_the_pdf_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from recon_local.parse_command import read_file

    # No built-in profile reads PDFs yet: make one a candidate of detection, as a built-in would be.
    candidates = api._candidates
    monkeypatch.setattr(api, "_candidates", lambda profiles: [PROFILE, *candidates(profiles)])
    path = tmp_path / "s.pdf"
    path.write_bytes(DOCUMENT)
    reader = CountingPdfTables()
    with installed(reader):
        result = read_file(path, None, currency="CNY", timezone="Asia/Shanghai")
    assert reader.reads == 1  # detect() and parse_statement() (detection + engine) share one reading
    assert result.format == "bank.example.pdf" and result.errors == []
    assert _amounts(result.parsed) == [("REF001", 123456), ("REF002", -700)]
