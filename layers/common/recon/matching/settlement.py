"""Settlement passes: a channel account's batch (its day, net of fees and refunds) ↔ one bank credit T+n.

Batches are the channel account's rows of this run's statements (carried rows were batched on their own
day) that were not filtered and that happened (status success), grouped by the run's business date or by
their value date (``group_by``). Per rule, in order:

1. each batch, by day: the earliest unused credit on the bank account whose memo/counterparty matches,
   whose lag is one of ``lag_days`` and whose amount equals the batch's net (± tolerance) settles it;
2. each remaining credit: 2..``max_batches_per_credit`` remaining batches whose nets add up to it settle
   it together (a unique combination is auto-matched, several are suggested);
3. each remaining batch: one whose credit may be in a bank statement a later run reads (a lag beyond
   ``Project.statement_lag``) waits, open, with its candidate credits; otherwise a candidate credit (right lag and
   memo) equal to gross − the scheduled fees is a FEE_MISMATCH; another candidate credit (nearest amount)
   is an AMOUNT_MISMATCH; none is MISSING_IN_BANK;
4. credits that could still settle a channel day this run has not loaded (value date − smallest lag after
   the business date) stay open for later runs (carry-over).

A run of day D reads only the bank statement of D + ``Project.statement_lag``, so every statement is read by exactly
one run of a daily sequence, and a batch is decided once every statement its lags point at was read.
"""

from __future__ import annotations

import itertools
import json
import re
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa

from recon.domain import SettlementRule

from .context import (
    AMOUNT_MISMATCH,
    AWAITING_RULE,
    DUPLICATE_RULE,
    FEE_MISMATCH,
    MISSING_IN_BANK,
    Context,
    content_hash,
    dumps,
    scheduled_fee,
)
from .frame import ANY, BOOL, I64, SOURCES, SUCCESS, Frame, from_day_number
from .hashing import hash_texts
from .ledger import FILTERED, Ledger
from .text import one_money


@dataclass
class Batch:
    account_id: str
    source: str
    day: int
    currency: str
    net: int = 0
    gross: int = 0
    fees: int = 0
    rows: int = 0
    scheduled_fees: int = 0

    @property
    def ref(self) -> str:
        return f"{self.account_id}@{from_day_number(self.day).isoformat()}"

    def add(self, other: Batch) -> None:
        self.net += other.net
        self.gross += other.gross
        self.fees += other.fees
        self.rows += other.rows
        self.scheduled_fees += other.scheduled_fees


@dataclass
class Settled:
    """What settlement passes leave for later: credits that may still be in flight (by rule, for the
    residue's carry-over) and batches waiting for a credit that may also settle a later day."""

    in_flight: dict[str, I64] = field(default_factory=dict)
    open_batches: dict[str, list[Batch]] = field(default_factory=dict)


def batch_rows(frame: Frame, ledger: Ledger, rule: SettlementRule) -> BOOL:
    """Rows that count in the rule's batches (see module doc). A repeated row is paid once: the copies
    the engine already made DUPLICATE cases do not count."""
    rows = (
        frame.account_mask(rule.channel_account)
        & (ledger.disposition != FILTERED)
        & (frame.status == SUCCESS)
        & (frame.first_seen == frame.today)
    )
    if DUPLICATE_RULE in ledger.rules:
        rows &= ledger.rule != ledger.rules.index(DUPLICATE_RULE)
    return np.asarray(rows, dtype=bool)


def batch_totals(frame: Frame, rows: ANY, rule: SettlementRule) -> list[Batch]:
    idx = np.flatnonzero(rows)
    if len(idx) == 0:
        return []
    days = frame.value_date[idx] if rule.group_by == "value_date" else np.full(len(idx), frame.today)
    out: list[Batch] = []
    source = SOURCES[int(frame.source[idx[0]])]
    for day in np.unique(days).tolist():
        sel = idx[days == day]
        fees = (
            scheduled_fee(frame.amount[sel], rule.fee_rate_percent)
            if rule.fee_rate_percent is not None
            else 0
        )
        out.append(
            Batch(
                account_id=rule.channel_account,
                source=source,
                day=int(day),
                currency=frame.currencies[int(frame.currency[sel[0]])],
                net=int(frame.net[sel].sum()),
                gross=int(frame.amount[sel].sum()),
                fees=int(frame.fee[sel].sum()),
                rows=len(sel),
                scheduled_fees=int(np.sum(fees)),
            )
        )
    return out


def batches_to_json(batches: dict[str, list[Batch]]) -> str:
    """Batches by rule, as JSON (open batches between runs, partial totals between tasks)."""
    return json.dumps(
        {rule: [b.__dict__ for b in bs] for rule, bs in sorted(batches.items())}, sort_keys=True
    )


def batches_from_json(text: str) -> dict[str, list[Batch]]:
    data = json.loads(text) if text else {}
    return {rule: [Batch(**b) for b in bs] for rule, bs in data.items()}


def merge_batches(*parts: list[Batch]) -> list[Batch]:
    merged: dict[int, Batch] = {}
    for part in parts:
        for b in part:
            if b.day in merged:
                merged[b.day].add(b)
            else:
                merged[b.day] = Batch(**{**b.__dict__})
    return [merged[d] for d in sorted(merged)]


def settle(
    frame: Frame,
    ledger: Ledger,
    rule: SettlementRule,
    ctx: Context,
    *,
    partial: list[Batch],
    settled: Settled,
    carried: list[Batch],
) -> None:
    batches = merge_batches(carried, partial, batch_totals(frame, batch_rows(frame, ledger, rule), rule))
    pattern = re.compile(rule.memo_pattern) if rule.memo_pattern else None
    pool = np.flatnonzero(ledger.unplaced() & frame.account_mask(rule.bank_account) & (frame.amount > 0))
    credits = []
    for row in pool.tolist():
        text = f"{frame.str_at('counterparty', row)} {frame.str_at('memo', row)}"
        if pattern is None or pattern.search(text):
            credits.append(row)
    credits.sort(key=lambda r: (int(frame.value_date[r]), frame.uid(r)))
    used: set[int] = set()
    done: set[int] = set()
    lags = set(rule.lag_days)

    def lag_ok(credit: int, batch: Batch) -> bool:
        return int(frame.value_date[credit]) - batch.day in lags

    groups: list[tuple[int, list[Batch], float, str]] = []
    # 1. one batch, one credit
    for b in batches:
        for c in credits:
            if (
                c not in used
                and lag_ok(c, b)
                and abs(int(frame.amount[c]) - b.net) <= rule.amount_tolerance_minor
            ):
                delta = int(frame.amount[c]) - b.net
                conf = (
                    1.0
                    if delta == 0
                    else round(1 - 0.05 * abs(delta) / max(rule.amount_tolerance_minor, 1), 4)
                )
                groups.append((c, [b], conf, "one batch"))
                used.add(c)
                done.add(b.day)
                break
    # 2. several batches in one credit
    for c in credits:
        if c in used:
            continue
        open_batches = [b for b in batches if b.day not in done and lag_ok(c, b)]
        solutions = []
        for k in range(2, min(rule.max_batches_per_credit, len(open_batches)) + 1):
            for combo in itertools.combinations(open_batches, k):
                if abs(int(frame.amount[c]) - sum(b.net for b in combo)) <= rule.amount_tolerance_minor:
                    solutions.append(list(combo))
                    if len(solutions) > 1:
                        break
            if len(solutions) > 1:
                break
        if solutions:
            chosen = solutions[0]
            groups.append((c, chosen, 0.95 if len(solutions) == 1 else 0.5, "several batches"))
            used.add(c)
            done.update(b.day for b in chosen)
    _record_groups(frame, ledger, ctx, rule, groups)
    # 3. batches left: wait for a later day's batch, fee schedule, amount mismatch or missing
    cases: list[tuple[str, int | None, Batch, int]] = []
    waiting: list[Batch] = []
    unread: list[Batch] = []  # waiting for a bank statement a later run reads
    last_read = frame.today + ctx.project.statement_lag(rule.bank_account)
    for b in batches:
        if b.day in done:
            continue
        if b.day + max(rule.lag_days) > last_read:
            # Its credit may be in a statement a later run reads: deciding now would call it missing.
            waiting.append(b)
            unread.append(b)
            continue
        candidates = [c for c in credits if c not in used and lag_ok(c, b)]
        later = [c for c in candidates if int(frame.value_date[c]) - min(rule.lag_days) > frame.today]
        young = frame.today - b.day < ctx.project.carry_over_days
        if later and young and rule.carry_over:
            # The credit may pay this batch together with a channel day this run has not loaded.
            waiting.append(b)
            continue
        if not candidates and rule.bank_account in ctx.unavailable:
            # The bank statement that would hold the credit is missing: wait for it, not MISSING_IN_BANK.
            waiting.append(b)
            continue
        if rule.fee_rate_percent is not None:
            scheduled_net = b.gross - b.scheduled_fees
            fee_hit = [
                c
                for c in candidates
                if abs(int(frame.amount[c]) - scheduled_net) <= rule.amount_tolerance_minor
            ]
            if fee_hit:
                c = fee_hit[0]
                cases.append((FEE_MISMATCH, c, b, int(frame.amount[c]) - b.net))
                used.add(c)
                continue
        if candidates:
            c = min(
                candidates,
                key=lambda r: (abs(int(frame.amount[r]) - b.net), int(frame.value_date[r]), frame.uid(r)),
            )
            cases.append((AMOUNT_MISMATCH, c, b, int(frame.amount[c]) - b.net))
            used.add(c)
        else:
            cases.append((MISSING_IN_BANK, None, b, -b.net))
    _record_cases(frame, ledger, ctx, rule, cases)
    # The credits a batch waiting for a statement may take stay open with it, so that the run deciding it
    # sees every candidate, as it would have had it read every lag's statement at once.
    held = sorted({c for b in unread for c in credits if c not in used and lag_ok(c, b)})
    if held:
        ledger.open_rows(np.array(held, np.int64), np.full(len(held), ledger.rule_code(rule.name), np.int32))
        used.update(held)
    if waiting:
        settled.open_batches[rule.name] = waiting
    if rule.channel_account in ctx.unavailable:
        # The channel's own statement is missing, so its batch is unknown: its credits wait for it.
        awaiting = [c for c in credits if c not in used]
        ledger.open_rows(
            np.array(awaiting, dtype=np.int64),
            np.full(len(awaiting), ledger.rule_code(f"{AWAITING_RULE}:{rule.channel_account}"), np.int32),
        )
        used.update(awaiting)
    # 4. credits that may settle a channel day not loaded yet
    if rule.carry_over:
        later = [
            c
            for c in credits
            if c not in used and int(frame.value_date[c]) - min(rule.lag_days) > frame.today
        ]
        settled.in_flight[rule.name] = np.array(later, dtype=np.int64)


def _aggregate(b: Batch, amount: int | None = None) -> dict[str, object]:
    return {
        "txn_uid": f"agg:{b.ref}",
        "source": b.source,
        "account_id": b.account_id,
        "txn_id": b.ref,
        "amount_minor": b.net if amount is None else amount,
        "currency": b.currency,
    }


def _evidence(
    frame: Frame, rule: SettlementRule, credit: int | None, batches: list[Batch]
) -> list[dict[str, object]]:
    currency = batches[0].currency
    net = sum(b.net for b in batches)
    amount = int(frame.amount[credit]) if credit is not None else None
    lags = sorted({int(frame.value_date[credit]) - b.day for b in batches}) if credit is not None else []
    return [
        {
            "field": "net_total",
            "left": one_money(net, currency),
            "right": one_money(amount, currency) if amount is not None else "",
            "equal": amount is not None and abs(amount - net) <= rule.amount_tolerance_minor,
            "delta": one_money(amount - net, currency) if amount is not None else None,
        },
        {
            "field": "channel_rows",
            "left": str(sum(b.rows for b in batches)),
            "right": "1" if credit is not None else "0",
            "equal": credit is not None,
        },
        {
            "field": "fees",
            "left": one_money(sum(b.fees for b in batches), currency),
            "right": one_money(sum(b.scheduled_fees for b in batches), currency)
            if rule.fee_rate_percent is not None
            else "",
            "equal": rule.fee_rate_percent is None
            or sum(b.fees for b in batches) == sum(b.scheduled_fees for b in batches),
        },
        {
            "field": "settlement_lag_days",
            "left": ",".join(map(str, rule.lag_days)),
            "right": ",".join(map(str, lags)),
            "equal": credit is not None,
        },
        {
            "field": "memo",
            "left": rule.memo_pattern,
            "right": frame.str_at("memo", credit) if credit is not None else "",
            "equal": credit is not None,
        },
    ]


def _record_groups(
    frame: Frame,
    ledger: Ledger,
    ctx: Context,
    rule: SettlementRule,
    groups: list[tuple[int, list[Batch], float, str]],
) -> None:
    if not groups:
        return
    credits = [g[0] for g in groups]
    conf = np.array([g[2] for g in groups])
    net = np.array([sum(b.net for b in g[1]) for g in groups], np.int64)
    amount = frame.amount[np.array(credits, np.int64)]
    settles = [",".join(b.ref for b in g[1]) for g in groups]
    explanation = [
        f"bank credit {frame.str_at('txn_id', c)} settles {s}: {sum(b.rows for b in bs)} rows, "
        f"net {one_money(sum(b.net for b in bs), bs[0].currency)} ({how})"
        for (c, bs, _, how), s in zip(groups, settles, strict=True)
    ]
    fee_delta = (
        np.array([sum(b.fees - b.scheduled_fees for b in g[1]) for g in groups], np.int64)
        if rule.fee_rate_percent is not None
        else None
    )
    ledger.add_groups(
        {
            "rule": rule.name,
            "match_pass": "settlement",
            "status": ctx.status(conf),
            "confidence": conf,
            "members": np.ones(len(groups), np.int32),
            "left_members": np.array([len(g[1]) for g in groups], np.int32),
            "right_members": np.ones(len(groups), np.int32),
            "key": settles,
            "currency": [g[1][0].currency for g in groups],
            "left_amount_minor": net,
            "right_amount_minor": amount,
            "amount_delta_minor": amount - net,
            "time_delta_s": None,
            "fee_delta_minor": fee_delta,
            "settles": settles,
            "explanation": explanation,
            "evidence": [dumps(_evidence(frame, rule, c, bs)) for c, bs, _, _ in groups],
        },
        content_hash(hash_texts([frame.uid(c) for c in credits]), rule.name),
        np.array(credits, np.int64),
        np.arange(len(groups), dtype=np.int64),
    )


_REASON = {
    AMOUNT_MISMATCH: "The bank credit differs from the channel day's net: bank {credit} {amount} vs {ref} net {net} (Δ {delta}).",
    FEE_MISMATCH: "The bank credit equals the channel day's gross less the scheduled fees ({rate}%), not the channel's net: "
    "the channel's stated fees {fees} differ from the schedule {scheduled}; bank {credit} {amount}, {ref} net {net}.",
    MISSING_IN_BANK: "短款: the channel settled this day but no matching bank credit arrived: {ref} net {net} "
    "(T+{lags}) has no credit on {bank}.",
}


def _record_cases(
    frame: Frame,
    ledger: Ledger,
    ctx: Context,
    rule: SettlementRule,
    cases: list[tuple[str, int | None, Batch, int]],
) -> None:
    """Cases with a credit as member (mismatches), and cases whose only member is a batch (missing)."""
    with_row = [c for c in cases if c[1] is not None]
    without = [c for c in cases if c[1] is None]
    for group, rows in ((with_row, True), (without, False)):
        if not group:
            continue
        reasons, counterparts, aggregates, evidence, keys = [], [], [], [], []
        for kind, credit, b, delta in group:
            reasons.append(
                _REASON[kind].format(
                    credit=frame.str_at("txn_id", credit) if credit is not None else "",
                    amount=one_money(int(frame.amount[credit]), b.currency) if credit is not None else "",
                    ref=b.ref,
                    net=one_money(b.net, b.currency),
                    delta=one_money(delta, b.currency),
                    rate=rule.fee_rate_percent,
                    fees=one_money(b.fees, b.currency),
                    scheduled=one_money(b.scheduled_fees, b.currency),
                    lags="/".join(map(str, rule.lag_days)),
                    bank=rule.bank_account,
                )
            )
            counterparts.append(dumps([_aggregate(b)]) if rows else None)
            aggregates.append(None if rows else dumps(_aggregate(b)))
            evidence.append(dumps(_evidence(frame, rule, credit, [b])))
            keys.append(b.ref)
        deltas = np.array([c[3] for c in group], np.int64)
        n = len(group)
        credit_rows = np.array([c[1] for c in group if c[1] is not None], np.int64)
        ids = hash_texts(
            [
                f"{k}\x1f{frame.uid(c[1]) if c[1] is not None else ''}"
                for k, c in zip(keys, group, strict=True)
            ]
        )
        ledger.add_cases(
            {
                "type": [c[0] for c in group],
                "rule": rule.name,
                "severity": [ctx.project.severity.classify(int(d)).value for d in deltas],
                "delta_minor": deltas,
                "currency": [c[2].currency for c in group],
                "members": np.ones(n, np.int32),
                "key": keys,
                "left_amount_minor": np.array([c[2].net for c in group], np.int64),
                "right_amount_minor": pa.array(
                    [int(frame.amount[c[1]]) if c[1] is not None else None for c in group], pa.int64()
                ),
                "counterparts": pa.array(counterparts, pa.string()),
                "aggregate": pa.array(aggregates, pa.string()),
                "reason": reasons,
                "evidence": evidence,
            },
            content_hash(ids, rule.name, "case"),
            credit_rows,
            np.arange(len(credit_rows), dtype=np.int64),
        )
