"""Subset-sum passes: one row ↔ 2..k rows of the other side whose amounts add up (no key links them).

For each unplaced row on ``one_side`` (largest amounts first, then by id), the candidates are the other
side's unplaced rows of the same currency and sign, within ``window_days`` of its value date, no larger
than it (the ``max_candidates`` nearest in time). A depth-first search finds up to two subsets of size
2..``max_k`` adding up to it (± tolerance). One subset is matched with confidence 0.9; two or more
mean the answer is not evident: the first (in canonical order) is *suggested* with confidence 0.45.
"""

from __future__ import annotations

import numpy as np

from recon.domain import SubsetSumRule

from .context import Context, content_hash, tolerance
from .frame import SOURCES, Frame
from .hashing import hash_texts
from .ledger import Ledger
from .text import one_money

UNIQUE_CONFIDENCE = 0.9
AMBIGUOUS_CONFIDENCE = 0.45


def _search(amounts: list[int], target: int, allowed: int, max_k: int, limit: int = 2) -> list[list[int]]:
    """Index subsets (size 2..max_k) of ``amounts`` (all > 0, sorted descending) summing to target ± allowed."""
    found: list[list[int]] = []
    n = len(amounts)
    suffix = [0] * (n + 1)
    for i in range(n - 1, -1, -1):
        suffix[i] = suffix[i + 1] + amounts[i]

    def walk(start: int, chosen: list[int], total: int) -> None:
        if len(found) >= limit:
            return
        if len(chosen) >= 2 and abs(total - target) <= allowed:
            found.append(list(chosen))
            return
        if len(chosen) == max_k:
            return
        for i in range(start, n):
            if total + amounts[i] > target + allowed:
                continue
            if total + suffix[i] < target - allowed:
                return  # even everything left is not enough
            chosen.append(i)
            walk(i + 1, chosen, total + amounts[i])
            chosen.pop()
            if len(found) >= limit:
                return

    walk(0, [], 0)
    return found


def subset_sum(frame: Frame, ledger: Ledger, rule: SubsetSumRule, ctx: Context) -> None:
    one_sources, many_sources = (
        (rule.right, rule.left) if rule.one_side == "right" else (rule.left, rule.right)
    )
    free = ledger.unplaced()
    ones = np.flatnonzero(free & frame.source_mask(one_sources) & (frame.amount != 0))
    many = np.flatnonzero(free & frame.source_mask(many_sources) & (frame.amount != 0))
    if len(ones) == 0 or len(many) < 2:
        return
    allowed_all = tolerance(rule.amount_tolerance, frame.amount[ones])
    order = sorted(
        range(len(ones)), key=lambda i: (-abs(int(frame.amount[ones[i]])), frame.uid(int(ones[i])))
    )
    used = np.zeros(frame.n, dtype=bool)
    found: list[tuple[int, list[int], bool]] = []
    for i in order:
        anchor = int(ones[i])
        target = int(frame.amount[anchor])
        sign = 1 if target > 0 else -1
        cand = many[
            ~used[many]
            & (frame.currency[many] == frame.currency[anchor])
            & (np.sign(frame.amount[many]) == sign)
            & (np.abs(frame.amount[many]) <= abs(target) + int(allowed_all[i]))
            & (np.abs(frame.value_date[many] - frame.value_date[anchor]) <= rule.window_days)
        ]
        if len(cand) < 2:
            continue
        if len(cand) > rule.max_candidates:
            near = np.abs(frame.booked[cand] - frame.booked[anchor])
            keep = sorted(range(len(cand)), key=lambda k: (int(near[k]), frame.uid(int(cand[k]))))[
                : rule.max_candidates
            ]
            cand = cand[np.array(sorted(keep))]
        ranked = sorted(cand.tolist(), key=lambda r: (-abs(int(frame.amount[r])), frame.uid(r)))
        solutions = _search(
            [abs(int(frame.amount[r])) for r in ranked], abs(target), int(allowed_all[i]), rule.max_k
        )
        if not solutions:
            continue
        members = [ranked[k] for k in solutions[0]]
        used[members] = True
        used[anchor] = True
        found.append((anchor, members, len(solutions) == 1))
    if found:
        _record(frame, ledger, ctx, rule, found)


def _record(
    frame: Frame, ledger: Ledger, ctx: Context, rule: SubsetSumRule, found: list[tuple[int, list[int], bool]]
) -> None:
    n = len(found)
    conf = np.array([UNIQUE_CONFIDENCE if unique else AMBIGUOUS_CONFIDENCE for _, _, unique in found])
    anchor_amount = np.array([int(frame.amount[a]) for a, _, _ in found], np.int64)
    parts_amount = np.array([int(frame.amount[m].sum()) for _, m, _ in found], np.int64)
    one_is_left = rule.one_side == "left"
    rows: list[int] = []
    owner: list[int] = []
    explanation: list[str] = []
    for g, (anchor, members, unique) in enumerate(found):
        rows += [anchor, *members]
        owner += [g] * (1 + len(members))
        cur = frame.currencies[int(frame.currency[anchor])]
        ids = " + ".join(frame.str_at("txn_id", m) for m in members)
        explanation.append(
            f"no shared key; {SOURCES[int(frame.source[anchor])]} {frame.str_at('txn_id', anchor)} "
            f"{one_money(int(frame.amount[anchor]), cur)} = {SOURCES[int(frame.source[members[0]])]} {ids} "
            f"({len(members)} rows within {rule.window_days} days; "
            f"{'the only combination' if unique else 'one of several combinations: confirm'})"
        )
    left_amount, right_amount = (
        (anchor_amount, parts_amount) if one_is_left else (parts_amount, anchor_amount)
    )
    sizes = np.array([len(m) for _, m, _ in found], np.int32)
    ledger.add_groups(
        {
            "rule": rule.name,
            "match_pass": "subset_sum",
            "status": ctx.status(conf),
            "confidence": conf,
            "members": sizes + 1,
            "left_members": np.ones(n, np.int32) if one_is_left else sizes,
            "right_members": sizes if one_is_left else np.ones(n, np.int32),
            "key": None,
            "currency": [frame.currencies[int(frame.currency[a])] for a, _, _ in found],
            "left_amount_minor": left_amount,
            "right_amount_minor": right_amount,
            "amount_delta_minor": right_amount - left_amount,
            "time_delta_s": np.array(
                [int(np.abs(frame.booked[m] - frame.booked[a]).max()) // 1_000_000 for a, m, _ in found],
                np.int64,
            ),
            "explanation": explanation,
        },
        content_hash(hash_texts([frame.uid(a) for a, _, _ in found]), rule.name),
        np.array(rows, np.int64),
        np.array(owner, np.int64),
    )
