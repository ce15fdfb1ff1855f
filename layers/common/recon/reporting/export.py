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
from dataclasses import dataclass
from typing import Any, Literal

from recon.domain import Case, CaseType, Evidence, MatchGroup, MemberRef, Run, Source
from recon.money import to_decimal

MATCH_COLUMNS = [
    "group_id",
    "rule",
    "source",
    "txn_id",
    "amount",
    "currency",
    "status",
    "confidence",
    "pass",
    # The group's, repeated on each member's row: the batches it settles ('<channel account>@<date>', comma
    # separated), the engine's explanation and the field-by-field evidence (``evidence_text``).
    "settles",
    "explanation",
    "evidence",
]
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
# detail: "repeats row N of <file>" (a row an earlier statement delivered), else the filter rule's description.
FILTERED_COLUMNS = ["source", "account_id", "txn_id", "amount", "currency", "rule", "detail"]
# One line per open row and per settlement batch left waiting (txn_id '<channel account>@<date>', its net).
# held_by: the rule that keeps it open (a carry-over or settlement rule: in flight; awaiting-statement:<accounts>:
# the statement its counterpart would be in is missing or quarantined).
OPEN_ITEM_COLUMNS = [
    "source",
    "account_id",
    "txn_id",
    "amount",
    "currency",
    "first_seen",
    "age_days",
    "held_by",
]


def evidence_line(e: Evidence) -> str:
    """One compared field, left side first: ``amount: 99.00`` (the same on both sides), ``memo: 支付宝 ~
    支付宝结算 ****6241`` (they agree: a pattern, a count), ``net_total: 4,692.51 ≠ 4,682.51 (Δ -10.00)``
    (they disagree), ``booked_at: Δ 3 s`` when only the difference is known."""
    if not e.left and not e.right:
        return f"{e.field}: Δ {e.delta}" if e.delta else f"{e.field}: {'agrees' if e.equal else 'differs'}"
    if e.equal and e.left == e.right:
        return f"{e.field}: {e.left}"
    text = f"{e.field}: {e.left} {'~' if e.equal else '≠'} {e.right}".rstrip()
    return f"{text} (Δ {e.delta})" if e.delta else text


def evidence_text(evidence: Iterable[Evidence]) -> str:
    """A group's or case's evidence on one line, fields separated by ``; ``."""
    return "; ".join(evidence_line(e) for e in evidence)


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
            ",".join(g.settles),
            g.explanation,
            evidence_text(g.evidence),
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


Side = Literal["surplus", "shortage"]


def stake_side(case: Case) -> Side | None:
    """长款 (surplus: money received that the books do not explain) or 短款 (shortage: money the books expect
    that never arrived), for the case types that have one (docs/matching.md, "Case types"); None for the
    others. The case's reason starts with the same word."""
    if case.type is CaseType.MISSING_IN_BANK:
        return "shortage"
    if case.type is CaseType.MISSING_IN_CHANNEL:
        if any(m.source is Source.BANK for m in case.members):
            return "surplus"  # a bank credit no settlement explains
        # An ERP payment the channel never received (short); an ERP refund it never paid out (long).
        return "shortage" if case.delta_minor > 0 else "surplus" if case.delta_minor < 0 else None
    if case.type is CaseType.MISSING_IN_ERP:
        return "surplus" if case.delta_minor > 0 else "shortage" if case.delta_minor < 0 else None
    return None


@dataclass(frozen=True)
class Stake:
    """The amount at stake in one case type and currency: absolute deltas, so that a 长款 and a 短款 add up
    instead of cancelling out. ``at_stake_minor`` = 长款 + 短款 + the amount of cases without either."""

    case_type: str
    currency: str
    cases: int = 0
    at_stake_minor: int = 0
    surplus_minor: int = 0
    shortage_minor: int = 0


def case_stakes(cases: list[Case]) -> list[Stake]:
    """Per case type and currency, sorted by both."""
    totals: dict[tuple[str, str], list[int]] = {}
    for case in cases:
        acc = totals.setdefault((case.type.value, case.currency), [0, 0, 0, 0])
        amount = abs(case.delta_minor)
        side = stake_side(case)
        acc[0] += 1
        acc[1] += amount
        acc[2] += amount if side == "surplus" else 0
        acc[3] += amount if side == "shortage" else 0
    return [Stake(t, c, *totals[(t, c)]) for t, c in sorted(totals)]


def minor_at_stake_by_type(cases: list[Case], currency: str) -> dict[str, int]:
    """Absolute amount at stake per case type, of the cases in ``currency`` (the project's)."""
    return {s.case_type: s.at_stake_minor for s in case_stakes(cases) if s.currency == currency}


def _stakes_json(cases: list[Case]) -> dict[str, dict[str, dict[str, Any]]]:
    out: dict[str, dict[str, dict[str, Any]]] = {}
    for s in case_stakes(cases):
        out.setdefault(s.case_type, {})[s.currency] = {
            "cases": s.cases,
            "at_stake": str(to_decimal(s.at_stake_minor, s.currency)),
            "surplus": str(to_decimal(s.surplus_minor, s.currency)),
            "shortage": str(to_decimal(s.shortage_minor, s.currency)),
        }
    return out


def summary(run: Run, cases: list[Case], currency: str = "CNY") -> dict[str, Any]:
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
                # A statement covering several days: this run's day of it, and the whole file's rows.
                **({"day": f.day.isoformat(), "file_rows_read": f.file_rows_read} if f.day else {}),
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
        # Absolute amount at stake per type in the project's currency (it used to be the signed net, in which
        # a 长款 cancelled a 短款); the split by 长款 / 短款 and by currency is in case_stakes.
        "case_amount_by_type": {
            k: str(to_decimal(v, currency)) for k, v in minor_at_stake_by_type(cases, currency).items()
        },
        "case_stakes": _stakes_json(cases),
        "error": run.error,
        "dispositions": dispositions,
        "suggested_groups": run.suggested_groups,
        "open_items": run.open_items,  # open rows + settlement batches left waiting (open_items.csv's lines)
        "groups_by_pass": run.groups_by_pass,
    }


def summary_json(run: Run, cases: list[Case], currency: str = "CNY") -> str:
    return json.dumps(summary(run, cases, currency), ensure_ascii=False, indent=2) + "\n"
