"""Helpers for the infrastructure tests (SAM template, ASL definitions, Lambda size budget).

Tool binaries come from the repo: `.tools/bin` (SAM CLI, cfn-lint; `make tools`) and `node_modules/.bin`
(asl-validator; `npm ci`). A test needing one that is absent skips with the command that installs it;
`make test` runs `make tools` first, so in CI nothing is skipped.
"""

from __future__ import annotations

import os
import re
import subprocess
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
TEMPLATE_PATH = REPO_ROOT / "infra" / "template.yaml"
TOOLS_BIN = REPO_ROOT / ".tools" / "bin"
NODE_BIN = REPO_ROOT / "node_modules" / ".bin"

PLACEHOLDER = re.compile(r"\$\{([^}]+)\}")


def tool(path: Path, install_hint: str) -> Path:
    """The tool's path, or skip the test with a clear message when it is not installed."""
    if not path.exists():
        pytest.skip(f"{path.relative_to(REPO_ROOT)} absent: run `{install_hint}` (make test does this)")
    return path


def offline_aws_env() -> dict[str, str]:
    """Environment for SAM/cfn-lint: a dummy region, no credentials, no telemetry, no config files."""
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith("AWS_") or key in {"AWS_CA_BUNDLE"}
    }
    env.update(
        {
            "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_REGION": "us-east-1",
            "AWS_CONFIG_FILE": os.devnull,
            "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
            "AWS_EC2_METADATA_DISABLED": "true",
            "SAM_CLI_TELEMETRY": "0",
            "SAM_CLI_CONTACT_DETAILS_DISABLED": "1",
        }
    )
    return env


def run(command: list[str], *, timeout: int = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        command,
        cwd=REPO_ROOT,
        env=offline_aws_env(),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def resources_of_type(template: Mapping[str, Any], resource_type: str) -> dict[str, Mapping[str, Any]]:
    return {
        logical_id: resource
        for logical_id, resource in template["Resources"].items()
        if resource.get("Type") == resource_type
    }


def iter_policy_statements(template: Mapping[str, Any]) -> Iterator[tuple[str, Mapping[str, Any]]]:
    """(owner, statement) for every IAM statement written in the template.

    Covers inline policy documents in Serverless Function/StateMachine `Policies`, IAM roles/policies,
    and resource policies (bucket, queue, topic, key). SAM policy templates (e.g. LambdaInvokePolicy) are
    not statements and are checked separately.
    """
    for logical_id, resource in template["Resources"].items():
        props = resource.get("Properties", {})
        documents: list[Any] = []
        policies = props.get("Policies")
        if isinstance(policies, list):
            for policy in policies:
                if isinstance(policy, Mapping) and "Statement" in policy:
                    documents.append(policy)
                elif isinstance(policy, Mapping) and "PolicyDocument" in policy:
                    documents.append(policy["PolicyDocument"])
        for key in ("PolicyDocument", "KeyPolicy", "AssumeRolePolicyDocument"):
            if isinstance(props.get(key), Mapping):
                documents.append(props[key])
        for document in documents:
            statements = document.get("Statement", [])
            for statement in statements if isinstance(statements, list) else [statements]:
                yield logical_id, statement


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]
