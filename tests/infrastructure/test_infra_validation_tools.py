"""The template passes SAM's own validation and the pinned cfn-lint, offline and without credentials."""

from __future__ import annotations

import pytest

from tests.infrastructure.helpers import TEMPLATE_PATH, TOOLS_BIN, run, tool

pytestmark = pytest.mark.needs_sam


def test_sam_validate_lint_passes() -> None:
    sam = tool(TOOLS_BIN / "sam", "make tools")
    result = run([str(sam), "validate", "--lint", "--template", str(TEMPLATE_PATH), "--region", "us-east-1"])
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "is a valid SAM Template" in output, output


def test_sam_cli_is_the_pinned_version() -> None:
    sam = tool(TOOLS_BIN / "sam", "make tools")
    result = run([str(sam), "--version"])
    assert result.returncode == 0, result.stderr
    assert "1.170.0" in result.stdout


def test_cfn_lint_passes() -> None:
    cfn_lint = tool(TOOLS_BIN / "cfn-lint", "make tools")
    version = run([str(cfn_lint), "--version"])
    assert "1.58.0" in version.stdout + version.stderr
    result = run([str(cfn_lint), "--format", "parseable", str(TEMPLATE_PATH)])
    # cfn-lint exits non-zero for errors (2), warnings (4) and informational findings (8).
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.strip() == ""
