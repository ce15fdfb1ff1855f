"""Filter and mapping rules, evaluated column-wise over the whole frame.

Regular expressions run in Arrow (RE2) when the pattern is RE2-compatible, else in Python's ``re`` on the
rows in scope only; both give the same answer for the patterns both accept.
"""

from __future__ import annotations

import re
from functools import lru_cache

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from recon.domain import FieldCondition, FilterRule, MappingRule

from .frame import BOOL, I64, STATUSES, TXN_TYPES, Frame
from .ledger import Ledger

_CODED = {"status": STATUSES, "txn_type": TXN_TYPES}
_INTEGER = {"amount_minor": "amount", "fee_minor": "fee", "net_minor": "net"}


@lru_cache(maxsize=256)
def _regex(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern)


def _numpy_bool(values: pa.Array | pa.ChunkedArray) -> BOOL:
    return np.asarray(pc.fill_null(values, False).to_numpy(zero_copy_only=False), dtype=bool)


def regex_mask(column: pa.Array, pattern: str, scope: BOOL) -> BOOL:
    """Rows in ``scope`` whose text matches ``pattern`` (search semantics, like ``re.search``)."""
    try:
        return _numpy_bool(pc.match_substring_regex(column, pattern)) & scope
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        out = np.zeros(len(column), dtype=bool)
        compiled = _regex(pattern)
        for i in np.flatnonzero(scope):
            value = column[int(i)].as_py()
            out[i] = value is not None and compiled.search(str(value)) is not None
        return out


def _text(frame: Frame, name: str) -> pa.Array:
    if name in _CODED:
        return pa.array(_CODED[name]).take(pa.array(getattr(frame, name).astype(np.int32)))
    if name in _INTEGER:
        return pa.array(getattr(frame, _INTEGER[name])).cast(pa.string())
    return frame.text(name)


def condition_mask(frame: Frame, condition: FieldCondition, scope: BOOL) -> BOOL:
    op, value, name = condition.op, condition.value, condition.field
    if op in ("lt", "le", "gt", "ge"):
        numbers = getattr(frame, _INTEGER[name])
        bound = int(value)  # type: ignore[arg-type]  # validated: an int
        result = {
            "lt": numbers < bound,
            "le": numbers <= bound,
            "gt": numbers > bound,
            "ge": numbers >= bound,
        }
        return np.asarray(result[op]) & scope
    if name in _CODED and op in ("eq", "ne", "in", "not_in"):
        vocabulary = _CODED[name]
        wanted = [str(v) for v in value] if isinstance(value, list) else [str(value)]
        hit = np.zeros(len(vocabulary) + 1, dtype=bool)
        for v in wanted:
            if v in vocabulary:
                hit[vocabulary.index(v)] = True
        inside: BOOL = np.asarray(hit[getattr(frame, name)], dtype=bool)
        return (inside if op in ("eq", "in") else ~inside) & scope
    if op == "regex" and scope.sum() < frame.n // 4:  # evaluate on the rows in scope only
        rows = np.flatnonzero(scope)
        out = np.zeros(frame.n, dtype=bool)
        out[rows] = regex_mask(_text(frame, name).take(pa.array(rows)), str(value), np.ones(len(rows), bool))
        return out
    column = _text(frame, name)
    if op in ("empty", "not_empty"):
        empty = _numpy_bool(pc.or_kleene(pc.is_null(column), pc.equal(pc.fill_null(column, ""), "")))
        return (empty if op == "empty" else ~empty) & scope
    if op in ("eq", "ne"):
        equal = _numpy_bool(pc.equal(column, pa.scalar(str(value))))
        return (equal if op == "eq" else ~equal) & scope
    if op in ("in", "not_in"):
        values = pa.array([str(v) for v in value], pa.string())  # type: ignore[union-attr]
        inside = _numpy_bool(pc.is_in(column, value_set=values))
        return (inside if op == "in" else ~inside) & scope
    return regex_mask(column, str(value), scope)


def rule_scope(frame: Frame, ledger: Ledger, sources: list[str], when: list[FieldCondition]) -> BOOL:
    mask = ledger.unplaced() & frame.source_mask(sources)
    for condition in when:
        if not mask.any():
            break
        mask = condition_mask(frame, condition, mask)
    return mask


def apply_filter(frame: Frame, ledger: Ledger, rule: FilterRule) -> int:
    rows: I64 = np.flatnonzero(rule_scope(frame, ledger, rule.sources, rule.when))
    ledger.filter_rows(rows, rule.name)
    return len(rows)


def apply_mapping(frame: Frame, ledger: Ledger, rule: MappingRule) -> int:
    scope = rule_scope(frame, ledger, rule.sources, rule.when)
    if not scope.any():
        return 0
    if rule.negate:
        frame.amount = np.where(scope, -frame.amount, frame.amount)
        frame.fee = np.where(scope, -frame.fee, frame.fee)
        frame.net = np.where(scope, -frame.net, frame.net)
        return int(scope.sum())
    target = rule.field
    if target in _CODED:
        vocabulary = _CODED[target]
        codes = getattr(frame, target).copy()
        for old, new in rule.value_map.items():
            if new not in vocabulary:
                raise ValueError(f"rule {rule.name!r}: {new!r} is not a {target}")
            if old in vocabulary:
                codes[scope & (codes == vocabulary.index(old))] = vocabulary.index(new)
        setattr(frame, target, codes)
        return int(scope.sum())
    current = frame.text(target)
    mask = pa.array(scope)
    if rule.value_map:
        keys = pa.array(list(rule.value_map), pa.string())
        index = pc.index_in(current, value_set=keys)
        mapped = pa.array(list(rule.value_map.values()), pa.string()).take(index)
        updated = pc.if_else(pc.and_(mask, pc.is_valid(index)), mapped, current)
    else:
        empty = pc.fill_null(pc.equal(pc.fill_null(current, ""), ""), True)
        if rule.copy_from:
            updated = pc.if_else(pc.and_(mask, empty), _text(frame, rule.copy_from), current)
        else:
            updated = pc.if_else(pc.and_(mask, empty), _extract(frame, rule, scope), current)
    frame.set_text(target, updated.cast(pa.string()))
    return int(scope.sum())


def _extract(frame: Frame, rule: MappingRule, scope: BOOL) -> pa.Array:
    source = _text(frame, rule.from_field)
    named = _named(rule.extract)
    if named is not None:
        try:
            return pc.struct_field(pc.extract_regex(source, named), "v")
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            pass
    compiled = _regex(rule.extract)
    values: list[str | None] = [None] * len(source)
    for i in np.flatnonzero(scope):
        text = source[int(i)].as_py()
        match = compiled.search(text) if text else None
        values[i] = match.group(1) if match else None
    return pa.array(values, pa.string())


def _named(pattern: str) -> str | None:
    """The pattern with its one capturing group named ``v`` (Arrow extracts named groups only)."""
    escaped = in_class = False
    for i, char in enumerate(pattern):
        if escaped:
            escaped = False
        elif char == "\\":
            escaped = True
        elif in_class:
            in_class = char != "]"
        elif char == "[":
            in_class = True
        elif char == "(" and not pattern.startswith("(?", i):
            return f"{pattern[:i]}(?P<v>{pattern[i + 1 :]}"
    return None
