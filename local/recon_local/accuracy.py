"""Run the real pipeline over a labelled set of days and score it (docs/accuracy.md).

One ``LocalCloud`` (moto, our ASL, our handlers in-process) serves every run, so whatever the pipeline
keeps between days (open items, statements, results) carries over as it does in AWS. Every file is
uploaded once, under its own statement date, as a user (or a fetcher) would deliver it; then the state
machine runs each business date in order, exactly as ``recon run`` does for one date.

The dates run are the labelled days, plus any date whose run reads one of the files (a bank statement of
T+1 is read by the run of the day before when the project also settles T+2). Then, while the last run left
open items, up to ``carry_over_days + 1`` more days with no new files, so that items still in flight at
the end are matched or, once older than ``carry_over_days``, turned into cases the way the project says.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path

from recon.domain import Project
from recon.keys import project_config_key, raw_key, report_prefix
from recon.pipeline.projects import business_dates_needing, run_id_for

from .labelled import LabelledSet, generate_labelled_days
from .runtime import LocalCloud
from .scoring import Score, score

__all__ = ["AccuracyRun", "DayRun", "evaluate", "run_dates", "run_labelled_set", "tail_dates"]


@dataclass(frozen=True)
class DayRun:
    business_date: date
    status: str
    error: str | None
    out_dir: Path


@dataclass
class AccuracyRun:
    labelled: LabelledSet
    runs: list[DayRun] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def out_dirs(self) -> list[Path]:
        return [r.out_dir for r in self.runs]

    @property
    def failed(self) -> list[DayRun]:
        return [r for r in self.runs if r.status != "SUCCEEDED"]


def run_dates(project: Project, labelled: LabelledSet) -> list[date]:
    """Every business date whose run reads the set's files, and the labelled days, ascending."""
    dates = set(labelled.business_dates)
    for f in labelled.files:
        dates.update(business_dates_needing(project, project.account(f.account_id), f.statement_date))
    return sorted(dates)


def tail_dates(project: Project, labelled: LabelledSet) -> list[date]:
    """Days after the last needed run on which items still open may age into cases (no new files)."""
    last = max(run_dates(project, labelled))
    return [last + timedelta(days=n) for n in range(1, project.carry_over_days + 2)]


def _open_items(out_dir: Path) -> int:
    path = out_dir / "open_items.csv"
    if not path.exists():
        return 0
    with path.open(encoding="utf-8-sig") as handle:
        return max(0, sum(1 for line in handle if line.strip()) - 1)


def run_labelled_set(labelled: LabelledSet, out_root: Path, *, template: Path | None = None) -> AccuracyRun:
    """Upload the set's files to a local cloud, run each needed business date, copy each run's outputs
    (everything the report stage wrote) to ``out_root/<date>/``."""
    from recon.adapters.dynamodb import DynamoRunRepository
    from recon.adapters.s3 import S3ObjectStore

    project = Project.from_yaml(labelled.project_text)
    result = AccuracyRun(labelled=labelled)
    started = time.monotonic()
    with LocalCloud(template) if template else LocalCloud() as cloud:
        store = S3ObjectStore()
        repo = DynamoRunRepository(cloud.table_name)
        store.put(
            cloud.data_bucket,
            project_config_key(project.project_id),
            labelled.project_text.encode("utf-8"),
        )
        for f in labelled.files:
            key = raw_key(project.project_id, f.account_id, f.statement_date, f.name)
            store.put(cloud.raw_bucket, key, f.content)
        needed = run_dates(project, labelled)
        for business_date in needed + tail_dates(project, labelled):
            if business_date > needed[-1] and not (result.runs and _open_items(result.runs[-1].out_dir)):
                break  # nothing left in flight: a run without statements or open items has nothing to do
            arn = cloud.start_execution(
                {
                    "project_id": project.project_id,
                    "business_date": business_date.isoformat(),
                    "trigger": "manual",
                },
                name=f"{project.project_id}-{business_date:%Y%m%d}-accuracy",
            )
            execution = cloud.wait(arn, timeout_s=600)
            out_dir = out_root / business_date.isoformat()
            out_dir.mkdir(parents=True, exist_ok=True)
            run_id = run_id_for(project.project_id, business_date)
            prefix = report_prefix(project.project_id, business_date, run_id)
            for obj in store.list(cloud.data_bucket, prefix):
                (out_dir / obj.key[len(prefix) :]).write_bytes(store.get(cloud.data_bucket, obj.key))
            error = None
            if execution.status != "SUCCEEDED":
                record = repo.get_run(run_id)
                # The state machine's error is generic; the run record says what went wrong.
                detail = record.error if record is not None and record.error else execution.cause
                error = f"{execution.error}: {(detail or '')[:500]}"
            result.runs.append(DayRun(business_date, execution.status, error, out_dir))
    result.seconds = time.monotonic() - started
    return result


def evaluate(
    seed: int,
    days: int,
    orders_per_day: int,
    work_dir: Path,
    *,
    start: date = date(2026, 3, 5),
    profile: str = "realistic",
) -> tuple[AccuracyRun, Score]:
    """Generate a labelled set into ``work_dir/set``, run it into ``work_dir/runs``, and score it."""
    labelled = generate_labelled_days(seed, start, days, orders_per_day, profile, directory=work_dir / "set")
    run = run_labelled_set(labelled, work_dir / "runs")
    result = score(labelled, run.out_dirs)
    for failed in run.failed:
        result.notes.append(f"run {failed.business_date} {failed.status}: {failed.error}")
    return run, result
