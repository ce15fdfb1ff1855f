"""Key passes: rows of two sides sharing key fields (ERP order/refund number = merchant order/refund number).

The join hashes the key fields' exact bytes, sorts each side's hashes and merges them (numpy), then
verifies every linked key on the exact bytes. Keys with one row on each side (nearly all) are decided
column-wise; keys with several rows on a side (an order paid in parts, a row delivered twice) are
decided one by one — repeats of the same source id become DUPLICATE cases, the rest are compared by sums.
An order paid more than once (the channel rows add up to more than the ERP's and one of them, or all of
one channel account's, equals it exactly) is matched to that payment; each other payment is a
MISSING_IN_ERP case (长款: the customer paid twice), unless a channel refund gave it back in full.
Channel rows that did not complete (closed, revoked, not paid) beside completed ones moved no money: they
join the key without being counted. A key where neither side kept any money (an order closed or never paid
whose payment failed too, or was refunded in full) is one group.

Decision for a linked key, first that applies:
STATUS_MISMATCH (one side says it did not happen) > OTHER (currencies differ) > AMOUNT_MISMATCH (beyond
the amount tolerance) > FEE_MISMATCH (channel fee off the schedule) > TIME_MISMATCH (beyond the time
tolerance) > OTHER (a refund larger than the order's payment) > matched. Confidence of a match: 1.0 when
amounts are equal, else 1 − 0.05·|Δ|/tolerance.
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
from recon.money import to_decimal
from recon.vocabulary import MERCHANT_DISCOUNT

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
from .frame import BOOL, I8, I32, I64, SOURCES, STATUSES, SUCCESS, Frame, plain, take_rows
from .hashing import U64, among, hash_texts
from .ledger import MATCHED, Ledger
from .text import join, labels, local_times, money, one_money, row_case_ids, severities, take_text


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
    # Per key, words on channel rows that joined it without money (attempts that did not complete, payments
    # refunded in full), "" when none — keys with several rows a side only; appended to the group's
    # explanation or the case's reason.
    notes: pa.Array | None = None
    # Members as (row, index of its key) — keys with several rows a side only: a one-row-a-side key's
    # members are its first rows, and two more row-sized arrays for them measured 30 MiB at 1M.
    rows: I64 = field(default_factory=lambda: np.zeros(0, np.int64))
    owner: I64 = field(default_factory=lambda: np.zeros(0, np.int64))
    # Keys with several rows a side: the counted channel rows' amount before merchant discounts and whether
    # every one states it (``gross_minor``), and a counted channel row (the discount's name), when the rows
    # carry the column.
    right_gross: tuple[I64, BOOL] | None = None
    channel_first: I64 | None = None

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
    # An order the ERP shows closed or unpaid that the channel took money for (few keys) is decided with
    # the keys of several rows: a channel refund may have given that money back (``_returned``).
    unpaid = (
        (frame.status[fast_l] != SUCCESS) & (frame.status[fast_r] == SUCCESS) & (frame.amount[fast_r] > 0)
    )
    if unpaid.any():
        runs += [(np.array([a]), np.array([b])) for a, b in zip(fast_l[unpaid], fast_r[unpaid], strict=True)]
        fast_l, fast_r = fast_l[~unpaid], fast_r[~unpaid]
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
    attempts = _attempts(frame, kept)
    riders = _paid_twice(frame, ledger, ctx, rule, kept=kept, runs=runs)
    for g, failed in attempts.items():
        riders[g] = riders.get(g, []) + failed
    returned = _returned(frame, ledger, rule, kept=kept, runs=runs)
    for g, pairs in returned.items():
        riders[g] = riders.get(g, []) + [refund for _, refund in pairs]  # the payments are members already
    rows: list[int] = []
    owner: list[int] = []
    agg: defaultdict[str, list[int]] = defaultdict(list)
    gross_of = _stated_gross(frame, [r for _, rights in kept for r in rights])
    l_status: list[str] = []
    r_status: list[str] = []
    l_label: list[str] = []
    r_label: list[str] = []
    notes: list[str] = []
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
        agg["rb"].append(int(rbad.all() or g in returned))  # money given back: none kept
        agg["cur"].append(int(frame.currency[lefts[0]]))
        agg["cok"].append(int(len(set(frame.currency[np.concatenate([lefts, rights])].tolist())) == 1))
        rc = frame.currency[rights]
        agg["rc"].append(int(rc[0]))
        agg["rca"].append(int(ra[rc == rc[0]].sum()))
        agg["l0"].append(left_list[0])
        agg["r0"].append(right_list[0])
        stated = [gross_of.get(r) for r in right_list]
        agg["rg"].append(sum(v for v in stated if v is not None))
        agg["rgs"].append(int(bool(gross_of) and all(v is not None for v in stated)))
        l_status.append(",".join(sorted({STATUSES[s] for s in frame.status[lefts].tolist()})))
        r_status.append(",".join(sorted({STATUSES[s] for s in frame.status[rights].tolist()})))
        l_label.append(_many_label(frame, lefts))
        r_label.append(_many_label(frame, rights))
        notes.append(
            "; ".join(
                n
                for n in (
                    _attempts_note(frame, attempts.get(g, [])),
                    _returned_note(frame, returned.get(g, [])),
                )
                if n
            )
        )
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
        notes=pa.array(notes, pa.string()) if any(notes) else None,
        texts={
            "left_status": pa.array(l_status, pa.string()),
            "right_status": pa.array(r_status, pa.string()),
            "left_label": pa.array(l_label, pa.string()),
            "right_label": pa.array(r_label, pa.string()),
        },
        rows=np.array(rows, np.int64),
        owner=np.array(owner, np.int64),
        right_gross=(np.array(agg["rg"], np.int64), np.array(agg["rgs"], bool)) if gross_of else None,
        channel_first=np.array(agg["r0"], np.int64),
    )


def _stated_gross(frame: Frame, rows: list[int]) -> dict[int, int | None]:
    """Row -> its amount before merchant discounts (``gross_minor``; None: not stated) of these rows (few:
    keys with several rows); empty when the rows carry no such column."""
    if not rows or "gross_minor" not in frame.table.column_names:
        return {}
    values = take_rows(frame.table["gross_minor"], np.array(rows, np.int64)).to_pylist()
    return dict(zip(rows, values, strict=True))


def _attempts(frame: Frame, kept: list[tuple[list[int], list[int]]]) -> dict[int, list[int]]:
    """Channel rows of a key that did not complete (closed, revoked, not paid, failed: no money moved)
    beside rows that did — a customer abandons one payment and pays again, often through the other
    channel. They are taken out of ``kept`` (updated in place: the completed rows alone are compared with
    the order, and may be a payment made twice) and returned (key index -> rows) to join the key's group
    or case as members without money, so each still ends in exactly one place and the explanation names
    it. A key whose channel rows all failed keeps them: against a paid order that is a STATUS_MISMATCH."""
    out: dict[int, list[int]] = {}
    for g, (lefts, rights) in enumerate(kept):
        failed = [r for r in rights if frame.status[r] != SUCCESS]
        if failed and len(failed) < len(rights):
            kept[g] = (lefts, [r for r in rights if frame.status[r] == SUCCESS])
            out[g] = failed
    return out


def _returned(
    frame: Frame,
    ledger: Ledger,
    rule: KeyMatchRule,
    *,
    kept: list[tuple[list[int], list[int]]],
    runs: list[tuple[I64, I64]],
) -> dict[int, list[tuple[int, int]]]:
    """Keys of an order the ERP shows closed or unpaid whose every channel payment a channel refund gave
    back in full (the refund not linked to an ERP refund; matched as in ``_refunds_of``): paid, cancelled
    and refunded, so neither side keeps any money — the payments and refunds join the order's group
    (key index -> (payment, refund) pairs). Otherwise the channel kept money the ERP says it has not: a
    STATUS_MISMATCH, as before."""
    unpaid = [
        g
        for g, (lefts, rights) in enumerate(kept)
        if (frame.status[lefts] != SUCCESS).all()
        and (frame.status[rights] == SUCCESS).all()
        and (frame.amount[rights] > 0).all()
    ]
    if not unpaid:
        return {}
    linked = _in_runs(frame, runs)
    refunds = _refunds_of(frame, rule, [kept[g] for g in unpaid], ledger.unplaced() & ~linked)
    return {g: [(p, refunds[p]) for p in kept[g][1]] for g in unpaid if all(p in refunds for p in kept[g][1])}


def _in_runs(frame: Frame, runs: list[tuple[I64, I64]]) -> BOOL:
    """The rows of keys with several rows (a refund among them is linked to its key, not free to match)."""
    linked = np.zeros(frame.n, dtype=bool)
    for run_left, run_right in runs:
        linked[run_left] = True
        linked[run_right] = True
    return linked


def _returned_note(frame: Frame, pairs: list[tuple[int, int]]) -> str:
    """``wechat 42… 19.90 refunded in full by wechat 42…#50… -19.90``."""
    return ", ".join(
        f"{_label(frame, np.array([p], np.int64))[0].as_py()} {_amount_text(frame, p)} refunded in full by "
        f"{_label(frame, np.array([f], np.int64))[0].as_py()} {_amount_text(frame, f)}"
        for p, f in pairs
    )


def _attempts_note(frame: Frame, rows: list[int]) -> str:
    """``wechat 42… closed: an attempt that did not complete, no money moved (not counted)``."""
    if not rows:
        return ""
    named = ", ".join(
        f"{SOURCES[int(frame.source[r])]} {frame.str_at('txn_id', r)} {STATUSES[int(frame.status[r])]}"
        for r in rows
    )
    what = "an attempt" if len(rows) == 1 else "attempts"
    return f"{named}: {what} that did not complete, no money moved (not counted)"


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
    linked = _in_runs(frame, runs)
    refunds = _refunds_of(frame, rule, [kept[g] for g in suspects], ledger.unplaced() & ~linked)
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
        # A second payment given back in full by a channel refund that is not a rider (this pass linked it:
        # the ERP booked a refund with its number): the customer has had it back — the reason says so
        # instead of asking for a refund again.
        ridden = np.zeros(frame.n, dtype=bool)
        ridden[[r for ride in riders.values() for r in ride]] = True
        back = _refunds_of(frame, rule, [(lefts, [p]) for p, lefts, _ in repeats], ~ridden)
        _second_payment_cases(frame, ledger, ctx, rule, repeats, back=back)
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
    rule: KeyMatchRule,
    keys: list[tuple[list[int], list[int]]],
    eligible: BOOL,
) -> dict[int, int]:
    """Payment row -> the ``eligible`` channel refund that gives it back in full: same first key field (the
    order), account and currency, amount negated, txn_id the payment's + ``#``. The candidates are found
    column-wise by the first key field's hash (few keys get here)."""
    order_field = rule.keys[0]
    h = frame.key_hash((order_field,))
    orders = np.array([lefts[0] for lefts, _ in keys], np.int64)
    candidates = np.flatnonzero(
        eligible
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
    *,
    back: dict[int, int],
) -> None:
    """One MISSING_IN_ERP case per second payment: 长款, at stake its amount; the counterparts are the
    ERP rows and the payment matched to them. A second payment a channel refund gave back (``back``:
    payment -> refund) is not to be refunded again: its reason names the refund, and where that refund is
    matched to the ERP's, says the ERP booked it as a refund of the order, which still holds the first
    payment (the books show the order refunded; the money says it is paid)."""
    rows = np.array([r for r, _, _ in repeats], np.int64)
    cur = frame.currency[rows]
    amount = frame.amount[rows]
    expected = np.array([int(frame.amount[lefts].sum()) for _, lefts, _ in repeats], np.int64)
    paid = np.array([int(frame.amount[paying].sum()) for _, _, paying in repeats], np.int64)
    key = _key_text(frame, tuple(rule.keys), np.array([lefts[0] for _, lefts, _ in repeats], np.int64))
    advice, given = [], []
    for r in rows.tolist():
        f = back.get(r)
        if f is None:
            advice.append(" twice; refund the customer: ")
            given.append("")
            continue
        advice.append(" twice; the second payment was refunded already, do not refund the customer again: ")
        booked = (
            ", and the ERP booked that refund against the order: the ERP shows the order refunded while the"
            " first payment is kept — correct the ERP's refund booking"
            if ledger.disposition[f] == MATCHED
            else ""
        )
        refund = _label(frame, np.array([f], np.int64))[0].as_py()
        given.append(f" (refunded in full by {refund} {_amount_text(frame, f)}{booked})")
    reason = join(
        "长款: the customer paid order ",
        key,
        pa.array(advice, pa.string()),
        _label(frame, rows),
        " ",
        money(amount, cur, frame.currencies),
        " is a second payment",
        pa.array(given, pa.string()),
        "; ",
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
_OUTCOMES = np.array(
    ["", TIME_MISMATCH, FEE_MISMATCH, AMOUNT_MISMATCH, OTHER, STATUS_MISMATCH, OTHER], dtype=object
)
_OVER_REFUNDED: Final = 6  # both sides agree on a refund larger than the order's payment (an OTHER case)
_TIME, _FEE, _AMOUNT = 1, 2, 3  # codes of TIME_MISMATCH, FEE_MISMATCH, AMOUNT_MISMATCH in _OUTCOMES


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
    # Neither side kept any money (an order closed or never paid, its payment closed or failed, or given
    # back in full: ``_returned``): there is nothing to compare — one group, its explanation says so.
    unmoved = g.left_bad & g.right_bad if rule.compare_status else np.zeros(len(delta), bool)
    kind[unmoved] = 0
    # A difference that is exactly the channel's merchant-funded discount (few keys: amount cases only;
    # None, the usual, when there is none: nothing more is done for the other keys).
    discount: I64 | None = None
    differ = np.flatnonzero(kind == _AMOUNT)
    found = _discounts(frame, g, differ) if len(differ) else differ
    if found.any():
        discount = np.zeros(len(delta), dtype=np.int64)
        discount[differ] = found
        if rule.merchant_discount == "match":
            accepted = differ[found != 0]
            kind[accepted] = np.where(fee_off[accepted], _FEE, np.where(time_off[accepted], _TIME, 0))
    # A refund both sides agree on is still wrong when it gives back more than the ERP booked as paid for
    # its order in this run (an order paid on an earlier day is not seen: nothing to compare).
    paid = np.zeros(len(delta), dtype=np.int64)
    refund = np.flatnonzero((kind == 0) & ~unmoved & (g.left_amount < 0) & (g.right_amount < 0))
    if len(refund):
        paid[refund] = _paid_for(frame, rule, g.left_first[refund])
        over = refund[(paid[refund] > 0) & (-g.left_amount[refund] > paid[refund])]
        kind[over] = _OVER_REFUNDED
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
        unmoved=unmoved,
        discount=discount,
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
        paid=paid,
        discount=discount,
    )


def _discounts(frame: Frame, g: KeyGroups, keys: I64) -> I64:
    """Per key of ``keys``: the channel's merchant-funded discount (its amount before discounts, the bill's
    订单金额 in ``gross_minor``, less what it settled) where the ERP booked exactly that amount before the
    discount, else 0. Read for these keys' channel rows alone (amount cases: few), only when the rows carry
    the column (schema version 3); a key with several channel rows when every counted one states it."""
    out = np.zeros(len(keys), dtype=np.int64)
    if g.right_gross is not None:  # keys with several rows a side: the counted channel rows' sum
        gross, has = g.right_gross[0][keys], g.right_gross[1][keys]
    elif g.texts is not None or "gross_minor" not in frame.table.column_names:
        return out
    else:
        stated = take_rows(frame.table["gross_minor"], g.right_first[keys])
        gross = np.asarray(pc.fill_null(stated, 0).to_numpy(zero_copy_only=False), np.int64)
        has = np.asarray(pc.is_valid(stated).to_numpy(zero_copy_only=False), bool)
    discount = gross - g.right_amount[keys]
    hit = has & (discount != 0) & (g.left_amount[keys] == gross) & g.currency_ok[keys]
    out[hit] = discount[hit]
    return out


#: What each channel calls a merchant-funded discount in its bill.
_DISCOUNT_NAMES: Final = {"wechat": "免充值券", "alipay": "商家优惠"}
#: The evidence field of an amount case whose difference is the channel's merchant discount: its ``delta`` is
#: the Δ (channel − ERP) the discount explains, which the money reading (``export.case_money``) takes as a
#: booking to make, not money short.


def _discount_words(frame: Frame, g: KeyGroups, key: int, discount: int) -> tuple[str, str, str, str]:
    """(the bill's name for the discount, the settled amount, the amount before the discount, the discount) of
    one key, as people read them: a payment's discount, or a refund's share of it (amounts then positive)."""
    row = int((g.channel_first if g.channel_first is not None else g.right_first)[key])
    currency = frame.currencies[int(frame.currency[row])]
    settled = int(g.right_amount[key])
    sign = -1 if settled < 0 else 1
    what = _DISCOUNT_NAMES.get(SOURCES[int(frame.source[row])], "merchant discount")
    return (
        what,
        f"{one_money(sign * settled, currency)} {currency}",
        f"{one_money(sign * (settled + discount), currency)} {currency}",
        f"{one_money(sign * discount, currency)} {currency}",
    )


def _paid_for(frame: Frame, rule: KeyMatchRule, refunds: I64) -> I64:
    """Per refund row, the amount its order was paid on the left side (completed payments of the same
    first key field, the order), 0 when none is in the run. Column-wise: refunds may be many."""
    out = np.zeros(len(refunds), dtype=np.int64)
    h = frame.key_hash(tuple(rule.keys[:1]))
    pay = np.flatnonzero(frame.source_mask(rule.left) & (frame.amount > 0) & (frame.status == SUCCESS))
    pay = pay[among(h[pay], h[refunds])]  # the payments of the refunds' orders
    if len(pay) == 0:
        return out
    pay = pay[np.argsort(h[pay], kind="stable")]
    orders, start = np.unique(h[pay], return_index=True)
    sums = np.add.reduceat(frame.amount[pay], start)
    at = np.minimum(np.searchsorted(orders, h[refunds]), len(orders) - 1)
    # The exact bytes, checked on the first payment of the hash: a collision never lends an order its sum.
    hit = (orders[at] == h[refunds]) & frame.words(rule.keys[0]).equal(refunds, pay[start[at]])
    out[hit] = sums[at[hit]]
    return out


def _discount_said(
    frame: Frame, g: KeyGroups, rule: KeyMatchRule, keys: I64, *, discount: I64 | None, text: pa.Array
) -> pa.Array:
    """An amount case's reason, where the difference is the channel's merchant discount, saying so and what
    to book (few keys: built one by one)."""
    at = np.flatnonzero(discount[keys] != 0) if discount is not None else keys[:0]
    if len(at) == 0 or discount is None:
        return text
    out = text.to_pylist()
    key_text = g.key(frame, tuple(rule.keys), keys[at]).to_pylist()
    for i, key in zip(at.tolist(), key_text, strict=True):
        k = int(keys[i])
        name, settled, gross, off = _discount_words(frame, g, k, int(discount[k]))
        if g.right_amount[k] > 0:
            out[i] += (
                f" The difference is the merchant's own discount: the channel settled {settled} = order {gross}"
                f" less a merchant discount ({name}) of {off}. The ERP books the order before the discount:"
                f" book the {off} discount against order {key} (or book the order at what the customer"
                " paid); the settlement is not short."
            )
        else:
            out[i] += (
                f" The difference is the merchant's own discount: the channel refunded {settled} = refund"
                f" {gross} less the merchant discount's share ({name}) of {off}. The ERP books the refund"
                f" before the discount: book the {off} share of the discount against refund {key} (or book"
                " the refund at what the customer got back); the settlement is not short."
            )
    return pa.array(out, pa.string())


def _discount_evidence(
    frame: Frame, g: KeyGroups, keys: I64, kind: I8, discount: I64 | None
) -> pa.Array | None:
    """Per key of ``keys``: the merchant discount its amount case's difference is, as the case's evidence
    (``MERCHANT_DISCOUNT``; null for the other keys); None, no column, when no amount case has one (few keys:
    built one by one)."""
    if discount is None:
        return None
    at = np.flatnonzero((discount[keys] != 0) & (kind[keys] == _AMOUNT))
    if len(at) == 0:
        return None
    out: list[str | None] = [None] * len(keys)
    for i in at.tolist():
        k = int(keys[i])
        name, _, _, off = _discount_words(frame, g, k, int(discount[k]))
        said = f"{name} {off}"
        # The ERP booked the amount before the discount: the case's Δ (channel − ERP) is minus the discount.
        explained = str(to_decimal(-int(discount[k]), frame.currencies[int(g.currency[k])]))
        out[i] = dumps(
            [{"field": MERCHANT_DISCOUNT, "left": said, "right": said, "equal": True, "delta": explained}]
        )
    return pa.array(out, pa.string())


def _noted(g: KeyGroups, chosen: I64, text: pa.Array, before: str, after: str) -> pa.Array:
    """``text`` with the chosen keys' notes (``KeyGroups.notes``) appended where they have one."""
    if g.notes is None:
        return text
    notes = g.notes.take(pa.array(chosen))
    has = pc.not_equal(notes, "")
    return pc.if_else(has, join(text, before, notes, after), text.cast(pa.string()))


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
    unmoved: BOOL,
    discount: I64 | None,
) -> None:
    if len(chosen) == 0:
        return
    d = delta[chosen]
    none = unmoved[chosen]
    exact = (d == 0) | none
    # ``merchant_discount: match``: the bill explains the difference (None: no such key, the usual)
    discounted = discount[chosen] != 0 if discount is not None else None
    sure = exact if discounted is None else exact | discounted
    confidence = np.where(sure, 1.0, np.round(1.0 - 0.05 * np.abs(d) / np.maximum(allowed[chosen], 1), 4))
    names = ", ".join(rule.keys)
    hours = f"{rule.time_tolerance_hours:g}h"
    wording = [
        f"{names} equal; amount equal; booked within {hours}",
        f"{names} equal; amount within tolerance; booked within {hours}",
        f"{names} equal; amount less the channel's merchant discount; booked within {hours}",
    ]
    if discounted is None:
        explanation = labels(np.where(exact, 0, 1), wording[:2])
    else:
        explanation = labels(np.where(exact, 0, np.where(discounted, 2, 1)), wording)
    if none.any():
        at = np.flatnonzero(none)
        neither = join(
            f"{names} equal; neither side kept any money (erp ",
            g.text(frame, "left_status", chosen[at]),
            ", channel ",
            g.text(frame, "right_status", chosen[at]),
            ")",
        )
        words = np.full(len(chosen), -1, dtype=np.int64)
        words[at] = np.arange(len(at))
        explanation = pc.if_else(
            pa.array(none), neither.take(pa.array(np.maximum(words, 0))), explanation.cast(pa.string())
        )
    if discount is not None and discounted is not None and discounted.any():
        settled_as = []
        for k in chosen[np.flatnonzero(discounted)].tolist():
            name, settled, gross, off = _discount_words(frame, g, k, int(discount[k]))
            if g.right_amount[k] > 0:
                settled_as.append(
                    f"; the channel settled {settled} = {gross} less a merchant discount ({name}) of {off}"
                )
            else:
                settled_as.append(
                    f"; the channel refunded {settled} = {gross} less the merchant discount's share ({name}) of {off}"
                )
        said = pc.replace_with_mask(
            pa.array([""] * len(chosen), pa.string()), pa.array(discounted), pa.array(settled_as, pa.string())
        )
        explanation = join(explanation, said)
    explanation = _noted(g, chosen, explanation, "; ", "")
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
    paid: I64,
    discount: I64 | None,
) -> None:
    if len(chosen) == 0:
        return
    k = _OUTCOMES[kind[chosen]]
    over = kind[chosen] == _OVER_REFUNDED
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
    stake = np.where(over, channel_amount + paid[chosen], stake)  # refunded beyond the payment (negative)
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
            text = _discount_said(frame, g, rule, chosen[mask], discount=discount, text=text)
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
            if over[mask].any():
                m_paid = paid[chosen][mask]
                refunded = join(
                    "The refund gives back more than the order was paid: ",
                    m_ll,
                    " ",
                    m_la,
                    " and ",
                    m_rl,
                    " ",
                    m_ra,
                    " against ",
                    money(m_paid, cur[mask], frame.currencies),
                    " paid for order ",
                    take_text(frame, rule.keys[0], g.left_first[chosen][mask]),
                    " (",
                    money(-la[mask] - m_paid, cur[mask], frame.currencies),
                    " more).",
                )
                text = pc.if_else(pa.array(over[mask]), refunded, text)
        reasons.append(text)
        masks.append(np.flatnonzero(mask))
    order = np.concatenate(masks)
    reason_sorted = pa.concat_arrays(reasons)
    inverse = np.empty(len(order), dtype=np.int64)
    inverse[order] = np.arange(len(order))
    reason = _noted(g, chosen, reason_sorted.take(pa.array(inverse)), " ", ".")
    rows, owner = _subset_members(g, chosen)
    evidence = _discount_evidence(frame, g, chosen, kind, discount)
    ledger.add_cases(
        {
            **({"evidence": evidence} if evidence is not None else {}),
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
    """Each repeated row is a DUPLICATE case; its counterpart is the first occurrence. A repeat whose amount,
    currency or status differs from the first occurrence's is no copy: the two rows conflict, and the
    reason says on what and gives both values (which one is right is for a person to find out)."""
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
    ids = row_case_ids(frame, rows, seed=10, content=("order_ref", "amount_minor"))
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
            "reason": _duplicate_reasons(frame, rows, first, where),
        },
        content_hash(ids, DUPLICATE),
        rows,
        np.arange(len(rows)),
    )


def _duplicate_reasons(frame: Frame, rows: I64, first: I64, where: pa.Array) -> pa.Array:
    cur = frame.currency[rows]
    copy = join(
        "The same source id appears more than once; only the first occurrence is reconciled: ",
        _label(frame, rows),
        " ",
        money(frame.amount[rows], cur, frame.currencies),
        " repeats the row",
        where,
        ".",
    )
    differs = {
        "amount": frame.amount[rows] != frame.amount[first],
        "currency": frame.currency[rows] != frame.currency[first],
        "status": frame.status[rows] != frame.status[first],
    }
    conflict = np.flatnonzero(np.any(list(differs.values()), axis=0))
    if len(conflict) == 0:
        return copy
    # Few rows: the words are built one by one.
    text = copy.to_pylist()
    labels_ = _label(frame, rows[conflict]).to_pylist()
    places = where.take(pa.array(conflict)).to_pylist()
    for i, label, place in zip(conflict.tolist(), labels_, places, strict=True):
        r, f = int(rows[i]), int(first[i])
        on = " and ".join(name for name, mask in differs.items() if mask[i])
        text[i] = (
            "The same source id appears more than once with different content; the rows conflict on the "
            f"{on}: {label} {_content(frame, r)} here, {_content(frame, f)} in the first occurrence{place}. "
            "Only the first occurrence is reconciled: check which one is right."
        )
    return pa.array(text, pa.string())


def _content(frame: Frame, row: int) -> str:
    """``8.90 CNY success``: a row's amount, currency and status, to set two conflicting rows side by side."""
    currency, status = frame.currencies[int(frame.currency[row])], STATUSES[int(frame.status[row])]
    return f"{_amount_text(frame, row)} {currency} {status}"


def _amount_text(frame: Frame, row: int) -> str:
    return str(money(frame.amount[[row]], frame.currency[[row]], frame.currencies)[0].as_py())


def _row_numbers(frame: Frame, rows: I64) -> I64:
    if "row_number" not in frame.table.column_names:
        return np.asarray(frame.position[rows])
    taken = plain(frame.table["row_number"].take(pa.array(rows)))
    return np.asarray(pc.fill_null(taken, 0).to_numpy(zero_copy_only=False), np.int64)
