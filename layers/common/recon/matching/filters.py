"""Filter-rule conditions evaluated against normalized rows."""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Any

from recon.domain import FieldCondition, FilterRule, Transaction


@lru_cache(maxsize=256)
def _regex(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern)


def _as_text(value: Any) -> str:
    if value is None:
        return ""
    return str(getattr(value, "value", value))


def condition_holds(condition: FieldCondition, txn: Transaction) -> bool:
    raw = getattr(txn, condition.field)
    text = _as_text(raw)
    op, expected = condition.op, condition.value
    if op == "empty":
        return text == ""
    if op == "not_empty":
        return text != ""
    if op in ("eq", "ne"):
        equal = text == _as_text(expected)
        return equal if op == "eq" else not equal
    if op in ("in", "not_in"):
        values = [str(v) for v in expected] if isinstance(expected, list) else [_as_text(expected)]
        return (text in values) if op == "in" else (text not in values)
    if op == "regex":
        return _regex(_as_text(expected)).search(text) is not None
    # Ordering comparisons are numeric (minor units for money fields).
    left, right = int(raw), int(_as_text(expected))
    return {"lt": left < right, "le": left <= right, "gt": left > right, "ge": left >= right}[op]


def rule_applies(rule: FilterRule, txn: Transaction) -> bool:
    if rule.sources and txn.source.value not in rule.sources:
        return False
    return all(condition_holds(c, txn) for c in rule.when)
