"""Key passes: rows of two sides sharing key fields (ERP order/refund number = merchant order/refund number).

The join hashes the key fields' exact bytes, sorts each side's hashes and merges them (numpy), then
verifies every linked key on the exact bytes. Keys with one row on each side (nearly all) are decided
column-wise; keys with several rows on a side (an order paid in parts, a row delivered twice) are
decided one by one — repeats of the same source id become DUPLICATE cases, the rest are compared by sums.
An order paid more than once (the channel rows add up to more than the ERP's and one of them, or all of
one channel account's, equals it exactly) is matched to that payment; each other payment is a
MISSING_IN_ERP case (长款: the customer paid twice), unless a channel refund gave it back in full.

Decision for a linked key, first that applies:
STATUS_MISMATCH (one side says it did not happen) > OTHER (currencies differ) > AMOUNT_MISMATCH (beyond
the amount tolerance) > FEE_MISMATCH (channel fee off the schedule) > TIME_MISMATCH (beyond the time
tolerance) > matched. Confidence of a match: 1.0 when amounts are equal, else 1 − 0.05·|Δ|/tolerance.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from typing import Final

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from recon.domain import KeyMatchRule
from recon.durations import human_durations

from .context import (
    AMOUNT_MISMATCH,
    DUPLICATE,
    DUPLICATE_RULE,
    FEE_MISMATCH,
    MISSING_IN_ERP,
    OTHER,
    STATUS_MISMATCH,
    TIME_MISMATCH,
    Context,
    content_hash,
    dumps,
    member_ref,
    scheduled_fee,
    tolerance,
)
from .frame import BOOL, I8, I32, I64, SOURCES, STATUSES, SUCCESS, Frame, plain
from .hashing import U64, hash_strings, hash_texts
from .ledger import Ledger
from .text import join, labels, local_times, money, severities, take_text


@dataclass
class KeyGroups:
    """Linked keys, one entry per key, with their members and per-side aggregates."""

    key_hash: U64
    left_n: I32
    right_n: I32
    left_amount: I64
    right_amount: I64
    right_fee: I64
    right_scheduled_fee: I64
    gap_us: I64
    left_bad: BOOL
    right_bad: BOOL
    currency: I32
    currency_ok: BOOL
    left_first: I64  # one member row per side, for words (labels, statuses) built only for cases
    right_first: I64
    texts: dict[str, pa.Array] | None = None  # precomputed labels/statuses (keys with several rows)
    # Keys with several rows a side: the left and the right booking time the gap lies between, and the
    # channel side's currency and amount (``channel``).
    ends: tuple[I64, I64] | None = None
    channel_sums: tuple[I32, I64] | None = None
    # Members as (row, index of its key) — keys with several rows a side only: a one-row-a-side key's
    # members are its first rows, and two more row-sized arrays for them measured 30 MiB at 1M.
    rows: I64 = field(default_factory=lambda: np.zeros(0, np.int64))
    owner: I64 = field(default_factory=lambda: np.zeros(0, np.int64))

    def key(self, frame: Frame, fields: tuple[str, ...], chosen: I64) -> pa.Array:
        """The key text of the chosen keys, taken for them only (not for every key, then taken again)."""
        return _key_text(frame, fields, self.left_first[chosen])

    def text(self, frame: Frame, name: str, chosen: I64) -> pa.Array:
        """left_label, right_label, left_status or right_status of the chosen keys."""
        if self.texts is not None:
            return self.texts[name].take(pa.array(chosen))
        rows = (self.left_first if name.startswith("left") else self.right_first)[chosen]
        if name.endswith("label"):
            return _label(frame, rows)
        return labels(frame.status[rows], STATUSES)

    def channel(self, frame: Frame, chosen: I64) -> tuple[I32, I64]:
        """The currency and the amount of the channel (right) side of the chosen keys; channel rows of a
        key in several currencies: those in the first row's currency (amounts never add across them)."""
        if self.channel_sums is not None:
            return self.channel_sums[0][chosen], self.channel_sums[1][chosen]
        return frame.currency[self.right_first[chosen]], self.right_amount[chosen]

    def booked(self, frame: Frame, chosen: I64) -> tuple[I64, I64]:
        """The left and the right booking time (µs) that ``gap_us`` of the chosen keys lies between."""
        if self.ends is not None:
            return self.ends[0][chosen], self.ends[1][chosen]
        return frame.booked[self.left_first[chosen]], frame.booked[self.right_first[chosen]]


def _runs(sorted_hashes: U64) -> tuple[I64, I64]:
    """Start and length of each run of equal values."""
    n = len(sorted_hashes)
    if n == 0:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    change = np.empty(n, dtype=bool)
    change[0] = True
    np.not_equal(sorted_hashes[1:], sorted_hashes[:-1], out=change[1:])
    starts = np.flatnonzero(change)
    return starts, np.diff(np.append(starts, n))


_SLICE: Final = 1 << 18  # one-row-a-side keys decided at a time
_RANGE_BITS: Final = 2  # the key join runs on 2**_RANGE_BITS hash ranges, one after the other


def key_match(frame: Frame, ledger: Ledger, rule: KeyMatchRule, ctx: Context) -> None:
    fields = tuple(rule.keys)
    keyed = ledger.unplaced() & frame.has_text(fields[0])
    left = np.flatnonzero(keyed & frame.source_mask(rule.left))
    right = np.flatnonzero(keyed & frame.source_mask(rule.right))
    if len(left) == 0 or len(right) == 0:
        return
    h = frame.key_hash(fields)
    # Joined one hash range at a time (the top bits of the hash), ranges in ascending order: the
    # sort-merge's temporaries (a dozen arrays per keyed row) then exist for a quarter of the keys, and
    # everything comes out in the order a single join would give.
    top = (h >> np.uint64(64 - _RANGE_BITS)).astype(np.int8)
    single_l, single_r, runs = [], [], []
    for k in range(1 << _RANGE_BITS):
        pairs_l, pairs_r, several = _linked(frame, fields, h, left[top[left] == k], right[top[right] == k])
        single_l.append(pairs_l)
        single_r.append(pairs_r)
        runs += several
    del keyed, left, right, top
    fast_l, fast_r = _in_row_order(frame.n, np.concatenate(single_l), np.concatenate(single_r))
    del single_l, single_r
    # Verified here, in row order (sequential reads), not in hash order: the same pairs are dropped.
    same = _same_key(frame, fields, fast_l, fast_r)
    if not same.all():
        fast_l, fast_r = fast_l[same], fast_r[same]
    # Decided a slice at a time: the per-key columns and decisions (~150 bytes a key) then exist for one
    # slice only, not for every key at once. Results do not depend on how the pairs are grouped.
    for at in range(0, len(fast_l), _SLICE):
        sl, sr = fast_l[at : at + _SLICE], fast_r[at : at + _SLICE]
        decide(frame, ledger, ctx, rule, _pairs(frame, rule, sl, sr, h[sl]))
    if runs:
        groups = _multi(frame, ledger, ctx, rule, runs)
        if groups is not None:
            decide(frame, ledger, ctx, rule, groups)


def _by_hash(h: U64, rows: I64) -> tuple[I64, I64, I64, U64]:
    """``rows`` sorted by hash, and the start, length and hash of each run of one hash (the sort's
    temporaries die here, one side at a time)."""
    hashes = h[rows]
    order = np.argsort(hashes)
    hashes = hashes[order]
    start, length = _runs(hashes)
    return rows[order], start, length, hashes[start]


def _linked(
    frame: Frame, fields: tuple[str, ...], h: U64, left: I64, right: I64
) -> tuple[I64, I64, list[tuple[I64, I64]]]:
    """Keys present on both sides, in hash order: (left row, right row) of the keys with one row a side,
    and the (left rows, right rows) of each key with several rows on a side."""
    ls, l_start, l_len, l_keys = _by_hash(h, left)
    rs, r_start, r_len, r_keys = _by_hash(h, right)
    if len(l_keys) == 0 or len(r_keys) == 0:
        return np.zeros(0, np.int64), np.zeros(0, np.int64), []
    pos = np.searchsorted(l_keys, r_keys)
    pos[pos >= len(l_keys)] = 0
    hit = l_keys[pos] == r_keys
    li, ri = pos[hit], np.flatnonzero(hit)
    single = (l_len[li] == 1) & (r_len[ri] == 1)
    # Verify on the exact bytes: a hash collision must never link two different keys. Keys with one
    # row a side are verified by the caller, in row order; keys with several rows here.
    ml, mr = li[~single], ri[~single]
    same = _same_key(frame, fields, ls[l_start[ml]], rs[r_start[mr]])
    # Copies, not views: a view would keep the whole sorted row arrays alive.
    runs = [
        (ls[l_start[a] : l_start[a] + l_len[a]].copy(), rs[r_start[b] : r_start[b] + r_len[b]].copy())
        for a, b in zip(ml[same].tolist(), mr[same].tolist(), strict=True)
    ]
    return ls[l_start[li[single]]], rs[r_start[ri[single]]], runs


def _same_key(frame: Frame, fields: tuple[str, ...], left: I64, right: I64) -> BOOL:
    """Each pair's rows carry exactly the same bytes in every key field."""
    same = np.ones(len(left), dtype=bool)
    for name in fields:
        same &= frame.words(name).equal(left, right)
    return same


def _in_row_order(n: int, left: I64, right: I64) -> tuple[I64, I64]:
    """The pairs ordered by left row (they come in hash order): every later gather of row values then
    reads memory in sequence instead of at random. Results do not depend on the order pairs are added."""
    partner = np.full(n, -1, dtype=np.int64)
    partner[left] = right
    ordered = np.flatnonzero(partner >= 0)
    return ordered, partner[ordered]


def _key_text(frame: Frame, fields: tuple[str, ...], rows: I64) -> pa.Array:
    """The key as people read it: ``SO1`` or ``SO1/R1`` (the fields after the first only where they are
    set — for most rows they are not, and a million strings need not be taken and joined)."""
    first = take_text(frame, fields[0], rows)
    if len(fields) == 1:
        return first
    extra = np.zeros(len(rows), dtype=bool)
    for name in fields[1:]:
        extra |= frame.words(name).lengths[rows] > 0
    if not extra.any():
        return first
    sub = rows[extra]
    parts = [take_text(frame, name, sub) for name in fields]
    joined = pc.binary_join_element_wise(*parts, "/", null_handling="skip")
    return pc.replace_with_mask(first, pa.array(extra), joined.cast(first.type))


def _label(frame: Frame, rows: I64) -> pa.Array:
    return join(labels(frame.source[rows], SOURCES), " ", take_text(frame, "txn_id", rows))


def _fees(rule: KeyMatchRule, amount: I64) -> I64:
    if rule.fee_rate_percent is None:
        return np.zeros(len(amount), dtype=np.int64)
    return scheduled_fee(amount, rule.fee_rate_percent)


def _pairs(frame: Frame, rule: KeyMatchRule, left: I64, right: I64, key_hash: U64) -> KeyGroups:
    n = len(left)
    l_status, r_status = frame.status[left], frame.status[right]
    one = np.broadcast_to(np.int32(1), (n,))  # a read-only view: no memory per key
    return KeyGroups(
        key_hash=key_hash,
        left_n=one,
        right_n=one,
        left_amount=frame.amount[left],
        right_amount=frame.amount[right],
        right_fee=frame.fee[right],
        right_scheduled_fee=_fees(rule, frame.amount[right]),
        gap_us=np.abs(frame.booked[right] - frame.booked[left]),
        left_bad=l_status != SUCCESS,
        right_bad=r_status != SUCCESS,
        currency=frame.currency[left],
        currency_ok=frame.currency[left] == frame.currency[right],
        left_first=left,
        right_first=right,
    )


def _multi(
    frame: Frame, ledger: Ledger, ctx: Context, rule: KeyMatchRule, runs: list[tuple[I64, I64]]
) -> KeyGroups | None:
    """Keys with several rows on a side: repeats of a source id are DUPLICATE cases; the rest go on."""
    fields = tuple(rule.keys)
    h = frame.key_hash(fields)
    kept: list[tuple[list[int], list[int]]] = []
    dup_rows: list[int] = []
    dup_first: list[int] = []
    for lefts, rights in runs:
        sides: list[list[int]] = []
        for side in (lefts, rights):
            first = int(side.min())
            # Rows under one hash must carry the very same key (collision guard), else they wait.
            members = side[
                np.all([frame.words(f).equal(side, np.full(len(side), first)) for f in fields], axis=0)
            ]
            seen: dict[tuple[int, str], int] = {}
            unique: list[int] = []
            for row in sorted(members.tolist(), key=lambda r: int(frame.position[r])):
                identity = (int(frame.account[row]), frame.str_at("txn_id", row))
                if identity in seen:
                    dup_rows.append(row)
                    dup_first.append(seen[identity])
                else:
                    seen[identity] = row
                    unique.append(row)
            sides.append(unique)
        kept.append((sides[0], sides[1]))
    if dup_rows:
        duplicates(frame, ledger, ctx, np.array(dup_rows, np.int64), np.array(dup_first, np.int64))
    if not kept:
        return None
    riders = _paid_twice(frame, ledger, ctx, rule, kept=kept, runs=runs)
    rows: list[int] = []
    owner: list[int] = []
    agg: defaultdict[str, list[int]] = defaultdict(list)
    l_status: list[str] = []
    r_status: list[str] = []
    l_label: list[str] = []
    r_label: list[str] = []
    for g, (left_list, right_list) in enumerate(kept):
        lefts, rights = np.array(left_list, np.int64), np.array(right_list, np.int64)
        # Riders (a second payment and the refund that gave it back) are members; the figures are the
        # paying rows' (the pair adds up to nothing, and the refund may come days later).
        ride = riders.get(g, [])
        rows += left_list + right_list + ride
        owner += [g] * (len(lefts) + len(rights) + len(ride))
        la, ra = frame.amount[lefts], frame.amount[rights]
        lt, rt = frame.booked[lefts], frame.booked[rights]
        agg["ln"].append(len(lefts))
        agg["rn"].append(len(rights) + len(ride))
        agg["la"].append(int(la.sum()))
        agg["ra"].append(int(ra.sum()))
        agg["rf"].append(int(frame.fee[rights].sum()))
        agg["rs"].append(int(_fees(rule, ra).sum()))
        # The widest gap between a left and a right row, and the two times it lies between.
        ends = max(
            (abs(int(rt.max() - lt.min())), int(lt.min()), int(rt.max())),
            (abs(int(lt.max() - rt.min())), int(lt.max()), int(rt.min())),
        )
        agg["gap"].append(ends[0])
        agg["lat"].append(ends[1])
        agg["rat"].append(ends[2])
        lbad, rbad = frame.status[lefts] != SUCCESS, frame.status[rights] != SUCCESS
        agg["lb"].append(int(lbad.all()))
        agg["rb"].append(int(rbad.all()))
        agg["cur"].append(int(frame.currency[lefts[0]]))
        agg["cok"].append(int(len(set(frame.currency[np.concatenate([lefts, rights])].tolist())) == 1))
        rc = frame.currency[rights]
        agg["rc"].append(int(rc[0]))
        agg["rca"].append(int(ra[rc == rc[0]].sum()))
        agg["l0"].append(left_list[0])
        l_status.append(",".join(sorted({STATUSES[s] for s in frame.status[lefts].tolist()})))
        r_status.append(",".join(sorted({STATUSES[s] for s in frame.status[rights].tolist()})))
        l_label.append(_many_label(frame, lefts))
        r_label.append(_many_label(frame, rights))
    first_left = np.array(agg["l0"], np.int64)
    return KeyGroups(
        key_hash=h[first_left],
        left_n=np.array(agg["ln"], np.int32),
        right_n=np.array(agg["rn"], np.int32),
        left_amount=np.array(agg["la"], np.int64),
        right_amount=np.array(agg["ra"], np.int64),
        right_fee=np.array(agg["rf"], np.int64),
        right_scheduled_fee=np.array(agg["rs"], np.int64),
        gap_us=np.array(agg["gap"], np.int64),
        left_bad=np.array(agg["lb"], bool),
        right_bad=np.array(agg["rb"], bool),
        currency=np.array(agg["cur"], np.int32),
        currency_ok=np.array(agg["cok"], bool),
        left_first=first_left,
        right_first=first_left,
        ends=(np.array(agg["lat"], np.int64), np.array(agg["rat"], np.int64)),
        channel_sums=(np.array(agg["rc"], np.int32), np.array(agg["rca"], np.int64)),
        texts={
            "left_status": pa.array(l_status, pa.string()),
            "right_status": pa.array(r_status, pa.string()),
            "left_label": pa.array(l_label, pa.string()),
            "right_label": pa.array(r_label, pa.string()),
        },
        rows=np.array(rows, np.int64),
        owner=np.array(owner, np.int64),
    )


def _paid_twice(
    frame: Frame,
    ledger: Ledger,
    ctx: Context,
    rule: KeyMatchRule,
    *,
    kept: list[tuple[list[int], list[int]]],
    runs: list[tuple[I64, I64]],
) -> dict[int, list[int]]:
    """An order paid more than once: its channel payments add up to more than the ERP's and a part equals
    it exactly — one payment, or all the payments of one channel account (a split payment). That part is
    kept with the order (``kept`` is updated in place); the earliest booked part when several qualify
    (then the lowest txn_uid): the first payment paid the order, a later one paid it again. Each other
    payment becomes a MISSING_IN_ERP case (长款: refund the customer), except one that a channel refund
    of this run gave back in full (its txn_id is the payment's, ``#``, the refund's number, as both
    channels write it): that payment never pays the order, and rides in the order's group with its refund
    (returns key index -> rider rows). Only keys whose rows all completed, in one currency, are payments."""
    suspects = [
        g
        for g, (lefts, rights) in enumerate(kept)
        if len(rights) > 1  # one channel row is never a part of itself (most keys here: a repeat removed)
        and _overpaid(frame, np.array(lefts, np.int64), np.array(rights, np.int64))
    ]
    if not suspects:
        return {}
    refunds = _refunds_of(frame, ledger, rule, [kept[g] for g in suspects], runs)
    riders: dict[int, list[int]] = {}
    repeats: list[tuple[int, list[int], list[int]]] = []  # (row, ERP rows, paying rows)
    for g in suspects:
        lefts, rights = kept[g]
        expected = int(frame.amount[lefts].sum())
        refunded = {p for p in rights if p in refunds}
        free = [p for p in rights if p not in refunded]
        options = [[p] for p in free if int(frame.amount[p]) == expected]
        accounts: defaultdict[int, list[int]] = defaultdict(list)
        for p in free:
            accounts[int(frame.account[p])].append(p)
        options += [ps for ps in accounts.values() if len(ps) > 1 and int(frame.amount[ps].sum()) == expected]
        if not options:
            continue  # no part equals the order: compared by sums, as before
        paying = min(options, key=lambda ps: (int(frame.booked[ps].min()), min(map(frame.uid, ps))))
        kept[g] = (lefts, paying)
        riders[g] = [r for p in rights if p in refunded for r in (p, refunds[p])]
        repeats += [(p, lefts, paying) for p in free if p not in paying]
    if repeats:
        _second_payment_cases(frame, ledger, ctx, rule, repeats)
    return riders


def _overpaid(frame: Frame, lefts: I64, rights: I64) -> bool:
    """Payments (every row completed, positive, in one currency) whose channel side adds up to more."""
    both = np.concatenate([lefts, rights])
    return bool(
        (frame.status[both] == SUCCESS).all()
        and (frame.amount[both] > 0).all()
        and (frame.currency[both] == frame.currency[both[0]]).all()
        and frame.amount[rights].sum() > frame.amount[lefts].sum()
    )


def _refunds_of(
    frame: Frame,
    ledger: Ledger,
    rule: KeyMatchRule,
    keys: list[tuple[list[int], list[int]]],
    runs: list[tuple[I64, I64]],
) -> dict[int, int]:
    """Payment row -> the unplaced channel refund (not linked by this pass) that gives it back in full:
    same first key field (the order), account and currency, amount negated, txn_id the payment's + ``#``.
    The candidates are found column-wise by the first key field's hash (few keys get here)."""
    order_field = rule.keys[0]
    h = frame.key_hash((order_field,))
    orders = np.array([lefts[0] for lefts, _ in keys], np.int64)
    linked = np.zeros(frame.n, dtype=bool)
    for run_left, run_right in runs:
        linked[run_left] = True
        linked[run_right] = True
    candidates = np.flatnonzero(
        ledger.unplaced()
        & ~linked
        & frame.source_mask(rule.right)
        & (frame.amount < 0)
        & (frame.status == SUCCESS)
        & np.isin(h, h[orders])
    )
    out: dict[int, int] = {}
    used: set[int] = set()
    words = frame.words(order_field)
    for (_, rights), order in zip(keys, orders.tolist(), strict=True):
        mine = candidates[words.equal(candidates, np.full(len(candidates), order))]
        mine = mine[np.argsort(frame.position[mine], kind="stable")]  # the first refund in input order
        for p in rights:
            prefix = frame.str_at("txn_id", p) + "#"
            for f in mine.tolist():
                if (
                    f not in used
                    and frame.account[f] == frame.account[p]
                    and frame.currency[f] == frame.currency[p]
                    and frame.amount[f] == -frame.amount[p]
                    and frame.str_at("txn_id", f).startswith(prefix)
                ):
                    out[p] = f
                    used.add(f)
                    break
    return out


def _second_payment_cases(
    frame: Frame,
    ledger: Ledger,
    ctx: Context,
    rule: KeyMatchRule,
    repeats: list[tuple[int, list[int], list[int]]],
) -> None:
    """One MISSING_IN_ERP case per second payment: 长款, at stake its amount; the counterparts are the
    ERP rows and the payment matched to them."""
    rows = np.array([r for r, _, _ in repeats], np.int64)
    cur = frame.currency[rows]
    amount = frame.amount[rows]
    expected = np.array([int(frame.amount[lefts].sum()) for _, lefts, _ in repeats], np.int64)
    paid = np.array([int(frame.amount[paying].sum()) for _, _, paying in repeats], np.int64)
    key = _key_text(frame, tuple(rule.keys), np.array([lefts[0] for _, lefts, _ in repeats], np.int64))
    reason = join(
        "长款: the customer paid order ",
        key,
        " twice; refund the customer: ",
        _label(frame, rows),
        " ",
        money(amount, cur, frame.currencies),
        " is a second payment; ",
        pa.array([_many_label(frame, np.array(paying, np.int64)) for _, _, paying in repeats], pa.string()),
        " ",
        money(paid, cur, frame.currencies),
        " paid it (matched to ",
        pa.array([_many_label(frame, np.array(lefts, np.int64)) for _, lefts, _ in repeats], pa.string()),
        " ",
        money(expected, cur, frame.currencies),
        ").",
    )
    counterparts = [dumps([member_ref(frame, r) for r in [*lefts, *paying]]) for _, lefts, paying in repeats]
    ids = hash_texts([frame.uid(r) for r in rows.tolist()], seed=14)
    ledger.add_cases(
        {
            "type": MISSING_IN_ERP,
            "rule": rule.name,
            "severity": severities(ctx.project.severity, amount),
            "delta_minor": amount,
            "currency": labels(cur, frame.currencies),
            "members": np.ones(len(rows), np.int32),
            "key": key,
            "left_amount_minor": expected,
            "right_amount_minor": amount,
            "counterparts": pa.array(counterparts, pa.string()),
            "reason": reason,
        },
        content_hash(ids, rule.name, "paid-twice"),
        rows,
        np.arange(len(rows), dtype=np.int64),
    )


def _many_label(frame: Frame, rows: I64) -> str:
    """``wechat A + B``; each row named with its source when they differ (``wechat A + alipay B``: one order
    paid through two channels)."""
    sources = [SOURCES[int(s)] for s in frame.source[rows]]
    ids = [frame.str_at("txn_id", r) for r in rows]
    if len(set(sources)) == 1:
        return f"{sources[0]} {' + '.join(ids)}"
    return " + ".join(f"{source} {txn_id}" for source, txn_id in zip(sources, ids, strict=True))


# Outcome of a linked key by code, weakest to strongest ("" = matched).
_OUTCOMES = np.array(["", TIME_MISMATCH, FEE_MISMATCH, AMOUNT_MISMATCH, OTHER, STATUS_MISMATCH], dtype=object)


def decide(frame: Frame, ledger: Ledger, ctx: Context, rule: KeyMatchRule, g: KeyGroups) -> None:
    delta = g.right_amount - g.left_amount
    allowed = tolerance(rule.tolerance(), g.left_amount)
    status_off = (g.left_bad != g.right_bad) if rule.compare_status else np.zeros(len(delta), bool)
    amount_off = np.abs(delta) > allowed
    fee_delta = g.right_fee - g.right_scheduled_fee
    fee_off = (
        np.abs(fee_delta) > rule.fee_tolerance_minor
        if rule.fee_rate_percent is not None
        else np.zeros(len(delta), bool)
    )
    time_off = g.gap_us > int(rule.time_tolerance_hours * 3_600_000_000)
    kind = np.zeros(len(delta), dtype=np.int8)  # index into _OUTCOMES (0: matched)
    for code, mask in enumerate((time_off, fee_off, amount_off, ~g.currency_ok, status_off), start=1):
        kind[mask] = code  # later assignments win: _OUTCOMES runs from weakest to strongest
    matched = kind == 0
    _groups(
        frame,
        ledger,
        ctx,
        rule,
        g,
        chosen=np.flatnonzero(matched),
        delta=delta,
        allowed=allowed,
        fee_delta=fee_delta,
    )
    _cases(
        frame,
        ledger,
        ctx,
        rule,
        g,
        chosen=np.flatnonzero(~matched),
        kind=kind,
        delta=delta,
        fee_delta=fee_delta,
    )


def _subset_members(g: KeyGroups, chosen: I64) -> tuple[I64, I64]:
    if g.texts is None:  # one row a side: the members are the first rows themselves
        k = np.arange(len(chosen), dtype=np.int64)
        return np.concatenate([g.left_first[chosen], g.right_first[chosen]]), np.concatenate([k, k])
    local = np.full(len(g.key_hash), -1, dtype=np.int64)
    local[chosen] = np.arange(len(chosen))
    keep = local[g.owner] >= 0
    return g.rows[keep], local[g.owner[keep]]


def _groups(
    frame: Frame,
    ledger: Ledger,
    ctx: Context,
    rule: KeyMatchRule,
    g: KeyGroups,
    *,
    chosen: I64,
    delta: I64,
    allowed: I64,
    fee_delta: I64,
) -> None:
    if len(chosen) == 0:
        return
    d = delta[chosen]
    exact = d == 0
    confidence = np.where(exact, 1.0, np.round(1.0 - 0.05 * np.abs(d) / np.maximum(allowed[chosen], 1), 4))
    names = ", ".join(rule.keys)
    hours = f"{rule.time_tolerance_hours:g}h"
    explanation = labels(
        np.where(exact, 0, 1),
        [
            f"{names} equal; amount equal; booked within {hours}",
            f"{names} equal; amount within tolerance; booked within {hours}",
        ],
    )
    rows, owner = _subset_members(g, chosen)
    currency = g.currency[chosen]
    ledger.add_groups(
        {
            "rule": rule.name,
            "match_pass": labels(np.where(exact, 0, 1), ["exact_key", "key_tolerance"]),
            "status": ctx.status(confidence),
            "confidence": confidence,
            "members": g.left_n[chosen] + g.right_n[chosen],
            "left_members": g.left_n[chosen],
            "right_members": g.right_n[chosen],
            "key": g.key(frame, tuple(rule.keys), chosen),
            "currency": labels(currency, frame.currencies),
            "left_amount_minor": g.left_amount[chosen],
            "right_amount_minor": g.right_amount[chosen],
            "amount_delta_minor": d,
            "time_delta_s": g.gap_us[chosen] // 1_000_000,
            "fee_delta_minor": fee_delta[chosen] if rule.fee_rate_percent is not None else None,
            "explanation": explanation,
        },
        g.key_hash[chosen],
        rows,
        owner,
    )


def _cases(
    frame: Frame,
    ledger: Ledger,
    ctx: Context,
    rule: KeyMatchRule,
    g: KeyGroups,
    *,
    chosen: I64,
    kind: I8,
    delta: I64,
    fee_delta: I64,
) -> None:
    if len(chosen) == 0:
        return
    k = _OUTCOMES[kind[chosen]]
    d = delta[chosen]
    cur = g.currency[chosen]
    la, ra = g.left_amount[chosen], g.right_amount[chosen]
    ll, rl = g.text(frame, "left_label", chosen), g.text(frame, "right_label", chosen)
    ls, rs = g.text(frame, "left_status", chosen), g.text(frame, "right_status", chosen)
    fd = fee_delta[chosen]
    # Amount at stake (docs/matching.md, "Case types"), in the currency it is counted in: channel − ERP for
    # an amount case, stated − scheduled fees for a fee case (both only when every row's currency is the
    # same), else the channel side's amount in the channel's currency — never a difference across currencies.
    stake_cur, channel_amount = g.channel(frame, chosen)
    stake = np.where(k == AMOUNT_MISMATCH, d, np.where(k == FEE_MISMATCH, fd, channel_amount))
    gap_s = g.gap_us[chosen] // 1_000_000
    reasons = []
    masks = []
    for name in (AMOUNT_MISMATCH, STATUS_MISMATCH, TIME_MISMATCH, FEE_MISMATCH, OTHER):
        mask = k == name
        if not mask.any():
            continue
        idx = pa.array(np.flatnonzero(mask))
        m_ll, m_rl = ll.take(idx), rl.take(idx)
        m_la = money(la[mask], cur[mask], frame.currencies)
        m_ra = money(ra[mask], cur[mask], frame.currencies)
        if name == AMOUNT_MISMATCH:
            text = join(
                "Both sides know the transaction but the amounts differ: ",
                m_ll,
                " ",
                m_la,
                " vs ",
                m_rl,
                " ",
                m_ra,
                " (Δ ",
                money(d[mask], cur[mask], frame.currencies),
                ").",
            )
        elif name == STATUS_MISMATCH:
            text = join(
                "Both sides know the transaction but disagree on whether it happened: ",
                m_ll,
                " is ",
                ls.take(idx),
                ", ",
                m_rl,
                " is ",
                rs.take(idx),
                ".",
            )
        elif name == TIME_MISMATCH:
            left_at, right_at = g.booked(frame, chosen[mask])
            text = join(
                "Keys and amounts agree but the booking times are ",
                human_durations(gap_s[mask]),
                " apart (",
                local_times(left_at, ctx.project.timezone),
                " vs ",
                local_times(right_at, ctx.project.timezone),
                f") (tolerance {rule.time_tolerance_hours:g}h): ",
                m_ll,
                " vs ",
                m_rl,
                ".",
            )
        elif name == FEE_MISMATCH:
            text = join(
                f"The channel's fee differs from the fee schedule ({rule.fee_rate_percent}%) by ",
                money(fd[mask], cur[mask], frame.currencies),
                " (charged ",
                money(g.right_fee[chosen][mask], cur[mask], frame.currencies),
                ", scheduled ",
                money(g.right_scheduled_fee[chosen][mask], cur[mask], frame.currencies),
                "): ",
                m_rl,
                " ",
                m_ra,
                " for ",
                m_ll,
                ".",
            )
        else:
            text = join(
                "Both sides know the transaction but book it in different currencies: ",
                m_ll,
                " vs ",
                m_rl,
                ".",
            )
        reasons.append(text)
        masks.append(np.flatnonzero(mask))
    order = np.concatenate(masks)
    reason_sorted = pa.concat_arrays(reasons)
    inverse = np.empty(len(order), dtype=np.int64)
    inverse[order] = np.arange(len(order))
    reason = reason_sorted.take(pa.array(inverse))
    rows, owner = _subset_members(g, chosen)
    ledger.add_cases(
        {
            "type": pa.array(k.astype(str)),
            "rule": rule.name,
            "severity": severities(ctx.project.severity, stake),
            "delta_minor": stake,
            "currency": labels(stake_cur, frame.currencies),
            "members": g.left_n[chosen] + g.right_n[chosen],
            "key": g.key(frame, tuple(rule.keys), chosen),
            "left_amount_minor": la,
            "right_amount_minor": ra,
            "time_delta_s": gap_s,
            "left_status": ls,
            "right_status": rs,
            "reason": reason,
        },
        content_hash(g.key_hash[chosen], rule.name, "case"),
        rows,
        owner,
    )


def duplicates(frame: Frame, ledger: Ledger, ctx: Context, rows: I64, first: I64) -> None:
    """Each repeated row is a DUPLICATE case; its counterpart is the first occurrence."""
    if len(rows) == 0:
        return
    cur = frame.currency[rows]
    take_first = pa.array(first)
    firsts = {
        "txn_uid": frame.take_text("txn_uid", first).to_pylist(),
        "txn_id": frame.take_text("txn_id", first).to_pylist(),
    }
    counterparts = [
        dumps(
            [
                {
                    "txn_uid": uid,
                    "source": SOURCES[int(frame.source[f])],
                    "account_id": frame.accounts[int(frame.account[f])],
                    "txn_id": tid,
                    "amount_minor": int(frame.amount[f]),
                    "currency": frame.currencies[int(frame.currency[f])],
                }
            ]
        )
        for f, uid, tid in zip(first.tolist(), firsts["txn_uid"], firsts["txn_id"], strict=True)
    ]
    lineage = [take_text(frame, "txn_uid", rows)]
    # Take before flattening: decoding a whole dictionary column to reach a few rows costs a full pass.
    for name in ("raw_key", "row_number"):
        if name in frame.table.column_names:
            lineage.append(plain(frame.table[name].take(pa.array(rows))).cast(pa.string()))
    if len(lineage) == 1:
        lineage.append(pa.array(frame.position[rows]).cast(pa.string()))
    ids = hash_strings(join(*[part for col in lineage for part in (col, "\x1f")]), seed=10)
    where = (
        join(
            " at ",
            plain(frame.table["raw_key"].take(take_first)),
            " row ",
            pa.array(_row_numbers(frame, first)).cast(pa.string()),
        )
        if "raw_key" in frame.table.column_names
        else pa.array([""] * len(rows))
    )
    ledger.add_cases(
        {
            "type": DUPLICATE,
            "rule": DUPLICATE_RULE,
            "severity": severities(ctx.project.severity, frame.amount[rows]),
            "delta_minor": frame.amount[rows],
            "currency": labels(cur, frame.currencies),
            "members": np.ones(len(rows), np.int32),
            "key": take_text(frame, "txn_id", rows),
            "left_amount_minor": frame.amount[first],
            "right_amount_minor": frame.amount[rows],
            "counterparts": pa.array(counterparts, pa.string()),
            "reason": join(
                "The same source id appears more than once; only the first occurrence is reconciled: ",
                _label(frame, rows),
                " ",
                money(frame.amount[rows], cur, frame.currencies),
                " repeats the row",
                where,
                ".",
            ),
        },
        content_hash(ids, DUPLICATE),
        rows,
        np.arange(len(rows)),
    )


def _row_numbers(frame: Frame, rows: I64) -> I64:
    if "row_number" not in frame.table.column_names:
        return np.asarray(frame.position[rows])
    taken = plain(frame.table["row_number"].take(pa.array(rows)))
    return np.asarray(pc.fill_null(taken, 0).to_numpy(zero_copy_only=False), np.int64)
