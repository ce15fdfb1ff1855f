"""Fake AWS credentials and region for the moto-backed adapter tests; a moto mock per test that asks."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from moto import mock_aws

from recon.adapters import aws
from tests.aws_env import REGION, _fake_aws_env

__all__ = ["REGION", "_fake_aws_env", "moto"]


@pytest.fixture
def moto() -> Iterator[None]:
    """An active moto mock; adapter clients are created lazily inside it."""
    with mock_aws():
        aws.reset()
        yield
    aws.reset()
