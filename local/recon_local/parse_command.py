"""`recon parse FILE... [--profile P|PATH.yaml] [--out DIR] [--json]`: read statement files offline.

For each file: the format (detected, with its confidence, or the profile given), the profile and version that
read it, the encoding, the row accounting (read = parsed + skipped by rule + rejected), the rows flagged as
in-file duplicates, every control total (✓/✗, stated and computed) and every error (file, row, column,
reason). The verdict is the parse stage's: a file with any error would be quarantined. ``--out`` receives
``<stem>.csv`` and ``<stem>.parquet`` with the normalized rows of each accepted file (the Parquet is what the
parse stage stores, in ``recon.tables.NORMALIZED_SCHEMA``). Exit status: 0 when every file is accepted, 1 when
any is rejected, 2 when the command itself is wrong (unreadable file, invalid profile).
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow.csv as pacsv

from recon.domain import RowError, Source
from recon.parsing import (
    ParsedStatement,
    Profile,
    StatementParseError,
    builtin_profiles,
    detect,
    parse_statement,
)
from recon.parsing.readers import pdf
from recon.pipeline.overlap import count_true
from recon.pipeline.parse import source_of_format
from recon.pipeline.profile_store import ProfileError, ProfileSpec, profile_from_text
from recon.reporting.export import CSV_BOM
from recon.tables import normalized, table_to_parquet

MAX_ERRORS_PRINTED = 20
MAX_ERRORS_IN_JSON = 1000


class UsageError(Exception):
    """The command cannot run as asked (exit status 2)."""


@dataclass
class FileResult:
    path: Path
    format: str
    confidence: float | None  # None when a profile was given instead of detecting
    parsed: ParsedStatement | None
    errors: list[RowError]
    outputs: list[Path] = field(default_factory=list)

    @property
    def accepted(self) -> bool:
        return self.parsed is not None and not self.errors

    def as_json(self) -> dict[str, Any]:
        p = self.parsed
        return {
            "file": str(self.path),
            "verdict": "accepted" if self.accepted else "rejected",
            "format": p.format if p else self.format,
            "confidence": self.confidence,
            "profile": p.profile if p else None,
            "profile_version": p.profile_version if p else None,
            "encoding": p.encoding if p else None,
            "rows_read": p.rows_read if p else 0,
            "rows_parsed": p.rows_parsed if p else 0,
            "rows_skipped": p.rows_skipped if p else 0,
            "skipped_by_rule": p.skipped_by_rule if p else {},
            "rows_rejected": len(p.errors) if p else 0,
            "in_file_duplicates": count_true(p.table, "in_file_duplicate") if p else 0,
            "control_totals": [{**t.model_dump(), "ok": t.ok} for t in (p.control_totals if p else [])],
            "errors": [e.model_dump() for e in self.errors[:MAX_ERRORS_IN_JSON]],
            "error_count": len(self.errors),
            "outputs": [str(o) for o in self.outputs],
        }


def load_profile(text: str) -> Profile:
    """``--profile``: a profile file (validated like an upload), else a built-in ``name[@version]``."""
    path = Path(text)
    if path.suffix in (".yaml", ".yml", ".json") or path.exists():
        try:
            content = path.read_text("utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise UsageError(f"cannot read profile {path}: {exc}") from exc
        try:
            return profile_from_text(content, name=path.stem, version=None, where=str(path))
        except ProfileError as exc:
            raise UsageError(str(exc)) from exc
    try:
        spec = ProfileSpec.parse(text)
        return builtin_profiles().get(spec.name, spec.version)
    except (ProfileError, KeyError) as exc:
        raise UsageError(
            f"--profile {text!r}: {exc.args[0] if isinstance(exc, KeyError) else exc} "
            "(give a profile file, or a built-in profile as name or name@version)"
        ) from exc


def read_file(path: Path, profile: Profile | None, *, currency: str, timezone: str) -> FileResult:
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise UsageError(f"cannot read {path}: {exc}") from exc
    with pdf.reading_once():  # detect() and parse_statement() read a PDF's tables: extract them once
        return _read(path, data, profile, currency=currency, timezone=timezone)


def _read(path: Path, data: bytes, profile: Profile | None, *, currency: str, timezone: str) -> FileResult:
    if profile is not None:
        fmt, confidence, source = profile.name, None, profile.source
    else:
        found = detect(data, path.name)
        fmt, confidence = found.format, found.confidence
        source = found.profile.source if found.profile is not None else None
    try:
        parsed = parse_statement(
            data,
            filename=path.name,
            raw_key=str(path),
            statement_id=path.stem,
            source=source or source_of_format(fmt) or Source.BANK,
            account_id="local",
            currency=currency,
            timezone=timezone,
            profile=profile,
        )
    except StatementParseError as exc:
        return FileResult(path, fmt, confidence, exc.parsed, list(exc.errors))
    return FileResult(path, fmt, confidence, parsed, list(parsed.errors))


def output_stem(path: Path) -> str:
    """The file's name without its container and format suffixes: ``x.csv.zip`` -> ``x``."""
    name = path.name
    for container in (".gz", ".zip"):
        name = name.removesuffix(container)
    return Path(name).stem or path.name


def write_rows(result: FileResult, out: Path, stem: str) -> None:
    assert result.parsed is not None
    table = normalized(result.parsed.table)
    out.mkdir(parents=True, exist_ok=True)
    parquet, csv = out / f"{stem}.parquet", out / f"{stem}.csv"
    parquet.write_bytes(table_to_parquet(table))
    with csv.open("wb") as sink:
        sink.write(CSV_BOM)  # Excel on a zh-CN Windows reads a CSV without one as GBK
        pacsv.write_csv(table, sink)
    result.outputs = [csv, parquet]


def _mark(ok: bool) -> str:
    return "✓" if ok else "✗"


def describe(result: FileResult) -> list[str]:
    """The text report of one file."""
    p = result.parsed
    verdict = "ACCEPTED" if result.accepted else "REJECTED (the parse stage would quarantine it)"
    lines = [f"{result.path}: {verdict}"]
    how = f"detected, confidence {result.confidence:.2f}" if result.confidence is not None else "--profile"
    lines.append(f"  format      {p.format if p else result.format} ({how})")
    if p is None:
        lines.append("  rows        not read: the file was refused as a whole")
    else:
        lines.append(f"  profile     {p.profile}@{p.profile_version}")
        lines.append(f"  encoding    {p.encoding or '-'}")
        lines.append(
            f"  rows        read {p.rows_read} = parsed {p.rows_parsed} + skipped {p.rows_skipped} "
            f"+ rejected {len(p.errors)}"
        )
        if p.skipped_by_rule:
            lines.append(
                "  skipped     " + ", ".join(f"{rule} {n}" for rule, n in sorted(p.skipped_by_rule.items()))
            )
        lines.append(
            f"  duplicates  {count_true(p.table, 'in_file_duplicate')} row(s) flagged in_file_duplicate"
        )
        if p.control_totals:
            for i, t in enumerate(p.control_totals):
                relation = "=" if t.ok else "≠"
                label = "totals      " if i == 0 else "            "
                lines.append(
                    f"  {label}{_mark(t.ok)} {t.name}: stated {t.stated} {relation} computed {t.computed}"
                )
        else:
            lines.append("  totals      none stated")
    if result.errors:
        lines.append(f"  errors      {len(result.errors)}")
        lines += [f"    {e}" for e in result.errors[:MAX_ERRORS_PRINTED]]
        if len(result.errors) > MAX_ERRORS_PRINTED:
            lines.append(f"    ... and {len(result.errors) - MAX_ERRORS_PRINTED} more")
    else:
        lines.append("  errors      none")
    if result.outputs:
        lines.append("  output      " + ", ".join(str(o) for o in result.outputs))
    return lines


def parse_files(
    files: list[Path],
    *,
    profile: str | None,
    out: Path | None,
    as_json: bool,
    currency: str = "CNY",
    timezone: str = "Asia/Shanghai",
) -> int:
    try:
        chosen = load_profile(profile) if profile else None
        results = [read_file(path, chosen, currency=currency, timezone=timezone) for path in files]
    except UsageError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    used: set[str] = set()
    for result in results:
        if out is not None and result.accepted:
            stem = output_stem(result.path)
            stem = stem if stem not in used else result.path.name
            used.add(stem)
            write_rows(result, out, stem)
    rejected = sum(not r.accepted for r in results)
    if as_json:
        doc = {"files": [r.as_json() for r in results], "rejected": rejected}
        print(json.dumps(doc, ensure_ascii=False, indent=2))
    else:
        for result in results:
            print("\n".join(describe(result)))
        print(f"{len(results)} file(s): {len(results) - rejected} accepted, {rejected} rejected")
    return 1 if rejected else 0


__all__ = ["parse_files"]
