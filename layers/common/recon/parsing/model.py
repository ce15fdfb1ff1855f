"""Result and error types of statement parsing (the package's public contract)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from typing import Literal

import pyarrow as pa

from recon.domain.statement import ControlTotal, RowError, Transaction

PROFILE_VERSION = "1"  # version recorded by the code readers (camt.053, MT940, ...): they are not profiles
UNKNOWN_FORMAT = "unknown"


@dataclass
class ParsedStatement:
    """One raw file, parsed: the normalized rows as an Arrow table (``recon.tables.TRANSACTION_SCHEMA``)
    plus a full account of every row read.

    Invariant: ``rows_read == rows_parsed + rows_skipped + len(errors)``.
    For CSV-like formats a "row" is one CSV record (a physical line unless a quoted field spans lines);
    archive members count too. For XML (camt.053) a "row" is one entry: each ``Ntry``, or each ``TxDtls``
    of an entry that is split into several transactions. For JSON a "row" is one record.
    """

    format: str
    encoding: str
    profile: str
    profile_version: str
    statement_date: date | None
    table: pa.Table
    rows_read: int
    rows_skipped: int
    skipped_by_rule: dict[str, int]
    errors: list[RowError]
    control_totals: list[ControlTotal] = field(default_factory=list)
    _transactions: list[Transaction] | None = field(default=None, repr=False, compare=False)

    @property
    def transactions(self) -> list[Transaction]:
        """The rows as validated ``Transaction`` models (materialised on first use; prefer ``table``)."""
        if self._transactions is None:
            from recon.tables import from_table

            self._transactions = from_table(self.table)
        return self._transactions

    @property
    def rows_parsed(self) -> int:
        return int(self.table.num_rows)

    @property
    def in_file_duplicates(self) -> int:
        """Parsed rows repeating an earlier row's dedupe key in this file (kept and flagged)."""
        column = self.table.column("in_file_duplicate")
        return int(sum(1 for v in column.to_pylist() if v)) if self.table.num_rows else 0

    @property
    def balanced(self) -> bool:
        return self.rows_read == self.rows_parsed + self.rows_skipped + len(self.errors)


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


TotalKind = Literal["count", "amount"]


@dataclass
class TotalCheck:
    """A stated total, where the file states it, and whether it is a count or an amount."""

    total: ControlTotal
    file: str
    row: int
    column: str | None
    kind: TotalKind


def finish(
    parsed: ParsedStatement, checks: list[TotalCheck], fatal_errors: list[RowError]
) -> ParsedStatement:
    """Return ``parsed``, or raise StatementParseError on a file-level problem or a disagreeing total.

    Counts are always enforced. Amount totals are enforced only when every data row parsed: with rejected
    rows the sums cannot agree and the rejections (reported row by row) are the cause.
    """
    problems = list(fatal_errors)
    for check in checks:
        if check.total.ok or (check.kind == "amount" and parsed.errors):
            continue
        problems.append(
            RowError(
                file=check.file,
                row=check.row,
                column=check.column,
                reason=(
                    f"control total {check.total.name} disagrees: the file states {check.total.stated}, "
                    f"the rows add up to {check.total.computed}"
                ),
            )
        )
    if problems:
        raise StatementParseError([*problems, *parsed.errors], parsed)
    return parsed
