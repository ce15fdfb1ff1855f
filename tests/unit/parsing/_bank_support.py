"""Helpers for the bank reader tests: parse as a bank statement, keep the partial result of a refusal."""

from __future__ import annotations

from recon.domain import Source
from recon.parsing import ParsedStatement, StatementParseError

from ._support import assert_accounting, parse


def parse_bank(data: bytes, name: str, *, currency: str = "EUR", timezone: str = "UTC") -> ParsedStatement:
    p = parse(data, name, Source.BANK, currency=currency, timezone=timezone)
    assert_accounting(p)
    return p


def parse_bank_or_partial(
    data: bytes, name: str, *, currency: str = "EUR", timezone: str = "UTC"
) -> tuple[ParsedStatement, list[str]]:
    """The result, or the partial result of a refusal plus the refusal reasons."""
    try:
        return parse_bank(data, name, currency=currency, timezone=timezone), []
    except StatementParseError as exc:
        assert exc.parsed is not None, str(exc)
        assert_accounting(exc.parsed)
        return exc.parsed, [e.reason for e in exc.errors]


def refusal(data: bytes, name: str, *, currency: str = "EUR") -> StatementParseError:
    try:
        parse_bank(data, name, currency=currency)
    except StatementParseError as exc:
        return exc
    raise AssertionError(f"{name} was accepted")


def totals(p: ParsedStatement) -> dict[str, tuple[str, str]]:
    return {c.name: (c.stated, c.computed) for c in p.control_totals}
