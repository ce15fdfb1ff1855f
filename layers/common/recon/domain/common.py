"""Shared domain vocabulary."""

from __future__ import annotations

import hashlib
from enum import StrEnum


class Source(StrEnum):
    """Which side of the reconciliation a row comes from."""

    ERP = "erp"
    ALIPAY = "alipay"
    WECHAT = "wechat"
    BANK = "bank"

    @property
    def is_channel(self) -> bool:
        return self in (Source.ALIPAY, Source.WECHAT)


def stable_id(prefix: str, *parts: str) -> str:
    """Deterministic identifier from its defining parts: re-runs produce the same ids (idempotence)."""
    digest = hashlib.sha256("\x1f".join(parts).encode()).hexdigest()[:20]
    return f"{prefix}_{digest}"


def mask_number(number: str) -> str:
    """Mask an account number for display and logs: keep the last 4 characters."""
    tail = number[-4:] if len(number) > 4 else ""
    return f"****{tail}"
