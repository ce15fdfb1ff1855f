"""Exact one-to-one assignment on small candidate blocks (Hungarian / Kuhn–Munkres with potentials).

``best_assignment`` maximises the total score over the given edges; a row may stay unassigned (each has a
private zero-score dummy column), so a weak edge is never forced. ``ambiguous_pairs`` re-solves with each
chosen edge forbidden: when another assignment comes within ``margin`` of the best total, the choice is
not evident and the pair may only be *suggested*.
"""

from __future__ import annotations

_FORBIDDEN = 1e9


def _solve(cost: list[list[float]]) -> list[int]:
    """Min-cost assignment of every row to a distinct column (rows <= columns). Returns column per row."""
    n, m = len(cost), len(cost[0])
    u = [0.0] * (n + 1)
    v = [0.0] * (m + 1)
    p = [0] * (m + 1)
    way = [0] * (m + 1)
    for i in range(1, n + 1):
        p[0] = i
        j0 = 0
        minv = [float("inf")] * (m + 1)
        used = [False] * (m + 1)
        while True:
            used[j0] = True
            i0 = p[j0]
            delta = float("inf")
            j1 = 0
            row = cost[i0 - 1]
            ui0 = u[i0]
            for j in range(1, m + 1):
                if not used[j]:
                    cur = row[j - 1] - ui0 - v[j]
                    if cur < minv[j]:
                        minv[j] = cur
                        way[j] = j0
                    if minv[j] < delta:
                        delta = minv[j]
                        j1 = j
            for j in range(m + 1):
                if used[j]:
                    u[p[j]] += delta
                    v[j] -= delta
                else:
                    minv[j] -= delta
            j0 = j1
            if p[j0] == 0:
                break
        while True:
            j1 = way[j0]
            p[j0] = p[j1]
            j0 = j1
            if j0 == 0:
                break
    column = [-1] * n
    for j in range(1, m + 1):
        if p[j]:
            column[p[j] - 1] = j - 1
    return column


def best_assignment(
    n_left: int, n_right: int, edges: dict[tuple[int, int], float]
) -> tuple[dict[int, int], float]:
    """Maximum-score matching over ``edges`` ((left, right) -> score > 0). Returns left -> right, total."""
    if not edges:
        return {}, 0.0
    transpose = n_left > n_right
    rows, cols = (n_right, n_left) if transpose else (n_left, n_right)
    cost = [[_FORBIDDEN] * cols + [0.0] * rows for _ in range(rows)]
    for (a, b), score in edges.items():
        r, c = (b, a) if transpose else (a, b)
        cost[r][c] = -score
    # Dummy columns: row r may take only its own dummy (cost 0); others' dummies are forbidden.
    for r in range(rows):
        for d in range(rows):
            if d != r:
                cost[r][cols + d] = _FORBIDDEN
    column = _solve(cost)
    chosen: dict[int, int] = {}
    total = 0.0
    for r, c in enumerate(column):
        if c < cols and cost[r][c] < 0:
            a, b = (c, r) if transpose else (r, c)
            chosen[a] = b
            total += edges[(a, b)]
    return chosen, total


def ambiguous_pairs(
    n_left: int,
    n_right: int,
    edges: dict[tuple[int, int], float],
    chosen: dict[int, int],
    total: float,
    *,
    margin: float,
) -> set[int]:
    """Left rows whose chosen edge can be given up for an assignment within ``margin`` of ``total``."""
    left_degree: dict[int, int] = {}
    right_degree: dict[int, int] = {}
    for a, b in edges:
        left_degree[a] = left_degree.get(a, 0) + 1
        right_degree[b] = right_degree.get(b, 0) + 1
    ambiguous: set[int] = set()
    for a, b in chosen.items():
        if left_degree[a] == 1 and right_degree[b] == 1:
            continue  # nothing else could take either side
        without = {e: s for e, s in edges.items() if e != (a, b)}
        _, alternative = best_assignment(n_left, n_right, without)
        if total - alternative < margin:
            ambiguous.add(a)
    return ambiguous
