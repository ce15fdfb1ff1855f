"""Settlement passes: a channel account's batch (its day, net of fees and refunds) ↔ one bank credit T+n.

Batches are the channel account's rows of this run's statements (carried rows were batched on their own
day) that were not filtered and that happened (status success), grouped by the run's business date or by
their value date (``group_by``). Credits are the booked (not pending) positive rows of the bank account
whose memo/counterparty matches; a candidate of a batch has one of ``lag_days`` and the batch's currency
(amounts of different currencies are never paired). A booked entry first seen pending counts from the pending entry's value date, and the pending
entry is filtered (``pending-entry-booked``). A credit the bank reversed (a debit with camt ``RvslInd`` or
冲正, same amount) that would pay an open batch settles nothing: the batch is MISSING_IN_BANK, one case with
the credit and its reversal. Per rule, in order:

1. each batch, by day: the earliest unused candidate equal to the batch's net (± tolerance) settles it;
2. each remaining credit: 2..``max_batches_per_credit`` remaining batches whose nets add up to it settle
   it together (a unique combination is auto-matched, several are suggested); a day with a negative net is
   deducted from a later day's payout this way;
3. each remaining batch: 2..``max_batches_per_credit`` candidates adding up to its net (a split payout);
4. each remaining batch waits, open, when its credit may be in a bank statement a later run reads (a lag
   beyond ``Project.statement_lag``, with its candidate credits), when its statement is missing (it keeps
   waiting for it until ``carry_over_days``), when a pending entry equals it, when a candidate off its net
   may be the payout of a day still waiting for its statement, or when its net is negative (until
   ``carry_over_days``, then OTHER); a day whose net is zero expects nothing. Otherwise: a candidate equal
   to gross − the scheduled fees is a FEE_MISMATCH; then the (batch, credit) pairs of the deciding batches,
   the credit whose memo names the batch's day first, then the nearest amount, are AMOUNT_MISMATCHes (a
   credit whose memo names another channel day is not one); the rest is MISSING_IN_BANK (a credit of
   another currency with its lag and memo is an OTHER case beside it);
5. credits that could still settle a channel day this run has not loaded (value date − smallest lag after
   the business date) stay open for later runs (carry-over).

A run of day D reads only the bank statement of D + ``Project.statement_lag``, so every statement is read by exactly
one run of a daily sequence, and a batch is decided once every statement its lags point at was read.
"""

from __future__ import annotations

import itertools
import json
import re
from dataclasses import dataclass, field
from datetime import date

import numpy as np
import pyarrow as pa

from recon.domain import SettlementRule

from .context import (
    AMOUNT_MISMATCH,
    AWAITING_RULE,
    DUPLICATE_RULE,
    FEE_MISMATCH,
    MISSING_IN_BANK,
    MISSING_IN_CHANNEL,
    OTHER,
    PENDING_BOOKED_RULE,
    PENDING_RULE,
    TIME_MISMATCH,
    Context,
    content_hash,
    dumps,
    scheduled_fee,
)
from .frame import ANY, BOOL, I64, SOURCES, SUCCESS, TXN_TYPES, Frame, from_day_number
from .hashing import hash_texts, hex_id
from .ledger import FILTERED, Ledger
from .text import one_money

#: Case kinds besides the case types: a credit in another currency than the batch's, a negative day never
#: deducted from a payout (both OTHER).
FOREIGN_CREDIT = f"{OTHER}:foreign-credit"
NOT_DEDUCTED = f"{OTHER}:not-deducted"
#: Credits of one batch searched for a split payout (the combinations grow fast; a split is 2 or 3 lines).
_MAX_SPLIT_CANDIDATES = 12
REVERSED = f"{MISSING_IN_BANK}:reversed"  # the credit that paid the day, and the bank's reversal of it
#: A debit reverses a credit: camt ``RvslInd`` (parsed as an adjustment) or the Chinese banks' 冲正 in the memo.
_REVERSAL_WORDS = ("冲正", "冲销")
_ADJUSTMENT = TXN_TYPES.index("adjustment")


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
    awaiting: str = ""  # the date of the missing bank statement the batch waits for, if any
    # A batch a run decided, remembered by the next runs for ``carry_over_days`` so that a payout arriving
    # later than its lags, or a later reversal of the credit that paid it, is linked to it: ``missing`` (it was
    # MISSING_IN_BANK) or ``settled`` (by the bank credit ``credit``). Empty for a batch still waiting.
    decided: str = ""
    decided_on: int = 0  # the business day of the run that decided it
    credit: str = ""  # settled: the credit's txn_id, txn_uid, amount and value day
    credit_uid: str = ""
    credit_amount: int = 0
    credit_day: int = 0

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
    decided: dict[str, list[Batch]] = field(default_factory=dict)  # ``Batch.decided``, by rule


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
    # Batches earlier runs decided come back only to be linked to a late payout or a later reversal.
    history = [b for b in carried if b.decided]
    batches = merge_batches(
        [b for b in carried if not b.decided],
        partial,
        batch_totals(frame, batch_rows(frame, ledger, rule), rule),
    )
    pattern = re.compile(rule.memo_pattern) if rule.memo_pattern else None
    pool = np.flatnonzero(ledger.unplaced() & frame.account_mask(rule.bank_account) & (frame.amount > 0))
    credits: list[int] = []
    pending: list[int] = []
    for row in pool.tolist():
        text = f"{frame.str_at('counterparty', row)} {frame.str_at('memo', row)}"
        if pattern is None or pattern.search(text):
            # A pending (not booked) entry is not money on the account yet: it never settles a batch.
            (credits if int(frame.status[row]) == SUCCESS else pending).append(row)
    credits.sort(key=lambda r: (int(frame.value_date[r]), frame.uid(r)))
    pending.sort(key=lambda r: (int(frame.value_date[r]), frame.uid(r)))
    used: set[int] = set()
    done: set[int] = set()
    lags = set(rule.lag_days)

    def young(day: int) -> bool:
        return frame.today - day < ctx.project.carry_over_days

    def currency(row: int) -> str:
        return frame.currencies[int(frame.currency[row])]

    # The booked entry of a credit first seen pending counts from the pending entry's value date (the day the
    # money reached the bank); the pending entry is then filtered: the booked one is the same money.
    value_day = {c: int(frame.value_date[c]) for c in [*credits, *pending]}
    pending_of = {(frame.str_at("txn_id", p), int(frame.amount[p]), currency(p)): p for p in pending}
    booked_later = []
    for c in credits:
        p = pending_of.pop((frame.str_at("txn_id", c), int(frame.amount[c]), currency(c)), None)
        if p is not None:
            value_day[c] = min(value_day[c], value_day[p])
            booked_later.append(p)
    if booked_later:
        ledger.filter_rows(np.array(sorted(booked_later), np.int64), PENDING_BOOKED_RULE)
        pending = [p for p in pending if p not in set(booked_later)]

    def lag_ok(credit: int, batch: Batch) -> bool:
        return value_day[credit] - batch.day in lags

    def fits(credit: int, batch: Batch) -> bool:
        # Settlement never pairs amounts of different currencies.
        return lag_ok(credit, batch) and currency(credit) == batch.currency

    def deducts(credit: int, batch: Batch) -> bool:
        """A day whose net is negative is deducted from a later payout (WeChat Pay, Alipay)."""
        gap = value_day[credit] - batch.day
        return (
            currency(credit) == batch.currency and min(lags) <= gap <= max(lags) + ctx.project.carry_over_days
        )

    # A credit the bank reversed settles nothing: the day it would have paid is unpaid, one case with both
    # entries. A reversed credit that pays no open day stays a credit like any other.
    cases: list[tuple[str, int | None, Batch, int, str]] = []
    reversed_by, debits = _reversals(
        frame, ledger, rule, pattern=pattern, credits=credits, value_day=value_day
    )
    # A reversal of a credit an earlier run placed: the day that credit settled is unpaid again.
    later = [r for r in debits if r not in set(reversed_by.values())]
    consumed = _reversed_later(frame, ledger, ctx, rule, debits=later, history=history)
    for c, r in list(reversed_by.items()):
        paid = next(
            (
                b
                for b in batches
                if b.day not in done
                and b.net > 0
                and fits(c, b)
                and abs(int(frame.amount[c]) - b.net) <= rule.amount_tolerance_minor
            ),
            None,
        )
        if paid is None:
            del reversed_by[c]
            continue
        note = f" {frame.str_at('txn_id', r)} ({one_money(int(frame.amount[r]), currency(r))}): the day is unpaid."
        cases.append((REVERSED, c, paid, -paid.net, note))
        done.add(paid.day)
    credits = [c for c in credits if c not in reversed_by]
    groups: list[tuple[list[int], list[Batch], float, str]] = []
    # 1. one batch, one credit
    for b in batches:
        if b.net <= 0:
            continue
        for c in credits:
            if (
                c not in used
                and fits(c, b)
                and abs(int(frame.amount[c]) - b.net) <= rule.amount_tolerance_minor
            ):
                delta = int(frame.amount[c]) - b.net
                conf = (
                    1.0
                    if delta == 0
                    else round(1 - 0.05 * abs(delta) / max(rule.amount_tolerance_minor, 1), 4)
                )
                groups.append(([c], [b], conf, "one batch"))
                used.add(c)
                done.add(b.day)
                break
    # 2. several batches in one credit (a day with a negative net is deducted from the payout of a later day)
    for c in credits:
        if c in used:
            continue
        open_batches = [
            b for b in batches if b.day not in done and (fits(c, b) if b.net > 0 else deducts(c, b))
        ]
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
            how = "several batches"
            deducted = [b for b in chosen if b.net <= 0]
            if deducted:
                how += "; " + ", ".join(
                    f"the net {one_money(b.net, b.currency)} of {b.ref}" for b in deducted
                )
                how += " deducted from this payout"
            groups.append(([c], chosen, 0.95 if len(solutions) == 1 else 0.5, how))
            used.add(c)
            done.update(b.day for b in chosen)
    # 3. one batch in several credits: the bank split the payout into lines that add up to the day's net
    for b in batches:
        if b.day in done or b.net <= 0:
            continue
        parts = [
            c
            for c in credits
            if c not in used and fits(c, b) and int(frame.amount[c]) < b.net + rule.amount_tolerance_minor
        ][:_MAX_SPLIT_CANDIDATES]
        found: list[list[int]] = []
        for k in range(2, min(rule.max_batches_per_credit, len(parts)) + 1):
            for split in itertools.combinations(parts, k):
                if abs(sum(int(frame.amount[c]) for c in split) - b.net) <= rule.amount_tolerance_minor:
                    found.append(list(split))
                    if len(found) > 1:
                        break
            if len(found) > 1:
                break
        if found:
            groups.append((found[0], [b], 0.95 if len(found) == 1 else 0.5, "several credits"))
            used.update(found[0])
            done.add(b.day)
    _record_groups(frame, ledger, ctx, rule, groups)
    # Remembered for carry_over_days: a later run may bring the reversal of the credit that paid the day.
    decided = [
        _decided(
            b,
            "settled",
            frame.today,
            credit=frame.str_at("txn_id", cs[0]),
            credit_uid=frame.uid(cs[0]),
            credit_amount=int(frame.amount[cs[0]]),
            credit_day=value_day[cs[0]],
        )
        for cs, bs, _, _ in groups
        if len(cs) == 1
        for b in bs
    ]
    # A payout later than the rule's lags of a day an earlier run reported MISSING_IN_BANK: one case linking
    # both (TIME_MISMATCH; AMOUNT_MISMATCH when off the net and its memo names the day), before any of today's
    # batches takes it as an AMOUNT_MISMATCH.
    consumed |= _late_payouts(
        frame,
        ledger,
        ctx,
        rule,
        credits=credits,
        used=used,
        history=history,
        value_day=value_day,
        consumed=consumed,
    )
    # 4. batches left: wait for a later day's batch, fee schedule, amount mismatch or missing
    waiting: list[Batch] = []
    unread: list[Batch] = []  # waiting for a bank statement a later run reads
    deciding: list[Batch] = []
    last_read = frame.today + ctx.project.statement_lag(rule.bank_account)

    def may_mismatch(credit: int, batch: Batch) -> bool:
        """A credit whose memo names another channel day is that day's payout, never this one's mismatch."""
        named = _memo_day(frame.str_at("memo", credit))
        return fits(credit, batch) and (named is None or named in (value_day[credit], batch.day))

    later_read = [
        b for b in batches if b.day not in done and b.net > 0 and b.day + max(rule.lag_days) > last_read
    ]
    for b in batches:
        if b.day in done:
            continue
        if b.net <= 0:
            # No payout is due for a day whose refunds reach its sales: nothing is missing in the bank. A
            # negative net waits to be deducted from a later payout (pass 2).
            if b.net < 0 and young(b.day):
                waiting.append(b)
            elif b.net < 0:
                cases.append((NOT_DEDUCTED, None, b, b.net, ""))
            continue
        if b.day + max(rule.lag_days) > last_read:
            # Its credit may be in a statement a later run reads: deciding now would call it missing.
            waiting.append(b)
            unread.append(b)
            continue
        candidates = [c for c in credits if c not in used and fits(c, b)]
        later = [c for c in candidates if value_day[c] - min(rule.lag_days) > frame.today]
        if later and young(b.day) and rule.carry_over:
            # The credit may pay this batch together with a channel day this run has not loaded.
            waiting.append(b)
            continue
        if not candidates and rule.bank_account in ctx.unavailable:
            # The bank statement that would hold the credit is missing: wait for it, not MISSING_IN_BANK.
            b.awaiting = b.awaiting or from_day_number(last_read).isoformat()
            waiting.append(b)
            continue
        if any(
            may_mismatch(c, b)
            and _memo_day(frame.str_at("memo", c)) != b.day
            and any(may_mismatch(c, u) for u in later_read)
            for c in candidates
        ):
            # A credit off its net may be the payout of a later day still waiting for its statement: decide
            # both together, with that statement's run, rather than give this day the other day's credit.
            waiting.append(b)
            unread.append(b)  # its candidate credits stay open with it
            continue
        if not candidates and b.awaiting and young(b.day):
            # It still waits for the statement that was missing: a later statement does not hold its credit.
            waiting.append(b)
            continue
        if any(
            fits(p, b) and abs(int(frame.amount[p]) - b.net) <= rule.amount_tolerance_minor for p in pending
        ) and young(b.day):
            # Its credit is pending at the bank: the booked entry, in a later statement, settles it.
            waiting.append(b)
            continue
        deciding.append(b)
    fee_hits: set[int] = set()
    if rule.fee_rate_percent is not None:
        for b in deciding:
            scheduled_net = b.gross - b.scheduled_fees
            fee_hit = [
                c
                for c in credits
                if c not in used
                and fits(c, b)
                and abs(int(frame.amount[c]) - scheduled_net) <= rule.amount_tolerance_minor
            ]
            if fee_hit:
                c = fee_hit[0]
                cases.append((FEE_MISMATCH, c, b, int(frame.amount[c]) - b.net, ""))
                used.add(c)
                fee_hits.add(b.day)
    # An AMOUNT_MISMATCH pairs a batch with a credit of its lags; of all such pairs the credit whose memo
    # names the batch's day goes first, then the nearest amount. A credit whose memo names another channel
    # day never pays this one: it is that day's payout.
    pairs = []
    for b in deciding:
        if b.day in fee_hits:
            continue
        for c in credits:
            if c in used or not may_mismatch(c, b):
                continue
            delta = int(frame.amount[c]) - b.net
            named = _memo_day(frame.str_at("memo", c)) == b.day
            pairs.append(((not named, abs(delta), b.day, value_day[c], frame.uid(c)), c, b))
    mismatched: set[int] = set()
    for _, c, b in sorted(pairs, key=lambda p: p[0]):
        if c in used or b.day in mismatched:
            continue
        cases.append((AMOUNT_MISMATCH, c, b, int(frame.amount[c]) - b.net, ""))
        used.add(c)
        mismatched.add(b.day)
    for b in deciding:
        if b.day in fee_hits or b.day in mismatched:
            continue
        note = ""
        if ctx.project.carry_over_days > 0:
            # The day is remembered (``Batch.decided``): a later payout is linked to this case, not a 长款.
            note = (
                f" If the payout arrives later, a run of the next {ctx.project.carry_over_days} day(s) that "
                "reads it links it to this case and closes it (TIME_MISMATCH; an AMOUNT_MISMATCH of the "
                "difference if it is off the net and its memo names the day)."
            )
        if b.awaiting:
            note += f" The {rule.bank_account} statement of {b.awaiting} it needed never arrived."
        stale = [
            p
            for p in pending
            if fits(p, b) and abs(int(frame.amount[p]) - b.net) <= rule.amount_tolerance_minor
        ]
        if stale:
            note += f" Bank entry {frame.str_at('txn_id', stale[0])} is only pending, never booked."
        foreign = [c for c in credits if c not in used and lag_ok(c, b) and currency(c) != b.currency]
        if foreign:
            c = foreign[0]
            note += (
                f" Bank credit {frame.str_at('txn_id', c)} ({one_money(int(frame.amount[c]), currency(c))} "
                f"{currency(c)}) has its memo and lag but is not in {b.currency}: a separate case (OTHER)."
            )
            cases.append((FOREIGN_CREDIT, c, b, int(frame.amount[c]), ""))
            used.add(c)
        cases.append((MISSING_IN_BANK, None, b, -b.net, note))
        decided.append(_decided(b, "missing", frame.today))
    _record_cases(frame, ledger, ctx, rule, cases, reversed_by=reversed_by)
    # The credits a batch waiting for a statement may take stay open with it, so that the run deciding it
    # sees every candidate, as it would have had it read every lag's statement at once.
    held = sorted({c for b in unread for c in credits if c not in used and fits(c, b)})
    if held:
        ledger.open_rows(np.array(held, np.int64), np.full(len(held), ledger.rule_code(rule.name), np.int32))
        used.update(held)
    # A pending entry stays open until its booked entry arrives (then it is filtered) or the carry-over limit.
    young_pending = [p for p in pending if young(int(frame.first_seen[p]))]
    if young_pending:
        code = ledger.rule_code(f"{PENDING_RULE}:{rule.name}")
        ledger.open_rows(np.array(young_pending, np.int64), np.full(len(young_pending), code, np.int32))
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
    # A carried credit whose channel days are all past and none known to this run (no batch, carried, of
    # today or remembered) was held for a missing bill: had the bill arrived, its day would have run again
    # and placed the credit. It keeps waiting up to carry_over_days; then its case says which bill never came.
    known = {b.day for b in batches} | {h.day for h in history}
    orphans = [
        c
        for c in credits
        if c not in used
        and int(frame.first_seen[c]) < frame.today
        and all(value_day[c] - lag < frame.today for lag in lags)
        and not any(value_day[c] - lag in known for lag in lags)
    ]
    wait = [c for c in orphans if young(int(frame.first_seen[c]))]
    if wait:
        code = ledger.rule_code(f"{AWAITING_RULE}:{rule.channel_account}")
        ledger.open_rows(np.array(wait, np.int64), np.full(len(wait), code, np.int32))
    _bills_never_arrived(
        frame, ledger, ctx, rule, rows=[c for c in orphans if c not in wait], value_day=value_day
    )
    used.update(orphans)
    kept = [h for k, h in enumerate(history) if k not in consumed and young(h.decided_on)]
    if kept or decided:
        settled.decided[rule.name] = sorted(
            [*kept, *decided], key=lambda b: (b.day, b.decided, b.decided_on, b.credit_uid)
        )
    # 5. credits that may settle a channel day not loaded yet
    if rule.carry_over:
        later = [c for c in credits if c not in used and value_day[c] - min(rule.lag_days) > frame.today]
        settled.in_flight[rule.name] = np.array(later, dtype=np.int64)


def _reversals(
    frame: Frame,
    ledger: Ledger,
    rule: SettlementRule,
    *,
    pattern: re.Pattern[str] | None,
    credits: list[int],
    value_day: dict[int, int],
) -> tuple[dict[int, int], list[int]]:
    """Credit -> the debit of this run that reverses it (same amount and currency, not before it; the one
    whose reference the debit's memo names, else the latest); and every reversal debit of the rule's bank
    account and memo (in value-date order)."""
    rows = np.flatnonzero(ledger.unplaced() & frame.account_mask(rule.bank_account) & (frame.amount < 0))
    out: dict[int, int] = {}
    debits: list[int] = []
    for r in sorted(rows.tolist(), key=lambda r: (int(frame.value_date[r]), frame.uid(r))):
        memo = frame.str_at("memo", r)
        text = f"{frame.str_at('counterparty', r)} {memo}"
        if int(frame.txn_type[r]) != _ADJUSTMENT and not any(w in memo for w in _REVERSAL_WORDS):
            continue
        if pattern is not None and not pattern.search(text):
            continue
        debits.append(r)
        same = [
            c
            for c in credits
            if c not in out
            and int(frame.amount[c]) == -int(frame.amount[r])
            and frame.currency[c] == frame.currency[r]
            and value_day[c] <= int(frame.value_date[r])
        ]
        if same:
            named = [c for c in same if frame.str_at("txn_id", c) and frame.str_at("txn_id", c) in memo]
            c = (named or sorted(same, key=lambda c: (value_day[c], frame.uid(c)), reverse=True))[0]
            out[c] = r
    return out, debits


def _decided(
    b: Batch,
    how: str,
    today: int,
    *,
    credit: str = "",
    credit_uid: str = "",
    credit_amount: int = 0,
    credit_day: int = 0,
) -> Batch:
    """``b`` as the next runs remember it once decided (``Batch.decided``)."""
    return Batch(
        **{
            **b.__dict__,
            "awaiting": "",
            "decided": how,
            "decided_on": today,
            "credit": credit,
            "credit_uid": credit_uid,
            "credit_amount": credit_amount,
            "credit_day": credit_day,
        }
    )


def _day(day: int) -> str:
    return from_day_number(day).isoformat()


def _money(amount: int, currency: str) -> str:
    return f"{one_money(amount, currency)} {currency}"


def _case_identity(key: str, credit_uid: str) -> str:
    """What a settlement case id hashes (``_record_cases``): its key (the batches) and its credit, if any."""
    return f"{key}\x1f{credit_uid}"


def missing_case_id(rule: str, b: Batch) -> str:
    """The id of the MISSING_IN_BANK case of batch ``b`` (no credit), as ``_record_cases`` makes it."""
    return hex_id("case", int(content_hash(hash_texts([_case_identity(b.ref, "")]), rule, "case")[0]))


def _reversed_later(
    frame: Frame,
    ledger: Ledger,
    ctx: Context,
    rule: SettlementRule,
    *,
    debits: list[int],
    history: list[Batch],
) -> set[int]:
    """Reversal debits of credits an earlier run matched (same amount negated and currency, not before the
    credit; the credit the debit's memo names, else the latest): one MISSING_IN_BANK case per reversal,
    naming the credit and the days it settled, which are unpaid again. Returns the history records used."""
    consumed: set[int] = set()
    items: list[dict[str, object]] = []
    for r in debits:
        memo = frame.str_at("memo", r)
        paid = [
            k
            for k, h in enumerate(history)
            if k not in consumed
            and h.decided == "settled"
            and h.credit_amount == -int(frame.amount[r])
            and h.currency == _currency(frame, r)
            and h.credit_day <= int(frame.value_date[r])
        ]
        if not paid:
            continue
        named = [k for k in paid if history[k].credit and history[k].credit in memo]
        first = history[
            (
                named
                or sorted(paid, key=lambda k: (history[k].credit_day, history[k].credit_uid), reverse=True)
            )[0]
        ]
        days = [history[k] for k in paid if history[k].credit_uid == first.credit_uid]
        consumed.update(k for k in paid if history[k].credit_uid == first.credit_uid)
        net = sum(b.net for b in days)
        refs = ", ".join(b.ref for b in days)
        cur = first.currency
        items.append(
            {
                "type": MISSING_IN_BANK,
                "row": r,
                "delta": -net,
                "currency": cur,
                "key": ",".join(b.ref for b in days),
                "left": net,
                "counterparts": [
                    {
                        "txn_uid": first.credit_uid,
                        "source": "bank",
                        "account_id": rule.bank_account,
                        "txn_id": first.credit,
                        "amount_minor": first.credit_amount,
                        "currency": cur,
                    },
                    *(_aggregate(b) for b in days),
                ],
                "reason": f"短款: the bank reversed (冲正) a settlement credit an earlier run matched: bank "
                f"{frame.str_at('txn_id', r)} {_money(int(frame.amount[r]), cur)} (value date "
                f"{_day(int(frame.value_date[r]))}) reverses bank {first.credit} {_money(first.credit_amount, cur)} "
                f"(value date {_day(first.credit_day)}), which settled {refs} (net {_money(net, cur)}) in the run "
                f"of {_day(first.decided_on)}. {'That day is' if len(days) == 1 else 'Those days are'} unpaid "
                "again: ask the bank why the payout was reversed and the channel when it will be paid again.",
            }
        )
    _row_cases(frame, ledger, ctx, rule, items=items, label="reversed-later")
    return consumed


def _late_payouts(
    frame: Frame,
    ledger: Ledger,
    ctx: Context,
    rule: SettlementRule,
    *,
    credits: list[int],
    used: set[int],
    history: list[Batch],
    value_day: dict[int, int],
    consumed: set[int],
) -> set[int]:
    """Credits with a lag beyond the rule's largest that pay a day an earlier run reported MISSING_IN_BANK:
    the payout arrived late. A credit equal (± tolerance) to the day's net is one TIME_MISMATCH case (as a
    key whose rows agree but are further apart than the time tolerance); a credit off the net whose memo
    names the day is one AMOUNT_MISMATCH case (the keyed precedence: the money is short or over, Δ = credit
    − net), never on the amount alone. Either way the credit is its member, the day its counterpart, and it
    names (``closes``) the earlier case. Of several pairs, the credit whose memo names the day goes first,
    then the nearest amount, then the earlier day. Returns the history records used."""
    largest = max(rule.lag_days)
    pairs = []
    for k, h in enumerate(history):
        if k in consumed or h.decided != "missing":
            continue
        for c in credits:
            if c in used or _currency(frame, c) != h.currency or value_day[c] - h.day <= largest:
                continue
            delta = int(frame.amount[c]) - h.net
            named = _memo_day(frame.str_at("memo", c))
            if named not in (None, value_day[c], h.day):
                continue  # that other day's payout
            if abs(delta) > rule.amount_tolerance_minor and named != h.day:
                continue  # off the net, only the memo may link it: the amount alone is no evidence
            pairs.append(((named != h.day, abs(delta), h.day, value_day[c], frame.uid(c)), k, c))
    out: set[int] = set()
    items: list[dict[str, object]] = []
    lags = "/".join(map(str, rule.lag_days))
    for _, k, c in sorted(pairs, key=lambda p: p[0]):
        if k in out or c in used:
            continue
        out.add(k)
        used.add(c)
        h = history[k]
        lag = value_day[c] - h.day
        amount = int(frame.amount[c])
        delta = amount - h.net
        earlier = missing_case_id(rule.name, h)
        late = f"with value date {_day(value_day[c])} is T+{lag}, {lag - largest} day(s) later than the rule's T+{lags}"
        reported = (
            f"The run of {_day(h.decided_on)} reported the day MISSING_IN_BANK (case {earlier}) because no credit "
            "had arrived by then"
        )
        advice = f"If the channel pays this late regularly, add {lag} to the rule's lag_days."
        if abs(delta) <= rule.amount_tolerance_minor:
            off = f" (Δ {_money(delta, h.currency)}, within the tolerance)" if delta else ""
            kind, stake = TIME_MISMATCH, amount
            reason = (
                f"The payout of {h.ref} (net {_money(h.net, h.currency)}) arrived late: bank "
                f"{frame.str_at('txn_id', c)} {_money(amount, h.currency)}{off} {late}. {reported}: this credit "
                f"pays it, nothing is missing — that case is closed automatically (one in review is only noted). {advice}"
            )
        else:
            # Off the net beyond the tolerance, linked by its memo: the money differs (AMOUNT_MISMATCH beats
            # TIME_MISMATCH, as for a key) and only the difference is at stake; the earlier 短款 is closed.
            word, how, than = ("短款", "short", "short of") if delta < 0 else ("长款", "over", "over")
            gap = _money(abs(delta), h.currency)
            kind, stake = AMOUNT_MISMATCH, delta
            reason = (
                f"{word}: the payout of {h.ref} arrived late and {gap} {how}: bank {frame.str_at('txn_id', c)} "
                f"{_money(amount, h.currency)} (its memo names {_day(h.day)}) {late}, and the day's net is "
                f"{_money(h.net, h.currency)} (Δ {_money(delta, h.currency)}). {reported}: this credit pays the day "
                "but for the Δ — that case is closed automatically (one in review is only noted) and only the Δ is "
                f"at stake: ask the channel why the payout is {gap} {than} the bill's net (fees, refunds or an "
                f"adjustment the bill does not show). {advice}"
            )
        items.append(
            {
                "type": kind,
                "row": c,
                "delta": stake,
                "currency": h.currency,
                "key": h.ref,
                "left": h.net,
                "counterparts": [_aggregate(h)],
                # The earlier case this credit explains: the resolve stage closes it (structured, not the text).
                "closes": [{"case_id": earlier, "business_date": _day(h.decided_on)}],
                "evidence": dumps(_evidence(frame, rule, c, [h])),
                "reason": reason,
            }
        )
    _row_cases(frame, ledger, ctx, rule, items=items, label="late-payout")
    return out


def _bills_never_arrived(
    frame: Frame,
    ledger: Ledger,
    ctx: Context,
    rule: SettlementRule,
    *,
    rows: list[int],
    value_day: dict[int, int],
) -> None:
    """Credits that waited for a missing channel bill until ``carry_over_days``: unexplained (长款), saying
    which bill never came."""
    items: list[dict[str, object]] = []
    for c in rows:
        cur = _currency(frame, c)
        lags = sorted(rule.lag_days)
        days = " or ".join(f"{rule.channel_account}@{_day(value_day[c] - lag)} (T+{lag})" for lag in lags)
        bills = ", ".join(_day(value_day[c] - lag) for lag in reversed(lags))
        items.append(
            {
                "type": MISSING_IN_CHANNEL,
                "row": c,
                "delta": int(frame.amount[c]),
                "currency": cur,
                "key": "",
                "left": None,
                "counterparts": None,
                "reason": f"长款: money arrived in the bank that no channel settlement explains: bank "
                f"{frame.str_at('txn_id', c)} {_money(int(frame.amount[c]), cur)} (value date {_day(value_day[c])}) "
                f"can only settle {days}, and no run since the credit arrived had that bill. It stayed open since {_day(int(frame.first_seen[c]))} and is now past the "
                f"carry-over limit of {ctx.project.carry_over_days} day(s): deliver the {rule.channel_account} "
                f"bill of {bills} and re-run that day, or find what else the credit pays.",
            }
        )
    _row_cases(frame, ledger, ctx, rule, items=items, label="bill-never-arrived")


def _row_cases(
    frame: Frame,
    ledger: Ledger,
    ctx: Context,
    rule: SettlementRule,
    *,
    items: list[dict[str, object]],
    label: str,
) -> None:
    """One case per item, its only member the item's row (ids from the row's identity and ``label``)."""
    if not items:
        return
    rows = np.array([int(str(i["row"])) for i in items], np.int64)
    deltas = np.array([int(str(i["delta"])) for i in items], np.int64)
    ledger.add_cases(
        {
            "type": [str(i["type"]) for i in items],
            "rule": rule.name,
            "severity": [ctx.project.severity.classify(int(d)).value for d in deltas],
            "delta_minor": deltas,
            "currency": [str(i["currency"]) for i in items],
            "members": np.ones(len(items), np.int32),
            "key": [str(i["key"]) for i in items],
            "left_amount_minor": pa.array([i["left"] for i in items], pa.int64()),
            "right_amount_minor": pa.array(frame.amount[rows], pa.int64()),
            "counterparts": pa.array(
                [dumps(i["counterparts"]) if i["counterparts"] else None for i in items], pa.string()
            ),
            "reason": [str(i["reason"]) for i in items],
            "evidence": pa.array([i.get("evidence") for i in items], pa.string()),
            "closes": pa.array([dumps(i["closes"]) if i.get("closes") else None for i in items], pa.string()),
        },
        content_hash(hash_texts([frame.uid(int(r)) for r in rows.tolist()]), rule.name, label),
        rows,
        np.arange(len(items), dtype=np.int64),
    )


_DATE_IN_MEMO = re.compile(r"(?<!\d)(20\d\d)-?(0[1-9]|1[0-2])-?(0[1-9]|[12]\d|3[01])(?!\d)")


def _memo_day(memo: str) -> int | None:
    """The day a memo names (``20261120``, ``2026-11-20``): WeChat Pay and Alipay name the channel day a
    payout settles. None when it names no date or several."""
    days = {
        (date(int(y), int(m), int(d)) - date(1970, 1, 1)).days
        for y, m, d in _DATE_IN_MEMO.findall(memo)
        if _valid(int(y), int(m), int(d))
    }
    return days.pop() if len(days) == 1 else None


def _valid(y: int, m: int, d: int) -> bool:
    try:
        date(y, m, d)
    except ValueError:
        return False
    return True


def _currency(frame: Frame, row: int) -> str:
    return frame.currencies[int(frame.currency[row])]


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
    frame: Frame,
    rule: SettlementRule,
    credit: int | None,
    batches: list[Batch],
    credits: list[int] | None = None,
) -> list[dict[str, object]]:
    """``credits``: every credit of the group when the bank split the payout (``credit`` is the first)."""
    currency = batches[0].currency
    net = sum(b.net for b in batches)
    paid = credits if credits is not None else [credit] if credit is not None else []
    amount = sum(int(frame.amount[c]) for c in paid) if credit is not None else None
    credit_currency = _currency(frame, credit) if credit is not None else currency
    same = credit_currency == currency
    lags = sorted({int(frame.value_date[c]) - b.day for c in paid for b in batches})
    return [
        {
            "field": "net_total",
            "left": one_money(net, currency),
            "right": one_money(amount, credit_currency) if amount is not None else "",
            "equal": amount is not None and same and abs(amount - net) <= rule.amount_tolerance_minor,
            "delta": one_money(amount - net, currency) if amount is not None and same else None,
        },
        {
            "field": "channel_rows",
            "left": str(sum(b.rows for b in batches)),
            "right": str(len(paid)),
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
    groups: list[tuple[list[int], list[Batch], float, str]],
) -> None:
    if not groups:
        return
    conf = np.array([g[2] for g in groups])
    net = np.array([sum(b.net for b in g[1]) for g in groups], np.int64)
    amount = np.array([sum(int(frame.amount[c]) for c in g[0]) for g in groups], np.int64)
    settles = [",".join(b.ref for b in g[1]) for g in groups]
    explanation = [
        f"bank credit{'s' if len(cs) > 1 else ''} {', '.join(frame.str_at('txn_id', c) for c in cs)} "
        f"settle{'' if len(cs) > 1 else 's'} {s}: {sum(b.rows for b in bs)} rows, "
        f"net {one_money(sum(b.net for b in bs), bs[0].currency)} ({how})"
        for (cs, bs, _, how), s in zip(groups, settles, strict=True)
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
            "members": np.array([len(g[0]) for g in groups], np.int32),
            "left_members": np.array([len(g[1]) for g in groups], np.int32),
            "right_members": np.array([len(g[0]) for g in groups], np.int32),
            "key": settles,
            "currency": [g[1][0].currency for g in groups],
            "left_amount_minor": net,
            "right_amount_minor": amount,
            "amount_delta_minor": amount - net,
            "time_delta_s": None,
            "fee_delta_minor": fee_delta,
            "settles": settles,
            "explanation": explanation,
            "evidence": [dumps(_evidence(frame, rule, cs[0], bs, cs)) for cs, bs, _, _ in groups],
        },
        content_hash(hash_texts(["\x1f".join(frame.uid(c) for c in g[0]) for g in groups]), rule.name),
        np.array([c for g in groups for c in g[0]], np.int64),
        np.array([k for k, g in enumerate(groups) for _ in g[0]], np.int64),
    )


_REASON = {
    AMOUNT_MISMATCH: "The bank credit differs from the channel day's net: bank {credit} {amount} vs {ref} net {net} (Δ {delta}).",
    FEE_MISMATCH: "The bank credit equals the channel day's gross less the scheduled fees ({rate}%), not the channel's net: "
    "the channel's stated fees {fees} differ from the schedule {scheduled}; bank {credit} {amount}, {ref} net {net}.",
    MISSING_IN_BANK: "短款: the channel settled this day but no matching bank credit arrived: {ref} net {net} "
    "(T+{lags}) has no credit on {bank}.",
    REVERSED: "短款: the bank reversed the credit that paid this day: bank {credit} {amount} for {ref} net {net} "
    "was reversed (冲正) by",
    FOREIGN_CREDIT: "The bank credit has the memo and lag of {ref}'s payout but another currency: bank {credit} "
    "{amount} {credit_currency} vs {ref} net {net} {currency}. Settlement never pairs different currencies: check the account's "
    "currency and any conversion.",
    NOT_DEDUCTED: "No payout was due for {ref}: its net {net} is negative (refunds exceed sales), and no payout on "
    "{bank} within {days} day(s) was reduced by it. The channel may still deduct it from a later payout "
    "or collect it otherwise.",
}


def _record_cases(
    frame: Frame,
    ledger: Ledger,
    ctx: Context,
    rule: SettlementRule,
    cases: list[tuple[str, int | None, Batch, int, str]],
    *,
    reversed_by: dict[int, int],
) -> None:
    """Cases with a credit as member (mismatches; a reversed credit with its reversal), and cases whose only
    member is a batch (missing)."""
    with_row = [c for c in cases if c[1] is not None]
    without = [c for c in cases if c[1] is None]
    for group, rows in ((with_row, True), (without, False)):
        if not group:
            continue
        reasons, counterparts, aggregates, evidence, keys = [], [], [], [], []
        for kind, credit, b, delta, note in group:
            reasons.append(
                _REASON[kind].format(
                    credit=frame.str_at("txn_id", credit) if credit is not None else "",
                    amount=one_money(int(frame.amount[credit]), _currency(frame, credit))
                    if credit is not None
                    else "",
                    ref=b.ref,
                    net=one_money(b.net, b.currency),
                    delta=one_money(delta, b.currency),
                    rate=rule.fee_rate_percent,
                    fees=one_money(b.fees, b.currency),
                    scheduled=one_money(b.scheduled_fees, b.currency),
                    lags="/".join(map(str, rule.lag_days)),
                    bank=rule.bank_account,
                    days=ctx.project.carry_over_days,
                    currency=b.currency,
                    credit_currency=_currency(frame, credit) if credit is not None else "",
                )
                + note
            )
            counterparts.append(dumps([_aggregate(b)]) if rows else None)
            aggregates.append(None if rows else dumps(_aggregate(b)))
            evidence.append(dumps(_evidence(frame, rule, credit, [b])))
            keys.append(b.ref)
        deltas = np.array([c[3] for c in group], np.int64)
        credit_rows = np.array([c[1] for c in group if c[1] is not None], np.int64)
        owners: I64 = np.arange(len(credit_rows), dtype=np.int64)
        reversals = [
            (k, reversed_by[c[1]]) for k, c in enumerate(group) if c[0] == REVERSED and c[1] is not None
        ]
        if reversals:
            credit_rows = np.concatenate([credit_rows, np.array([r for _, r in reversals], np.int64)])
            owners = np.concatenate([owners, np.array([k for k, _ in reversals], np.int64)])
        ids = hash_texts(
            [
                _case_identity(k, frame.uid(c[1]) if c[1] is not None else "")
                for k, c in zip(keys, group, strict=True)
            ]
        )
        ledger.add_cases(
            {
                "type": [c[0].split(":")[0] for c in group],
                "rule": rule.name,
                "severity": [ctx.project.severity.classify(int(d)).value for d in deltas],
                "delta_minor": deltas,
                "currency": [
                    _currency(frame, c[1]) if c[0] == FOREIGN_CREDIT and c[1] is not None else c[2].currency
                    for c in group
                ],
                "members": np.array([2 if c[0] == REVERSED else 1 for c in group], np.int32),
                "key": keys,
                # A credit in another currency has no amount of its own currency to compare with.
                "left_amount_minor": pa.array(
                    [None if c[0] == FOREIGN_CREDIT else c[2].net for c in group], pa.int64()
                ),
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
            owners,
        )
