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
from dataclasses import dataclass, field
from datetime import date, datetime, time
from zoneinfo import ZoneInfo

from recon.domain.statement import TxnType
from recon.parsing._common import FILE_LEVEL_ROW, Builder, fmt_amount

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


# Bank entries a payment channel paid out, and fee entries (every bank format types its entries by these)
_CHANNEL = re.compile(
    r"支付宝|alipay|财付通|tenpay|微信|wechat|weixin|银联|unionpay|stripe|adyen|paypal|payout|settlement|结算",
    re.IGNORECASE,
)
_FEE_MEMO = re.compile(r"手续费|服务费|\bfees?\b|\bcharges?\b|commission", re.IGNORECASE)


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


@dataclass
class StatementTally:
    """One statement (or account report) of a file: its stated balances and what its accepted entries add
    up to, per currency and per direction."""

    label: str
    currency: str
    opening: Balance | None = None
    closing: Balance | None = None
    entries: dict[str, int] = field(default_factory=dict)
    credits: int = 0
    credit_sum: int = 0
    debits: int = 0
    debit_sum: int = 0

    def add(self, currency: str, minor: int) -> None:
        """Count one accepted entry."""
        self.entries[currency] = self.entries.get(currency, 0) + minor
        if minor >= 0:
            self.credits += 1
            self.credit_sum += minor
        else:
            self.debits += 1
            self.debit_sum -= minor

    def check_balance(self, b: Builder, *, file: str, column: str, row: int = FILE_LEVEL_ROW) -> None:
        """opening + entries = closing, when the statement states both balances (an amount total: not
        enforced when rows were rejected)."""
        opening, closing = self.opening, self.closing
        if opening is None or closing is None:
            return
        others = sorted(c for c, v in self.entries.items() if c != opening.currency and v)
        computed = Balance(
            opening.minor + self.entries.get(opening.currency, 0), opening.currency, None
        ).text()
        if others:
            computed += f" (+ entries in {', '.join(others)})"
        b.total(
            f"{self.label}.balance opening+entries=closing",
            closing.text(),
            computed,
            file=file,
            row=row,
            column=column,
        )

    def check_follows(
        self,
        b: Builder,
        previous: StatementTally | None,
        *,
        file: str,
        column: str,
        row: int = FILE_LEVEL_ROW,
    ) -> None:
        """The opening balance is ``previous``'s closing balance (same account), when both are stated."""
        if previous is None or previous.closing is None or self.opening is None:
            return
        b.total(
            f"{previous.label} closing = {self.label} opening",
            previous.closing.text(),
            self.opening.text(),
            file=file,
            row=row,
            column=column,
        )


def record_ends(
    ends: dict[str, tuple[Balance, Balance]], account: str, opening: Balance | None, closing: Balance | None
) -> None:
    """Keep the account's first opening and its latest closing balance (for ``expose_balances``)."""
    if opening is not None and closing is not None:
        ends[account] = (ends.get(account, (opening, closing))[0], closing)


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
