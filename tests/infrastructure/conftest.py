"""Fixtures for the infrastructure tests (see helpers.py for the tool and template helpers)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pytest

from recon_local.size_report import load_template
from tests.infrastructure.helpers import TEMPLATE_PATH, resources_of_type


@pytest.fixture(scope="session")
def template() -> dict[str, Any]:
    return load_template(TEMPLATE_PATH)


@pytest.fixture(scope="session")
def functions(template: Mapping[str, Any]) -> dict[str, Mapping[str, Any]]:
    return resources_of_type(template, "AWS::Serverless::Function")


@pytest.fixture(scope="session")
def state_machines(template: Mapping[str, Any]) -> dict[str, Mapping[str, Any]]:
    return resources_of_type(template, "AWS::Serverless::StateMachine")
