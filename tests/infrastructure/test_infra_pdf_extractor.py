"""ExtractPdfFunction: PDF statements are read in AWS by a function that carries pdfplumber instead of the
pandas layer, with least privilege on both sides of the parse -> extractor call."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from recon_local import size_report
from tests.infrastructure.helpers import REPO_ROOT, as_list

RAW_OBJECTS = {"Fn::Sub": "${RawBucket.Arn}/raw/*"}
PDF_ROWS = {"Fn::Sub": "${DataBucket.Arn}/derived/pdf-rows/*"}
EXTRACTOR_ARN = {"Fn::GetAtt": ["ExtractPdfFunction", "Arn"]}


def _allowed(function: Mapping[str, Any]) -> dict[str, set[str]]:
    """action -> the resources it is allowed on (as comparable strings)."""
    found: dict[str, set[str]] = {}
    for policy in function["Properties"]["Policies"]:
        for statement in policy["Statement"]:
            assert statement["Effect"] == "Allow"
            for action in as_list(statement["Action"]):
                found.setdefault(action, set()).update(repr(r) for r in as_list(statement["Resource"]))
    return found


def _pin(path: str) -> str:
    (line,) = [
        line.split("#")[0].strip()
        for line in (REPO_ROOT / path).read_text("utf-8").splitlines()
        if line.startswith("pdfplumber")
    ]
    return line


def test_extractor_carries_pdfplumber_with_the_local_pin_and_no_pandas_layer(
    functions: Mapping[str, Mapping[str, Any]],
) -> None:
    assert _pin("functions/extract_pdf/requirements.txt") == _pin("layers/common/requirements-pdf.txt")
    assert _pin("layers/common/requirements-pdf.txt").startswith("pdfplumber==")
    assert functions["ExtractPdfFunction"]["Properties"]["Layers"] == [{"Ref": "CommonLayer"}]
    # The common layer (shared with the pandas functions) still does not ship it.
    assert "pdfplumber" not in (REPO_ROOT / "layers/common/requirements.txt").read_text("utf-8")


def test_extractor_may_read_raw_statements_and_write_only_pdf_rows(
    functions: Mapping[str, Mapping[str, Any]],
) -> None:
    allowed = _allowed(functions["ExtractPdfFunction"])
    assert set(allowed) == {
        "s3:GetObject",
        "s3:GetObjectVersion",
        "s3:PutObject",
        "s3:ListBucket",
        "kms:Decrypt",
        "kms:GenerateDataKey",
    }
    assert allowed["s3:GetObject"] == {repr(RAW_OBJECTS), repr(PDF_ROWS)}
    assert allowed["s3:GetObjectVersion"] == {repr(RAW_OBJECTS)}
    assert allowed["s3:PutObject"] == {repr(PDF_ROWS)}
    (listing,) = [
        s
        for policy in functions["ExtractPdfFunction"]["Properties"]["Policies"]
        for s in policy["Statement"]
        if s["Action"] == "s3:ListBucket"
    ]
    assert listing["Resource"] == {"Fn::GetAtt": ["DataBucket", "Arn"]}
    assert listing["Condition"] == {"StringLike": {"s3:prefix": ["derived/pdf-rows/*"]}}


def test_only_the_parse_function_invokes_the_extractor_and_reads_its_rows(
    functions: Mapping[str, Mapping[str, Any]],
) -> None:
    parse = functions["ParseFunction"]["Properties"]
    assert parse["Environment"]["Variables"]["RECON_PDF_EXTRACTOR_FUNCTION"] == {"Ref": "ExtractPdfFunction"}
    allowed = _allowed(functions["ParseFunction"])
    assert allowed["lambda:InvokeFunction"] == {repr(EXTRACTOR_ARN)}
    assert repr(PDF_ROWS) in allowed["s3:GetObject"]
    assert repr(PDF_ROWS) not in allowed.get("s3:PutObject", set())
    others = {
        name
        for name, function in functions.items()
        if any(action.startswith("lambda:") for action in _allowed(function))
    }
    assert others == {"ParseFunction"}


def test_extractor_is_sized_for_the_largest_pdf_within_the_parse_functions_wait(
    functions: Mapping[str, Mapping[str, Any]],
) -> None:
    extractor = functions["ExtractPdfFunction"]["Properties"]
    # One full vCPU (pdfplumber is single-threaded); ParseFunction waits synchronously for the answer.
    assert extractor["MemorySize"] >= 1769
    assert extractor["Timeout"] < functions["ParseFunction"]["Properties"]["Timeout"]
    assert extractor["LoggingConfig"]["LogGroup"] == {"Ref": "ExtractPdfLogGroup"}


def test_size_report_counts_pdfplumber_in_the_extractor_and_it_fits() -> None:
    by_name = {fn.logical_id: fn for fn in size_report.measure().functions}
    extractor, parse = by_name["ExtractPdfFunction"], by_name["ParseFunction"]
    assert set(extractor.layer_bytes) == {"CommonLayer"}
    # pdfplumber, pdfminer.six, Pillow and pypdfium2 are installed into the function's own package.
    assert extractor.code_bytes > 30 * size_report.MIB > parse.code_bytes
    assert extractor.fits and parse.fits
