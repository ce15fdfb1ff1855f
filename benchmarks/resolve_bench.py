"""The stages after matching at the sizes the match stage handles: resolve and report, as deployed.

The generated three-way day of ``match_bench`` (cached with ``--data``) is matched once the way the
Distributed Map runs it (``match_bench.partitioned``: plan → partitions → residual over a directory standing
in for S3); then ``recon.pipeline.resolve.resolve_run`` and ``recon.pipeline.report.report_run`` each run in a
fresh child process, as a Lambda invocation would (imports done first: a warm container has them). Each
reports wall time, CPU (user+sys) and peak RSS (``VmHWM``), and the SHA-256 of every object the stage
wrote, so a change can be checked byte for byte.

The repository is the in-memory one; what resolve stored there (the run, cases, suggested groups, audit) is
handed to the report's process as the JSON the memory adapter keeps, and loaded before the clock starts.

    python -m benchmarks.resolve_bench --sizes 1000000 --data /tmp/capacity-data
"""

from __future__ import annotations

import argparse
import hashlib
import pickle
import resource
import shutil
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from benchmarks import match_bench
from benchmarks.child import in_child
from benchmarks.match_bench import _RUN_ID, DAY, DirectoryStore, _deployed_services, _in_child
from benchmarks.memory import peak_rss_mib

_REPO_STATE = "repo-state.pickle"


def _cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _sha(path: Path) -> str:
    """SHA-256 (first 16 hex digits) of a file, read a block at a time (the task's peak is measured first,
    but a whole matches.csv read here would still crowd the machine)."""
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while block := f.read(1 << 22):
            digest.update(block)
    return digest.hexdigest()[:16]


RESOLVE_WRITES = ("matches.csv", "cases.csv", "filtered.csv", "open_items.csv")
REPORT_WRITES = ("report.html", "summary.json")


def _digests(root: Path, prefix: str, names: tuple[str, ...]) -> dict[str, str]:
    """SHA-256 of the objects ``names`` under ``prefix``."""
    return {name: _sha(DirectoryStore(root).path("data", prefix + name)) for name in names}


def _ref() -> Any:
    from recon.pipeline.contracts import RunRef

    return RunRef(run_id=_RUN_ID, project_id="bench", business_date=DAY)


def _repo_state(repo: Any) -> dict[str, Any]:
    return {name: getattr(repo, name) for name in ("_runs", "_results", "_audit")}


def resolve_task(root: Path) -> dict[str, Any]:
    """One invocation of the resolve stage over the matched day under ``root``."""
    import recon.pipeline.resolve as stage
    from recon.domain import Run
    from recon.keys import REPORT_DATA_FILE, report_prefix, result_key

    svc = _deployed_services(root, 1)
    started_at = datetime(2026, 11, 21, 1, 0, tzinfo=UTC)
    svc.repo.put_run(
        Run(run_id=_RUN_ID, project_id="bench", project_version=1, business_date=DAY, started_at=started_at)
    )
    cpu = _cpu_s()
    began = time.perf_counter()
    out = stage.resolve_run(_ref(), svc)
    seconds = time.perf_counter() - began
    cpu_s = _cpu_s() - cpu
    peak = peak_rss_mib()  # the stage's own peak, before the benchmark's bookkeeping below
    (root / _REPO_STATE).write_bytes(pickle.dumps(_repo_state(svc.repo)))
    digests = _digests(root, report_prefix("bench", DAY, _RUN_ID), RESOLVE_WRITES)
    digest_key = result_key("bench", DAY, _RUN_ID, REPORT_DATA_FILE)
    digests[REPORT_DATA_FILE] = _sha(DirectoryStore(root).path("data", digest_key))
    return {
        "seconds": seconds,
        "cpu_s": cpu_s,
        "peak_rss_mib": peak,
        "output": out.model_dump(mode="json"),
        "digests": digests,
    }


def report_task(root: Path) -> dict[str, Any]:
    """One invocation of the report stage, after ``resolve_task`` (the repository as resolve left it)."""
    import recon.pipeline.report as stage
    from recon.keys import report_prefix

    svc = _report_services(root)
    state = pickle.loads((root / _REPO_STATE).read_bytes())  # noqa: S301 (written by resolve_task)
    state.pop("_results")  # stays on disk: the function reads its cases from DynamoDB
    for name, value in state.items():
        setattr(svc.repo, name, value)
    del state
    stored = svc.repo

    def list_cases(run_id: str) -> list[Any]:
        # As from DynamoDB: the stored items arrive, become Case objects, and only the objects stay.
        from recon.domain import Case

        results = pickle.loads((root / _REPO_STATE).read_bytes())["_results"]  # noqa: S301
        items = results[run_id].cases
        return [Case.model_validate_json(items[k]) for k in sorted(items)]

    stored.list_cases = list_cases
    svc.clock = lambda: datetime(2026, 11, 21, 1, 5, tzinfo=UTC)
    cpu = _cpu_s()
    began = time.perf_counter()
    out = stage.report_run(_ref(), svc)
    seconds = time.perf_counter() - began
    cpu_s = _cpu_s() - cpu
    peak = peak_rss_mib()
    digests = _digests(root, report_prefix("bench", DAY, _RUN_ID), REPORT_WRITES)
    return {"seconds": seconds, "cpu_s": cpu_s, "peak_rss_mib": peak, "cases": out.cases, "digests": digests}


def _report_services(root: Path) -> Any:
    """What the report stage uses: the store and an (in-memory) repository; no statements, no pyarrow."""
    from recon.adapters.memory import (
        MemoryAlertPublisher,
        MemoryMailer,
        MemoryRunRepository,
        MemoryScheduleManager,
        MemoryWorkflowStarter,
    )
    from recon.pipeline.services import Services
    from recon.settings import Settings

    return Services(
        settings=Settings(raw_bucket="raw", data_bucket="data", table_name="bench"),
        store=DirectoryStore(root),
        repo=MemoryRunRepository(),
        mailer=MemoryMailer(),
        alerts=MemoryAlertPublisher(),
        workflow=MemoryWorkflowStarter(),
        schedules=MemoryScheduleManager(),
    )


def matched_day(data: Path, root: Path, partitions: int) -> dict[str, Any]:
    """The day matched as deployed into ``root`` (a directory store); the match figures, for reference."""
    if not (data / "erp.parquet").exists():
        _in_child("generate", data, int(data.name.split("-")[-1]))
    return match_bench.partitioned(data, root, partitions)


def run(sizes: list[int], data_root: Path | None, repeat: int, partitions: int) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    tmp = Path(tempfile.mkdtemp(prefix="recon-resolve-bench-"))
    try:
        for n in sizes:
            data = (data_root or tmp) / f"data-{n}"
            root = tmp / "store"
            match = matched_day(data, root, partitions)
            resolves, reports = [], []
            for _ in range(repeat):  # interleaved: resolve, report, resolve, report, …
                resolves.append(_in_child_here("resolve_task", root))
                reports.append(_in_child_here("report_task", root))
            rows.append(
                {
                    "rows": match["rows"],
                    "match_digest": match["digest"],
                    "resolve": resolves,
                    "report": reports,
                }
            )
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return rows


def _in_child_here(target: str, *args: Any) -> dict[str, Any]:
    return in_child(__name__, target, *args)


def _median(values: list[float]) -> float:
    ordered = sorted(values)
    mid = len(ordered) // 2
    return ordered[mid] if len(ordered) % 2 else (ordered[mid - 1] + ordered[mid]) / 2


def report(rows: list[dict[str, Any]]) -> str:
    lines = []
    for r in rows:
        lines.append(f"three-way day, {r['rows']:,} rows (match digest {r['match_digest'][:16]}…)")
        for stage in ("resolve", "report"):
            runs = r[stage]
            digests = {tuple(sorted(x["digests"].items())) for x in runs}
            lines.append(
                f"  {stage:<8} wall median {_median([x['seconds'] for x in runs]):6.2f} s "
                f"(runs {', '.join(format(x['seconds'], '.2f') for x in runs)}), "
                f"CPU median {_median([x['cpu_s'] for x in runs]):6.2f} s, "
                f"peak RSS max {max(x['peak_rss_mib'] for x in runs):6.0f} MiB"
                + ("" if len(digests) == 1 else "  DIGESTS DIFFER BETWEEN RUNS")
            )
        for name, digest in [*r["resolve"][-1]["digests"].items(), *r["report"][-1]["digests"].items()]:
            lines.append(f"    {name:<16} {digest}")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--sizes", default="1000000", help="rows per side of the three-way day (comma-separated)"
    )
    parser.add_argument("--data", type=Path, help="keep generated days here and reuse them")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--partitions", type=int, default=16)
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",") if s]
    print(report(run(sizes, args.data, args.repeat, args.partitions)), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
