"""Functions deployed without the AWS SDK for pandas layer must import without pandas, numpy or pyarrow,
and no handler may create AWS clients at import time (they must be created under the active mock / at call)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
WITHOUT_DATAFRAMES = [
    "start_run",
    "fetch_bank",
    "fetch_alipay",
    "fetch_wechat",
    "report",
    "api",
    "sync_project",
    "extract_pdf",
]
ALL = [*WITHOUT_DATAFRAMES, "parse", "match", "resolve"]

_BLOCKER = """
import importlib.abc, sys
class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if name.split('.')[0] in {'pandas', 'numpy', 'pyarrow'}:
            raise ImportError(f'{name} is not in this function\\'s layers')
        return None
sys.meta_path.insert(0, Block())
"""

_IMPORT = """
import importlib.util, os, sys
os.environ.update(RECON_RAW_BUCKET='r', RECON_DATA_BUCKET='d', RECON_TABLE_NAME='t', AWS_DEFAULT_REGION='us-east-1')
import boto3
def _no_clients(*a, **k):
    raise AssertionError('AWS client created at import time')
boto3.client = boto3.resource = boto3.Session.client = boto3.Session.resource = _no_clients
spec = importlib.util.spec_from_file_location('app', sys.argv[1])
module = importlib.util.module_from_spec(spec)
spec.loader.exec_module(module)
assert callable(module.lambda_handler)
"""


@pytest.mark.parametrize("function", WITHOUT_DATAFRAMES)
def test_function_imports_without_dataframe_libraries(function: str) -> None:
    app = REPO / "functions" / function / "app.py"
    result = subprocess.run(
        [sys.executable, "-c", _BLOCKER + _IMPORT, str(app)], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr[-2000:]


@pytest.mark.parametrize("function", ALL)
def test_handler_is_thin_and_creates_no_client_at_import(function: str) -> None:
    app = REPO / "functions" / function / "app.py"
    source = app.read_text("utf-8")
    assert "import boto3" not in source and "from boto3" not in source
    result = subprocess.run(
        [sys.executable, "-c", _IMPORT, str(app)], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr[-2000:]
