"""From the engine's tables to what people read: Case and MatchGroup models (with members and evidence),
open items, and the run's accounting (rows in = matched + in cases + filtered + open, per source).

The engine already typed every case (its taxonomy is in recon.matching.residue and the passes); here the
small residue becomes pydantic models for the repository, the report and the review API.
"""

from __future__ import annotations

import json
from collections import defaultdict
from datetime import date
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from recon.domain import (
    Case,
    CaseType,
    Evidence,
    MatchGroup,
    MatchStatus,
    MemberRef,
    OpenItem,
    Severity,
    Source,
    SourceAccounting,
)
from recon.money import format_amount

_MEMBER_COLUMNS = ["txn_uid", "source", "account_id", "txn_id", "amount_minor", "currency"]


def _rows(table: pa.Table) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = table.to_pylist()
    return rows


def _members_by(placements: pa.Table, column: str, ids: set[str] | None = None) -> dict[str, list[MemberRef]]:
    """Members of each case or group, in input order."""
    selected = placements.filter(pc.is_valid(placements[column]))
    if ids is not None:
        selected = selected.filter(pc.is_in(selected[column], value_set=pa.array(sorted(ids), pa.string())))
    out: dict[str, list[MemberRef]] = defaultdict(list)
    for row in selected.select([column, *_MEMBER_COLUMNS]).to_pylist():
        out[row[column]].append(MemberRef(**{k: row[k] for k in _MEMBER_COLUMNS}))
    return out


def _evidence(row: dict[str, Any], fields: list[str]) -> list[Evidence]:
    """Field-by-field evidence from a result row's columns, then any extra evidence it carries."""
    currency = row["currency"]
    out: list[Evidence] = []
    if row.get("key") and "key" in fields:
        out.append(Evidence(field="key", left=row["key"], right=row["key"], equal=True))
    left, right = row.get("left_amount_minor"), row.get("right_amount_minor")
    if left is not None and right is not None and "amount" in fields:
        out.append(
            Evidence(
                field="amount",
                left=format_amount(left, currency),
                right=format_amount(right, currency),
                equal=left == right,
                delta=format_amount(right - left, currency),
            )
        )
    if row.get("time_delta_s") is not None and "booked_at" in fields:
        out.append(
            Evidence(
                field="booked_at",
                left="",
                right="",
                equal=row.get("_time_ok", True),
                delta=f"{row['time_delta_s']}s",
            )
        )
    if row.get("left_status") is not None and "status" in fields:
        out.append(
            Evidence(
                field="status",
                left=row["left_status"],
                right=row["right_status"] or "",
                equal=row["left_status"] == row["right_status"],
            )
        )
    if row.get("fee_delta_minor") is not None and "fee" in fields:
        out.append(
            Evidence(
                field="fee",
                left="schedule",
                right="stated",
                equal=row["fee_delta_minor"] == 0,
                delta=format_amount(row["fee_delta_minor"], currency),
            )
        )
    if row.get("evidence"):
        out += [Evidence(**e) for e in json.loads(row["evidence"])]
    return out


def cases_from_tables(run_id: str, cases: pa.Table, placements: pa.Table) -> list[Case]:
    """Every case as a Case model, with its member rows, counterparts, evidence and reason."""
    members = _members_by(placements, "case_id")
    out: list[Case] = []
    for row in _rows(cases):
        own = list(members.get(row["case_id"], []))
        if row.get("aggregate"):
            own.append(MemberRef(**json.loads(row["aggregate"])))
        counterpart = (
            [MemberRef(**m) for m in json.loads(row["counterparts"])] if row.get("counterparts") else []
        )
        row["_time_ok"] = row["type"] != CaseType.TIME_MISMATCH.value
        out.append(
            Case(
                case_id=row["case_id"],
                run_id=run_id,
                type=CaseType(row["type"]),
                members=own,
                counterpart=counterpart,
                delta_minor=row["delta_minor"],
                currency=row["currency"],
                severity=Severity(row["severity"]),
                rule=row["rule"],
                reason=row["reason"],
                evidence=_evidence(row, ["key", "amount", "booked_at", "status"]),
            )
        )
    return out


def groups_from_tables(run_id: str, groups: pa.Table, placements: pa.Table) -> list[MatchGroup]:
    """The given groups as MatchGroup models (call it with a few: suggested ones, a sample)."""
    if groups.num_rows == 0:
        return []
    members = _members_by(placements, "group_id", set(groups["group_id"].to_pylist()))
    out = []
    for row in _rows(groups):
        out.append(
            MatchGroup(
                group_id=row["group_id"],
                run_id=run_id,
                rule=row["rule"],
                members=members.get(row["group_id"], []),
                evidence=_evidence(row, ["key", "amount", "booked_at", "fee"]),
                confidence=row["confidence"],
                status=MatchStatus(row["status"]),
                settles=row["settles"].split(",") if row.get("settles") else [],
                explanation=row["explanation"],
                match_pass=row["match_pass"],
            )
        )
    return out


def open_items(placements: pa.Table, business_date: date, limit: int | None = None) -> list[OpenItem]:
    rows = placements.filter(pc.equal(placements["disposition"].cast(pa.string()), "open"))
    items = []
    for row in rows.select([*_MEMBER_COLUMNS, "first_seen", "rule"]).to_pylist():
        items.append(
            OpenItem(
                **{k: row[k] for k in _MEMBER_COLUMNS},
                first_seen=row["first_seen"],
                age_days=(business_date - row["first_seen"]).days,
                rule=row["rule"],
            )
        )
    items.sort(key=lambda i: (i.first_seen, i.source.value, i.txn_id))
    return items[:limit] if limit is not None else items


def run_accounting(placements: pa.Table, business_date: date) -> list[SourceAccounting]:
    """Rows in (+ carried in) = matched + in cases + filtered + open, per source. Raises if a row is not
    in exactly one place."""
    source = placements["source"].cast(pa.string()).to_numpy(zero_copy_only=False).astype(str)
    disposition = placements["disposition"].cast(pa.string()).to_numpy(zero_copy_only=False).astype(str)
    amount = placements["amount_minor"].to_numpy()
    first_seen = np.asarray(
        placements["first_seen"].cast(pa.int32()).to_numpy(zero_copy_only=False), dtype=np.int64
    )
    today = (business_date - date(1970, 1, 1)).days
    suggested = (
        pc.fill_null(pc.equal(placements["status"].cast(pa.string()), "suggested"), False)
        .to_numpy(zero_copy_only=False)
        .astype(bool)
    )
    rule = pc.fill_null(placements["rule"].cast(pa.string()), "").to_numpy(zero_copy_only=False).astype(str)
    known = {"matched", "case", "filtered", "open"}
    if not set(np.unique(disposition).tolist()) <= known:
        raise ValueError(f"rows without a place: {sorted(set(np.unique(disposition).tolist()) - known)}")
    out = []
    for name in sorted(set(source.tolist())):
        sel = source == name
        acc = SourceAccounting(source=Source(name))
        acc.rows_in = int((sel & (first_seen >= today)).sum())
        acc.carried_in = int((sel & (first_seen < today)).sum())
        for disp, count_field, money_field in (
            ("matched", "matched", "matched_minor"),
            ("case", "in_cases", "in_cases_minor"),
            ("filtered", "filtered", None),
            ("open", "open", "open_minor"),
        ):
            mask = sel & (disposition == disp)
            setattr(acc, count_field, int(mask.sum()))
            if money_field:
                setattr(acc, money_field, int(amount[mask].sum()))
        acc.suggested = int((sel & suggested).sum())
        filtered_rules = rule[sel & (disposition == "filtered")]
        acc.filtered_by_rule = {
            str(k): int(v) for k, v in zip(*np.unique(filtered_rules, return_counts=True), strict=True)
        }
        if not acc.balanced:
            raise ValueError(f"rows lost or invented: {name}")
        out.append(acc)
    return out


def describe_delta(case: Case) -> str:
    return format_amount(case.delta_minor, case.currency)
