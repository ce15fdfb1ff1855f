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
ERP shows paid                                                refunded it in full
other channel refund                     MISSING_IN_ERP       短款: refund paid out the ERP never booked
bank credit                              MISSING_IN_CHANNEL   长款: no channel settlement or rule explains it
bank debit, or a row that did not        OTHER                nothing refers to it
happen (closed, failed, ...)
=======================================  ===================  =============================================
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from recon.domain import KeyMatchRule, Project, SubsetSumRule, WindowMatchRule

from .context import (
    AWAITING_RULE,
    MISSING_IN_CHANNEL,
    MISSING_IN_ERP,
    OTHER,
    STATUS_MISMATCH,
    UNMATCHED_RULE,
    Context,
    content_hash,
)
from .frame import (
    ANY,
    BANK,
    BOOL,
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
from .hashing import hash_strings
from .keyed import duplicates
from .ledger import Ledger
from .text import join, labels, money, severities, take_text


def order_known(frame: Frame, ledger: Ledger) -> BOOL:
    """For unplaced channel refunds: does an ERP payment of the same order equal the refund in full?

    (A channel refund the ERP never booked is a STATUS_MISMATCH when it refunds the whole order the ERP
    still shows paid, and a MISSING_IN_ERP booking otherwise.)"""
    out = np.zeros(frame.n, dtype=bool)
    refunds = ledger.unplaced() & np.isin(frame.source, CHANNELS) & (frame.amount < 0)
    payments = (frame.source == ERP) & (frame.amount > 0)
    if not refunds.any() or not payments.any():
        return out
    words = frame.words("order_ref")
    present = words.lengths > 0
    rows = np.flatnonzero(refunds & present)
    pay = np.flatnonzero(payments & present)
    if len(rows) == 0 or len(pay) == 0:
        return out
    h = frame.key_hash(("order_ref",))  # the key pass's hash of the order number, if it made one
    # Refunds are few: look the payments up among the refunds' hashes (not the other way round, which
    # sorts every payment); each refund is compared with the first payment (lowest row) of its hash.
    wanted = np.unique(h[rows])
    at = np.minimum(np.searchsorted(wanted, h[pay]), len(wanted) - 1)
    candidates = pay[wanted[at] == h[pay]]
    if len(candidates) == 0:
        return out
    first_hash, first_at = np.unique(h[candidates], return_index=True)
    pos = np.minimum(np.searchsorted(first_hash, h[rows]), len(first_hash) - 1)
    hit = first_hash[pos] == h[rows]
    full = hit & (frame.amount[candidates[first_at[pos]]] == -frame.amount[rows])
    out[rows[full]] = True
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


def classify(frame: Frame, ledger: Ledger, ctx: Context, known: BOOL) -> None:
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
            "This row did not complete (closed, failed, reversed or pending) and nothing on the other side refers to it: ",
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
    carried_note = join(
        pa.array(np.where(opened, " It stayed open since ", "")),
        pc_if(opened, since),
        pa.array(
            np.where(
                opened, f" and is now past the carry-over limit of {ctx.project.carry_over_days} day(s).", ""
            )
        ),
    )
    reason = join(labels(variant, [t for _, t in kinds]), label, tail, carried_note)
    lineage = [take_text(frame, "txn_uid", rows)]
    for name in ("raw_key", "row_number"):
        if name in frame.table.column_names:
            lineage.append(plain(frame.table[name].take(pa.array(rows))).cast(pa.string()))
    ident = hash_strings(join(*[part for col in lineage for part in (col, "\x1f")]), seed=7)
    ledger.add_cases(
        {
            "type": case_type,
            "rule": UNMATCHED_RULE,
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
