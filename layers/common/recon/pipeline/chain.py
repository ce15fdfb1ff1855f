"""Balance chaining: yesterday's closing balance = today's opening balance, per account.

A bank statement that states its balances proves its own entries (opening + Σ entries = closing, checked by
the reader). Chaining proves that no statement is missing between two of them: the opening balance of a
statement must equal the closing balance of the account's previous statement (by the last day covered).

Readers state balances as one control total named ``opening`` (the file's first opening balance) and one
named ``closing`` (its last closing balance); see recon/parsing/readers/_bank.py. Their ``stated`` text is
``"<amount> <currency> <yyyy-mm-dd>"`` (currency and date optional). A file holding several accounts states
``opening[****1234]`` etc. per account: such a file is not chained (it is not one account's statement).

The result is a control total named ``chain`` on the later statement: ``stated`` = its opening balance,
``computed`` = the previous statement's closing balance. A failing ``chain`` total *blocks* the account (see
``chain_break`` and docs/parse-stage.md): the statement is kept, its rows are written, but the account's
reconciliation is not final until the gap is closed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal

from recon.domain import ControlTotal, Statement
from recon.money import MoneyError, to_decimal, to_minor

CHAIN = "chain"

_AMOUNT = re.compile(
    r"^\s*(?:([A-Z]{3})\s+)?([+-]?\d+(?:\.\d+)?)(?:\s+([A-Z]{3}))?(?:\s+(?:\d{4}-\d{2}-\d{2}|\?))?\s*$"
)


@dataclass(frozen=True)
class Balance:
    minor: int
    currency: str

    def __str__(self) -> str:
        return f"{to_decimal(self.minor, self.currency)} {self.currency}"


@dataclass(frozen=True)
class Balances:
    opening: Balance
    closing: Balance


def _is(name: str, kind: str) -> bool:
    return name.lower() == kind


def _balance(text: str, default_currency: str) -> Balance | None:
    found = _AMOUNT.match(text)
    if not found:
        return None
    currency = found.group(1) or found.group(3) or default_currency
    try:
        return Balance(to_minor(Decimal(found.group(2)), currency), currency)
    except (MoneyError, ArithmeticError):
        return None


def balances(totals: list[ControlTotal], default_currency: str) -> Balances | None:
    """The opening and closing balance a file states, or None when it states no (readable) single pair."""
    openings = [t for t in totals if _is(t.name, "opening")]
    closings = [t for t in totals if _is(t.name, "closing")]
    if len(openings) != 1 or len(closings) != 1:
        return None
    opening = _balance(openings[0].stated, default_currency)
    closing = _balance(closings[0].stated, default_currency)
    if opening is None or closing is None:
        return None
    return Balances(opening, closing)


def chain_total(opening: Balance, previous_closing: Balance) -> ControlTotal:
    """The ``chain`` check of a statement against the account's previous statement."""
    return ControlTotal(name=CHAIN, stated=str(opening), computed=str(previous_closing))


def with_chain(totals: list[ControlTotal], chain: ControlTotal | None) -> list[ControlTotal]:
    """``totals`` with its ``chain`` check replaced by ``chain`` (removed when None)."""
    kept = [t for t in totals if t.name != CHAIN]
    return kept if chain is None else [*kept, chain]


def chain_break(statement: Statement) -> str | None:
    """Why the statement blocks its account's reconciliation, or None when its balance chain holds."""
    for total in statement.control_totals:
        if total.name == CHAIN and not total.ok:
            return (
                f"balance chain break on account {statement.account_id}: statement {statement.statement_id} "
                f"({statement.raw_key}) opens with {total.stated}, the previous statement closed with "
                f"{total.computed}: a statement is missing or a balance was restated"
            )
    return None


__all__ = ["CHAIN", "Balance", "Balances", "balances", "chain_break", "chain_total", "with_chain"]
