"""Window passes: rows no key links, matched by amount (with tolerance) within a time window.

1. Candidates (column-wise): same currency (and sign), amount within tolerance, booked within the window.
   Exact amounts: each side is sorted once by (currency, amount, time) and the window's ends are binary
   searches in the other side. A row with more candidates than ``max_candidates`` is *crowded*: it is only
   ever suggested (step 5).
2. Every candidate pair gets a score in [0, 1], the weighted mean of the signals both rows carry:
   time proximity (1 − |Δt| / window), amount closeness (tolerance passes only), counterparty equality
   (corroboration only), and reference similarity (one row's order/refund reference found in the other's
   reference or memo). Absent signals are left out of the mean, never counted against a pair; the text
   work is done only for pairs whose rows both carry the text.
3. *Clear* pairs — each the other's best candidate, ahead of both rows' next best by ``CLEAR_MARGIN`` —
   are matched with confidence 0.5 + 0.5·score. A pair alone in its block (nearly all pairs of distinct
   amounts) is decided by its score alone, column-wise. With ``clear_time_gap_seconds``, a pair of mutual
   best candidates is clear too when every other candidate of both rows is that much further apart in time
   (no closer in amount, with no more other evidence for it): the linear time score alone cannot tell 3 s
   from 5 min apart within a 30-minute window by the margin.
4. What remains is split into connected blocks. Blocks up to ``max_block`` rows a side are solved exactly
   (maximum total score, one-to-one); a pair whose block has another assignment within ``CLEAR_MARGIN``
   of the best is ambiguous. Larger blocks are paired by rounds of mutual best choices. Ambiguous and
   large-block pairs get confidence min(0.5, …): they are *suggested*, never auto-matched.
5. Crowded rows of one amount are paired k-th with k-th in time order (the pairing that minimises the
   total time gap) and suggested; the order is step 1's, refined to the µs.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np
import pyarrow.compute as pc

from recon.domain import WindowMatchRule

from .assignment import ambiguous_pairs, best_assignment
from .context import Context, content_hash, tolerance
from .frame import ANY, BOOL, I64, Frame
from .hashing import combine, hash_strings, hash_words
from .ledger import Ledger
from .text import labels, take_text

CLEAR_MARGIN = 0.25
SUGGESTED_CAP = 0.5
_MAX_TEXT_EDGES = 200_000
_NORMALISE = re.compile(r"[\W_]+", re.UNICODE)


def window_match(frame: Frame, ledger: Ledger, rule: WindowMatchRule, ctx: Context) -> None:
    free = ledger.unplaced()
    left = np.flatnonzero(free & frame.source_mask(rule.left))
    right = np.flatnonzero(free & frame.source_mask(rule.right))
    if len(left) == 0 or len(right) == 0:
        return
    window_ms = int(rule.time_window_hours * 3_600_000)
    c = _candidates(frame, rule, left, right, window_ms)
    out_l, out_r, out_c, out_clear = [], [], [], []
    if len(c.el):
        a, b = left[c.el], right[c.er]
        score, evidence = _scores(frame, rule, a, b, window_ms)
        keep = score > 0
        if rule.reject_conflicting_orders:
            keep &= ~_conflicting_orders(frame, a, b)
        nearest = None
        if rule.clear_time_gap_seconds is not None:
            nearest = _Nearest(
                gap_ms=np.abs(frame.booked[a] // 1000 - frame.booked[b] // 1000)[keep],
                amount_gap=np.abs(frame.amount[b] - frame.amount[a])[keep],
                evidence=evidence[keep],
                margin_ms=int(rule.clear_time_gap_seconds * 1000),
            )
        chosen_l, chosen_r, confidence, clear = _assign(
            len(left),
            len(right),
            c.el[keep],
            c.er[keep],
            score[keep],
            max_block=rule.max_block,
            nearest=nearest,
        )
        out_l.append(chosen_l)
        out_r.append(chosen_r)
        out_c.append(confidence)
        out_clear.append(clear)
    if c.sweep is not None:
        sl, sr, ss = _sweep(frame, left, right, c.sweep, window_ms)
        out_l.append(sl)
        out_r.append(sr)
        out_c.append(np.round(np.minimum(SUGGESTED_CAP, 0.5 * (0.5 + 0.5 * ss)), 4))
        out_clear.append(np.zeros(len(sl), dtype=np.int8))
    if sum(len(x) for x in out_l) == 0:
        return
    _record(
        frame,
        ledger,
        ctx,
        rule,
        l_rows=left[np.concatenate(out_l)],
        r_rows=right[np.concatenate(out_r)],
        confidence=np.concatenate(out_c),
        clear=np.concatenate(out_clear),
    )


# --- 1. candidates -----------------------------------------------------------------------------------
@dataclass
class _Sweep:
    """Crowded rows (exact amounts), each side in (block, time) order; ties of ``key`` not yet in µs order."""

    block_l: I64  # (currency, amount) block code per row of left / right
    block_r: I64
    rows_l: I64  # crowded rows (indices into left / right), sorted by ``key``
    rows_r: I64
    key_l: I64  # the sortable (block, time) code of those rows
    key_r: I64


@dataclass
class _Candidates:
    el: I64  # candidate pairs between rows that are not crowded (indices into left / right)
    er: I64
    sweep: _Sweep | None  # crowded rows on both sides: paired by the sweep, never auto


def _candidates(frame: Frame, rule: WindowMatchRule, left: I64, right: I64, window_ms: int) -> _Candidates:
    """Candidate pairs as (index into left, index into right), and the crowded rows."""
    t_l, t_r = frame.booked[left], frame.booked[right]
    t_l //= 1000  # the window is in ms (in place: these are copies)
    t_r //= 1000
    amount_l, amount_r = frame.amount[left], frame.amount[right]
    tol = rule.amount_tolerance
    cap = rule.max_candidates
    if tol.minor == 0 and tol.percent == 0:
        # One sortable integer per row: (currency, amount) block, then time (the same amount has the same
        # sign); each side sorted once (the sweep reuses the order), the window's ends found by binary
        # search in the other side.
        t0 = int(min(t_l.min(), t_r.min()))
        span = int(max(t_l.max(), t_r.max())) - t0 + 2 * window_ms + 1
        t_l -= t0
        t_r -= t0
        code_l, code_r, cl, cr, unit = _composite(
            (frame.currency[left].astype(np.int64) << np.int64(50)) + amount_l,
            (frame.currency[right].astype(np.int64) << np.int64(50)) + amount_r,
            t_l,
            t_r,
            span_ms=span,
            window_ms=window_ms,
        )
        del t_l, t_r
        order_r = _stable_order(cr)
        sorted_r = cr[order_r]
        del cr
        order_l = _stable_order(cl)
        sorted_l = cl[order_l]
        del cl
        reach = window_ms // unit
        lo = np.searchsorted(sorted_r, sorted_l - reach, side="left")
        hi = np.searchsorted(sorted_r, sorted_l + reach, side="right")
        crowded_l: BOOL = np.empty(len(left), dtype=bool)
        crowded_l[order_l] = hi - lo > cap
        # A right row's count: the left windows [lo, hi) covering its sorted position (a difference array
        # instead of two more binary searches).
        cover = np.bincount(lo, minlength=len(right) + 1)
        cover -= np.bincount(hi, minlength=len(right) + 1)
        crowded_r: BOOL = np.empty(len(right), dtype=bool)
        crowded_r[order_r] = np.cumsum(cover[:-1]) > cap
        del cover
        calm = ~crowded_l[order_l]
        lo, hi, rows_l = lo[calm], hi[calm], order_l[calm]
        counts = hi - lo
        el = np.repeat(rows_l, counts)
        starts = np.repeat(lo - np.cumsum(np.append(0, counts[:-1])), counts)
        er = order_r[starts + np.arange(len(el))]
        keep = ~crowded_r[er]
        sweep = None
        if crowded_l.any() and crowded_r.any():
            busy_l, busy_r = ~calm, crowded_r[order_r]
            sweep = _Sweep(
                code_l, code_r, order_l[busy_l], order_r[busy_r], sorted_l[busy_l], sorted_r[busy_r]
            )
        return _Candidates(el[keep], er[keep], sweep)
    sign_l = np.sign(amount_l) if rule.same_sign else np.zeros(len(left), np.int64)
    sign_r = np.sign(amount_r) if rule.same_sign else np.zeros(len(right), np.int64)
    group_l = frame.currency[left].astype(np.int64) * 3 + sign_l + 1
    group_r = frame.currency[right].astype(np.int64) * 3 + sign_r + 1
    # With an amount tolerance: ranges by amount within the block, then the time filter.
    order_r = np.lexsort((amount_r, group_r))
    key_r = (group_r[order_r] << np.int64(48)) + amount_r[order_r] + np.int64(1 << 46)
    allowed = tolerance(tol, amount_l)
    base_l = (group_l << np.int64(48)) + amount_l + np.int64(1 << 46)
    lo = np.searchsorted(key_r, base_l - allowed, side="left")
    hi = np.searchsorted(key_r, base_l + allowed, side="right")
    hi = np.minimum(hi, lo + 8 * cap)
    counts = hi - lo
    el = np.repeat(np.arange(len(left)), counts)
    starts = np.repeat(lo - np.cumsum(np.append(0, counts[:-1])), counts)
    er = order_r[starts + np.arange(len(el))]
    near = np.abs(t_l[el] - t_r[er]) <= window_ms
    el, er = el[near], er[near]
    crowded_l = np.bincount(el, minlength=len(left)) > cap
    crowded_r = np.bincount(er, minlength=len(right)) > cap
    keep = ~crowded_l[el] & ~crowded_r[er]
    return _Candidates(el[keep], er[keep], None)


def _composite(
    block_l: I64, block_r: I64, t_l: I64, t_r: I64, *, span_ms: int, window_ms: int
) -> tuple[I64, I64, I64, I64, int]:
    """Block codes and one sortable int64 per row: (block, time). Packs the block's offset and the time
    (ms, or s when ms do not fit) into 63 bits; else ranks the blocks densely (a sort more)."""
    low = int(min(block_l.min(), block_r.min()))
    block_bits = max(1, int(max(block_l.max(), block_r.max()) - low).bit_length())
    for unit in (1, 1000):
        time_bits = max(1, (span_ms // unit + 2).bit_length())
        if block_bits + time_bits <= 62:
            code_l, code_r = block_l - low, block_r - low
            pad = window_ms // unit + 1
            packed_l, packed_r = code_l << np.int64(time_bits), code_r << np.int64(time_bits)
            packed_l += t_l // unit if unit > 1 else t_l
            packed_r += t_r // unit if unit > 1 else t_r
            packed_l += pad
            packed_r += pad
            return code_l, code_r, packed_l, packed_r, unit
    _, inverse = np.unique(np.concatenate([block_l, block_r]), return_inverse=True)
    code_l, code_r = inverse[: len(block_l)].astype(np.int64), inverse[len(block_l) :].astype(np.int64)
    if (int(code_l.max(initial=0)) + 1) * span_ms >= 2**62:
        raise ValueError("time range too long for one window pass")
    return code_l, code_r, code_l * span_ms + t_l + window_ms, code_r * span_ms + t_r + window_ms, 1


def _stable_order(key: I64) -> I64:
    """Stable argsort of non-negative keys (ties in row order): a least-significant-digit radix sort, 16
    bits a pass — numpy sorts 16-bit keys stably by counting, so three passes over 46-bit keys take about
    two thirds of one quicksort of the keys."""
    bits = max(1, int(key.max(initial=0)).bit_length())
    order = np.argsort(key.astype(np.uint16), kind="stable")  # the cast keeps the low 16 bits
    for shift in range(16, bits, 16):
        order = order[np.argsort((key[order] >> shift).astype(np.uint16), kind="stable")]
    return order


def _in_time_order(rows: I64, key: I64, booked: I64, side: I64) -> I64:
    """``rows`` (indices into ``side``) sorted by ``key``, a (block, time) code coarser than µs: put in
    (block, booked µs, row) order. Only the runs of equal keys — a few rows — are re-sorted."""
    tie = key[1:] == key[:-1]
    if not tie.any():
        return rows
    member = np.zeros(len(key), dtype=bool)
    member[1:] |= tie
    member[:-1] |= tie
    at = np.flatnonzero(member)
    starts = np.ones(len(key), dtype=bool)
    starts[1:] = ~tie
    tied = rows[at]
    out = rows.copy()
    out[at] = tied[np.lexsort((tied, booked[side[tied]], np.cumsum(starts)[at]))]
    return out


def _sweep(frame: Frame, left: I64, right: I64, s: _Sweep, window_ms: int) -> tuple[I64, I64, ANY]:
    """Crowded rows of one amount: k-th left with k-th right in time order (the pairing that minimises the
    total time gap), within the window. Returns pairs and their time scores (always suggested)."""
    a_all = _in_time_order(s.rows_l, s.key_l, frame.booked, left)
    b_all = _in_time_order(s.rows_r, s.key_r, frame.booked, right)
    bl, br = s.block_l[a_all], s.block_r[b_all]

    def ranks(blocks: I64) -> I64:
        start = np.ones(len(blocks), dtype=bool)
        start[1:] = blocks[1:] != blocks[:-1]
        first = np.maximum.accumulate(np.where(start, np.arange(len(blocks)), 0))
        return np.asarray(np.arange(len(blocks)) - first, dtype=np.int64)

    big = np.int64(1 << 32)
    kl = bl * big + ranks(bl)
    kr = br * big + ranks(br)
    pos = np.searchsorted(kr, kl)
    pos = np.minimum(pos, max(len(kr) - 1, 0))
    hit = (kr[pos] == kl) if len(kr) else np.zeros(len(kl), bool)
    a = a_all[hit]
    b = b_all[pos[hit]]
    gap = np.abs(frame.booked[right[b]] - frame.booked[left[a]]) // 1000
    near = gap <= window_ms
    return a[near], b[near], np.round(1.0 - gap[near] / max(window_ms, 1), 4)


# --- 2. scores ---------------------------------------------------------------------------------------
_REFERENCES = ("order_ref", "refund_ref", "memo")


def _carrying(frame: Frame, names: tuple[str, ...]) -> BOOL | None:
    """Rows with a non-empty value in any of the text columns ``names``; None when no row has one. Column-
    wise and cheap: the text work of a signal is then done only for pairs whose rows both carry it."""
    out: BOOL | None = None
    for name in names:
        column = frame.text(name)
        if column.null_count == len(column):
            continue
        filled = pc.fill_null(pc.greater(pc.binary_length(column), 0), False)
        carries = np.asarray(filled.to_numpy(zero_copy_only=False), dtype=bool)
        out = carries if out is None else out | carries
    return out


def _normalised_hash(frame: Frame, name: str, rows: I64) -> tuple[ANY, ANY]:
    text = take_text(frame, name, rows)
    norm = pc.utf8_lower(pc.replace_substring_regex(pc.fill_null(text, ""), r"\s+", ""))
    present = np.asarray(pc.greater(pc.binary_length(norm), 0).to_numpy(zero_copy_only=False), bool)
    return hash_strings(norm), present


def _same_counterparty(frame: Frame, a: I64, b: I64) -> BOOL:
    same = np.zeros(len(a), dtype=bool)
    carries = _carrying(frame, ("counterparty",))
    both = np.flatnonzero(carries[a] & carries[b]) if carries is not None else np.zeros(0, np.int64)
    if len(both):
        ha, pa_ = _normalised_hash(frame, "counterparty", a[both])
        hb, pb = _normalised_hash(frame, "counterparty", b[both])
        same[both] = pa_ & pb & (ha == hb)
    return same


def _scores(frame: Frame, rule: WindowMatchRule, a: I64, b: I64, window_ms: int) -> tuple[ANY, ANY]:
    """Per candidate pair: its score, and the weight of what speaks for it besides time and amount (the
    same counterparty, a similar reference)."""
    dt = np.abs(frame.booked[a] // 1000 - frame.booked[b] // 1000)
    total: ANY = rule.weight_time * (1.0 - dt / max(window_ms, 1))
    weight: ANY = np.full(len(a), rule.weight_time)
    evidence: ANY = np.zeros(len(a))  # the counterparty's and the reference's part of ``total``
    tol = rule.amount_tolerance
    if tol.minor or tol.percent:
        allowed = np.maximum(tolerance(tol, frame.amount[a]), 1)
        total = total + (1.0 - np.abs(frame.amount[b] - frame.amount[a]) / (allowed + 1))
        weight = weight + 1.0
    if rule.weight_counterparty:
        # Corroboration only: sides often name the counterparty differently (a customer's name in the ERP,
        # a masked account at the channel), so a difference says nothing; equality adds weight.
        same = _same_counterparty(frame, a, b)
        evidence = evidence + np.where(same, rule.weight_counterparty, 0.0)
        weight = weight + np.where(same, rule.weight_counterparty, 0.0)
    if rule.weight_reference:
        ref = np.full(len(a), -1.0)
        carries = _carrying(frame, _REFERENCES)
        both = np.flatnonzero(carries[a] & carries[b]) if carries is not None else np.zeros(0, np.int64)
        if 0 < len(both) <= _MAX_TEXT_EDGES:
            ref[both] = _reference_similarity(frame, a[both], b[both])
        present = ref >= 0
        evidence = evidence + np.where(present, rule.weight_reference * np.clip(ref, 0, 1), 0.0)
        weight = weight + np.where(present, rule.weight_reference, 0.0)
    total = total + evidence
    return np.asarray(np.round(total / weight, 4), dtype=np.float64), np.round(evidence, 4)


def _refs(frame: Frame, rows: I64) -> list[list[str]]:
    columns = [take_text(frame, name, rows).to_pylist() for name in _REFERENCES]
    out = []
    for values in zip(*columns, strict=True):
        out.append([n for n in map(_normal, values) if n])
    return out


def _reference_similarity(frame: Frame, a: I64, b: I64) -> ANY:
    """Best similarity between one row's references (order/refund ref, memo) and the other's; −1 when
    either row carries none."""
    ua, inv_a = np.unique(a, return_inverse=True)
    ub, inv_b = np.unique(b, return_inverse=True)
    refs_a, refs_b = _refs(frame, ua), _refs(frame, ub)
    out = np.full(len(a), -1.0)
    cache: dict[tuple[int, int], float] = {}
    for k, (i, j) in enumerate(zip(inv_a.tolist(), inv_b.tolist(), strict=True)):
        ra, rb = refs_a[i], refs_b[j]
        if not ra or not rb:
            continue
        key = (i, j)
        if key not in cache:
            cache[key] = max(_similar(x, y) for x in ra for y in rb)
        out[k] = cache[key]
    return out


def _conflicting_orders(frame: Frame, a: I64, b: I64) -> BOOL:
    """Pairs whose rows both carry an order reference and neither contains the other (``_similar`` 0)."""
    out = np.zeros(len(a), dtype=bool)
    if "order_ref" not in frame.table.column_names:
        return out
    carries = frame.has_text("order_ref")
    both = np.flatnonzero(carries[a] & carries[b])
    if len(both) == 0:
        return out
    ua, inv_a = np.unique(a[both], return_inverse=True)
    ub, inv_b = np.unique(b[both], return_inverse=True)
    refs_a = [_normal(v) for v in take_text(frame, "order_ref", ua).to_pylist()]  # once per row
    refs_b = [_normal(v) for v in take_text(frame, "order_ref", ub).to_pylist()]
    out[both] = [_conflict(refs_a[i], refs_b[j]) for i, j in zip(inv_a.tolist(), inv_b.tolist(), strict=True)]
    return out


def orders_conflict(x: str | None, y: str | None) -> bool:
    """Two order references that name different orders: both present (once case, spaces and punctuation
    are ignored) and neither contains the other (``_similar`` 0)."""
    return _conflict(_normal(x), _normal(y))


def _normal(value: str | None) -> str:
    """A reference without case, spaces and punctuation."""
    return _NORMALISE.sub("", value or "").upper()


def _conflict(a: str, b: str) -> bool:
    return bool(a) and bool(b) and _similar(a, b) == 0.0


def _similar(x: str, y: str) -> float:
    """1 for the same reference once case, spaces and punctuation are ignored; 0.9 when one contains the
    other (6 characters at least: a prefix or a truncation); else 0. Near misses score nothing on purpose:
    order numbers are sequential, so ``…006`` and ``…007`` are different orders, not a typo."""
    if x == y:
        return 1.0
    short, long_ = (x, y) if len(x) <= len(y) else (y, x)
    return 0.9 if len(short) >= 6 and short in long_ else 0.0


# --- 3./4. assignment --------------------------------------------------------------------------------
def _best_and_second(node: I64, score: ANY, n: int) -> tuple[ANY, ANY, I64]:
    """Per node: best score, second best score (0 when none), index of the best edge (−1 when none)."""
    best = np.zeros(n)
    second = np.zeros(n)
    arg = np.full(n, -1, dtype=np.int64)
    if len(node) == 0:
        return best, second, arg
    order = np.lexsort((-score, node))
    sorted_node = node[order]
    first = np.ones(len(order), dtype=bool)
    first[1:] = sorted_node[1:] != sorted_node[:-1]
    heads = order[first]
    best[node[heads]] = score[heads]
    arg[node[heads]] = heads
    nxt = np.flatnonzero(first)[:] + 1
    has_next = nxt < len(order)
    nxt = nxt[has_next]
    same = sorted_node[nxt] == sorted_node[nxt - 1]
    seconds = order[nxt[same]]
    second[node[seconds]] = score[seconds]
    return best, second, arg


@dataclass
class _Nearest:
    """Per candidate pair, what the time-gap test of ``_clear`` compares (``clear_time_gap_seconds``)."""

    gap_ms: I64  # |Δbooked_at|
    amount_gap: I64  # |Δamount| (0 without an amount tolerance)
    evidence: ANY  # the weight of what else speaks for the pair (counterparty, reference)
    margin_ms: int

    def far_apart(self, edges: I64, el: I64, er: I64, n_left: int, n_right: int) -> BOOL:
        """Per edge (of ``edges``, rows ``el``/``er``): every other candidate of both rows is at least
        ``margin_ms`` further apart in time, no closer in amount, and has no more other evidence for it (a
        product name in both memos speaks for every pair of that product alike)."""
        gap, amount, evidence = self.gap_ms[edges], self.amount_gap[edges], self.evidence[edges]
        out: BOOL = np.ones(len(edges), dtype=bool)
        for node, n in ((el, n_left), (er, n_right)):
            out &= _others_min(node, gap, n) >= gap + self.margin_ms
            out &= _others_min(node, amount, n) >= amount
            out &= -_others_min(node, -evidence, n) <= evidence
        return out


def _others_min(node: I64, value: I64, n: int) -> ANY:
    """Per edge: the least ``value`` among the other edges of its node (inf when it has none)."""
    order = np.lexsort((value, node))
    sorted_node = node[order]
    first = np.flatnonzero(np.r_[True, sorted_node[1:] != sorted_node[:-1]])
    nodes = sorted_node[first]
    least = np.full(n, np.inf)
    runner_up = np.full(n, np.inf)
    least_edge = np.full(n, -1, dtype=np.int64)
    least[nodes] = value[order[first]]
    least_edge[nodes] = order[first]
    two = np.diff(np.r_[first, len(order)]) > 1
    runner_up[nodes[two]] = value[order[first[two] + 1]]
    return np.where(least_edge[node] == np.arange(len(node)), runner_up[node], least[node])


def _clear(n_left: int, n_right: int, el: I64, er: I64, score: ANY, *, nearest: _Nearest | None) -> ANY:
    """Per edge: 1 when each end's best candidate, ahead of both ends' next best by ``CLEAR_MARGIN``; else 2
    when each end's best and every other candidate is far apart in time (``_Nearest``); else 0."""
    # Most pairs are alone in their block (a distinct amount in its window): no next best, so the score
    # alone decides; only the other edges need the per-row best and second best.
    alone = (np.bincount(el, minlength=n_left)[el] == 1) & (np.bincount(er, minlength=n_right)[er] == 1)
    codes: ANY = (alone & (score >= CLEAR_MARGIN)).astype(np.int8)
    shared = np.flatnonzero(~alone)
    if len(shared):
        sl, sr, ss = el[shared], er[shared], score[shared]
        _, second_l, arg_l = _best_and_second(sl, ss, n_left)
        _, second_r, arg_r = _best_and_second(sr, ss, n_right)
        edge = np.arange(len(shared))
        mutual = (arg_l[sl] == edge) & (arg_r[sr] == edge)
        by_margin = mutual & (ss - np.maximum(second_l[sl], second_r[sr]) >= CLEAR_MARGIN)
        codes[shared[by_margin]] = 1
        if nearest is not None:
            by_time = mutual & ~by_margin & (ss >= CLEAR_MARGIN)
            by_time &= nearest.far_apart(shared, sl, sr, n_left, n_right)
            codes[shared[by_time]] = 2
    return codes


def _assign(
    n_left: int, n_right: int, el: I64, er: I64, score: ANY, *, max_block: int, nearest: _Nearest | None
) -> tuple[I64, I64, ANY, ANY]:
    """Chosen pairs (left index, right index), their confidence and how they were clear (``_clear``)."""
    codes = _clear(n_left, n_right, el, er, score, nearest=nearest)
    clear = codes > 0
    out_l = [el[clear]]
    out_r = [er[clear]]
    out_c = [np.round(0.5 + 0.5 * score[clear], 4)]
    out_clear = [codes[clear]]
    taken_l = np.zeros(n_left, dtype=bool)
    taken_r = np.zeros(n_right, dtype=bool)
    taken_l[out_l[0]] = True
    taken_r[out_r[0]] = True
    rest = ~taken_l[el] & ~taken_r[er]
    rl, rr, rs = el[rest], er[rest], score[rest]
    if len(rl):
        comp = _components(rl, rr)
        solved, sl, sr, sc = _squares(comp, rl, rr, rs, max_block)
        open_ = ~solved
        bl, br, bc = _blocks(comp[open_], rl[open_], rr[open_], rs[open_], max_block)
        out_l += [sl, bl]
        out_r += [sr, br]
        out_c += [sc, bc]
        out_clear.append(np.zeros(len(sl) + len(bl), dtype=np.int8))
    return (
        np.concatenate(out_l).astype(np.int64),
        np.concatenate(out_r).astype(np.int64),
        np.concatenate(out_c),
        np.concatenate(out_clear),
    )


def _components(el: I64, er: I64) -> I64:
    """Connected component label per edge: the smallest of its rows (left rows before right rows). Label
    propagation with pointer jumping, over the rows these edges touch only."""
    rows_l, a = np.unique(el, return_inverse=True)
    _, b = np.unique(er, return_inverse=True)
    b = b + len(rows_l)
    label: I64 = np.arange(int(b.max()) + 1, dtype=np.int64)
    while True:
        low = np.minimum(label[a], label[b])
        before = label.copy()
        np.minimum.at(label, a, low)
        np.minimum.at(label, b, low)
        while True:
            jumped = label[label]
            if np.array_equal(jumped, label):
                break
            label = jumped
        if np.array_equal(before, label):
            break
    return label[a]


_TIE = 1e-6  # scores are multiples of 1e-4: totals closer than this are equal (left to the exact solver)


def _squares(comp: I64, el: I64, er: I64, score: ANY, max_block: int) -> tuple[BOOL, I64, I64, ANY]:
    """Blocks of two rows a side, each a candidate of both others (two orders of one amount within the
    window: most blocks), solved column-wise as ``best_assignment`` and ``ambiguous_pairs`` solve them: the
    better of the two pairings; without one chosen pair, the best is the other pairing or the other chosen
    pair alone. Near ties, where the solver's choice is its own, are left to it. Returns the edges solved,
    the chosen pairs and their confidences."""
    order = np.lexsort((er, el, comp))
    start = np.ones(len(order), dtype=bool)
    start[1:] = comp[order][1:] != comp[order][:-1]
    first = np.flatnonzero(start)
    four = first[np.diff(np.append(first, len(order))) == 4]
    e = order[four[:, None] + np.arange(4)]  # a block's edges by (left, right): 00, 01, 10, 11
    lr, rr, s = el[e], er[e], score[e]
    square = (lr[:, 0] == lr[:, 1]) & (lr[:, 2] == lr[:, 3]) & (rr[:, 0] == rr[:, 2]) & (rr[:, 1] == rr[:, 3])
    square &= max_block >= 2  # else a large block: paired by the mutual-best rounds
    straight, crossed = s[:, 0] + s[:, 3], s[:, 1] + s[:, 2]
    keep = straight > crossed
    total = np.where(keep, straight, crossed)
    alt_first = np.where(keep, np.maximum(crossed, s[:, 3]), np.maximum(straight, s[:, 2]))
    alt_second = np.where(keep, np.maximum(crossed, s[:, 0]), np.maximum(straight, s[:, 1]))

    def apart(x: ANY, y: ANY) -> BOOL:
        return np.asarray(np.abs(x - y) > _TIE)

    square &= apart(straight, crossed) & np.where(
        keep,
        apart(crossed, s[:, 3]) & apart(crossed, s[:, 0]),
        apart(straight, s[:, 2]) & apart(straight, s[:, 1]),
    )
    solved = np.zeros(len(el), dtype=bool)
    solved[e[square].ravel()] = True
    edges = np.concatenate(
        [np.where(keep, e[:, 0], e[:, 1])[square], np.where(keep, e[:, 3], e[:, 2])[square]]
    )
    doubtful = np.concatenate([(total - alt_first)[square], (total - alt_second)[square]]) < CLEAR_MARGIN
    confidence = [
        round(min(c, SUGGESTED_CAP) if d else c, 4)
        for c, d in zip((0.5 + 0.5 * score[edges]).tolist(), doubtful.tolist(), strict=True)
    ]
    return solved, el[edges], er[edges], np.array(confidence, dtype=float)


def _blocks(comp: I64, el: I64, er: I64, score: ANY, max_block: int) -> tuple[I64, I64, ANY]:
    order = np.argsort(comp, kind="stable")
    bounds = (np.flatnonzero(np.diff(comp[order])) + 1).tolist()
    # One conversion to Python values; each block is then a slice (thousands of blocks of a few edges).
    ls_all, rs_all, ss_all = el[order].tolist(), er[order].tolist(), score[order].tolist()
    out_l: list[int] = []
    out_r: list[int] = []
    out_c: list[float] = []
    large: list[ANY] = []
    for start, end in zip([0, *bounds], [*bounds, len(order)], strict=True):
        ls, rs, ss = ls_all[start:end], rs_all[start:end], ss_all[start:end]
        ul, ur = sorted(set(ls)), sorted(set(rs))
        if len(ul) > max_block or len(ur) > max_block:
            large.append(order[start:end])
            continue
        li = {v: i for i, v in enumerate(ul)}
        ri = {v: i for i, v in enumerate(ur)}
        edges = {(li[x], ri[y]): s for x, y, s in zip(ls, rs, ss, strict=True)}
        chosen, total = best_assignment(len(ul), len(ur), edges)
        doubtful = ambiguous_pairs(len(ul), len(ur), edges, chosen, total, margin=CLEAR_MARGIN)
        for a, b in sorted(chosen.items()):
            conf = 0.5 + 0.5 * edges[(a, b)]
            out_l.append(ul[a])
            out_r.append(ur[b])
            out_c.append(round(min(conf, SUGGESTED_CAP) if a in doubtful else conf, 4))
    if large:
        # Large blocks are independent: one set of mutual-best rounds pairs them all.
        part = np.concatenate(large)
        pl, pr, pc_ = _mutual_rounds(el[part], er[part], score[part])
        out_l += pl
        out_r += pr
        out_c += [round(min(SUGGESTED_CAP, 0.5 * (0.5 + 0.5 * s)), 4) for s in pc_]
    return np.array(out_l, np.int64), np.array(out_r, np.int64), np.array(out_c, dtype=float)


def _mutual_rounds(
    el: I64, er: I64, score: ANY, rounds: int = 32
) -> tuple[list[int], list[int], list[float]]:
    """Pair large blocks by repeated mutual best choices (deterministic; ties to the smaller index)."""
    out_l: list[int] = []
    out_r: list[int] = []
    out_s: list[float] = []
    for _ in range(rounds):
        if len(el) == 0:
            break
        ul, li = np.unique(el, return_inverse=True)
        ur, ri = np.unique(er, return_inverse=True)
        _, _, arg_l = _best_and_second(li, score, len(ul))
        _, _, arg_r = _best_and_second(ri, score, len(ur))
        edge = np.arange(len(el))
        mutual = (arg_l[li] == edge) & (arg_r[ri] == edge)
        if not mutual.any():
            break
        out_l += el[mutual].tolist()
        out_r += er[mutual].tolist()
        out_s += score[mutual].tolist()
        gone_l = np.isin(el, el[mutual])
        gone_r = np.isin(er, er[mutual])
        keep = ~gone_l & ~gone_r
        el, er, score = el[keep], er[keep], score[keep]
    return out_l, out_r, out_s


# --- results -----------------------------------------------------------------------------------------
def _record(
    frame: Frame,
    ledger: Ledger,
    ctx: Context,
    rule: WindowMatchRule,
    *,
    l_rows: I64,
    r_rows: I64,
    confidence: ANY,
    clear: ANY,
) -> None:
    n = len(l_rows)
    cur = frame.currency[l_rows]
    gap_s = np.abs(frame.booked[r_rows] - frame.booked[l_rows]) // 1_000_000
    delta = frame.amount[r_rows] - frame.amount[l_rows]
    # The numbers (amounts, Δt, confidence) are columns of the group; the words say how it was chosen.
    window = f"{rule.time_window_hours:g}h"
    explanation = labels(
        np.where(clear > 0, clear - 1, np.where(confidence > SUGGESTED_CAP, 2, 3)),
        [
            f"no shared key; amount and time within {window}; each the other's clear best candidate",
            f"no shared key; amount and time within {window}; each the other's best candidate, every other "
            f"candidate at least {rule.clear_time_gap_seconds or 0:g}s further apart",
            f"no shared key; amount and time within {window}; the best assignment of its candidate block",
            f"no shared key; amount and time within {window}; other assignments score almost as well: confirm",
        ],
    )
    ids = hash_words(frame.words("txn_id"), seed=3) ^ frame.account_hash(seed=4)
    pair_hash = combine(ids[l_rows], ids[r_rows])
    ledger.add_groups(
        {
            "rule": rule.name,
            "match_pass": "window",
            "status": ctx.status(confidence),
            "confidence": confidence,
            "members": np.full(n, 2, np.int32),
            "left_members": np.ones(n, np.int32),
            "right_members": np.ones(n, np.int32),
            "key": None,
            "currency": labels(cur, frame.currencies),
            "left_amount_minor": frame.amount[l_rows],
            "right_amount_minor": frame.amount[r_rows],
            "amount_delta_minor": delta,
            "time_delta_s": gap_s,
            "explanation": explanation,
        },
        content_hash(pair_hash, rule.name),
        np.concatenate([l_rows, r_rows]),
        np.concatenate([np.arange(n), np.arange(n)]),
    )
