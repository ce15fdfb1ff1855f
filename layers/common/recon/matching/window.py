"""Window passes: rows no key links, matched by amount (with tolerance) within a time window.

1. Candidates (column-wise): same currency (and sign), amount within tolerance, booked within the window.
   A row with more candidates than ``max_candidates`` is *crowded*: it is only ever suggested (step 5).
2. Every candidate pair gets a score in [0, 1], the weighted mean of the signals both rows carry:
   time proximity (1 − |Δt| / window), amount closeness (tolerance passes only), counterparty equality
   (corroboration only), and reference similarity (one row's order/refund reference found in the other's
   reference or memo). Absent signals are left out of the mean, never counted against a pair.
3. *Clear* pairs — each the other's best candidate, ahead of both rows' next best by ``CLEAR_MARGIN`` —
   are matched with confidence 0.5 + 0.5·score.
4. What remains is split into connected blocks. Blocks up to ``max_block`` rows a side are solved exactly
   (maximum total score, one-to-one); a pair whose block has another assignment within ``CLEAR_MARGIN``
   of the best is ambiguous. Larger blocks are paired by rounds of mutual best choices. Ambiguous and
   large-block pairs get confidence min(0.5, …): they are *suggested*, never auto-matched.
5. Crowded rows of one amount are paired k-th with k-th in time order (the pairing that minimises the
   total time gap) and suggested.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np
import pyarrow.compute as pc

from recon.domain import WindowMatchRule

from .assignment import ambiguous_pairs, best_assignment
from .context import Context, content_hash, tolerance
from .frame import ANY, I64, Frame
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
    out_l, out_r, out_c, out_clear, out_s = [], [], [], [], []
    if len(c.el):
        score = _scores(frame, rule, left[c.el], right[c.er], window_ms)
        keep = score > 0
        el, er, score = c.el[keep], c.er[keep], score[keep]
        chosen_l, chosen_r, confidence, clear = _assign(
            len(left), len(right), el, er, score, max_block=rule.max_block
        )
        out_l.append(chosen_l)
        out_r.append(chosen_r)
        out_c.append(confidence)
        out_clear.append(clear)
        out_s.append(_edge_scores(el, er, score, chosen_l, chosen_r))
    if c.crowded_l.any() and c.crowded_r.any() and c.block_l is not None and c.block_r is not None:
        sl, sr, ss = _sweep(frame, left, right, c, window_ms)
        out_l.append(sl)
        out_r.append(sr)
        out_c.append(np.round(np.minimum(SUGGESTED_CAP, 0.5 * (0.5 + 0.5 * ss)), 4))
        out_clear.append(np.zeros(len(sl), dtype=bool))
        out_s.append(ss)
    if not out_l or sum(len(x) for x in out_l) == 0:
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
        score=np.concatenate(out_s),
    )


# --- 1. candidates -----------------------------------------------------------------------------------
@dataclass
class _Candidates:
    el: I64  # candidate pairs between rows that are not crowded (indices into left / right)
    er: I64
    crowded_l: ANY  # more candidates than max_candidates: paired by the sweep, never auto
    crowded_r: ANY
    block_l: I64 | None  # exact amounts: (currency, sign, amount) block code of each row
    block_r: I64 | None


def _candidates(frame: Frame, rule: WindowMatchRule, left: I64, right: I64, window_ms: int) -> _Candidates:
    """Candidate pairs as (index into left, index into right), and the crowded rows."""
    t_ms = frame.booked // 1000
    t0 = int(min(t_ms[left].min(), t_ms[right].min()))
    span = int(max(t_ms[left].max(), t_ms[right].max())) - t0 + 2 * window_ms + 1
    sign_l = np.sign(frame.amount[left]) if rule.same_sign else np.zeros(len(left), np.int64)
    sign_r = np.sign(frame.amount[right]) if rule.same_sign else np.zeros(len(right), np.int64)
    group_l = frame.currency[left].astype(np.int64) * 3 + sign_l + 1
    group_r = frame.currency[right].astype(np.int64) * 3 + sign_r + 1
    tol = rule.amount_tolerance
    cap = rule.max_candidates
    if tol.minor == 0 and tol.percent == 0:
        # One sortable integer per row: (currency, sign, amount) block, then time.
        block_l = group_l * np.int64(1 << 50) + frame.amount[left] + np.int64(1 << 49)
        block_r = group_r * np.int64(1 << 50) + frame.amount[right] + np.int64(1 << 49)
        code_l, code_r, cl, cr, unit = _composite(
            block_l, block_r, t_ms[left] - t0, t_ms[right] - t0, span_ms=span, window_ms=window_ms
        )
        order_r = np.argsort(cr)
        sorted_r = cr[order_r]
        order_l = np.argsort(cl)
        sorted_l = cl[order_l]
        reach = window_ms // unit
        lo = np.searchsorted(sorted_r, sorted_l - reach, side="left")
        hi = np.searchsorted(sorted_r, sorted_l + reach, side="right")
        count_l = np.empty(len(left), np.int64)
        count_l[order_l] = hi - lo
        count_r = np.empty(len(right), np.int64)
        count_r[order_r] = np.searchsorted(sorted_l, sorted_r + reach, side="right") - np.searchsorted(
            sorted_l, sorted_r - reach, side="left"
        )
        crowded_l, crowded_r = count_l > cap, count_r > cap
        calm = ~crowded_l[order_l]
        lo, hi, rows_l = lo[calm], hi[calm], order_l[calm]
        counts = hi - lo
        el = np.repeat(rows_l, counts)
        starts = np.repeat(lo - np.cumsum(np.append(0, counts[:-1])), counts)
        er = order_r[starts + np.arange(len(el))]
        keep = ~crowded_r[er]
        return _Candidates(
            el[keep].astype(np.int64), er[keep].astype(np.int64), crowded_l, crowded_r, code_l, code_r
        )
    # With an amount tolerance: ranges by amount within the block, then the time filter.
    order_r = np.lexsort((frame.amount[right], group_r))
    key_r = (group_r[order_r] << np.int64(48)) + frame.amount[right][order_r] + np.int64(1 << 46)
    allowed = tolerance(tol, frame.amount[left])
    base_l = (group_l << np.int64(48)) + frame.amount[left] + np.int64(1 << 46)
    lo = np.searchsorted(key_r, base_l - allowed, side="left")
    hi = np.searchsorted(key_r, base_l + allowed, side="right")
    hi = np.minimum(hi, lo + 8 * cap)
    counts = hi - lo
    el = np.repeat(np.arange(len(left)), counts)
    starts = np.repeat(lo - np.cumsum(np.append(0, counts[:-1])), counts)
    er = order_r[starts + np.arange(len(el))]
    near = np.abs(t_ms[left][el] - t_ms[right][er]) <= window_ms
    el, er = el[near], er[near]
    crowded_l = np.bincount(el, minlength=len(left)) > cap
    crowded_r = np.bincount(er, minlength=len(right)) > cap
    keep = ~crowded_l[el] & ~crowded_r[er]
    return _Candidates(el[keep].astype(np.int64), er[keep].astype(np.int64), crowded_l, crowded_r, None, None)


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
            return (
                code_l,
                code_r,
                (code_l << np.int64(time_bits)) + t_l // unit + pad,
                (code_r << np.int64(time_bits)) + t_r // unit + pad,
                unit,
            )
    _, inverse = np.unique(np.concatenate([block_l, block_r]), return_inverse=True)
    code_l, code_r = inverse[: len(block_l)].astype(np.int64), inverse[len(block_l) :].astype(np.int64)
    if (int(code_l.max(initial=0)) + 1) * span_ms >= 2**62:
        raise ValueError("time range too long for one window pass")
    return code_l, code_r, code_l * span_ms + t_l + window_ms, code_r * span_ms + t_r + window_ms, 1


def _sweep(frame: Frame, left: I64, right: I64, c: _Candidates, window_ms: int) -> tuple[I64, I64, ANY]:
    """Crowded rows of one amount: k-th left with k-th right in time order (the pairing that minimises the
    total time gap), within the window. Returns pairs and their time scores (always suggested)."""
    assert c.block_l is not None and c.block_r is not None
    pool_l, pool_r = np.flatnonzero(c.crowded_l), np.flatnonzero(c.crowded_r)
    t_l, t_r = frame.booked[left[pool_l]], frame.booked[right[pool_r]]
    ol = np.lexsort((t_l, c.block_l[pool_l]))
    orr = np.lexsort((t_r, c.block_r[pool_r]))
    bl, br = c.block_l[pool_l][ol], c.block_r[pool_r][orr]

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
    a = pool_l[ol][hit]
    b = pool_r[orr][pos[hit]]
    gap = np.abs(frame.booked[right[b]] - frame.booked[left[a]]) // 1000
    near = gap <= window_ms
    return a[near], b[near], np.round(1.0 - gap[near] / max(window_ms, 1), 4)


def _cap(lo: I64, hi: I64, mid: I64, k: int) -> tuple[I64, I64]:
    """Keep at most k candidates per row: the ones around its own time."""
    wide = (hi - lo) > k
    if not wide.any():
        return lo, hi
    start = np.clip(mid - k // 2, lo, np.maximum(lo, hi - k))
    return np.where(wide, start, lo), np.where(wide, start + k, hi)


# --- 2. scores ---------------------------------------------------------------------------------------
def _normalised_hash(frame: Frame, name: str, rows: I64) -> tuple[ANY, ANY]:
    text = take_text(frame, name, rows)
    norm = pc.utf8_lower(pc.replace_substring_regex(pc.fill_null(text, ""), r"\s+", ""))
    present = np.asarray(pc.greater(pc.binary_length(norm), 0).to_numpy(zero_copy_only=False), bool)
    return hash_strings(norm), present


def _scores(frame: Frame, rule: WindowMatchRule, a: I64, b: I64, window_ms: int) -> ANY:
    dt = np.abs(frame.booked[a] // 1000 - frame.booked[b] // 1000)
    total: ANY = rule.weight_time * (1.0 - dt / max(window_ms, 1))
    weight: ANY = np.full(len(a), rule.weight_time)
    tol = rule.amount_tolerance
    if tol.minor or tol.percent:
        allowed = np.maximum(tolerance(tol, frame.amount[a]), 1)
        total = total + (1.0 - np.abs(frame.amount[b] - frame.amount[a]) / (allowed + 1))
        weight = weight + 1.0
    if rule.weight_counterparty:
        ha, pa_ = _normalised_hash(frame, "counterparty", a)
        hb, pb = _normalised_hash(frame, "counterparty", b)
        # Corroboration only: sides often name the counterparty differently (a customer's name in the ERP,
        # a masked account at the channel), so a difference says nothing; equality adds weight.
        same = pa_ & pb & (ha == hb)
        total = total + np.where(same, rule.weight_counterparty, 0.0)
        weight = weight + np.where(same, rule.weight_counterparty, 0.0)
    if rule.weight_reference and len(a) <= _MAX_TEXT_EDGES:
        ref = _reference_similarity(frame, a, b)
        present = ref >= 0
        total = total + np.where(present, rule.weight_reference * np.clip(ref, 0, 1), 0.0)
        weight = weight + np.where(present, rule.weight_reference, 0.0)
    return np.asarray(np.round(total / weight, 4), dtype=np.float64)


def _refs(frame: Frame, rows: I64) -> list[list[str]]:
    columns = [take_text(frame, name, rows).to_pylist() for name in ("order_ref", "refund_ref", "memo")]
    out = []
    for values in zip(*columns, strict=True):
        out.append([_NORMALISE.sub("", v).upper() for v in values if v and _NORMALISE.sub("", v)])
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


def _assign(
    n_left: int, n_right: int, el: I64, er: I64, score: ANY, *, max_block: int
) -> tuple[I64, I64, ANY, ANY]:
    """Chosen pairs (left index, right index), their confidence and whether they were clear."""
    edge = np.arange(len(el))
    _, second_l, arg_l = _best_and_second(el, score, n_left)
    _, second_r, arg_r = _best_and_second(er, score, n_right)
    mutual = (arg_l[el] == edge) & (arg_r[er] == edge)
    margin = score - np.maximum(second_l[el], second_r[er])
    clear = mutual & (margin >= CLEAR_MARGIN)
    out_l = [el[clear]]
    out_r = [er[clear]]
    out_c = [np.round(0.5 + 0.5 * score[clear], 4)]
    out_clear = [np.ones(int(clear.sum()), dtype=bool)]
    taken_l = np.zeros(n_left, dtype=bool)
    taken_r = np.zeros(n_right, dtype=bool)
    taken_l[el[clear]] = True
    taken_r[er[clear]] = True
    rest = ~taken_l[el] & ~taken_r[er]
    rl, rr, rs = el[rest], er[rest], score[rest]
    if len(rl):
        comp = _components(n_left, n_right, rl, rr)
        bl, br, bc = _blocks(comp, rl, rr, rs, max_block)
        out_l.append(bl)
        out_r.append(br)
        out_c.append(bc)
        out_clear.append(np.zeros(len(bl), dtype=bool))
    return (
        np.concatenate(out_l).astype(np.int64),
        np.concatenate(out_r).astype(np.int64),
        np.concatenate(out_c),
        np.concatenate(out_clear),
    )


def _components(n_left: int, n_right: int, el: I64, er: I64) -> I64:
    """Connected component label per edge (label propagation with pointer jumping)."""
    a = el
    b = er + n_left
    label: I64 = np.arange(n_left + n_right, dtype=np.int64)
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


def _blocks(comp: I64, el: I64, er: I64, score: ANY, max_block: int) -> tuple[I64, I64, ANY]:
    order = np.argsort(comp, kind="stable")
    comp_sorted = comp[order]
    bounds = np.flatnonzero(np.diff(comp_sorted)) + 1
    out_l: list[int] = []
    out_r: list[int] = []
    out_c: list[float] = []
    large: list[ANY] = []
    for part in np.split(order, bounds):
        ls, rs, ss = el[part], er[part], score[part]
        ul, ur = np.unique(ls), np.unique(rs)
        if len(ul) > max_block or len(ur) > max_block:
            large.append(part)
            continue
        li = {v: i for i, v in enumerate(ul.tolist())}
        ri = {v: i for i, v in enumerate(ur.tolist())}
        edges = {(li[x], ri[y]): s for x, y, s in zip(ls.tolist(), rs.tolist(), ss.tolist(), strict=True)}
        chosen, total = best_assignment(len(ul), len(ur), edges)
        doubtful = ambiguous_pairs(len(ul), len(ur), edges, chosen, total, margin=CLEAR_MARGIN)
        for a, b in sorted(chosen.items()):
            conf = 0.5 + 0.5 * edges[(a, b)]
            out_l.append(int(ul[a]))
            out_r.append(int(ur[b]))
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


def _edge_scores(el: I64, er: I64, score: ANY, cl: I64, cr: I64) -> ANY:
    key = el * (int(er.max()) + 1 if len(er) else 1) + er
    want = cl * (int(er.max()) + 1 if len(er) else 1) + cr
    order = np.argsort(key)
    pos = np.searchsorted(key[order], want)
    return np.asarray(score[order[pos]])


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
    score: ANY,
) -> None:
    n = len(l_rows)
    cur = frame.currency[l_rows]
    gap_s = np.abs(frame.booked[r_rows] - frame.booked[l_rows]) // 1_000_000
    delta = frame.amount[r_rows] - frame.amount[l_rows]
    # The numbers (amounts, Δt, confidence) are columns of the group; the words say how it was chosen.
    window = f"{rule.time_window_hours:g}h"
    explanation = labels(
        np.where(clear, 0, np.where(confidence > SUGGESTED_CAP, 1, 2)),
        [
            f"no shared key; amount and time within {window}; each the other's clear best candidate",
            f"no shared key; amount and time within {window}; the best assignment of its candidate block",
            f"no shared key; amount and time within {window}; other assignments score almost as well: confirm",
        ],
    )
    ids = hash_words(frame.words("txn_id"), seed=3) ^ (
        frame.account.astype(np.uint64) * np.uint64(0x9E3779B97F4A7C15)
    )
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
