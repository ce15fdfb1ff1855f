"""Machine-readable run results: cases.csv and summary.json, plus the column lists of every export.

matches.csv, filtered.csv and open_items.csv are one row per input row and are written column-wise from
the result tables by ``recon.reporting.tabular`` (resolve stage); this module stays free of dataframe
libraries (the report function has none). New columns are only ever appended (the foundation contract).
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable
from typing import Any

from recon.domain import Case, MatchGroup, MemberRef, Run
from recon.money import to_decimal

MATCH_COLUMNS = ["group_id", "rule", "source", "txn_id", "amount", "currency", "status", "confidence", "pass"]
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
    "severity",
    "reason",
    "rule",
]
FILTERED_COLUMNS = ["source", "account_id", "txn_id", "amount", "currency", "rule"]
OPEN_ITEM_COLUMNS = ["source", "account_id", "txn_id", "amount", "currency", "first_seen", "age_days"]


def _amount(m: MemberRef) -> str:
    return str(to_decimal(m.amount_minor, m.currency))


def _csv(columns: list[str], rows: Iterable[list[str]]) -> str:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(columns)
    writer.writerows(rows)
    return buf.getvalue()


def matches_csv(groups: list[MatchGroup]) -> str:
    """One row per member of the given match groups (the full file comes from ``tabular.matches_csv``)."""
    rows = (
        [
            g.group_id,
            g.rule,
            m.source.value,
            m.txn_id,
            _amount(m),
            m.currency,
            g.status.value,
            _confidence(g.confidence),
            g.match_pass,
        ]
        for g in sorted(groups, key=lambda g: g.group_id)
        for m in g.members
    )
    return _csv(MATCH_COLUMNS, rows)


def _confidence(value: float) -> str:
    """Up to four decimals, no trailing zeros (``1``, ``0.95``)."""
    text = f"{value:.4f}".rstrip("0").rstrip(".")
    return text or "0"


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
                    case.severity.value,
                    case.reason,
                    case.rule,
                ]
            )
    return _csv(CASE_COLUMNS, rows)


def summary(run: Run, cases: list[Case]) -> dict[str, Any]:
    """Rows in/out per source and per file, matched, cases by type, filtered, quarantined."""
    dispositions = {
        "matched": sum(s.matched for s in run.sources),
        "suggested": sum(s.suggested for s in run.sources),
        "case": sum(s.in_cases for s in run.sources),
        "filtered": sum(s.filtered for s in run.sources),
        "open": sum(s.open for s in run.sources),
    }
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
                "rows_out": s.matched + s.in_cases + s.filtered + s.open,
                "carried_in": s.carried_in,
                "suggested": s.suggested,
                "open": s.open,
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
        "dispositions": dispositions,
        "suggested_groups": run.suggested_groups,
        "open_items": run.open_items,
        "groups_by_pass": run.groups_by_pass,
    }


def summary_json(run: Run, cases: list[Case]) -> str:
    return json.dumps(summary(run, cases), ensure_ascii=False, indent=2) + "\n"
