"""`recon`: the local command line.

recon demo [--out DIR] [--date YYYY-MM-DD] [--seed N]
recon run --project FILE --date YYYY-MM-DD [--to YYYY-MM-DD] --input DIR --out DIR
recon parse FILE... [--profile P|PATH.yaml] [--out DIR] [--json]
recon schema [--out FILE]
recon accuracy [--seed S] [--days N] [--orders M] [--start YYYY-MM-DD] [--profile P] [--out DIR]
"""

from __future__ import annotations

import argparse
import sys
import time
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING

import yaml
from pydantic import ValidationError

from recon.domain import project_json_schema
from recon.money import format_amount

if TYPE_CHECKING:
    from .local_run import LocalRunResult

DEMO_DATE = date(2026, 11, 20)


def _print_result(result: LocalRunResult) -> None:
    from recon.reporting import summary_text
    from recon.reporting.masking import Masker

    text = summary_text(result.project, result.run, result.cases, str(result.outputs.get("report.html", "")))
    print(Masker.for_project(result.project).text(text))  # masked as the e-mail is
    print(
        f"Execution: {result.execution_status}  states: {' -> '.join(dict.fromkeys(result.history_states))}"
    )
    for name, path in result.outputs.items():
        print(f"  {name:<13} {path}")


def _demo(args: argparse.Namespace) -> int:
    from .demo_data import generate_day, write_day
    from .local_run import run_local

    started = time.monotonic()
    out = Path(args.out)
    day = generate_day(args.date, seed=args.seed)
    inputs = write_day(day, out / "input")
    print(f"Generated a day for the demo merchant ({args.date}): {', '.join(p.name for p in inputs)}")
    project_text = (Path(__file__).parent / "projects" / "demo.yaml").read_text("utf-8")
    result = run_local(project_text, args.date, inputs, out)
    print()
    _print_result(result)
    for mail in result.emails:
        print("\nE-mail captured by (local) SES:")
        print(f"  From: {mail['from']}\n  To: {', '.join(mail['to'])}")
        print(f"  Subject: {mail.get('subject')}")
        for line in str(mail.get("text", "")).splitlines()[:6]:
            print(f"  | {line}")
    for alert in result.alerts:
        print(f"\nSNS alert: {alert.get('subject')}")

    print("\nPlanted differences:")
    found_all = True
    matched_cases: set[str] = set()
    for planted in day.planted:
        hit = next(
            (
                c
                for c in result.cases
                if c.type.value == planted.case_type
                and any(m.source.value == planted.source and m.txn_id == planted.txn_id for m in c.members)
            ),
            None,
        )
        mark = "found" if hit else "MISSED"
        found_all &= hit is not None
        if hit:
            matched_cases.add(hit.case_id)
        delta = format_amount(hit.delta_minor, hit.currency) if hit else "-"
        print(
            f"  [{mark}] {planted.case_type:<18} {planted.source}:{planted.txn_id}  Δ {delta}  {planted.description}"
        )
    unexpected = [c for c in result.cases if c.case_id not in matched_cases]
    for case in unexpected:
        print(
            f"  [UNEXPECTED] {case.type.value} {[(m.source.value, m.txn_id) for m in case.members]}: {case.reason}"
        )
    elapsed = time.monotonic() - started
    ok = found_all and not unexpected and result.execution_status == "SUCCEEDED" and result.run.balanced
    print(
        f"\n{'OK' if ok else 'FAILED'}: {len(day.planted)} planted, {len(matched_cases)} found, "
        f"{len(unexpected)} unexpected; {elapsed:.1f}s. Open {result.outputs.get('report.html')} in a browser."
    )
    return 0 if ok else 1


def _usage_error(message: str) -> int:
    """One line on stderr and exit code 2: the input is wrong, there is nothing to debug."""
    print(f"error: {message}", file=sys.stderr)
    return 2


def _first_problem(exc: Exception) -> str:
    if isinstance(exc, ValidationError) and exc.errors():
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "the file"
        more = f" (and {exc.error_count() - 1} more)" if exc.error_count() > 1 else ""
        return f"{where}: {first['msg']}{more}"
    return " ".join(str(exc).split())


def _run(args: argparse.Namespace) -> int:
    from recon.domain import Project

    from .local_run import InputError, business_days, file_inputs, input_files, run_local_days

    folder = Path(args.input)
    if not folder.is_dir():
        return _usage_error(
            f"--input {args.input}: {'not a folder' if folder.exists() else 'no such folder'}"
        )
    files = input_files(folder)
    if not files:
        return _usage_error(f"--input {args.input}: no input files in this folder")
    try:
        project_text = Path(args.project).read_text("utf-8")
    except OSError as exc:
        return _usage_error(f"--project {args.project}: {exc.strerror or exc}")
    try:
        project = Project.from_yaml(project_text)
    except (yaml.YAMLError, ValidationError) as exc:
        return _usage_error(f"--project {args.project} is not a valid project file: {_first_problem(exc)}")
    try:
        dates = business_days(args.date, args.to)
        filed = file_inputs(project, files, dates)
    except InputError as exc:
        return _usage_error(str(exc))
    for item in filed:
        if item.note:
            print(f"warning: {item.note}", file=sys.stderr)
    results = run_local_days(project_text, dates, files, Path(args.out), filed=filed)
    for business_date, result in zip(dates, results, strict=True):
        if len(dates) > 1:
            print(f"\n=== {business_date} ===")
        _print_result(result)
    return 0 if all(r.execution_status == "SUCCEEDED" for r in results) else 1


def _parse(args: argparse.Namespace) -> int:
    from .parse_command import parse_files

    return parse_files(
        [Path(f) for f in args.files],
        profile=args.profile,
        out=Path(args.out) if args.out else None,
        as_json=args.json,
        currency=args.currency,
        timezone=args.timezone,
    )


def _accuracy(args: argparse.Namespace) -> int:
    from .accuracy import evaluate

    out = Path(args.out)
    run, result = evaluate(args.seed, args.days, args.orders, out, start=args.start, profile=args.profile)
    dates = [r.business_date for r in run.runs]
    print(
        f"Labelled set: seed {args.seed}, {args.days} day(s) from {args.start}, {args.orders} orders/day, "
        f"profile {args.profile} -> {out / 'set'}"
    )
    print(
        f"Ran {len(dates)} business date(s) {dates[0]} .. {dates[-1]} in {run.seconds:.1f}s -> {out / 'runs'}"
        if dates
        else "No run."
    )
    print()
    print(result.report())
    return 0 if result.meets_targets() and not run.failed else 1


def _schema(args: argparse.Namespace) -> int:
    text = project_json_schema()
    if args.out:
        Path(args.out).write_text(text, encoding="utf-8")
    else:
        sys.stdout.write(text)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="recon", description="Reconciliation (对账), locally on moto")
    sub = parser.add_subparsers(dest="command", required=True)
    demo = sub.add_parser("demo", help="generate a realistic day and reconcile it end to end")
    demo.add_argument("--out", default="demo-out")
    demo.add_argument("--date", type=date.fromisoformat, default=DEMO_DATE)
    demo.add_argument("--seed", type=int, default=7)
    demo.set_defaults(func=_demo)
    run = sub.add_parser(
        "run", help="reconcile your own files for a business date, or consecutive dates with carry-over"
    )
    run.add_argument("--project", required=True, help="project YAML file")
    run.add_argument("--date", required=True, type=date.fromisoformat, help="business date YYYY-MM-DD")
    run.add_argument(
        "--to",
        type=date.fromisoformat,
        help="last business date: run --date .. --to in order in one local cloud, so open items carry over",
    )
    run.add_argument(
        "--input",
        required=True,
        help="folder with the statement files (and sub-folders named YYYY-MM-DD by statement date)",
    )
    run.add_argument(
        "--out",
        required=True,
        help="folder for report.html, matches.csv, cases.csv, filtered.csv, open_items.csv, summary.json and "
        "quarantine/ error reports (one sub-folder per date with --to)",
    )
    run.set_defaults(func=_run)
    parse = sub.add_parser(
        "parse",
        help="detect and parse statement files; print format, profile, rows, control totals and errors",
    )
    parse.add_argument("files", nargs="+")
    parse.add_argument(
        "--profile",
        help="parse with this profile instead of detecting the format: a YAML/JSON file of yours, or a "
        "built-in profile as name or name@version",
    )
    parse.add_argument(
        "--out", help="write each file's normalized rows here as <stem>.csv and <stem>.parquet"
    )
    parse.add_argument("--json", action="store_true", help="print one JSON document instead of text")
    parse.add_argument("--currency", default="CNY", help="currency of files that do not state one")
    parse.add_argument("--timezone", default="Asia/Shanghai", help="time zone of times without an offset")
    parse.set_defaults(func=_parse)
    schema = sub.add_parser("schema", help="print the JSON schema of project files")
    schema.add_argument("--out")
    schema.set_defaults(func=_schema)
    accuracy = sub.add_parser(
        "accuracy", help="generate labelled days, reconcile them day by day, score against the targets"
    )
    accuracy.add_argument("--seed", type=int, default=31337, help="seed of the labelled set")
    accuracy.add_argument("--days", type=int, default=5, help="consecutive business days")
    accuracy.add_argument("--orders", type=int, default=300, help="ERP orders per day")
    accuracy.add_argument("--start", type=date.fromisoformat, default=date(2026, 3, 5))
    accuracy.add_argument("--profile", choices=["easy", "realistic", "hard"], default="realistic")
    accuracy.add_argument("--out", default="accuracy-out", help="folder for the set and the runs' outputs")
    accuracy.set_defaults(func=_accuracy)
    args = parser.parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":
    raise SystemExit(main())
