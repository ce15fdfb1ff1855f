"""From the engine's tables to what people read: Case and MatchGroup models (with members and evidence),
open items, and the run's accounting (rows in = matched + in cases + filtered + open, per source).

The engine already typed every case (its taxonomy is in recon.matching.residue and the passes); here the
small residue becomes pydantic models for the repository, the report and the review API.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Collection, Mapping
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc

from recon.domain import (
    Case,
    CaseLink,
    CaseType,
    Evidence,
    MatchGroup,
    MatchStatus,
    MemberRef,
    MoneyAccounting,
    OpenItem,
    Project,
    SettlementRule,
    Severity,
    Source,
    SourceAccounting,
)
from recon.durations import human_duration
from recon.matching.context import AWAITING_RULE, OVERLAP_RULE
from recon.matching.frame import from_day_number
from recon.matching.settlement import Batch
from recon.money import format_amount

_MEMBER_COLUMNS = ["txn_uid", "source", "account_id", "txn_id", "amount_minor", "currency"]


def _rows(table: pa.Table) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = table.to_pylist()
    return rows


def _members_by(placements: pa.Table, column: str, ids: set[str] | None = None) -> dict[str, list[MemberRef]]:
    """Members of each case or group, in input order."""
    # The columns first: filtering the whole placements would copy every column of most of the day.
    selected = placements.select([column, *_MEMBER_COLUMNS])
    selected = selected.filter(pc.is_valid(selected[column]))
    if ids is not None:
        selected = selected.filter(pc.is_in(selected[column], value_set=pa.array(sorted(ids), pa.string())))
    out: dict[str, list[MemberRef]] = defaultdict(list)
    for row in selected.to_pylist():
        out[row[column]].append(MemberRef(**{k: row[k] for k in _MEMBER_COLUMNS}))
    return out


class BookingTimes:
    """When each row of a result was booked, shown in the project's time zone (ISO 8601 with offset)."""

    def __init__(self, booked_at: Mapping[str, datetime], timezone: str = "UTC") -> None:
        self._booked_at = booked_at
        self._zone = ZoneInfo(timezone)

    def __bool__(self) -> bool:
        return bool(self._booked_at)

    def of(self, member: MemberRef) -> str:
        at = self._booked_at.get(member.txn_uid)
        return at.astimezone(self._zone).isoformat() if at is not None else ""

    @classmethod
    def from_placements(cls, placements: pa.Table, column: str, ids: set[str], timezone: str) -> BookingTimes:
        """The booking times of the rows of the given cases / groups (placements with a ``booked_at``)."""
        if "booked_at" not in placements.column_names or not ids:
            return cls({}, timezone)
        rows = placements.select([column, "txn_uid", "booked_at"])
        rows = rows.filter(
            pc.fill_null(pc.is_in(rows[column], value_set=pa.array(sorted(ids), pa.string())), False)
        )
        pairs = rows.select(["txn_uid", "booked_at"]).to_pylist()
        return cls({r["txn_uid"]: r["booked_at"] for r in pairs if r["booked_at"] is not None}, timezone)


class RowDates:
    """When each row of the cases was booked (the project's time zone) and its value date, as cases.csv
    shows them (``export.RowDates``): a person finds the row in its statement by them."""

    def __init__(self, times: BookingTimes, value_dates: Mapping[str, date]) -> None:
        self._times = times
        self._value_dates = value_dates

    def booked_at(self, member: MemberRef) -> str:
        return self._times.of(member)

    def value_date(self, member: MemberRef) -> str:
        day = self._value_dates.get(member.txn_uid)
        return day.isoformat() if day is not None else ""

    @classmethod
    def from_placements(cls, placements: pa.Table, case_ids: set[str], timezone: str) -> RowDates:
        """The case rows' dates, from placements with ``booked_at`` and ``value_date`` (either may be
        missing: its column is then empty)."""
        times = BookingTimes.from_placements(placements, "case_id", case_ids, timezone)
        if "value_date" not in placements.column_names or not case_ids:
            return cls(times, {})
        rows = placements.select(["case_id", "txn_uid", "value_date"])
        rows = rows.filter(
            pc.fill_null(pc.is_in(rows["case_id"], value_set=pa.array(sorted(case_ids), pa.string())), False)
        )
        pairs = rows.select(["txn_uid", "value_date"]).to_pylist()
        return cls(times, {r["txn_uid"]: r["value_date"] for r in pairs if r["value_date"] is not None})


def _sides(
    members: list[MemberRef], left_sources: Collection[str] | None
) -> tuple[MemberRef | None, MemberRef | None]:
    """The left row (a source of the rule's left side; without the rule, the first row) and a right row."""
    real = [m for m in members if not m.is_aggregate]
    if not real:
        return None, None
    left = next((m for m in real if left_sources and m.source.value in left_sources), real[0])
    right = next((m for m in real if m.source != left.source), None)
    return left, right


def _booked_evidence(
    row: dict[str, Any],
    members: list[MemberRef],
    times: BookingTimes | None,
    left_sources: Collection[str] | None,
) -> Evidence:
    gap = int(row["time_delta_s"])
    left, right = _sides(members, left_sources)
    return Evidence(
        field="booked_at",
        left=times.of(left) if times and left else "",
        right=times.of(right) if times and right else "",
        equal=row.get("_time_ok", True),
        delta=human_duration(gap),
    )


def _evidence(
    row: dict[str, Any],
    fields: list[str],
    members: list[MemberRef] | None = None,
    times: BookingTimes | None = None,
    left_sources: Collection[str] | None = None,
) -> list[Evidence]:
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
        out.append(_booked_evidence(row, members or [], times, left_sources))
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


def cases_from_tables(
    run_id: str,
    cases: pa.Table,
    placements: pa.Table,
    *,
    timezone: str = "UTC",
    left_sources: Mapping[str, Collection[str]] | None = None,
) -> list[Case]:
    """Every case as a Case model, with its member rows, counterparts, evidence and reason.

    With a ``booked_at`` column in ``placements``, the booking-time evidence (a TIME_MISMATCH's above all)
    shows both times in ``timezone``; ``left_sources`` (rule name -> its left sources) says which row is the
    left one."""
    members = _members_by(placements, "case_id")
    times = BookingTimes.from_placements(placements, "case_id", set(cases["case_id"].to_pylist()), timezone)
    out: list[Case] = []
    for row in _rows(cases):
        own = list(members.get(row["case_id"], []))
        if row.get("aggregate"):
            own.append(MemberRef(**json.loads(row["aggregate"])))
        counterpart = (
            [MemberRef(**m) for m in json.loads(row["counterparts"])] if row.get("counterparts") else []
        )
        row["_time_ok"] = row["type"] != CaseType.TIME_MISMATCH.value
        sides = (left_sources or {}).get(row["rule"])
        evidence = _evidence(row, ["key", "amount", "booked_at", "status"], own, times, sides)
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
                evidence=evidence,
                closes=[CaseLink(**link) for link in json.loads(row["closes"])] if row.get("closes") else [],
            )
        )
    return out


def groups_from_tables(
    run_id: str,
    groups: pa.Table,
    placements: pa.Table,
    *,
    timezone: str = "UTC",
    left_sources: Mapping[str, Collection[str]] | None = None,
) -> list[MatchGroup]:
    """The given groups as MatchGroup models (call it with a few: suggested ones, a sample)."""
    if groups.num_rows == 0:
        return []
    ids = set(groups["group_id"].to_pylist())
    members = _members_by(placements, "group_id", ids)
    times = BookingTimes.from_placements(placements, "group_id", ids, timezone)
    out = []
    for row in _rows(groups):
        own = members.get(row["group_id"], [])
        sides = (left_sources or {}).get(row["rule"])
        out.append(
            MatchGroup(
                group_id=row["group_id"],
                run_id=run_id,
                rule=row["rule"],
                members=own,
                evidence=_evidence(row, ["key", "amount", "booked_at", "fee"], own, times, sides),
                confidence=row["confidence"],
                status=MatchStatus(row["status"]),
                settles=row["settles"].split(",") if row.get("settles") else [],
                explanation=row["explanation"],
                match_pass=row["match_pass"],
            )
        )
    return out


def open_items(placements: pa.Table, business_date: date, limit: int | None = None) -> list[OpenItem]:
    rows = placements.select([*_MEMBER_COLUMNS, "first_seen", "rule", "disposition"])
    rows = rows.filter(pc.equal(rows["disposition"].cast(pa.string()), "open"))
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


def waiting_batches(
    batches: Mapping[str, list[Batch]], project: Project, business_date: date, unavailable: Collection[str]
) -> list[OpenItem]:
    """The settlement batches a run left waiting (by rule, as the match stage stored them), as open items
    ``<channel account>@<date>`` of the batch's net. Held by ``awaiting-statement:<bank account>`` when the
    rule's bank statement is missing for the day (``unavailable``: the accounts the engine was told are
    missing), or was missing on an earlier run and has not arrived since (``Batch.awaiting``), else by the
    rule (its credit may still come in a statement a later run reads)."""
    banks = {r.name: r.bank_account for r in project.match_rules if isinstance(r, SettlementRule)}
    items = []
    for rule, waiting in sorted(batches.items()):
        bank = banks.get(rule)
        for b in waiting:
            awaited = bank is not None and (bank in unavailable or bool(b.awaiting))
            held_by = f"{AWAITING_RULE}:{bank}" if awaited else rule
            first_seen = from_day_number(b.day)
            items.append(
                OpenItem(
                    txn_uid=f"agg:{b.ref}",
                    source=Source(b.source),
                    account_id=b.account_id,
                    txn_id=b.ref,
                    amount_minor=b.net,
                    currency=b.currency,
                    first_seen=first_seen,
                    age_days=(business_date - first_seen).days,
                    rule=held_by,
                )
            )
    return items


def run_accounting(placements: pa.Table, business_date: date) -> list[SourceAccounting]:
    """Rows in (+ carried in) = matched + in cases + filtered + open, per source, by count and, per currency,
    by amount (``SourceAccounting.money``; ``held_minor``: the open rows held for a missing statement). Raises
    if a row is not in exactly one place."""
    # Text columns as small integer codes into their distinct values (numpy text arrays of a 5M-row day
    # would take gigabytes).
    source, sources = _codes(placements["source"])
    disposition, dispositions = _codes(placements["disposition"])
    currency, currencies = _codes(placements["currency"])
    amount = np.asarray(placements["amount_minor"].to_numpy(), dtype=np.int64)
    first_seen = np.asarray(
        placements["first_seen"].cast(pa.int32()).to_numpy(zero_copy_only=False), dtype=np.int64
    )
    today = (business_date - date(1970, 1, 1)).days
    suggested = (
        pc.fill_null(pc.equal(placements["status"].cast(pa.string()), "suggested"), False)
        .to_numpy(zero_copy_only=False)
        .astype(bool)
    )
    rule, rules = _codes(placements["rule"])
    held = np.array([r.startswith(f"{AWAITING_RULE}:") for r in rules], dtype=bool)[rule]
    repeated = rule == _code(rules, OVERLAP_RULE)
    known = {"matched", "case", "filtered", "open"}
    if not set(dispositions) <= known:
        raise ValueError(f"rows without a place: {sorted(set(dispositions) - known)}")
    out = []
    for name in sorted(set(sources)):
        sel = source == sources.index(name)
        acc = SourceAccounting(source=Source(name))
        acc.rows_in = int((sel & (first_seen >= today)).sum())
        acc.carried_in = int((sel & (first_seen < today)).sum())
        for disp, count_field, money_field in (
            ("matched", "matched", "matched_minor"),
            ("case", "in_cases", "in_cases_minor"),
            ("filtered", "filtered", None),
            ("open", "open", "open_minor"),
        ):
            mask = sel & (disposition == _code(dispositions, disp))
            setattr(acc, count_field, int(mask.sum()))
            if money_field:
                setattr(acc, money_field, int(amount[mask].sum()))
        acc.suggested = int((sel & suggested).sum())
        filtered_rules = np.bincount(
            rule[sel & (disposition == _code(dispositions, "filtered"))], minlength=len(rules)
        )
        acc.filtered_by_rule = {
            rules[i]: int(filtered_rules[i])
            for i in sorted(np.flatnonzero(filtered_rules), key=rules.__getitem__)
        }
        acc.money = [
            _money(
                amount,
                sel & (currency == i),
                new=first_seen >= today,
                disposition=disposition,
                dispositions=dispositions,
                held=held,
                repeated=repeated,
                currency=code,
            )
            for i, code in sorted(enumerate(currencies), key=lambda p: p[1])
            if (sel & (currency == i)).any()
        ]
        if not acc.balanced:
            raise ValueError(f"rows or money lost or invented: {name}")
        out.append(acc)
    return out


def _money(
    amount: npt.NDArray[np.int64],
    sel: npt.NDArray[np.bool_],
    *,
    new: npt.NDArray[np.bool_],
    disposition: npt.NDArray[np.int64],
    dispositions: list[str],
    held: npt.NDArray[np.bool_],
    repeated: npt.NDArray[np.bool_],
    currency: str,
) -> MoneyAccounting:
    """One source's rows ``sel`` (all in ``currency``) by amount: in, carried in, and where they ended."""

    def total(mask: npt.NDArray[np.bool_]) -> int:
        return int(amount[sel & mask].sum())

    def placed(name: str) -> npt.NDArray[np.bool_]:
        return np.asarray(disposition == _code(dispositions, name))

    return MoneyAccounting(
        currency=currency,
        in_minor=total(new),
        carried_in_minor=total(~new),
        matched_minor=total(placed("matched")),
        in_cases_minor=total(placed("case")),
        filtered_minor=total(placed("filtered")),
        open_minor=total(placed("open")),
        held_minor=total(placed("open") & held),
        # Money another statement of the day already delivered: in − repeated is what arrived.
        repeated_minor=total(new & placed("filtered") & repeated),
    )


def _codes(column: pa.ChunkedArray) -> tuple[npt.NDArray[np.int64], list[str]]:
    """Each row's index into the column's distinct texts (a missing value counts as the text "")."""
    text = pc.fill_null(column.cast(pa.string()), "")
    values = pc.unique(text)
    codes = pc.index_in(text, value_set=values).to_numpy(zero_copy_only=False)
    return np.asarray(codes, dtype=np.int64), [str(v) for v in values.to_pylist()]


def _code(values: list[str], value: str) -> int:
    """The code of ``value``; -1 (no row) when no row has it."""
    return values.index(value) if value in values else -1


def describe_delta(case: Case) -> str:
    return format_amount(case.delta_minor, case.currency)
