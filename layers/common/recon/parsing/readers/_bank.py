"""What the bank-statement readers share: text decoding, transaction typing, unique ids, and the balance
control totals (opening + entries = closing, chaining, and the ``opening``/``closing`` totals that let the
parse stage chain consecutive files).

Balances exposed for chaining across files (docs/formats-bank.md): every reader that knows balances
records, besides its checks, one control total ``opening`` and one ``closing`` per account in the file
(``opening[****1234]`` when a file holds several accounts), whose stated and computed values are both
``"<amount> <currency> <yyyy-mm-dd>"``: the first statement's opening and the last statement's closing.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from datetime import date, datetime, time
from zoneinfo import ZoneInfo

from recon.domain.statement import TxnType
from recon.parsing._common import FILE_LEVEL_ROW, Builder, fmt_amount
from recon.parsing.camt import _CHANNEL, _FEE_MEMO

_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_SPACES = re.compile(r"\s+")
NO_REFERENCE = frozenset({"", "NONREF", "NOTPROVIDED", "NONE", "NULL", "N/A"})


def decode_bank_text(data: bytes) -> tuple[str, str]:
    """Bank formats are ASCII by standard (SWIFT X set, BAI2, OFX 1 USASCII/1252); non-ASCII bytes appear
    only in free text. UTF-8 first (a BOM is dropped), else Windows-1252, else Latin-1 (never fails)."""
    if data.startswith(b"\xef\xbb\xbf"):
        try:
            return data[3:].decode("utf-8"), "utf-8-sig"
        except UnicodeDecodeError:
            pass
    for encoding in ("utf-8", "cp1252"):
        try:
            return data.decode(encoding), encoding
        except UnicodeDecodeError:
            continue
    return data.decode("latin-1"), "latin-1"


def tidy(text: str | None) -> str:
    """Free text for memo/counterparty: control characters dropped, whitespace runs collapsed."""
    if not text:
        return ""
    return _SPACES.sub(" ", _CONTROL.sub("", unicodedata.normalize("NFC", text))).strip()


def reference(value: str | None) -> str:
    """A reference as printed, or "" for the placeholders banks write when there is none."""
    text = tidy(value)
    return "" if text.upper() in NO_REFERENCE else text


def mask(account: str) -> str:
    """Account numbers never appear in full in names or messages."""
    digits = re.sub(r"\s", "", account)
    return f"****{digits[-4:]}" if digits else "****"


def midnight(day: date, tz: ZoneInfo) -> datetime:
    return datetime.combine(day, time(0), tzinfo=tz)


def bank_txn_type(amount: int, *, reversal: bool, text: str, fee_code: bool = False) -> TxnType:
    """Same classification as camt.053: reversals are adjustments, channel payouts settlements, fees fees."""
    if reversal:
        return TxnType.ADJUSTMENT
    if amount >= 0:
        return TxnType.SETTLEMENT if _CHANNEL.search(text) else TxnType.TRANSFER
    if fee_code or _FEE_MEMO.search(text):
        return TxnType.FEE
    return TxnType.TRANSFER


class UniqueIds:
    """txn_id unique within the file: a repeated id gets ``#<n>`` (its n-th occurrence), deterministically."""

    def __init__(self) -> None:
        self._seen: dict[str, int] = {}

    def __call__(self, wanted: str) -> str:
        n = self._seen.get(wanted, 0) + 1
        self._seen[wanted] = n
        if n == 1:
            return wanted
        candidate = f"{wanted}#{n}"
        while candidate in self._seen:  # an id that itself looks like "<x>#<n>" in the file
            n += 1
            candidate = f"{wanted}#{n}"
        self._seen[candidate] = 1
        return candidate


@dataclass(frozen=True)
class Balance:
    minor: int
    currency: str
    day: date | None

    def text(self) -> str:
        return f"{fmt_amount(self.minor, self.currency)} {self.currency}"

    def dated(self) -> str:
        return f"{self.text()} {self.day.isoformat() if self.day else '?'}"


def check_balance(
    b: Builder,
    *,
    label: str,
    opening: Balance,
    entries: dict[str, int],
    closing: Balance,
    file: str,
    column: str,
    row: int = FILE_LEVEL_ROW,
) -> None:
    """opening + Σ entries = closing (an amount total: not enforced when rows were rejected)."""
    others = sorted(c for c, v in entries.items() if c != opening.currency and v)
    computed = Balance(opening.minor + entries.get(opening.currency, 0), opening.currency, None).text()
    if others:
        computed += f" (+ entries in {', '.join(others)})"
    b.total(
        f"{label}.balance opening+entries=closing",
        closing.text(),
        computed,
        file=file,
        row=row,
        column=column,
    )


def check_chain(
    b: Builder,
    *,
    previous: str,
    closing: Balance,
    current: str,
    opening: Balance,
    file: str,
    column: str,
    row: int = FILE_LEVEL_ROW,
) -> None:
    """A statement's opening balance is the previous statement's closing balance (same account)."""
    b.total(
        f"{previous} closing = {current} opening",
        closing.text(),
        opening.text(),
        file=file,
        row=row,
        column=column,
    )


def expose_balances(b: Builder, ends: dict[str, tuple[Balance, Balance]], *, file: str) -> None:
    """The ``opening``/``closing`` totals per account (first opening, last closing) for chaining files."""
    several = len(ends) > 1
    for account, (opening, closing) in ends.items():
        suffix = f"[{mask(account)}]" if several else ""
        for name, balance in (("opening", opening), ("closing", closing)):
            b.total(
                f"{name}{suffix}",
                balance.dated(),
                balance.dated(),
                file=file,
                row=FILE_LEVEL_ROW,
                column=None,
            )
