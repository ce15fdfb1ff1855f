"""PDF statements in the deployed shape, under moto through the local runtime: ExtractPdfFunction reads a raw
PDF and writes its rows to the data bucket, and ParseFunction (which in AWS has no pdfplumber) reads a PDF
statement through it to exactly the statement the in-process reader gives."""

from __future__ import annotations

import hashlib
import io
import json
from collections.abc import Iterator
from typing import Any

import pyarrow.parquet as pq
import pytest

from recon.adapters.dynamodb import DynamoRunRepository
from recon.adapters.s3 import S3ObjectStore
from recon.domain import Statement
from recon.keys import pdf_rows_key, profile_key, project_config_key, raw_key
from recon.pdf_tables import extract_rows, rows_from_document
from recon_local.runtime import LambdaInvocationError, LocalCloud
from tests.integration.handlers.test_parse_stage_moto import _upload as upload
from tests.unit.parsing.test_readers_pdf import _PDF_PROFILE
from tests.unit.parsing.test_readers_pdf import PDF_DAY as DAY
from tests.unit.parsing.test_readers_pdf import PDF_PROJECT as PROJECT
from tests.unit.parsing.test_readers_pdf import SCANNED_PDF as SCAN
from tests.unit.parsing.test_readers_pdf import TWO_PAGE_PDF as TWO_PAGES

pytest.importorskip("pdfplumber", reason="pdfplumber (layers/common/requirements-pdf.txt) not installed")

EXTRACTOR_ENV = "RECON_PDF_EXTRACTOR_FUNCTION"


def _cloud(env_overrides: dict[str, str] | None = None) -> LocalCloud:
    return LocalCloud(env_overrides=env_overrides)


def _prepare(cloud: LocalCloud) -> None:
    store = S3ObjectStore()
    store.put(cloud.data_bucket, project_config_key("acme"), PROJECT.encode())
    store.put(cloud.data_bucket, profile_key("bank.example.pdf", "1"), _PDF_PROFILE.encode())


@pytest.fixture
def cloud() -> Iterator[LocalCloud]:
    with _cloud() as c:
        _prepare(c)
        yield c


def _request(cloud: LocalCloud, name: str, data: bytes) -> dict[str, Any]:
    key = raw_key("acme", "bank-pdf", DAY, name)
    stored = S3ObjectStore().put(cloud.raw_bucket, key, data)
    return {
        "bucket": cloud.raw_bucket,
        "key": key,
        "version_id": stored.version_id,
        "sha256": hashlib.sha256(data).hexdigest(),
    }


def _upload(cloud: LocalCloud, name: str, data: bytes) -> Statement:
    """Put a raw file and deliver its S3 "Object Created" event to the parse function."""
    (result,) = upload(cloud, "bank-pdf", DAY, name, data)
    (summary,) = result["statements"]
    statement = DynamoRunRepository(cloud.table_name).get_statement(summary["statement_id"])
    assert statement is not None
    return statement


def _extractor_calls(cloud: LocalCloud) -> list[Any]:
    name = cloud.function_name("ExtractPdfFunction")
    return [event for function, event in cloud.runtime.invocations if function == name]


# ------------------------------------------------------------------------------------ the extractor itself


def test_parse_function_names_the_extractor_in_its_environment(cloud: LocalCloud) -> None:
    assert cloud.function_env("ParseFunction")[EXTRACTOR_ENV] == cloud.function_name("ExtractPdfFunction")
    assert EXTRACTOR_ENV not in cloud.function_env("ExtractPdfFunction")


def test_extractor_writes_the_rows_once_under_their_content_address(cloud: LocalCloud) -> None:
    request = _request(cloud, "s.pdf", TWO_PAGES)
    out = cloud.invoke("ExtractPdfFunction", request)
    rows_key = pdf_rows_key(request["sha256"])
    assert out == {
        "sha256": request["sha256"],
        "rows_key": rows_key,
        "rows": 5,
        "pages_with_rows": 2,
        "reused": False,
        "refusal": None,
    }
    store = S3ObjectStore()
    document = store.get(cloud.data_bucket, rows_key)
    rows = rows_from_document(document, sha256=request["sha256"])
    assert [(list(r), r.where) for r in rows] == [(list(r), r.where) for r in extract_rows(TWO_PAGES)]

    # Same bytes again: the object is reused as it stands (a stand-in body shows it is not rewritten).
    head = store.head(cloud.data_bucket, rows_key)
    assert head is not None
    store.put(cloud.data_bucket, rows_key, b"stand-in", metadata=head.metadata)
    again = cloud.invoke("ExtractPdfFunction", request)
    assert again == {**out, "reused": True}
    assert store.get(cloud.data_bucket, rows_key) == b"stand-in"


def test_extractor_answers_a_refusal_instead_of_failing(cloud: LocalCloud) -> None:
    out = cloud.invoke("ExtractPdfFunction", _request(cloud, "scan.pdf", SCAN))
    assert out["rows_key"] is None and out["refusal"] == (
        "PDF has no text layer (a scanned image?): only PDFs with text can be read"
    )
    assert S3ObjectStore().list(cloud.data_bucket, "derived/") == []


def test_extractor_fails_on_bytes_other_than_the_ones_named(cloud: LocalCloud) -> None:
    request = _request(cloud, "s.pdf", TWO_PAGES)
    request["sha256"] = hashlib.sha256(SCAN).hexdigest()
    with pytest.raises(LambdaInvocationError) as failed:
        cloud.invoke("ExtractPdfFunction", request)
    assert failed.value.error_type == "ObjectChanged"
    assert S3ObjectStore().list(cloud.data_bucket, "derived/") == []


# ------------------------------------------------------------------------------------- through the parser


def _comparable(statement: Statement) -> dict[str, Any]:
    return statement.model_dump(exclude={"parsed_at", "raw_version_id"})


def _table(cloud: LocalCloud, statement: Statement) -> list[dict[str, Any]]:
    assert statement.parquet_key is not None
    data = S3ObjectStore().get(cloud.data_bucket, statement.parquet_key)
    rows: list[dict[str, Any]] = pq.read_table(io.BytesIO(data)).to_pylist()
    return rows


@pytest.mark.parametrize(("name", "data"), [("s.pdf", TWO_PAGES), ("scan.pdf", SCAN)])
def test_parse_function_reads_through_the_extractor_as_it_would_in_process(name: str, data: bytes) -> None:
    with _cloud() as remote:
        _prepare(remote)
        through_extractor = _upload(remote, name, data)
        extracted = _extractor_calls(remote)
        parsed_remotely = _table(remote, through_extractor) if through_extractor.parquet_key else []
        quarantine = json.loads(
            S3ObjectStore().get(remote.data_bucket, f"{through_extractor.quarantine_key}.error.json")
            if through_extractor.quarantine_key
            else b"{}"
        )
    with _cloud({EXTRACTOR_ENV: ""}) as local:  # the parse function reads PDFs itself
        _prepare(local)
        in_process = _upload(local, name, data)
        assert _extractor_calls(local) == []
        parsed_locally = _table(local, in_process) if in_process.parquet_key else []
        local_quarantine = json.loads(
            S3ObjectStore().get(local.data_bucket, f"{in_process.quarantine_key}.error.json")
            if in_process.quarantine_key
            else b"{}"
        )

    assert [event["sha256"] for event in extracted] == [hashlib.sha256(data).hexdigest()]
    assert _comparable(through_extractor) == _comparable(in_process)
    assert parsed_remotely == parsed_locally
    for report in (quarantine, local_quarantine):
        report.pop("raw_version_id", None)
    assert quarantine == local_quarantine
    if name == "s.pdf":
        assert through_extractor.status.value == "parsed" and len(parsed_remotely) == 3
    else:
        assert through_extractor.status.value == "quarantined"
        assert "PDF has no text layer" in quarantine["errors"][0]["reason"]
