"""Result and error types of statement parsing (the package's public contract)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date

from recon.domain.statement import ControlTotal, RowError, Transaction

PROFILE_VERSION = "1"
UNKNOWN_FORMAT = "unknown"


@dataclass
class ParsedStatement:
    """One raw file, parsed: normalized transactions plus a full account of every row read.

    Invariant: ``rows_read == len(transactions) + rows_skipped + len(errors)``.
    For CSV-like formats a "row" is one CSV record (a physical line unless a quoted field spans lines);
    archive members count too. For XML (camt.053) a "row" is one entry: each ``Ntry``, or each ``TxDtls``
    of an entry that is split into several transactions.
    """

    format: str
    encoding: str
    profile: str
    profile_version: str
    statement_date: date | None
    transactions: list[Transaction]
    rows_read: int
    rows_skipped: int
    skipped_by_rule: dict[str, int]
    errors: list[RowError]
    control_totals: list[ControlTotal] = field(default_factory=list)

    @property
    def balanced(self) -> bool:
        return self.rows_read == len(self.transactions) + self.rows_skipped + len(self.errors)


class StatementParseError(Exception):
    """The file as a whole cannot be accepted: unknown format, corrupt container, undecodable text,
    a missing or disagreeing control total.

    ``errors`` names file, row and column of every problem found (row-level rejections included).
    ``parsed`` is the partial result when parsing got far enough to produce one (for quarantine reports),
    else ``None``.
    """

    def __init__(self, errors: list[RowError], parsed: ParsedStatement | None = None) -> None:
        self.errors = list(errors)
        self.parsed = parsed
        shown = "; ".join(str(e) for e in self.errors[:5])
        more = f" (+{len(self.errors) - 5} more)" if len(self.errors) > 5 else ""
        super().__init__(shown + more if shown else "statement cannot be parsed")
