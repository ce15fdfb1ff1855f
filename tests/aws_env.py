"""Fake AWS credentials and region for tests that create clients: they must never reach real AWS."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from recon.adapters import aws
from recon.settings import get_settings

REGION = "us-east-1"


@pytest.fixture(autouse=True)
def _fake_aws_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_SECURITY_TOKEN", "testing")
    monkeypatch.setenv("AWS_SESSION_TOKEN", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    monkeypatch.setenv("AWS_REGION", REGION)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)  # moto intercepts the real endpoints only
    get_settings.cache_clear()
    aws.reset()
    yield
    aws.reset()
    get_settings.cache_clear()
