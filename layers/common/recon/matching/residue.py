"""What no rule placed: repeated ids, rows still in flight (open items), and one case per remaining row.

Classification of a row nothing explains (seen from the merchant's books: 长款 = money received the books
do not explain, 短款 = money the books expect that never arrived):

=======================================  ===================  =============================================
row                                      case type            wording
=======================================  ===================  =============================================
ERP payment                              MISSING_IN_CHANNEL   短款: booked, the channel never received it
ERP refund                               MISSING_IN_CHANNEL   长款: refund booked, the channel never paid it
channel payment                          MISSING_IN_ERP       长款: money taken for no ERP order
channel refund of the whole order the    STATUS_MISMATCH      the ERP shows the order paid; the channel
ERP shows paid (a payment of status                           refunded it in full (counterpart: that ERP
success)                                                      payment; rule ``refunds-paid-order``)
other channel refund                     MISSING_IN_ERP       短款: refund paid out the ERP never booked
bank credit                              MISSING_IN_CHANNEL   长款: no channel settlement or rule explains it
bank debit, or a row that did not        OTHER                nothing refers to it
happen (closed, failed, ...)
a row of 0.00 with no fee                filtered             ``zero-amount``: it moved no money
=======================================  ===================  =============================================

A case's id derives from the row's identity (source, account, id) only, never from the file or row number.
"""

from __future__ import annotations

from datetime import date, timedelta

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from recon.domain import KeyMatchRule, Project, SubsetSumRule, WindowMatchRule
from recon.vocabulary import DID_NOT_COMPLETE, REFUND_OTHER_ORDER_RULE, REFUNDS_PAID_ORDER_RULE

from .context import (
    AWAITING_COLUMN,
    AWAITING_RULE,
    MISSING_IN_CHANNEL,
    MISSING_IN_ERP,
    OTHER,
    STATUS_MISMATCH,
    UNMATCHED_RULE,
    ZERO_AMOUNT_RULE,
    Context,
    content_hash,
    dumps,
    member_ref,
)
from .frame import (
    ANY,
    BANK,
    CHANNELS,
    ERP,
    I64,
    SOURCES,
    SUCCESS,
    TXN_TYPES,
    Frame,
    from_day_number,
    plain,
)
from .hashing import among, hash_strings
from .keyed import duplicates
from .ledger import UNPLACED, Ledger
from .text import join, labels, money, one_money, row_case_ids, severities, take_text


def order_known(frame: Frame, ledger: Ledger) -> pa.Array:
    """For unplaced channel refunds: the ERP payment the ERP shows paid, of the same order, that the refund
    equals in full, as the case's counterpart (JSON); null for every other row. Decided after the keyed
    phase, where the payment is still in the frame (a partitioned run's residual task no longer holds it),
    and carried with the rows (``ORDER_KNOWN``).

    (A channel refund the ERP never booked is a STATUS_MISMATCH when it refunds the whole order the ERP
    still shows paid, and a MISSING_IN_ERP booking otherwise.)"""
    refunds = np.flatnonzero(ledger.unplaced() & np.isin(frame.source, CHANNELS) & (frame.amount < 0))
    paid = _paid_order(frame, refunds)
    found = refunds[paid >= 0]
    known = np.zeros(frame.n, dtype=bool)
    known[found] = True
    texts = pa.array([dumps([member_ref(frame, int(p))]) for p in paid[paid >= 0].tolist()], pa.string())
    return pc.replace_with_mask(pa.nulls(frame.n, pa.string()), pa.array(known), texts)


def _paid_order(frame: Frame, refunds: I64) -> I64:
    """Per channel refund row: the ERP payment of its order that the refund equals in full (-1: none). Only
    a payment that happened counts: a closed or pending ERP order does not show the order paid."""
    out = np.full(len(refunds), -1, dtype=np.int64)
    payments = (frame.source == ERP) & (frame.amount > 0) & (frame.status == SUCCESS)
    if len(refunds) == 0 or not payments.any():
        return out
    present = frame.words("order_ref").lengths > 0
    at_refunds = np.flatnonzero(present[refunds])
    rows = refunds[at_refunds]
    pay = np.flatnonzero(payments & present)
    if len(rows) == 0 or len(pay) == 0:
        return out
    h = frame.key_hash(("order_ref",))  # the key pass's hash of the order number, if it made one
    # Refunds are few: look the payments up among the refunds' hashes (not the other way round, which
    # sorts every payment); each refund is compared with the first payment (lowest row) of its hash.
    candidates = pay[among(h[pay], h[rows])]
    if len(candidates) == 0:
        return out
    first_hash, first_at = np.unique(h[candidates], return_index=True)
    pos = np.minimum(np.searchsorted(first_hash, h[rows]), len(first_hash) - 1)
    payment = candidates[first_at[pos]]
    full = (first_hash[pos] == h[rows]) & (frame.amount[payment] == -frame.amount[rows])
    out[at_refunds[full]] = payment[full]
    return out


def residual_duplicates(frame: Frame, ledger: Ledger, ctx: Context) -> None:
    """Unplaced rows repeating an unplaced row's source id (same account): the later ones are cases."""
    rows = np.flatnonzero(ledger.unplaced())
    if len(rows) < 2:
        return
    h = hash_strings(take_text(frame, "txn_id", rows), seed=6) ^ frame.account[rows].astype(np.uint64)
    order = np.lexsort((frame.position[rows], h))
    hs = h[order]
    repeat = np.zeros(len(rows), dtype=bool)
    repeat[1:] = hs[1:] == hs[:-1]
    if not repeat.any():
        return
    starts = np.flatnonzero(~repeat)
    first_of = np.repeat(starts, np.diff(np.append(starts, len(rows))))
    dup_rows, dup_first = rows[order[repeat]], rows[order[first_of[repeat]]]
    same = take_text(frame, "txn_id", dup_rows).equals(take_text(frame, "txn_id", dup_first))
    if not same:  # hash collision guard: keep exact repeats only
        keep = np.array(
            [
                a == b
                for a, b in zip(
                    take_text(frame, "txn_id", dup_rows).to_pylist(),
                    take_text(frame, "txn_id", dup_first).to_pylist(),
                    strict=True,
                )
            ]
        )
        dup_rows, dup_first = dup_rows[keep], dup_first[keep]
    duplicates(frame, ledger, ctx, dup_rows, dup_first)


def refunds_on_other_orders(frame: Frame, ledger: Ledger, ctx: Context, order_paid: pa.Array) -> None:
    """An ERP refund and a channel refund left unplaced that carry the same refund number (the ERP's
    ``refund_ref`` equal to the channel row's, or to the channel's own refund id, the part of its ``txn_id``
    after ``#``) on different orders: the ERP booked the refund on another order than the one the channel
    refunded. One OTHER case holds both rows (each is the other's counterpart), instead of a 长款 and a 短款
    that do not name each other. Only a number shared by exactly one ERP refund and one channel refund, in
    one currency, is linked. Decided in the residual phase: the two orders' rows may be in different
    partitions, and every row a partition leaves comes here. ``order_paid``: ``order_known``'s counterparts."""
    free = np.flatnonzero(ledger.unplaced())  # (few rows: the masks below are taken on them alone)
    candidates = free[
        (frame.amount[free] < 0)
        & (frame.status[free] == SUCCESS)
        & ((frame.source[free] == ERP) | np.isin(frame.source[free], CHANNELS))
    ]
    if len(candidates) < 2:
        return
    refs = take_text(frame, "refund_ref", candidates).to_pylist()
    orders = take_text(frame, "order_ref", candidates).to_pylist()
    ids = take_text(frame, "txn_id", candidates).to_pylist()
    numbered: dict[str, tuple[set[int], set[int]]] = {}
    order_of: dict[int, str] = {}
    for row, ref, order, txn_id in zip(candidates.tolist(), refs, orders, ids, strict=True):
        if not order:
            continue
        order_of[row] = order
        if frame.source[row] == ERP:
            if ref:
                numbered.setdefault(ref, (set(), set()))[0].add(row)
            continue
        own = txn_id.partition("#")[2]
        for number in {ref, own} - {"", None}:
            numbered.setdefault(number, (set(), set()))[1].add(row)
    pairs: list[tuple[int, int, str]] = []
    used: set[int] = set()
    for number in sorted(numbered):
        erp, channel = numbered[number]
        if len(erp) != 1 or len(channel) != 1:
            continue
        e, c = next(iter(erp)), next(iter(channel))
        if e in used or c in used or order_of[e] == order_of[c] or frame.currency[e] != frame.currency[c]:
            continue
        used |= {e, c}
        pairs.append((e, c, number))
    if not pairs:
        return
    pairs.sort(key=lambda p: (int(frame.position[p[1]]), int(frame.position[p[0]])))
    erp_rows = np.array([e for e, _, _ in pairs], np.int64)
    channel_rows = np.array([c for _, c, _ in pairs], np.int64)
    known = order_paid.take(pa.array(channel_rows)).is_valid().to_numpy(zero_copy_only=False)
    reasons = []
    for (e, c, number), full in zip(pairs, known.tolist(), strict=True):
        erp_money = _row_money(frame, e)
        channel_money = _row_money(frame, c)
        wrong, right = order_of[e], order_of[c]
        text = (
            f"The ERP booked refund {number} on order {wrong} (erp {frame.str_at('txn_id', e)} {erp_money}); "
            f"the channel refunded it on order {right} ({SOURCES[int(frame.source[c])]} "
            f"{frame.str_at('txn_id', c)} {channel_money}): correct the ERP booking — move refund {number} "
            f"from order {wrong} to order {right}."
        )
        if frame.amount[e] != frame.amount[c]:
            delta = one_money(
                int(frame.amount[c] - frame.amount[e]), frame.currencies[int(frame.currency[c])]
            )
            text += (
                f" The amounts differ too: erp {erp_money}, channel {channel_money} "
                f"(Δ {delta} {frame.currencies[int(frame.currency[c])]})."
            )
        if full:
            text += f" The channel's refund gives back order {right} in full, which the ERP still shows paid."
        reasons.append(text)
    n = len(pairs)
    amount = frame.amount[channel_rows]
    ident = row_case_ids(frame, channel_rows, seed=15) ^ row_case_ids(frame, erp_rows, seed=16)
    ledger.add_cases(
        {
            "type": OTHER,
            "rule": REFUND_OTHER_ORDER_RULE,
            "severity": severities(ctx.project.severity, amount),
            "delta_minor": amount,
            "currency": labels(frame.currency[channel_rows], frame.currencies),
            "members": np.full(n, 2, np.int32),
            "key": pa.array([number for _, _, number in pairs], pa.string()),
            "left_amount_minor": frame.amount[erp_rows],
            "right_amount_minor": amount,
            "reason": pa.array(reasons, pa.string()),
        },
        content_hash(ident, REFUND_OTHER_ORDER_RULE),
        np.concatenate([erp_rows, channel_rows]),
        np.concatenate([np.arange(n), np.arange(n)]).astype(np.int64),
    )


def _row_money(frame: Frame, row: int) -> str:
    """``-50.00 CNY``."""
    currency = frame.currencies[int(frame.currency[row])]
    return f"{one_money(int(frame.amount[row]), currency)} {currency}"


def await_statements(frame: Frame, ledger: Ledger, ctx: Context) -> None:
    """Rows whose counterpart would be in a missing statement (``ctx.unavailable``) stay open, whatever
    their age: calling them MISSING would report the gap in our input as a gap in the money. The rule
    recorded names the accounts awaited; a later run with the statement places them."""
    if not ctx.unavailable:
        return
    free = ledger.unplaced()
    keeper = np.full(frame.n, -1, dtype=np.int32)
    for rule in ctx.project.match_rules:
        if not isinstance(rule, KeyMatchRule | WindowMatchRule | SubsetSumRule):
            continue  # settlement rules wait in recon.matching.settlement
        for side, other in ((rule.left, rule.right), (rule.right, rule.left)):
            awaited = ctx.awaited(other)
            if awaited:
                mask = free & frame.source_mask(side) & (keeper < 0)
                keeper[mask] = ledger.rule_code(f"{AWAITING_RULE}:{','.join(awaited)}")
    rows = np.flatnonzero(keeper >= 0)
    ledger.open_rows(rows, keeper[rows])


def await_carried(frame: Frame, ledger: Ledger, ctx: Context) -> dict[int, str]:
    """Carried rows an earlier run held for a statement it lacked (``AWAITING_COLUMN``) keep waiting for it
    while younger than ``carry_over_days``, even when today's statements are all there: their counterpart
    would be in that day's statement, which no later run reads (delivered late, it re-runs its day, which
    places them). Older, they are classified as any row; returned: row → the end of its case's reason,
    naming the statements that never arrived and what to do.

    Only a carried row on the other side of a key, window or subset-sum rule from an awaited account's
    source waits (as in ``await_statements``): a settlement credit waits in recon.matching.settlement."""
    marked, values = _marked_rows(frame, ledger)
    if len(marked) == 0:
        return {}
    project = ctx.project
    source_of = {a.account_id: a.source.value for a in project.accounts}
    limit = project.carry_over_days
    codes, unique = _codes(values)
    keeper = np.full(len(marked), -1, dtype=np.int32)
    notes: dict[int, str] = {}
    for code, marker in enumerate(unique):
        entries = [e.rpartition("@") for e in marker.split(",") if "@" in e]
        for src in np.unique(frame.source[marked[codes == code]]).tolist():
            sides = _awaitable_sources(project, SOURCES[src])
            waited = sorted({(acc, day) for acc, _, day in entries if source_of.get(acc) in sides})
            if not waited:
                continue
            at = np.flatnonzero((codes == code) & (frame.source[marked] == src))
            young = (frame.today - frame.first_seen[marked[at]]) < limit
            rule = f"{AWAITING_RULE}:{','.join(sorted({acc for acc, _ in waited}))}"
            keeper[at[young]] = ledger.rule_code(rule)
            note = _never_arrived(project, waited)
            for row in marked[at[~young]].tolist():
                since = from_day_number(int(frame.first_seen[row])).isoformat()
                notes[row] = (
                    f" It stayed open since {since} waiting for {note[0]}, which never arrived, and is now "
                    f"past the carry-over limit of {limit} day(s): {note[1]}; its counterpart may be there."
                )
    held = keeper >= 0
    ledger.open_rows(marked[held], keeper[held])
    return notes


def _marked_rows(frame: Frame, ledger: Ledger) -> tuple[I64, pa.Array]:
    """The unplaced carried rows whose snapshot says what they await, and that text. Read chunk by chunk:
    today's statements lack the column (all null), only the carried snapshot's chunk holds values."""
    none = (np.zeros(0, np.int64), pa.array([], pa.string()))
    if AWAITING_COLUMN not in frame.table.column_names:
        return none
    column = frame.table[AWAITING_COLUMN]
    rows: list[I64] = []
    values: list[pa.Array] = []
    offset = 0
    for chunk in column.chunks:
        if chunk.null_count < len(chunk):
            text = plain(chunk).cast(pa.string())
            at = np.flatnonzero(np.asarray(pc.is_valid(text).to_numpy(zero_copy_only=False), bool))
            at = at[
                (ledger.disposition[at + offset] == UNPLACED) & (frame.first_seen[at + offset] < frame.today)
            ]
            rows.append(at + offset)
            values.append(text.take(pa.array(at)))
        offset += len(chunk)
    if not rows:
        return none
    return np.concatenate(rows), pa.concat_arrays(values)


def _codes(values: pa.Array) -> tuple[I64, list[str]]:
    """Codes of a short text array and its distinct values (sorted)."""
    unique = sorted(set(values.to_pylist()) - {None, ""})
    index = {v: k for k, v in enumerate(unique)}
    return np.array([index.get(v, -1) for v in values.to_pylist()], np.int64), unique


def _awaitable_sources(project: Project, source: str) -> set[str]:
    """The sources whose missing statement holds a row of ``source``: those on the other side of a key,
    window or subset-sum rule that has ``source`` on one side (an empty side is every source)."""
    every = set(SOURCES)
    out: set[str] = set()
    for rule in project.match_rules:
        if isinstance(rule, KeyMatchRule | WindowMatchRule | SubsetSumRule):
            for side, other in ((rule.left, rule.right), (rule.right, rule.left)):
                if not side or source in side:
                    out |= set(other) if other else every
    return out


def _never_arrived(project: Project, waited: list[tuple[str, str]]) -> tuple[str, str]:
    """(the statements, what to do) for ``account@run date`` entries: "the wechat-main bill of 2026-11-20",
    "deliver the wechat-main bill of 2026-11-20 and re-run that day". A bank statement is the one the run of
    that date reads (its date plus the statement lag)."""
    kinds = {a.account_id: a.source.value for a in project.accounts}
    names: list[str] = []
    runs: list[str] = []
    off_day = False  # a bank statement is dated after the run that reads it: name the run's date
    for account, day in waited:
        kind = kinds.get(account, "")
        dated = day
        if kind == "bank":
            dated = (date.fromisoformat(day) + timedelta(days=project.statement_lag(account))).isoformat()
            off_day |= dated != day
        names.append(f"the {account} {_NOUNS.get(kind, 'bill')} of {dated}")
        if day not in runs:
            runs.append(day)
    statements = " and ".join(names)
    if len(runs) == 1:
        rerun = "that day and the days after it" if not off_day else f"{runs[0]} and the days after it"
    else:
        rerun = f"{' and '.join(runs)} and the days after them"
    return statements, f"deliver {statements} and re-run {rerun}"


_NOUNS = {"erp": "export", "bank": "statement"}


def next_awaiting(
    previous: pa.Array | pa.ChunkedArray | None,
    rules: pa.Array | pa.ChunkedArray,
    unavailable: frozenset[str],
    business_date: date,
) -> pa.Array:
    """``AWAITING_COLUMN`` of the next open-items snapshot, per open row: a row held by ``AWAITING_RULE``
    (its placement's ``rule``) waits for what it waited for before (``previous``) and for today's statements
    of the rule's accounts that are missing (``unavailable``); any other open row waits for nothing."""
    rule_texts = plain(rules).cast(pa.string()).to_pylist() if len(rules) else []
    before = (
        plain(previous).cast(pa.string()).to_pylist()
        if previous is not None and len(previous)
        else [None] * len(rule_texts)
    )
    prefix = f"{AWAITING_RULE}:"
    memo: dict[tuple[str | None, str | None], str | None] = {}
    out: list[str | None] = []
    for marker, rule in zip(before, rule_texts, strict=True):
        if (marker, rule) not in memo:
            value: str | None = None
            if rule is not None and rule.startswith(prefix):
                entries = {e for e in (marker or "").split(",") if e}
                entries |= {
                    f"{a}@{business_date}" for a in rule[len(prefix) :].split(",") if a in unavailable
                }
                value = ",".join(sorted(entries)) or None
            memo[(marker, rule)] = value
        out.append(memo[(marker, rule)])
    return pa.array(out, pa.string())


def carry_over(frame: Frame, ledger: Ledger, project: Project, in_flight: dict[str, I64]) -> None:
    """Rows that may still be in flight stay open while younger than ``carry_over_days``."""
    limit = project.carry_over_days
    if limit <= 0:
        return
    free = ledger.unplaced()
    young = (frame.today - frame.first_seen) < limit
    carried = frame.first_seen < frame.today
    keeper = np.full(frame.n, -1, dtype=np.int32)
    for rule in project.match_rules:
        if isinstance(rule, KeyMatchRule | WindowMatchRule | SubsetSumRule) and rule.carry_over:
            mask = np.zeros(frame.n, dtype=bool)
            for entry in rule.carry_over:
                late = frame.booked >= frame.day_end_us - int(entry.last_hours * 3_600_000_000)
                taken = frame.source_mask(entry.sources) & (late | carried)
                if entry.txn_types is not None:
                    taken &= np.isin(frame.txn_type, [TXN_TYPES.index(t.value) for t in entry.txn_types])
                mask |= taken
            mask &= free & young & (keeper < 0)
        elif rule.name in in_flight:
            mask = np.zeros(frame.n, dtype=bool)
            mask[in_flight[rule.name]] = True
            mask &= free & young & (keeper < 0)
        else:
            continue
        keeper[mask] = ledger.rule_code(rule.name)
    rows = np.flatnonzero(keeper >= 0)
    ledger.open_rows(rows, keeper[rows])


def classify(
    frame: Frame,
    ledger: Ledger,
    ctx: Context,
    order_paid: pa.Array,
    never_arrived: dict[int, str] | None = None,
) -> None:
    """One case per remaining row. ``order_paid``: ``order_known``'s counterparts, per row;
    ``never_arrived``: the end of the reason of a row that waited in vain for a statement (``await_carried``).
    """
    known = np.asarray(pc.is_valid(order_paid).to_numpy(zero_copy_only=False), bool)
    # A row of 0.00 with no fee moved no money: nothing to find or recover, so no case (a 0.00 短款 asks a
    # person to chase nothing). It is filtered under a rule of its own; matched, it would have been grouped.
    ledger.filter_rows(
        np.flatnonzero(ledger.unplaced() & (frame.amount == 0) & (frame.fee == 0)), ZERO_AMOUNT_RULE
    )
    rows = np.flatnonzero(ledger.unplaced())
    if len(rows) == 0:
        return
    src = frame.source[rows]
    amount = frame.amount[rows]
    happened = frame.status[rows] == SUCCESS
    channel = np.isin(src, CHANNELS)
    variant = np.full(len(rows), 0, dtype=np.int32)
    kinds = [
        (MISSING_IN_CHANNEL, "短款: the ERP booked this order but the channel never received the money: "),
        (
            MISSING_IN_CHANNEL,
            "长款: the ERP booked a refund the channel never executed; the customer has not been paid back: ",
        ),
        (MISSING_IN_ERP, "长款: the channel received money for an order the ERP does not have: "),
        (STATUS_MISMATCH, "The ERP shows the order paid but the channel refunded it in full: "),
        (MISSING_IN_ERP, "短款: the channel paid out a refund the ERP has not booked: "),
        (MISSING_IN_CHANNEL, "长款: money arrived in the bank that no channel settlement or rule explains: "),
        (OTHER, "Money left the account and no rule explains it: "),
        (
            OTHER,
            f"{DID_NOT_COMPLETE} (closed, failed, reversed or pending) and nothing on the other side refers to it: ",
        ),
    ]
    erp = src == ERP
    variant[erp & (amount >= 0)] = 0
    variant[erp & (amount < 0)] = 1
    variant[channel & (amount >= 0)] = 2
    variant[channel & (amount < 0) & known[rows]] = 3
    variant[channel & (amount < 0) & ~known[rows]] = 4
    variant[(src == BANK) & (amount > 0)] = 5
    variant[(src == BANK) & (amount <= 0)] = 6
    variant[~happened] = 7
    types = sorted({k for k, _ in kinds})
    case_type = labels(np.array([types.index(k) for k, _ in kinds])[variant], types)
    cur = frame.currency[rows]
    label = join(labels(src, SOURCES), " ", take_text(frame, "txn_id", rows))
    age = frame.today - frame.first_seen[rows]
    opened = age > 0
    since = (
        pa.array([from_day_number(int(d)).isoformat() for d in frame.first_seen[rows].tolist()])
        if opened.any()
        else pa.nulls(len(rows), pa.string())
    )
    # A full refund of an order the ERP shows paid names that order (its counterpart is the ERP's payment).
    refunds_order = variant == 3
    ending = pa.array(np.where(refunds_order, "", ") has no counterpart."))
    if refunds_order.any():
        orders = join(
            ") refunds order ", take_text(frame, "order_ref", rows), " in full; the ERP has not booked it."
        )
        ending = pc.if_else(pa.array(refunds_order), orders, ending)
    tail = join(" (", money(amount, cur, frame.currencies), ending)
    # A carried row is decided at the limit, or earlier once the statements it could be in were read without
    # explaining it (a settlement credit whose channel day was loaded): "past the limit" only in the first.
    limit = ctx.project.carry_over_days
    carried_note = join(
        pa.array(np.where(opened, " It stayed open since ", "")),
        pc_if(opened, since),
        pa.array(
            np.where(
                ~opened,
                "",
                np.where(
                    age >= limit,
                    f" and is now past the carry-over limit of {limit} day(s).",
                    f"; the statements read since do not explain it (decided before the carry-over limit "
                    f"of {limit} day(s)).",
                ),
            )
        ),
    )
    if never_arrived:
        waited = np.array(sorted(never_arrived), np.int64)
        waited = waited[np.isin(waited, rows)]  # (a row of 0.00 was filtered instead)
        mask = np.isin(rows, waited)
        notes = pa.array([never_arrived[int(r)] for r in waited.tolist()], pa.string())
        carried_note = pc.replace_with_mask(carried_note, pa.array(mask), notes)
    reason = join(labels(variant, [t for _, t in kinds]), label, tail, carried_note)
    ident = row_case_ids(frame, rows, seed=7)
    # The full refund's counterpart is the ERP payment of the order it names.
    counterparts: list[str | None] = [None] * len(rows)
    if refunds_order.any():
        at = np.flatnonzero(refunds_order)
        for i, paid in zip(at.tolist(), order_paid.take(pa.array(rows[at])).to_pylist(), strict=True):
            counterparts[i] = paid
    ledger.add_cases(
        {
            "type": case_type,
            "rule": pa.array(np.where(refunds_order, REFUNDS_PAID_ORDER_RULE, UNMATCHED_RULE).tolist()),
            "counterparts": pa.array(counterparts, pa.string()),
            "severity": severities(ctx.project.severity, amount),
            "delta_minor": amount,
            "currency": labels(cur, frame.currencies),
            "members": np.ones(len(rows), np.int32),
            "key": take_text(frame, "order_ref", rows),
            "reason": reason,
        },
        content_hash(ident, "residue"),
        rows,
        np.arange(len(rows), dtype=np.int64),
    )


def pc_if(mask: ANY, values: pa.Array) -> pa.Array:
    return pc.if_else(pa.array(mask), values, pa.scalar("", pa.string()))
