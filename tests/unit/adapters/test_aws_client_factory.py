"""The boto3 client factory: lazy, cached per process, honouring the endpoint override (no AWS calls)."""

from __future__ import annotations

import subprocess
import sys

import pytest

from recon.adapters import aws
from recon.adapters.dynamodb import DynamoRunRepository
from recon.adapters.s3 import S3ObjectStore
from recon.settings import get_settings


def test_importing_the_adapters_creates_no_client() -> None:
    code = (
        "import sys, recon.adapters.aws as a, recon.adapters.s3, recon.adapters.dynamodb, "
        "recon.adapters.notify, recon.adapters.workflow; "
        "sys.exit(1 if (a._clients or a._resources or a._session) else 0)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr


def test_adapters_create_their_client_on_first_use_only() -> None:
    store = S3ObjectStore()
    repo = DynamoRunRepository("recon")
    assert not aws._clients and not aws._resources

    assert store.client is aws.client("s3")
    assert repo.table.name == "recon"
    assert repo.table.meta.client.meta.service_model.service_name == "dynamodb"
    assert set(aws._resources) == {("dynamodb", None, None)}


def test_clients_are_cached_per_service_and_region() -> None:
    s3 = aws.client("s3")
    assert aws.client("s3") is s3
    sns: object = aws.client("sns")
    assert sns is not s3
    other_region = aws.client("s3", region="cn-north-1")
    assert other_region is not s3
    assert other_region.meta.region_name == "cn-north-1"
    assert s3.meta.region_name == "us-east-1"


def test_endpoint_override_from_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in {"RECON_RAW_BUCKET": "r", "RECON_DATA_BUCKET": "d", "RECON_TABLE_NAME": "t"}.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:5000")
    get_settings.cache_clear()

    assert aws.endpoint_url() == "http://127.0.0.1:5000"
    assert aws.client("s3").meta.endpoint_url == "http://127.0.0.1:5000"
    assert aws.resource("dynamodb").meta.client.meta.endpoint_url == "http://127.0.0.1:5000"


def test_endpoint_override_without_full_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("RECON_RAW_BUCKET", raising=False)
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://localhost:4566")
    get_settings.cache_clear()

    assert aws.client("stepfunctions").meta.endpoint_url == "http://localhost:4566"


def test_reset_forgets_clients() -> None:
    first = aws.client("s3")
    aws.reset()
    assert aws.client("s3") is not first


def test_error_code_of_non_aws_errors_is_empty() -> None:
    assert aws.error_code(ValueError("x")) == ""
