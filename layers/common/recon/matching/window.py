"""Window passes: rows no key links, matched by amount (with tolerance) within a time window.

1. Candidates (column-wise): same currency (and sign), amount within tolerance, booked within the window.
   A row with more candidates than ``max_candidates`` keeps the nearest ones in time.
2. Every candidate pair gets a score in [0, 1], the weighted mean of the signals both rows carry:
   time proximity (1 − |Δt| / window), amount closeness (tolerance passes only), counterparty equality,
   and reference similarity (one row's order/refund reference or id found in the other's reference or
   memo). Absent signals are left out of the mean, never counted against a pair.
3. *Clear* pairs — each the other's best candidate, ahead of both rows' next best by ``CLEAR_MARGIN`` —
   are matched with confidence 0.5 + 0.5·score.
4. What remains is split into connected blocks. Blocks up to ``max_block`` rows a side are solved exactly
   (maximum total score, one-to-one); a pair whose block has another assignment within ``CLEAR_MARGIN``
   of the best is ambiguous. Larger blocks are paired by rounds of mutual best choices. Ambiguous and
   large-block pairs get confidence min(0.5, …): they are *suggested*, never auto-matched.
"""

from __future__ import annotations

import difflib
import re

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from recon.domain import WindowMatchRule

from .assignment import ambiguous_pairs, best_assignment
from .context import Context, content_hash, tolerance
from .frame import I64, SOURCES, Frame
from .hashing import combine, hash_strings
from .ledger import Ledger
from .text import join, labels, money, take_text

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
    el, er = _candidates(frame, rule, left, right, window_ms)
    if len(el) == 0:
        return
    a_rows, b_rows = left[el], right[er]
    score = _scores(frame, rule, a_rows, b_rows, window_ms)
    keep = score > 0
    el, er, score = el[keep], er[keep], score[keep]
    chosen_l, chosen_r, confidence, clear = _assign(len(left), len(right), el, er, score, rule.max_block)
    if len(chosen_l) == 0:
        return
    l_rows, r_rows = left[chosen_l], right[chosen_r]
    edge_score = _edge_scores(el, er, score, chosen_l, chosen_r)
    _record(frame, ledger, ctx, rule, l_rows, r_rows, confidence, clear, edge_score)


# --- 1. candidates -----------------------------------------------------------------------------------
def _candidates(
    frame: Frame, rule: WindowMatchRule, left: I64, right: I64, window_ms: int
) -> tuple[I64, I64]:
    """Candidate pairs as (index into left, index into right)."""
    t_ms = frame.booked // 1000
    t0 = int(min(t_ms[left].min(), t_ms[right].min()))
    span = int(max(t_ms[left].max(), t_ms[right].max())) - t0 + 2 * window_ms + 1
    sign_l = np.sign(frame.amount[left]) if rule.same_sign else np.zeros(len(left), np.int64)
    sign_r = np.sign(frame.amount[right]) if rule.same_sign else np.zeros(len(right), np.int64)
    group_l = frame.currency[left].astype(np.int64) * 3 + sign_l + 1
    group_r = frame.currency[right].astype(np.int64) * 3 + sign_r + 1
    tol = rule.amount_tolerance
    exact = tol.minor == 0 and tol.percent == 0
    if exact:
        # One sortable integer per row: (currency, sign, amount) block, then time.
        block_l = (group_l << np.int64(48)) + frame.amount[left] + np.int64(1 << 46)
        block_r = (group_r << np.int64(48)) + frame.amount[right] + np.int64(1 << 46)
        codes, inverse = np.unique(np.concatenate([block_l, block_r]), return_inverse=True)
        if len(codes) * span >= 2**62:
            raise ValueError("time range too long for one window pass")
        cl = inverse[: len(left)].astype(np.int64) * span + (t_ms[left] - t0 + window_ms)
        cr = inverse[len(left) :].astype(np.int64) * span + (t_ms[right] - t0 + window_ms)
        order_r = np.argsort(cr, kind="stable")
        sorted_r = cr[order_r]
        order_l = np.argsort(cl, kind="stable")
        lo = np.searchsorted(sorted_r, cl[order_l] - window_ms, side="left")
        hi = np.searchsorted(sorted_r, cl[order_l] + window_ms, side="right")
        mid = np.searchsorted(sorted_r, cl[order_l], side="left")
        lo, hi = _cap(lo, hi, mid, rule.max_candidates)
        counts = hi - lo
        el = np.repeat(order_l, counts)
        starts = np.repeat(lo - np.cumsum(np.append(0, counts[:-1])), counts)
        er = order_r[starts + np.arange(len(el))]
        return el.astype(np.int64), er.astype(np.int64)
    # With an amount tolerance: ranges by amount within the block, then the time filter.
    block_r = group_r
    order_r = np.lexsort((frame.amount[right], block_r))
    key_r = (block_r[order_r] << np.int64(48)) + frame.amount[right][order_r] + np.int64(1 << 46)
    allowed = tolerance(tol, frame.amount[left])
    base_l = (group_l << np.int64(48)) + frame.amount[left] + np.int64(1 << 46)
    lo = np.searchsorted(key_r, base_l - allowed, side="left")
    hi = np.searchsorted(key_r, base_l + allowed, side="right")
    cap = 8 * rule.max_candidates
    hi = np.minimum(hi, lo + cap)
    counts = hi - lo
    el = np.repeat(np.arange(len(left)), counts)
    starts = np.repeat(lo - np.cumsum(np.append(0, counts[:-1])), counts)
    er = order_r[starts + np.arange(len(el))]
    near = np.abs(t_ms[left][el] - t_ms[right][er]) <= window_ms
    return el[near].astype(np.int64), er[near].astype(np.int64)


def _cap(lo: I64, hi: I64, mid: I64, k: int) -> tuple[I64, I64]:
    """Keep at most k candidates per row: the ones around its own time."""
    wide = (hi - lo) > k
    if not wide.any():
        return lo, hi
    start = np.clip(mid - k // 2, lo, np.maximum(lo, hi - k))
    return np.where(wide, start, lo), np.where(wide, start + k, hi)


# --- 2. scores ---------------------------------------------------------------------------------------
def _normalised_hash(frame: Frame, name: str, rows: I64) -> tuple[np.ndarray, np.ndarray]:
    text = take_text(frame, name, rows)
    norm = pc.utf8_lower(pc.replace_substring_regex(pc.fill_null(text, ""), r"\s+", ""))
    present = np.asarray(pc.greater(pc.binary_length(norm), 0).to_numpy(zero_copy_only=False), bool)
    return hash_strings(norm), present


def _scores(frame: Frame, rule: WindowMatchRule, a: I64, b: I64, window_ms: int) -> np.ndarray:
    dt = np.abs(frame.booked[a] // 1000 - frame.booked[b] // 1000)
    total = rule.weight_time * (1.0 - dt / max(window_ms, 1))
    weight = np.full(len(a), rule.weight_time)
    tol = rule.amount_tolerance
    if tol.minor or tol.percent:
        allowed = np.maximum(tolerance(tol, frame.amount[a]), 1)
        total = total + (1.0 - np.abs(frame.amount[b] - frame.amount[a]) / (allowed + 1))
        weight = weight + 1.0
    if rule.weight_counterparty:
        ha, pa_ = _normalised_hash(frame, "counterparty", a)
        hb, pb = _normalised_hash(frame, "counterparty", b)
        both = pa_ & pb
        total = total + np.where(both, rule.weight_counterparty * (ha == hb), 0.0)
        weight = weight + np.where(both, rule.weight_counterparty, 0.0)
    if rule.weight_reference and len(a) <= _MAX_TEXT_EDGES:
        ref = _reference_similarity(frame, a, b)
        present = ref >= 0
        total = total + np.where(present, rule.weight_reference * np.clip(ref, 0, 1), 0.0)
        weight = weight + np.where(present, rule.weight_reference, 0.0)
    return np.round(total / weight, 4)


def _refs(frame: Frame, rows: I64) -> list[list[str]]:
    columns = [take_text(frame, name, rows).to_pylist() for name in ("order_ref", "refund_ref", "memo")]
    out = []
    for values in zip(*columns, strict=True):
        out.append([_NORMALISE.sub("", v).upper() for v in values if v and _NORMALISE.sub("", v)])
    return out


def _reference_similarity(frame: Frame, a: I64, b: I64) -> np.ndarray:
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
    if x == y:
        return 1.0
    short, long_ = (x, y) if len(x) <= len(y) else (y, x)
    if len(short) >= 6 and short in long_:
        return 0.9
    ratio = difflib.SequenceMatcher(None, x, y, autojunk=False).ratio()
    return ratio if ratio >= 0.8 else 0.0


# --- 3./4. assignment --------------------------------------------------------------------------------
def _best_and_second(node: I64, score: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray, I64]:
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
    n_left: int, n_right: int, el: I64, er: I64, score: np.ndarray, max_block: int
) -> tuple[I64, I64, np.ndarray, np.ndarray]:
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
    label = np.arange(n_left + n_right, dtype=np.int64)
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


def _blocks(
    comp: I64, el: I64, er: I64, score: np.ndarray, max_block: int
) -> tuple[I64, I64, np.ndarray]:
    order = np.argsort(comp, kind="stable")
    comp_sorted = comp[order]
    bounds = np.flatnonzero(np.diff(comp_sorted)) + 1
    out_l: list[int] = []
    out_r: list[int] = []
    out_c: list[float] = []
    for part in np.split(order, bounds):
        ls, rs, ss = el[part], er[part], score[part]
        ul, ur = np.unique(ls), np.unique(rs)
        if len(ul) <= max_block and len(ur) <= max_block:
            li = {v: i for i, v in enumerate(ul.tolist())}
            ri = {v: i for i, v in enumerate(ur.tolist())}
            edges = {
                (li[x], ri[y]): s for x, y, s in zip(ls.tolist(), rs.tolist(), ss.tolist(), strict=True)
            }
            chosen, total = best_assignment(len(ul), len(ur), edges)
            doubtful = ambiguous_pairs(len(ul), len(ur), edges, chosen, total, CLEAR_MARGIN)
            for a, b in sorted(chosen.items()):
                s = edges[(a, b)]
                conf = 0.5 + 0.5 * s
                out_l.append(int(ul[a]))
                out_r.append(int(ur[b]))
                out_c.append(round(min(conf, SUGGESTED_CAP) if a in doubtful else conf, 4))
        else:
            pl, pr, pc_ = _mutual_rounds(ls, rs, ss)
            out_l += pl
            out_r += pr
            out_c += [round(min(SUGGESTED_CAP, 0.5 * (0.5 + 0.5 * s)), 4) for s in pc_]
    return np.array(out_l, np.int64), np.array(out_r, np.int64), np.array(out_c, dtype=float)


def _mutual_rounds(el: I64, er: I64, score: np.ndarray, rounds: int = 32) -> tuple[list[int], list[int], list[float]]:
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


def _edge_scores(el: I64, er: I64, score: np.ndarray, cl: I64, cr: I64) -> np.ndarray:
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
    l_rows: I64,
    r_rows: I64,
    confidence: np.ndarray,
    clear: np.ndarray,
    score: np.ndarray,
) -> None:
    n = len(l_rows)
    cur = frame.currency[l_rows]
    gap_s = np.abs(frame.booked[r_rows] - frame.booked[l_rows]) // 1_000_000
    delta = frame.amount[r_rows] - frame.amount[l_rows]
    l_label = join(labels(frame.source[l_rows], SOURCES), " ", take_text(frame, "txn_id", l_rows))
    r_label = join(labels(frame.source[r_rows], SOURCES), " ", take_text(frame, "txn_id", r_rows))
    how = labels(np.where(clear, 0, 1), ["each other's clear best candidate", "best assignment of a block"])
    explanation = join(
        "no shared key; ", l_label, " ↔ ", r_label, ": amount ", money(frame.amount[r_rows], cur, frame.currencies),
        ", booked ", pa.array(gap_s).cast(pa.string()), "s apart; ", how, " (score ",
        pa.array(np.round(score, 3)).cast(pa.string()), ")",
    )
    pair_hash = combine(
        hash_strings(take_text(frame, "txn_uid", l_rows), seed=3),
        hash_strings(take_text(frame, "txn_uid", r_rows), seed=4),
    )
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
