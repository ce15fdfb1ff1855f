"""Machine-readable run results: matches.csv, cases.csv and summary.json (formats documented in README)."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable
from typing import Any

from recon.domain import Case, MatchGroup, MemberRef, Run
from recon.money import to_decimal

MATCH_COLUMNS = ["group_id", "rule", "source", "txn_id", "amount", "currency"]
CASE_COLUMNS = [
    "case_id",
    "type",
    "source",
    "txn_id",
    "amount",
    "currency",
    "counterpart_source",
    "counterpart_txn_id",
    "delta",
]


def _amount(m: MemberRef) -> str:
    return str(to_decimal(m.amount_minor, m.currency))


def _csv(columns: list[str], rows: Iterable[list[str]]) -> str:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(columns)
    writer.writerows(rows)
    return buf.getvalue()


def matches_csv(groups: list[MatchGroup]) -> str:
    """One row per member of a match group."""
    rows = (
        [g.group_id, g.rule, m.source.value, m.txn_id, _amount(m), m.currency]
        for g in sorted(groups, key=lambda g: g.group_id)
        for m in g.members
    )
    return _csv(MATCH_COLUMNS, rows)


def _counterpart(case: Case, member: MemberRef) -> MemberRef | None:
    if case.counterpart:
        return case.counterpart[0]
    # A keyed mismatch holds both sides as members: each side's counterpart is the other side.
    return next((m for m in case.members if m.source != member.source), None)


def cases_csv(cases: list[Case]) -> str:
    """One row per member of a case (an aggregate member, e.g. a missing settlement, is one row too)."""
    rows: list[list[str]] = []
    for case in sorted(cases, key=lambda c: (c.type.value, c.case_id)):
        delta = str(to_decimal(case.delta_minor, case.currency))
        for m in case.members:
            other = _counterpart(case, m)
            rows.append(
                [
                    case.case_id,
                    case.type.value,
                    m.source.value,
                    m.txn_id,
                    _amount(m),
                    m.currency,
                    other.source.value if other else "",
                    other.txn_id if other else "",
                    delta,
                ]
            )
    return _csv(CASE_COLUMNS, rows)


def summary(run: Run, cases: list[Case]) -> dict[str, Any]:
    """Rows in/out per source and per file, matched, cases by type, filtered, quarantined."""
    return {
        "run_id": run.run_id,
        "project_id": run.project_id,
        "business_date": run.business_date.isoformat(),
        "status": run.status.value,
        "balanced": run.balanced,
        "sources": {
            s.source.value: {
                "rows_in": s.rows_in,
                "matched": s.matched,
                "in_cases": s.in_cases,
                "filtered": s.filtered,
                "filtered_by_rule": s.filtered_by_rule,
                "rows_out": s.matched + s.in_cases + s.filtered,
            }
            for s in run.sources
        },
        "files": [
            {
                "raw_key": f.raw_key,
                "source": f.source.value,
                "account_id": f.account_id,
                "status": f.status,
                "rows_read": f.rows_read,
                "rows_parsed": f.rows_parsed,
                "rows_skipped": f.rows_skipped,
                "rows_rejected": f.rows_rejected,
                "errors": f.errors,
            }
            for f in run.files
        ],
        "match_groups": run.match_groups,
        "matched_rows": sum(s.matched for s in run.sources),
        "filtered_rows": sum(s.filtered for s in run.sources),
        "quarantined_files": run.quarantined_files,
        "quarantined_rows": sum(f.rows_rejected for f in run.files if f.status == "quarantined"),
        "cases": len(cases),
        "cases_by_type": run.cases_by_type,
        "case_amount_by_type": {
            k: str(to_decimal(v, cases[0].currency if cases else "CNY"))
            for k, v in run.case_minor_by_type.items()
        },
        "error": run.error,
    }


def summary_json(run: Run, cases: list[Case]) -> str:
    return json.dumps(summary(run, cases), ensure_ascii=False, indent=2) + "\n"
