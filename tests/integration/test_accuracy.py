"""Accuracy on labelled days the engine has never seen, through the real pipeline (moto, our ASL, our
handlers in-process), against the issue's targets. A miss fails with the scorer's full report.

The seeds here are reserved for the accuracy work (docs/accuracy.md); engine tests must not use them.
"""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

import pytest

from recon.domain import Project
from recon.pipeline.projects import business_dates_needing
from recon_local.accuracy import evaluate, run_dates, run_labelled_set, tail_dates
from recon_local.labelled import generate_labelled_days

SEED = 4242
START = date(2026, 3, 5)  # Thursday .. Sunday: the Saturday and Sunday Alipay batches are paid together
DAYS = 4
ORDERS = 40


def test_a_small_labelled_set_meets_the_issue_targets(tmp_path: Path) -> None:
    run, result = evaluate(SEED, DAYS, ORDERS, tmp_path, start=START)
    assert run.runs, "no business date was run"
    assert result.labelled_rows > 300
    if run.failed or not result.meets_targets():
        failed = "".join(f"\nrun {r.business_date} {r.status}: {r.error}" for r in run.failed)
        pytest.fail(f"{result.report()}{failed}", pytrace=False)


def test_runs_cover_every_file_and_give_identical_outputs_twice(tmp_path: Path) -> None:
    """Every file is read by some run, runs go on while items are open (up to carry_over_days + 1 days),
    and the same inputs give byte-identical results (matches, cases, filtered rows, open items) twice."""
    labelled = generate_labelled_days(SEED + 100, START, 2, 20)
    project = Project.from_yaml(labelled.project_text)
    dates = run_dates(project, labelled)
    assert set(labelled.business_dates) <= set(dates)
    for f in labelled.files:  # every file is read by a run
        assert set(business_dates_needing(project, project.account(f.account_id), f.statement_date)) <= set(
            dates
        )
    tail = tail_dates(project, labelled)
    assert tail == [max(dates) + timedelta(days=n) for n in range(1, project.carry_over_days + 2)]
    first = run_labelled_set(labelled, tmp_path / "first")
    second = run_labelled_set(labelled, tmp_path / "second")
    ran = [r.business_date for r in first.runs]
    assert ran[: len(dates)] == dates and set(ran[len(dates) :]) <= set(tail)
    assert not first.failed, [(r.business_date, r.error) for r in first.failed]
    for a, b in zip(first.runs, second.runs, strict=True):
        assert (a.out_dir / "matches.csv").exists() and (a.out_dir / "cases.csv").exists()
        for name in ("matches.csv", "cases.csv", "filtered.csv", "open_items.csv"):
            if (a.out_dir / name).exists():
                assert (a.out_dir / name).read_bytes() == (b.out_dir / name).read_bytes(), (
                    a.business_date,
                    name,
                )
