"""The `recon` command line, in-process: `demo` and `run` on the demo's input folder."""

from __future__ import annotations

import csv
import json
from datetime import date
from pathlib import Path

import pytest

from recon.domain import Project
from recon_local.accuracy import run_dates, run_labelled_set
from recon_local.cli import main
from recon_local.demo_data import generate_day, write_day
from recon_local.labelled import generate_labelled_days
from tests.export_contract import FOUNDATION_CASE, FOUNDATION_MATCH

REPO = Path(__file__).resolve().parents[2]


def _run_demo_project(tmp_path: Path) -> int:
    """`recon run` with the demo project on tmp_path/input, writing to tmp_path/out."""
    project = REPO / "local/recon_local/projects/demo.yaml"
    return main(
        [
            "run",
            "--project",
            str(project),
            "--date",
            "2026-11-20",
            "--input",
            str(tmp_path / "input"),
            "--out",
            str(tmp_path / "out"),
        ]
    )


def test_demo_command_finds_every_planted_difference(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["demo", "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "OK: 6 planted, 6 found, 0 unexpected" in out
    assert "MISSED" not in out and "UNEXPECTED" not in out
    assert "E-mail captured by (local) SES" in out and "To: finance@example.com" in out
    assert (tmp_path / "report.html").read_text("utf-8").startswith("<!doctype html>")


def test_run_command_on_the_demo_input_folder_writes_four_files(tmp_path: Path) -> None:
    day = generate_day(date(2026, 11, 20), seed=11)
    write_day(day, tmp_path / "input")
    code = _run_demo_project(tmp_path)
    assert code == 0
    out = tmp_path / "out"
    assert sorted(p.name for p in out.iterdir()) == [
        "cases.csv",
        "filtered.csv",
        "matches.csv",
        "open_items.csv",
        "report.html",
        "summary.json",
    ]
    with (out / "matches.csv").open(encoding="utf-8-sig") as f:
        matches = list(csv.DictReader(f))
    # The foundation's columns come first, in order; new columns are appended.
    assert list(matches[0])[:6] == FOUNDATION_MATCH
    assert {m["source"] for m in matches} == {"erp", "wechat", "alipay", "bank"}
    with (out / "cases.csv").open(encoding="utf-8-sig") as f:
        cases = list(csv.DictReader(f))
    assert list(cases[0])[:9] == FOUNDATION_CASE
    assert {(c["type"], c["source"], c["txn_id"]) for c in cases} >= {
        (p.case_type, p.source, p.txn_id) for p in day.planted
    }
    summary = json.loads((out / "summary.json").read_text("utf-8"))
    assert summary["balanced"] and len(summary["files"]) == 4
    assert summary["quarantined_files"] == 0
    assert sum(s["rows_in"] for s in summary["sources"].values()) == sum(
        f["rows_parsed"] for f in summary["files"]
    )


def test_run_command_refuses_a_file_it_cannot_assign(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "input").mkdir()
    (tmp_path / "input" / "notes.txt").write_text("hello", encoding="utf-8")
    code = _run_demo_project(tmp_path)
    assert code == 2
    assert "notes.txt" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("arguments", "expected"),
    [
        (["--input", "/nonexistent"], "error: --input /nonexistent: no such folder"),
        (["--project", "/nonexistent.yaml"], "error: --project /nonexistent.yaml: No such file or directory"),
        (["--project", "{invalid}"], "is not a valid project file: "),
    ],
)
def test_run_command_reports_a_wrong_argument_in_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], arguments: list[str], expected: str
) -> None:
    write_day(generate_day(date(2026, 11, 20)), tmp_path / "input")
    invalid = tmp_path / "invalid.yaml"
    invalid.write_text("project_id: Not An Id\n", encoding="utf-8")
    given = dict(
        zip(arguments[::2], [a.replace("{invalid}", str(invalid)) for a in arguments[1::2]], strict=True)
    )
    options = {
        "--project": str(REPO / "local/recon_local/projects/demo.yaml"),
        "--input": str(tmp_path / "input"),
        "--out": str(tmp_path / "out"),
    } | given
    code = main(["run", "--date", "2026-11-20", *[x for pair in options.items() for x in pair]])
    err = capsys.readouterr().err
    assert code == 2 and expected in err and len(err.strip().splitlines()) == 1, err
    assert "Traceback" not in err and not (tmp_path / "out").exists()


def test_run_over_consecutive_days_carries_over_like_the_accuracy_tool(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`recon run --date D1 --to D2` runs the days in one local cloud: the same cases and matches as the
    accuracy tool's shared-cloud run of the same files (a fresh cloud per day would lose the carry-over)."""
    labelled = generate_labelled_days(5151, date(2026, 3, 5), 2, 30, directory=tmp_path / "set")
    project = Project.from_yaml(labelled.project_text)
    dates = [d for d in run_dates(project, labelled) if d <= max(labelled.business_dates)]
    assert len(dates) >= 2
    shared = run_labelled_set(labelled, tmp_path / "accuracy")
    argv = ["run", "--project", str(tmp_path / "set/project.yaml"), "--input", str(tmp_path / "set/files")]
    days = ["--date", dates[0].isoformat(), "--to", dates[-1].isoformat()]
    assert main([*argv, *days, "--out", str(tmp_path / "cli")]) == 0
    printed = capsys.readouterr().out
    assert all(f"=== {d} ===" in printed for d in dates)
    compared = ("cases.csv", "matches.csv", "open_items.csv")
    for day_run in shared.runs[: len(dates)]:
        for name in compared:
            cli = tmp_path / "cli" / day_run.business_date.isoformat() / name
            assert cli.read_bytes() == (day_run.out_dir / name).read_bytes(), (day_run.business_date, name)
    # One invocation per day (a fresh cloud each time) does not give the shared-cloud results.
    last = dates[-1].isoformat()
    assert main([*argv, "--date", last, "--out", str(tmp_path / "alone")]) == 0
    alone = [(tmp_path / "alone" / name).read_bytes() for name in compared]
    assert alone != [(shared.runs[len(dates) - 1].out_dir / name).read_bytes() for name in compared]
