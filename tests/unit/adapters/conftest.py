"""Unit tests create clients (offline) but must never reach AWS."""

from tests.aws_env import REGION, _fake_aws_env

__all__ = ["REGION", "_fake_aws_env"]
