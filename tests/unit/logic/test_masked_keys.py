"""Account numbers never leave in full through the review API or the logs.

Alipay names its bill files after the account (20881011221362410156_20261120.csv.zip): a raw key shown by
the review API (``get_run_view``) or written to a log line must be masked as the report masks it."""

from __future__ import annotations

import json
import logging

import pytest

from recon.domain import Project
from recon.keys import raw_key
from recon.pipeline import parse as parse_stage
from recon.pipeline.contracts import ExtractPdfRequest
from recon.pipeline.extract_pdf import ObjectChanged, extract_pdf
from recon.pipeline.queries import get_run_view, invalid_request
from recon.pipeline.services import Services
from recon.reporting.masking import mask_digit_runs

from .conftest import DAY
from .test_notifications import _run_day, svc  # noqa: F401  (the fixture)
from .test_pipeline_in_memory import PROJECT_TEXT

ALIPAY_ACCOUNT = "2088101122136241"  # declared in the demo project, the start of its bill file's name


def _logged(caplog: pytest.LogCaptureFixture) -> str:
    return "\n".join(json.dumps(r.__dict__, default=str, ensure_ascii=False) for r in caplog.records)


def test_the_review_api_view_masks_the_account_number_in_raw_keys(svc: Services) -> None:  # noqa: F811
    ref, _ = _run_day(svc, "arn:exec:1")
    view = get_run_view(ref.run_id, svc)
    assert view is not None
    shown = view.model_dump_json()
    assert ALIPAY_ACCOUNT not in shown
    alipay = next(f for f in view.run.files if f.account_id == "alipay-main")
    assert alipay.raw_key.endswith("/****62410156_20261120.csv.zip")  # as summary.json shows it
    assert view.run.run_id == ref.run_id and view.balanced


def test_log_lines_of_a_re_parse_mask_the_account_number(
    svc: Services,  # noqa: F811
    caplog: pytest.LogCaptureFixture,
) -> None:
    _run_day(svc, "arn:exec:1")
    caplog.set_level(logging.INFO, logger="recon")
    _run_day(svc, "arn:exec:2")  # the same files again: "statement already parsed"
    assert "statement already parsed" in caplog.text
    logged = _logged(caplog)
    assert ALIPAY_ACCOUNT not in logged and "****62410156_20261120.csv.zip" in logged


def test_a_parser_failure_is_logged_masked_with_its_traceback(
    svc: Services,  # noqa: F811
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def broken(data: bytes, *, filename: str, **_: object) -> None:
        raise RuntimeError(f"cannot read {filename}")  # a parser defect quoting the file

    monkeypatch.setattr(parse_stage, "parse_statement", broken)
    caplog.set_level(logging.INFO, logger="recon")
    project = Project.from_yaml(PROJECT_TEXT)
    key = raw_key("demo", "alipay-main", DAY, "20881011221362410156_20261120.csv.zip")
    statement = parse_stage.ingest_object(
        svc,
        project=project,
        account=project.account("alipay-main"),
        statement_date=DAY,
        key=key,
        business_date=DAY,
    )
    assert statement.errors and "internal parser error" in statement.errors[0].reason
    failed = [r for r in caplog.records if r.getMessage() == "parser failed"]
    assert failed and "RuntimeError: cannot read" in failed[0].__dict__["traceback"]
    assert ALIPAY_ACCOUNT not in _logged(caplog)


def test_keys_logged_without_a_project_mask_every_long_digit_run() -> None:
    assert mask_digit_runs("raw/x/20881011221362410156_20261120.csv.zip") == "raw/x/****0156_20261120.csv.zip"
    assert mask_digit_runs("statement_20261120.csv") == "statement_20261120.csv"  # a date is not a number


def test_the_pdf_extractor_names_no_account_number(svc: Services) -> None:  # noqa: F811
    key = raw_key("demo", "bank-cmb", DAY, "6225881234567890_20261120.pdf")
    svc.store.put("raw", key, b"%PDF-1.4 not really")
    request = ExtractPdfRequest(bucket="raw", key=key, version_id=None, sha256="0" * 64)
    with pytest.raises(ObjectChanged) as changed:
        extract_pdf(request, svc)
    assert "6225881234567890" not in str(changed.value) and "****7890_20261120.pdf" in str(changed.value)


def test_an_invalid_request_says_which_parameter_and_what_is_expected() -> None:
    body = invalid_request([{"loc": ("path", "run_id"), "type": "string_pattern_mismatch"}])
    assert body["statusCode"] == 422
    assert body["message"].startswith("run_id (in the path) is not in the expected form: a run id is ")
    assert "demo-20261120" in body["message"]
    assert body["detail"] == [
        {"loc": ["path", "run_id"], "type": "string_pattern_mismatch", "message": body["message"]}
    ]
