"""Exact money: amounts are integer minor units (fen, cents) inside the system, ``Decimal`` at the edges.

Floats never touch money. Parsing rejects values that cannot be represented exactly in the currency's
minor unit instead of rounding them silently.
"""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation

# ISO 4217 minor-unit exponents for the currencies our users' channels settle in.
_EXPONENTS: dict[str, int] = {
    "CNY": 2,
    "USD": 2,
    "EUR": 2,
    "GBP": 2,
    "HKD": 2,
    "SGD": 2,
    "AUD": 2,
    "CAD": 2,
    "CHF": 2,
    "NZD": 2,
    "MOP": 2,
    "TWD": 2,
    "THB": 2,
    "MYR": 2,
    "PLN": 2,
    "SEK": 2,
    "NOK": 2,
    "DKK": 2,
    "RUB": 2,
    "INR": 2,
    "JPY": 0,
    "KRW": 0,
    "VND": 0,
    "CLP": 0,
    "ISK": 0,
    "BHD": 3,
    "KWD": 3,
    "JOD": 3,
    "OMR": 3,
    "TND": 3,
}

_STRIP = re.compile(r"[\s,¥￥$€£`\t]")


class MoneyError(ValueError):
    """A value is not an exact amount in the currency's minor unit."""


def exponent(currency: str) -> int:
    """Minor-unit exponent of ``currency`` (2 unless known otherwise)."""
    return _EXPONENTS.get(currency.upper(), 2)


def to_minor(value: str | Decimal | int, currency: str) -> int:
    """Convert a textual or Decimal amount to integer minor units, exactly.

    Accepts thousands separators, currency signs, a leading ``+``/``-`` and a trailing minus.
    Raises ``MoneyError`` when the value has non-zero digits beyond the currency's minor unit.
    """
    if isinstance(value, bool):
        raise MoneyError(f"not an amount: {value!r}")
    if isinstance(value, int):
        return int(value * 10 ** exponent(currency))
    if isinstance(value, Decimal):
        dec = value
    else:
        text = _STRIP.sub("", value)
        if text.endswith("-") and not text.startswith("-"):
            text = "-" + text[:-1]
        if text in ("", "-", "+"):
            raise MoneyError(f"empty amount: {value!r}")
        try:
            dec = Decimal(text)
        except InvalidOperation as exc:
            raise MoneyError(f"not an amount: {value!r}") from exc
    if not dec.is_finite():
        raise MoneyError(f"not a finite amount: {value!r}")
    scaled = dec.scaleb(exponent(currency))
    if scaled != scaled.to_integral_value():
        raise MoneyError(f"{value!r} has more precision than {currency} minor units allow")
    return int(scaled)


def to_decimal(minor: int, currency: str) -> Decimal:
    """Integer minor units back to a Decimal with the currency's exponent (``12345 CNY`` -> ``123.45``)."""
    exp = exponent(currency)
    return Decimal(minor).scaleb(-exp).quantize(Decimal(1).scaleb(-exp))


def format_amount(minor: int, currency: str) -> str:
    """Human formatting with thousands separators: ``-1234567 CNY`` -> ``-12,345.67``."""
    dec = to_decimal(minor, currency)
    exp = exponent(currency)
    return f"{dec:,.{exp}f}"
