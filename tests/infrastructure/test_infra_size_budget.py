"""Lambda's 250 MB unzipped budget: every function plus its layers fits (recon_local.size_report).

The common layer is measured by pip-installing layers/common/requirements.txt for linux/arm64 CPython 3.12
(cached in .tools/size-cache by requirements hash; the first run downloads wheels from the package index).
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from recon_local import size_report
from recon_local.size_report import (
    LAMBDA_UNZIPPED_LIMIT,
    MIB,
    PANDAS_LAYER_BYTES,
    FunctionSize,
    SizeReport,
)

DATAFRAME_FUNCTIONS = {"ParseFunction", "MatchFunction", "ResolveFunction"}


@pytest.fixture(scope="module")
def report() -> SizeReport:
    return size_report.measure()


def test_every_function_fits_the_lambda_budget(report: SizeReport) -> None:
    table = size_report.render(report)
    assert report.fits, table
    for function in report.functions:
        assert function.total <= LAMBDA_UNZIPPED_LIMIT, table


def test_report_counts_the_right_layers(report: SizeReport) -> None:
    by_name = {fn.logical_id: fn for fn in report.functions}
    assert len(by_name) == 11
    for name, function in by_name.items():
        assert function.layer_bytes["CommonLayer"] == report.common_layer_bytes
        has_pandas = "PandasLayerArn" in function.layer_bytes
        assert has_pandas == (name in DATAFRAME_FUNCTIONS), name
        if has_pandas:
            assert function.layer_bytes["PandasLayerArn"] == PANDAS_LAYER_BYTES == 210 * MIB


def test_common_layer_measurement_is_plausible(report: SizeReport) -> None:
    # pydantic-core alone is several MiB on arm64; the whole layer must leave room next to pandas.
    assert 5 * MIB < report.common_layer_bytes < LAMBDA_UNZIPPED_LIMIT - PANDAS_LAYER_BYTES


def test_budget_check_rejects_an_oversized_function() -> None:
    over = FunctionSize("Big", code_bytes=50 * MIB, layer_bytes={"PandasLayerArn": PANDAS_LAYER_BYTES})
    exact = FunctionSize("Edge", code_bytes=LAMBDA_UNZIPPED_LIMIT, layer_bytes={})
    assert not over.fits and over.headroom < 0
    assert exact.fits and exact.headroom == 0
    assert not SizeReport(common_layer_bytes=0, functions=(exact, over)).fits
    assert "NO" in size_report.render(SizeReport(common_layer_bytes=0, functions=(over,)))


def test_dir_size_ignores_bytecode(tmp_path: Path) -> None:
    (tmp_path / "pkg" / "__pycache__").mkdir(parents=True)
    (tmp_path / "pkg" / "mod.py").write_bytes(b"x" * 100)
    (tmp_path / "pkg" / "__pycache__" / "mod.cpython-312.pyc").write_bytes(b"y" * 1000)
    (tmp_path / "stray.pyc").write_bytes(b"z" * 1000)
    assert size_report.dir_size(tmp_path) == 100
    assert size_report.dir_size(tmp_path / "missing") == 0


def test_cached_measurement_needs_no_pip(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    requirements = tmp_path / "requirements.txt"
    requirements.write_text("somepkg==1.0\n", encoding="utf-8")
    cache = tmp_path / "cache"
    cache.mkdir()
    key = size_report.requirements_key(requirements)
    (cache / f"{key}.json").write_text(json.dumps({"bytes": 4242}), encoding="utf-8")

    def no_pip(*args: object, **kwargs: object) -> None:
        raise AssertionError("pip must not run when the cache holds the measurement")

    monkeypatch.setattr(subprocess, "run", no_pip)
    assert size_report.installed_size(requirements, cache) == 4242
    # A different requirements file is a different key.
    requirements.write_text("somepkg==2.0\n", encoding="utf-8")
    assert size_report.requirements_key(requirements) != key


def test_template_loader_understands_short_form_intrinsics(tmp_path: Path) -> None:
    path = tmp_path / "t.yaml"
    path.write_text(
        "Resources:\n"
        "  A:\n"
        "    Type: X\n"
        "    Properties:\n"
        "      R: !Ref B\n"
        "      G: !GetAtt B.Arn\n"
        "      S: !Sub '${B}-x'\n"
        "      I: !If [C, 1, !Ref AWS::NoValue]\n",
        encoding="utf-8",
    )
    props = size_report.load_template(path)["Resources"]["A"]["Properties"]
    assert props == {
        "R": {"Ref": "B"},
        "G": {"Fn::GetAtt": ["B", "Arn"]},
        "S": {"Fn::Sub": "${B}-x"},
        "I": {"Fn::If": ["C", 1, {"Ref": "AWS::NoValue"}]},
    }
