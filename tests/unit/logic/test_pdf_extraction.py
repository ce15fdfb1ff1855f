"""PDF tables through the ``PdfTableReader`` port: the extractor stage (recon.pipeline.extract_pdf) on the
in-memory store, the remote adapter invoking it through an in-memory function invoker, and the parse stage
reading a PDF statement either way to the same statement (refusals with the same error text)."""

from __future__ import annotations

import gzip
import hashlib
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from recon.adapters.memory import MemoryFunctionInvoker, MemoryObjectStore
from recon.adapters.pdf_tables import UNPACKED_PDF, InProcessPdfTables, RemotePdfTables
from recon.domain import Statement
from recon.keys import pdf_rows_key, profile_key, raw_key
from recon.parsing import StatementParseError
from recon.parsing.readers.pdf import pdf_rows, reading_with
from recon.pdf_tables import PdfRefusal, PdfRow, extract_rows, rows_document, rows_from_document
from recon.pipeline.contracts import ExtractPdfRequest
from recon.pipeline.extract_pdf import ObjectChanged, extract_pdf
from recon.pipeline.parse import ingest_upload
from recon.pipeline.services import Services
from recon.ports import FunctionFailed, StoredDocument
from recon.tables import read_parquet
from tests.unit.logic.test_parse_stage import _deliver
from tests.unit.parsing.test_readers_pdf import _PDF_PROFILE, _STATEMENT
from tests.unit.parsing.test_readers_pdf import PDF_DAY as DAY
from tests.unit.parsing.test_readers_pdf import PDF_PROJECT as PROJECT
from tests.unit.parsing.test_readers_pdf import SCANNED_PDF as SCAN
from tests.unit.parsing.test_readers_pdf import TWO_PAGE_PDF as TWO_PAGES
from tests.unit.test_handler_imports import _BLOCKER

from .conftest import memory_services

pytest.importorskip("pdfplumber", reason="pdfplumber (layers/common/requirements-pdf.txt) not installed")

REPO = Path(__file__).resolve().parents[3]
EXTRACTOR = "recon-extract-pdf"


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _put_raw(svc: Services, name: str, data: bytes) -> StoredDocument:
    key = raw_key("acme", "bank-pdf", DAY, name)
    stored = svc.store.put("raw", key, data)
    return StoredDocument(bucket="raw", key=key, version_id=stored.version_id, sha256=_sha(data))


def _request(at: StoredDocument) -> ExtractPdfRequest:
    return ExtractPdfRequest(bucket=at.bucket, key=at.key, version_id=at.version_id, sha256=at.sha256)


def _where(rows: list[PdfRow]) -> list[tuple[list[str], int, int]]:
    return [(list(r), r.page, r.row) for r in rows]


def _remote(svc: Services) -> tuple[RemotePdfTables, MemoryFunctionInvoker]:
    """The remote adapter, its "function" the extractor stage on the same store (as the Lambda would be)."""
    invoker = MemoryFunctionInvoker(
        {EXTRACTOR: lambda event: extract_pdf(ExtractPdfRequest.model_validate(event), svc).model_dump()}
    )
    return RemotePdfTables(invoker, svc.store, function_name=EXTRACTOR, rows_bucket="data"), invoker


@pytest.fixture
def svc() -> Services:
    services = memory_services("acme", PROJECT)
    services.store.put("data", profile_key("bank.example.pdf", "1"), _PDF_PROFILE.encode())
    return services


# --------------------------------------------------------------------------------- the pure extraction


def test_extraction_modules_import_without_dataframe_libraries() -> None:
    """The extractor function has no pandas layer: what it imports must not need pandas/numpy/pyarrow."""
    modules = "import recon.pdf_tables, recon.pipeline.extract_pdf, recon.adapters.pdf_tables, recon.wiring\n"
    result = subprocess.run(
        [sys.executable, "-c", _BLOCKER + modules], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr[-2000:]


def test_rows_document_is_byte_identical_for_the_same_rows_and_reads_back() -> None:
    rows = extract_rows(TWO_PAGES)
    document = rows_document(rows, sha256=_sha(TWO_PAGES))
    assert document == rows_document(extract_rows(TWO_PAGES), sha256=_sha(TWO_PAGES))
    assert _where(rows_from_document(document, sha256=_sha(TWO_PAGES))) == _where(rows)
    assert json.loads(gzip.decompress(document))["rows"][0] == [1, 1, _STATEMENT[0]]
    with pytest.raises(ValueError, match=r"not the recon\.pdf-rows/1 rows"):
        rows_from_document(document, sha256=_sha(SCAN))


# ------------------------------------------------------------------------------------ the extractor stage


def test_extractor_stores_the_rows_once_under_their_content_address(svc: Services) -> None:
    at = _put_raw(svc, "s.pdf", TWO_PAGES)
    first = extract_pdf(_request(at), svc)
    assert (first.rows_key, first.rows, first.pages_with_rows, first.reused, first.refusal) == (
        pdf_rows_key(at.sha256),
        5,
        2,
        False,
        None,
    )
    stored = svc.store.get("data", pdf_rows_key(at.sha256))
    assert _where(rows_from_document(stored, sha256=at.sha256)) == _where(extract_rows(TWO_PAGES))

    # The same PDF uploaded again under another name: the stored rows are reused, not rewritten.
    again = extract_pdf(_request(_put_raw(svc, "copy.pdf", TWO_PAGES)), svc)
    assert again.model_copy(update={"reused": False}) == first and again.reused
    assert isinstance(svc.store, MemoryObjectStore)
    assert len(svc.store._objects[("data", pdf_rows_key(at.sha256))]) == 1


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (SCAN, "PDF has no text layer"),
        (TWO_PAGES[:60], "corrupt PDF"),
        (b"Date,Reference,Amount\n", "not a PDF document"),
    ],
)
def test_a_refusal_is_an_answer_with_the_in_process_reason(svc: Services, data: bytes, reason: str) -> None:
    out = extract_pdf(_request(_put_raw(svc, "s.pdf", data)), svc)
    with pytest.raises(PdfRefusal) as in_process:
        extract_rows(data)
    assert out.refusal == in_process.value.reason and reason in out.refusal
    assert (out.rows_key, svc.store.list("data", "derived/")) == (None, [])


def test_extractor_refuses_other_bytes_and_other_buckets(svc: Services) -> None:
    at = _put_raw(svc, "s.pdf", TWO_PAGES)
    with pytest.raises(ObjectChanged, match="has SHA-256"):
        extract_pdf(_request(at).model_copy(update={"sha256": _sha(SCAN)}), svc)
    with pytest.raises(ValueError, match="only raw statements"):
        extract_pdf(_request(at).model_copy(update={"bucket": "data"}), svc)
    with pytest.raises(ValueError, match="only raw statements"):
        extract_pdf(_request(at).model_copy(update={"key": "config/projects/acme.yaml"}), svc)
    assert svc.store.list("data", "derived/") == []


# -------------------------------------------------------------------------------------- the remote adapter


def test_remote_reader_gives_the_in_process_rows(svc: Services) -> None:
    remote, invoker = _remote(svc)
    at = _put_raw(svc, "s.pdf", TWO_PAGES)
    rows = remote.read(TWO_PAGES, stored_at=at)
    assert _where(rows) == _where(InProcessPdfTables().read(TWO_PAGES, stored_at=at))
    assert [r.where for r in rows][-1] == "page 2, row 2"
    assert invoker.calls == [(EXTRACTOR, _request(at).model_dump(mode="json"))]


def test_remote_refusals_read_like_in_process_ones(svc: Services) -> None:
    remote, invoker = _remote(svc)
    at = _put_raw(svc, "scan.pdf", SCAN)
    with reading_with(lambda data: remote.read(data, stored_at=at)):
        with pytest.raises(StatementParseError) as remote_error:
            pdf_rows(SCAN, "raw/acme/bank-pdf/2024-05-03/scan.pdf")
        with pytest.raises(StatementParseError, match="not a PDF document"):
            pdf_rows(b"Date,Amount\n", "x.csv")
    with pytest.raises(StatementParseError) as local_error:
        pdf_rows(SCAN, "raw/acme/bank-pdf/2024-05-03/scan.pdf")
    assert str(remote_error.value) == str(local_error.value)
    assert "no text layer" in str(local_error.value)
    assert len(invoker.calls) == 1  # a document without the %PDF- header is refused before any invocation


def test_remote_reader_refuses_a_pdf_unpacked_from_an_upload(svc: Services) -> None:
    remote, invoker = _remote(svc)
    at = _put_raw(svc, "statements.zip", b"PK\x03\x04 a zip holding s.pdf")
    with pytest.raises(PdfRefusal) as refused:
        remote.read(TWO_PAGES, stored_at=at)
    assert refused.value.reason == UNPACKED_PDF and invoker.calls == []


def test_remote_reader_reports_a_failed_or_malformed_invocation(svc: Services) -> None:
    at = _put_raw(svc, "s.pdf", TWO_PAGES)
    missing = RemotePdfTables(MemoryFunctionInvoker(), svc.store, function_name=EXTRACTOR, rows_bucket="data")
    with pytest.raises(FunctionFailed, match="ResourceNotFoundException"):
        missing.read(TWO_PAGES, stored_at=at)
    odd = MemoryFunctionInvoker({EXTRACTOR: lambda event: {"sha256": event["sha256"]}})
    with pytest.raises(FunctionFailed, match="answered"):
        RemotePdfTables(odd, svc.store, function_name=EXTRACTOR, rows_bucket="data").read(
            TWO_PAGES, stored_at=at
        )


# ---------------------------------------------------------------------------------------- the parse stage


def _ingest(svc: Services, name: str, data: bytes) -> Statement:
    return _deliver(svc, "bank-pdf", DAY, name, data)


def _parsed(svc: Services, statement: Statement) -> list[dict[str, Any]]:
    assert statement.parquet_key is not None
    rows: list[dict[str, Any]] = read_parquet(svc.store.get("data", statement.parquet_key)).to_pylist()
    return rows


def _comparable(statement: Statement) -> dict[str, Any]:
    return statement.model_dump(exclude={"parsed_at", "raw_version_id"})


def test_parse_stage_reads_a_pdf_remotely_to_the_same_statement(svc: Services) -> None:
    local = memory_services("acme", PROJECT)
    local.store.put("data", profile_key("bank.example.pdf", "1"), _PDF_PROFILE.encode())
    svc.pdf_tables, invoker = _remote(svc)

    remote_statement = _ingest(svc, "s.pdf", TWO_PAGES)
    local_statement = _ingest(local, "s.pdf", TWO_PAGES)

    assert remote_statement.status.value == "parsed" and remote_statement.rows_parsed == 3
    assert _comparable(remote_statement) == _comparable(local_statement)
    assert _parsed(svc, remote_statement) == _parsed(local, local_statement)
    assert [name for name, _ in invoker.calls] == [EXTRACTOR]


def test_parse_stage_quarantines_a_scan_with_the_same_report_either_way(svc: Services) -> None:
    local = memory_services("acme", PROJECT)
    local.store.put("data", profile_key("bank.example.pdf", "1"), _PDF_PROFILE.encode())
    svc.pdf_tables, _ = _remote(svc)

    remote_statement = _ingest(svc, "scan.pdf", SCAN)
    local_statement = _ingest(local, "scan.pdf", SCAN)

    assert remote_statement.status.value == "quarantined"
    assert _comparable(remote_statement) == _comparable(local_statement)
    (error,) = remote_statement.errors
    assert "PDF has no text layer" in error.reason
    report_key = f"{remote_statement.quarantine_key}.error.json"
    reports = [json.loads(s.store.get("data", report_key)) for s in (svc, local)]
    assert [r.pop("raw_version_id") is not None for r in reports] == [True, True]  # each store's own
    assert reports[0] == reports[1]


def test_parse_stage_fails_rather_than_quarantines_when_the_extractor_fails(svc: Services) -> None:
    svc.pdf_tables = RemotePdfTables(
        MemoryFunctionInvoker(), svc.store, function_name=EXTRACTOR, rows_bucket="data"
    )
    key = raw_key("acme", "bank-pdf", DAY, "s.pdf")
    svc.store.put("raw", key, TWO_PAGES)
    with pytest.raises(FunctionFailed):
        ingest_upload("raw", key, svc)
    assert svc.repo.find_statement_by_checksum("acme", "bank-pdf", _sha(TWO_PAGES)) is None
    assert svc.store.list("data", "quarantine/") == []
