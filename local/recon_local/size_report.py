"""Unzipped size of every Lambda function plus its layers, against Lambda's 250 MB budget.

Lambda limits a function's code plus all of its layers to 250 MB unzipped (262,144,000 bytes). For each
function declared in ``infra/template.yaml`` this adds up:

* the function's code folder (``CodeUri``), plus whatever its own ``requirements.txt`` installs, as
  ``sam build`` would package it;
* ``CommonLayer``: ``pip install -r layers/common/requirements.txt`` for Lambda's platform
  (manylinux2014_aarch64, CPython 3.12, wheels only) plus the ``layers/common`` folder itself (the
  ``recon`` package);
* the AWS-managed "AWS SDK for pandas" layer (``PandasLayerArn``), which cannot be measured offline. Its
  published releases are about 167-204 MB unzipped (see /work/shared/notes/aws-local.md); we count a
  conservative constant of 210 MiB so that a newer, slightly larger release does not silently break the
  budget.

pip measurements are cached under ``.tools/size-cache/<sha256>.json``, keyed by the requirements file's
content and the target platform, so repeated runs (and tests) need no network once the cache exists.

Run: ``python -m recon_local.size_report`` (``make size``). Exit status 1 when a function is over budget.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

LAMBDA_UNZIPPED_LIMIT = 262_144_000  # bytes: "250 MB" is 250 MiB
MIB = 1024 * 1024
# Conservative stand-in for the AWS SDK for pandas layer (published releases: ~167-204 MB unzipped).
PANDAS_LAYER_BYTES = 210 * MIB

PIP_PLATFORM_ARGS: tuple[str, ...] = (
    "--platform",
    "manylinux2014_aarch64",
    "--implementation",
    "cp",
    "--python-version",
    "3.12",
    "--only-binary=:all:",
)

COMMON_LAYER_ID = "CommonLayer"
PANDAS_LAYER_PARAMETER = "PandasLayerArn"
_SKIP_DIRS = frozenset({"__pycache__", ".mypy_cache", ".pytest_cache", ".ruff_cache"})


def repo_root() -> Path:
    """The repository root (this file is local/recon_local/size_report.py)."""
    return Path(__file__).resolve().parents[2]


# --------------------------------------------------------------------------------------------------
# CloudFormation YAML
# --------------------------------------------------------------------------------------------------
class CfnLoader(yaml.SafeLoader):
    """SafeLoader that understands CloudFormation short-form tags (!Ref, !GetAtt, !Sub, ...)."""


def _construct_cfn_tag(loader: yaml.SafeLoader, tag_suffix: str, node: yaml.Node) -> dict[str, Any]:
    name = "Ref" if tag_suffix == "Ref" else f"Fn::{tag_suffix}"
    value: Any
    if isinstance(node, yaml.ScalarNode):
        value = loader.construct_scalar(node)
        if tag_suffix == "GetAtt" and isinstance(value, str):
            value = value.split(".", 1)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    elif isinstance(node, yaml.MappingNode):
        value = loader.construct_mapping(node, deep=True)
    else:  # pragma: no cover - yaml has no other node kinds
        raise yaml.constructor.ConstructorError(None, None, f"unexpected node for !{tag_suffix}")
    return {name: value}


CfnLoader.add_multi_constructor("!", _construct_cfn_tag)


def load_template(path: Path) -> dict[str, Any]:
    """Parse a CloudFormation/SAM YAML template, short-form intrinsics included."""
    with path.open(encoding="utf-8") as handle:
        loaded = yaml.load(handle, Loader=CfnLoader)  # noqa: S506 - CfnLoader is a SafeLoader subclass
    if not isinstance(loaded, dict):
        raise ValueError(f"{path}: not a CloudFormation template")
    return loaded


# --------------------------------------------------------------------------------------------------
# What each function ships
# --------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class FunctionSpec:
    logical_id: str
    code_dir: Path
    layers: tuple[str, ...]  # "CommonLayer", "PandasLayerArn", or another layer reference


def _layer_name(ref: Any) -> str:
    if isinstance(ref, Mapping) and "Ref" in ref:
        return str(ref["Ref"])
    return str(ref)


def function_specs(template: Mapping[str, Any], template_dir: Path) -> list[FunctionSpec]:
    """Every AWS::Serverless::Function of the template with its code folder and layers (Globals merged)."""
    globals_fn: Mapping[str, Any] = template.get("Globals", {}).get("Function", {})
    global_layers = [_layer_name(layer) for layer in globals_fn.get("Layers", [])]
    specs: list[FunctionSpec] = []
    for logical_id, resource in template.get("Resources", {}).items():
        if resource.get("Type") != "AWS::Serverless::Function":
            continue
        props: Mapping[str, Any] = resource.get("Properties", {})
        code_uri = props.get("CodeUri", globals_fn.get("CodeUri"))
        if not isinstance(code_uri, str):
            raise ValueError(f"{logical_id}: CodeUri must be a local path, got {code_uri!r}")
        layers = global_layers + [_layer_name(layer) for layer in props.get("Layers", [])]
        specs.append(
            FunctionSpec(
                logical_id=logical_id,
                code_dir=(template_dir / code_uri).resolve(),
                layers=tuple(layers),
            )
        )
    return specs


def common_layer_dir(template: Mapping[str, Any], template_dir: Path) -> Path:
    layer = template["Resources"][COMMON_LAYER_ID]
    content_uri = layer["Properties"]["ContentUri"]
    return (template_dir / str(content_uri)).resolve()


# --------------------------------------------------------------------------------------------------
# Measuring
# --------------------------------------------------------------------------------------------------
def dir_size(path: Path) -> int:
    """Total size in bytes of the regular files under ``path`` (bytecode caches excluded)."""
    if not path.exists():
        return 0
    total = 0
    for current, dirs, files in os.walk(path):
        dirs[:] = [d for d in dirs if d not in _SKIP_DIRS]
        for name in files:
            if name.endswith((".pyc", ".pyo")):
                continue
            file_path = Path(current, name)
            if file_path.is_file() and not file_path.is_symlink():
                total += file_path.stat().st_size
    return total


def has_requirements(requirements: Path) -> bool:
    if not requirements.is_file():
        return False
    lines = requirements.read_text(encoding="utf-8").splitlines()
    return any(line.strip() and not line.strip().startswith("#") for line in lines)


def requirements_key(requirements: Path) -> str:
    digest = hashlib.sha256()
    digest.update(requirements.read_bytes())
    digest.update("\0".join(PIP_PLATFORM_ARGS).encode())
    return digest.hexdigest()


def installed_size(requirements: Path, cache_dir: Path, *, refresh: bool = False) -> int:
    """Unzipped size of ``pip install -r requirements`` for Lambda arm64 / CPython 3.12 (cached)."""
    cache_file = cache_dir / f"{requirements_key(requirements)}.json"
    if cache_file.is_file() and not refresh:
        cached = json.loads(cache_file.read_text(encoding="utf-8"))
        return int(cached["bytes"])
    with tempfile.TemporaryDirectory(prefix="recon-size-") as target:
        command = [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
            "--no-compile",
            "--target",
            target,
            *PIP_PLATFORM_ARGS,
            "-r",
            str(requirements),
        ]
        # Fixed argv (our interpreter, our requirements file): no shell, no untrusted input.
        subprocess.run(command, check=True)  # noqa: S603
        size = dir_size(Path(target))
    cache_dir.mkdir(parents=True, exist_ok=True)
    payload = {"bytes": size, "requirements": str(requirements), "pip_args": list(PIP_PLATFORM_ARGS)}
    tmp = cache_file.with_suffix(f".{os.getpid()}.tmp")
    tmp.write_text(json.dumps(payload, indent=2), encoding="utf-8")
    tmp.replace(cache_file)
    return size


@dataclass(frozen=True)
class FunctionSize:
    logical_id: str
    code_bytes: int
    layer_bytes: Mapping[str, int]

    @property
    def total(self) -> int:
        return self.code_bytes + sum(self.layer_bytes.values())

    @property
    def headroom(self) -> int:
        return LAMBDA_UNZIPPED_LIMIT - self.total

    @property
    def fits(self) -> bool:
        return self.total <= LAMBDA_UNZIPPED_LIMIT


@dataclass(frozen=True)
class SizeReport:
    common_layer_bytes: int
    functions: tuple[FunctionSize, ...]

    @property
    def fits(self) -> bool:
        return all(fn.fits for fn in self.functions)


def measure(
    template_path: Path | None = None,
    cache_dir: Path | None = None,
    *,
    refresh: bool = False,
) -> SizeReport:
    root = repo_root()
    template_path = template_path or root / "infra" / "template.yaml"
    cache_dir = cache_dir or root / ".tools" / "size-cache"
    template = load_template(template_path)
    template_dir = template_path.parent

    layer_dir = common_layer_dir(template, template_dir)
    common_bytes = dir_size(layer_dir)
    layer_requirements = layer_dir / "requirements.txt"
    if has_requirements(layer_requirements):
        common_bytes += installed_size(layer_requirements, cache_dir, refresh=refresh)

    sizes: list[FunctionSize] = []
    for spec in function_specs(template, template_dir):
        code = dir_size(spec.code_dir)
        fn_requirements = spec.code_dir / "requirements.txt"
        if has_requirements(fn_requirements):
            code += installed_size(fn_requirements, cache_dir, refresh=refresh)
        layer_bytes: dict[str, int] = {}
        for layer in spec.layers:
            if layer == COMMON_LAYER_ID:
                layer_bytes[layer] = common_bytes
            elif layer == PANDAS_LAYER_PARAMETER:
                layer_bytes[layer] = PANDAS_LAYER_BYTES
            else:
                raise ValueError(f"{spec.logical_id}: no size known for layer {layer!r}")
        sizes.append(FunctionSize(spec.logical_id, code, layer_bytes))
    return SizeReport(common_layer_bytes=common_bytes, functions=tuple(sizes))


# --------------------------------------------------------------------------------------------------
# Output
# --------------------------------------------------------------------------------------------------
def _mib(value: int) -> str:
    return f"{value / MIB:8.1f}"


def render(report: SizeReport) -> str:
    header = (
        f"{'function':<22}{'code MiB':>10}{'common MiB':>12}{'pandas MiB':>12}"
        f"{'total MiB':>11}{'total bytes':>14}{'headroom MiB':>14}  fits"
    )
    lines = [header, "-" * len(header)]
    for fn in report.functions:
        common = fn.layer_bytes.get(COMMON_LAYER_ID)
        pandas = fn.layer_bytes.get(PANDAS_LAYER_PARAMETER)
        lines.append(
            f"{fn.logical_id:<22}{_mib(fn.code_bytes):>10}"
            f"{_mib(common) if common is not None else '-':>12}"
            f"{_mib(pandas) if pandas is not None else '-':>12}"
            f"{_mib(fn.total):>11}{fn.total:>14,}{_mib(fn.headroom):>14}  {'yes' if fn.fits else 'NO'}"
        )
    lines.append("")
    lines.append(
        f"Budget: code + layers <= {LAMBDA_UNZIPPED_LIMIT:,} bytes (250 MiB) per function. "
        f"Common layer measured: {report.common_layer_bytes:,} bytes. AWS SDK for pandas layer counted as "
        f"{PANDAS_LAYER_BYTES:,} bytes (210 MiB, conservative; releases are ~167-204 MB unzipped)."
    )
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m recon_local.size_report",
        description="Unzipped size of each Lambda function plus its layers against the 250 MB budget.",
    )
    parser.add_argument(
        "--template", type=Path, default=None, help="SAM template (default infra/template.yaml)"
    )
    parser.add_argument("--cache-dir", type=Path, default=None, help="default .tools/size-cache")
    parser.add_argument("--refresh", action="store_true", help="re-measure pip installs, ignoring the cache")
    args = parser.parse_args(argv)
    report = measure(args.template, args.cache_dir, refresh=args.refresh)
    print(render(report))
    return 0 if report.fits else 1


if __name__ == "__main__":
    raise SystemExit(main())
