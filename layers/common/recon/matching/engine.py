"""The matching engine (foundation passes).

Order of passes, each only seeing rows that earlier passes left unplaced:
1. filter rules                   -> filtered (naming the rule)
2. duplicate source ids           -> DUPLICATE findings (the first occurrence goes on)
3. key rules (ERP <-> channels)   -> match groups, or amount/status/time findings for keyed pairs
4. settlement rules (channel day <-> bank credit, T+n, net of fees and refunds)
5. whatever is left               -> UNMATCHED findings

Deterministic: rows are processed in a canonical order and every id is derived from content.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterable, Sequence
from datetime import date, timedelta

from recon.domain import (
    Evidence,
    KeyMatchRule,
    MatchGroup,
    Project,
    SettlementRule,
    Transaction,
    TxnStatus,
    stable_id,
)
from recon.money import format_amount

from .filters import rule_applies
from .model import Finding, FindingKind, MatchOutcome, aggregate_ref, member_ref

DUPLICATE_RULE = "duplicate-source-id"
UNMATCHED_RULE = "no-counterpart"
_NOT_HAPPENED = {TxnStatus.CLOSED, TxnStatus.FAILED, TxnStatus.REVERSED, TxnStatus.PENDING}


def _canonical(t: Transaction) -> tuple[str, str, str, str, int]:
    return (t.source.value, t.account_id, t.txn_id, t.raw_key, t.row_number)


def _sum(rows: Iterable[Transaction]) -> int:
    return sum(t.amount_minor for t in rows)


def _money(minor: int, currency: str) -> str:
    return format_amount(minor, currency)


def _group(
    run_id: str, rule: str, rows: Sequence[Transaction], evidence: list[Evidence], explanation: str
) -> MatchGroup:
    uids = sorted(t.txn_uid for t in rows)
    return MatchGroup(
        group_id=stable_id("mg", run_id, rule, *uids),
        run_id=run_id,
        rule=rule,
        members=[member_ref(t) for t in sorted(rows, key=_canonical)],
        evidence=evidence,
        explanation=explanation,
    )


class _Matcher:
    def __init__(self, project: Project, run_id: str, business_date: date, rows: list[Transaction]):
        self.project = project
        self.run_id = run_id
        self.business_date = business_date
        self.rows = sorted(rows, key=_canonical)
        self.placed: set[str] = set()
        self.outcome = MatchOutcome(run_id=run_id)
        for t in self.rows:
            self.outcome.rows_in[t.source.value] = self.outcome.rows_in.get(t.source.value, 0) + 1

    def active(self) -> list[Transaction]:
        return [t for t in self.rows if t.txn_uid not in self.placed]

    def place(self, rows: Iterable[Transaction]) -> None:
        for t in rows:
            if t.txn_uid in self.placed:
                raise AssertionError(f"row {t.txn_uid} placed twice")  # a bug, never data
            self.placed.add(t.txn_uid)

    # 1 ---------------------------------------------------------------------------------------------
    def apply_filters(self) -> None:
        for rule in self.project.filter_rules:
            for t in self.active():
                if rule_applies(rule, t):
                    self.outcome.filtered[t.txn_uid] = rule.name
                    self.place([t])

    # 2 ---------------------------------------------------------------------------------------------
    def flag_duplicates(self) -> None:
        seen: dict[tuple[str, str, str], Transaction] = {}
        for t in self.active():
            key = (t.source.value, t.account_id, t.txn_id)
            first = seen.get(key)
            if first is None:
                seen[key] = t
                continue
            self.outcome.findings.append(
                Finding(
                    kind=FindingKind.DUPLICATE,
                    rule=DUPLICATE_RULE,
                    members=[member_ref(t)],
                    counterpart=[member_ref(first)],
                    evidence=[
                        Evidence(field="txn_id", left=first.txn_id, right=t.txn_id, equal=True),
                        Evidence(
                            field="row",
                            left=f"{first.raw_key}:{first.row_number}",
                            right=f"{t.raw_key}:{t.row_number}",
                            equal=False,
                        ),
                    ],
                    detail=f"{t.source.value} id {t.txn_id} appears again at row {t.row_number} "
                    f"(first at row {first.row_number})",
                )
            )
            self.place([t])

    # 3 ---------------------------------------------------------------------------------------------
    def key_match(self, rule: KeyMatchRule) -> None:
        def key_of(t: Transaction) -> tuple[str, ...] | None:
            values = tuple(str(getattr(t, k) or "") for k in rule.keys)
            return values if values[0] else None  # no primary key value: cannot be keyed

        left: dict[tuple[str, ...], list[Transaction]] = defaultdict(list)
        right: dict[tuple[str, ...], list[Transaction]] = defaultdict(list)
        for t in self.active():
            key = key_of(t)
            if key is None:
                continue
            if t.source.value in rule.left:
                left[key].append(t)
            elif t.source.value in rule.right:
                right[key].append(t)
        tolerance = timedelta(hours=rule.time_tolerance_hours)
        for key in sorted(left):
            lefts, rights = left[key], right.get(key)
            if not rights:
                continue
            currency = lefts[0].currency
            l_sum, r_sum = _sum(lefts), _sum(rights)
            delta = r_sum - l_sum
            time_gap = max(abs(a.booked_at - b.booked_at) for a in lefts for b in rights)
            evidence = [
                Evidence(field=k, left=v, right=v, equal=True)
                for k, v in zip(rule.keys, key, strict=True)
                if v
            ]
            evidence.append(
                Evidence(
                    field="amount",
                    left=_money(l_sum, currency),
                    right=_money(r_sum, currency),
                    equal=delta == 0,
                    delta=_money(delta, currency),
                )
            )
            evidence.append(
                Evidence(
                    field="booked_at",
                    left=min(t.booked_at for t in lefts).isoformat(),
                    right=min(t.booked_at for t in rights).isoformat(),
                    equal=time_gap <= tolerance,
                    delta=f"{int(time_gap.total_seconds())}s",
                )
            )
            statuses_l = {t.status for t in lefts}
            statuses_r = {t.status for t in rights}
            evidence.append(
                Evidence(
                    field="status",
                    left=",".join(sorted(s.value for s in statuses_l)),
                    right=",".join(sorted(s.value for s in statuses_r)),
                    equal=statuses_l == statuses_r,
                )
            )
            members = [member_ref(t) for t in lefts + rights]
            kind: FindingKind | None = None
            if (statuses_l & _NOT_HAPPENED) != (statuses_r & _NOT_HAPPENED):
                kind = FindingKind.KEY_STATUS_MISMATCH
                detail = f"status {evidence[-1].left} on {lefts[0].source.value} vs {evidence[-1].right}"
            elif abs(delta) > rule.amount_tolerance_minor:
                kind = FindingKind.KEY_AMOUNT_MISMATCH
                detail = (
                    f"{lefts[0].source.value} {_money(l_sum, currency)} vs "
                    f"{rights[0].source.value} {_money(r_sum, currency)}"
                )
            elif time_gap > tolerance:
                kind = FindingKind.KEY_TIME_MISMATCH
                detail = (
                    f"booked {int(time_gap.total_seconds())}s apart, tolerance {rule.time_tolerance_hours}h"
                )
            if kind is None:
                explanation = (
                    f"{' + '.join(sorted({t.source.value for t in lefts + rights}))}: "
                    f"{', '.join(f'{k}={v}' for k, v in zip(rule.keys, key, strict=True) if v)}, "
                    f"amount {_money(r_sum, currency)}"
                )
                self.outcome.groups.append(
                    _group(self.run_id, rule.name, lefts + rights, evidence, explanation)
                )
            else:
                self.outcome.findings.append(
                    Finding(kind=kind, rule=rule.name, members=members, evidence=evidence, detail=detail)
                )
            self.place(lefts + rights)

    # 4 ---------------------------------------------------------------------------------------------
    def settle(self, rule: SettlementRule) -> None:
        channel = self.project.account(rule.channel_account)
        day = [
            t
            for t in self.rows
            if t.account_id == rule.channel_account and t.txn_uid not in self.outcome.filtered
        ]
        if not day:
            return
        currency = day[0].currency
        expected = sum(t.net_minor for t in day)
        batch = self.business_date.isoformat()
        agg = aggregate_ref(channel.source, channel.account_id, batch, expected, currency)
        pattern = re.compile(rule.memo_pattern) if rule.memo_pattern else None
        candidates = [
            t
            for t in self.active()
            if t.account_id == rule.bank_account
            and t.amount_minor > 0
            and (t.value_date - self.business_date).days in rule.lag_days
            and (pattern is None or pattern.search(f"{t.counterparty or ''} {t.memo or ''}"))
        ]

        def evidence_for(credit: Transaction) -> list[Evidence]:
            lag = (credit.value_date - self.business_date).days
            return [
                Evidence(
                    field="net_total",
                    left=_money(expected, currency),
                    right=_money(credit.amount_minor, currency),
                    equal=abs(credit.amount_minor - expected) <= rule.amount_tolerance_minor,
                    delta=_money(credit.amount_minor - expected, currency),
                ),
                Evidence(field="channel_rows", left=str(len(day)), right="1", equal=True),
                Evidence(
                    field="fees",
                    left=_money(sum(t.fee_minor for t in day), currency),
                    right="",
                    equal=True,
                ),
                Evidence(field="settlement_lag_days", left=str(rule.lag_days), right=str(lag), equal=True),
                Evidence(field="memo", left=rule.memo_pattern, right=credit.memo or "", equal=True),
            ]

        exact = [c for c in candidates if abs(c.amount_minor - expected) <= rule.amount_tolerance_minor]
        if exact:
            credit = min(exact, key=lambda c: (c.value_date, _canonical(c)))
            group = _group(
                self.run_id,
                rule.name,
                [credit],
                evidence_for(credit),
                f"bank credit {credit.txn_id} settles {channel.account_id} for {batch}: "
                f"{len(day)} rows, net {_money(expected, currency)}",
            ).model_copy(update={"settles": [agg.txn_id]})
            self.outcome.groups.append(group)
            self.place([credit])
        elif candidates:
            credit = min(candidates, key=lambda c: (abs(c.amount_minor - expected), _canonical(c)))
            self.outcome.findings.append(
                Finding(
                    kind=FindingKind.SETTLEMENT_AMOUNT_MISMATCH,
                    rule=rule.name,
                    members=[member_ref(credit)],
                    counterpart=[agg],
                    evidence=evidence_for(credit),
                    detail=f"bank credited {_money(credit.amount_minor, currency)}, {channel.account_id} net for "
                    f"{batch} is {_money(expected, currency)}",
                )
            )
            self.place([credit])
        else:
            self.outcome.findings.append(
                Finding(
                    kind=FindingKind.SETTLEMENT_MISSING,
                    rule=rule.name,
                    members=[agg],
                    evidence=[
                        Evidence(field="net_total", left=_money(expected, currency), right="", equal=False),
                        Evidence(field="settlement_lag_days", left=str(rule.lag_days), right="", equal=False),
                    ],
                    detail=f"no credit on {rule.bank_account} for {channel.account_id} {batch} "
                    f"(net {_money(expected, currency)}, T+{rule.lag_days})",
                )
            )

    # 5 ---------------------------------------------------------------------------------------------
    def leftovers(self) -> None:
        for t in self.active():
            self.outcome.findings.append(
                Finding(
                    kind=FindingKind.UNMATCHED,
                    rule=UNMATCHED_RULE,
                    members=[member_ref(t)],
                    detail=f"{t.source.value} {t.txn_id} ({_money(t.amount_minor, t.currency)}) has no counterpart",
                )
            )
            self.place([t])

    def run(self) -> MatchOutcome:
        self.apply_filters()
        self.flag_duplicates()
        for key_rule in self.project.key_rules:
            self.key_match(key_rule)
        for settlement_rule in self.project.settlement_rules:
            self.settle(settlement_rule)
        self.leftovers()
        return self.outcome


def match_transactions(
    project: Project, run_id: str, business_date: date, rows: list[Transaction]
) -> MatchOutcome:
    """Place every row in a match group, a finding, or the filtered set."""
    return _Matcher(project, run_id, business_date, unique_uids(rows)).run()


def unique_uids(rows: list[Transaction]) -> list[Transaction]:
    """Give repeated source ids distinct uids (``~<statement>:<row>``) so each row is placed exactly once.

    The repeated rows are then flagged as duplicates by the matcher, never dropped.
    """
    seen: set[str] = set()
    out: list[Transaction] = []
    for row in sorted(rows, key=_canonical):
        t = row
        if t.txn_uid in seen:
            t = row.model_copy(update={"txn_uid": f"{row.txn_uid}~{row.statement_id}:{row.row_number}"})
        seen.add(t.txn_uid)
        out.append(t)
    return out
