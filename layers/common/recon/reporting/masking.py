"""Account numbers never leave in full: every declared account / merchant number is replaced by its mask
(``recon.domain.mask_number``: ``****6241``) wherever it occurs in text we write — a bank memo quoting the
merchant id, a file name that starts with it, an explanation, a reason.

The project declares the numbers (``Account.number``); the stages that write outputs build one ``Masker``
from the project and pass every output text through it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from recon.domain import Case, Evidence, MatchGroup, MemberRef, Project, mask_number

# Shorter "numbers" would also match inside amounts and dates; declared account numbers are longer.
MIN_MASKED_LENGTH = 6
# Where the project (its declared numbers) is not known: any run of more digits than a date (YYYYMMDD) is
# taken for an account number; Alipay names bill files after the account (2088…_20261120.csv.zip).
_LONG_DIGITS = re.compile(r"\d{9,}")


def mask_digit_runs(text: str) -> str:
    """``text`` with every run of 9 or more digits masked (``****0156``): for a key or file name logged
    where the project's Masker is not at hand (an object outside the raw layout, the PDF extractor)."""
    return _LONG_DIGITS.sub(lambda m: mask_number(m.group(0)), text)


class Masker:
    """Replaces each of the given numbers, wherever it occurs (also inside a longer token), by its mask."""

    def __init__(self, numbers: Iterable[str]) -> None:
        unique = sorted(
            {n.strip() for n in numbers if len(n.strip()) >= MIN_MASKED_LENGTH}, key=lambda n: (-len(n), n)
        )
        self._masks = {n: mask_number(n) for n in unique}
        self._pattern = re.compile("|".join(re.escape(n) for n in unique)) if unique else None

    @classmethod
    def for_project(cls, project: Project) -> Masker:
        return cls(a.number.get_secret_value() for a in project.accounts if a.number is not None)

    def __bool__(self) -> bool:
        return self._pattern is not None

    @property
    def pairs(self) -> list[tuple[str, str]]:
        """(number, mask), longest number first: for column-wise masking (``reporting.tabular``)."""
        return list(self._masks.items())

    def text(self, value: str) -> str:
        if self._pattern is None or not value:
            return value
        return self._pattern.sub(lambda m: self._masks[m.group(0)], value)

    def data(self, value: bytes) -> bytes:
        """UTF-8 bytes (CSV, JSON, HTML), masked."""
        if self._pattern is None:
            return value
        return self.text(value.decode("utf-8")).encode("utf-8")

    def _evidence(self, items: list[Evidence]) -> list[Evidence]:
        return [
            e.model_copy(
                update={
                    "left": self.text(e.left),
                    "right": self.text(e.right),
                    "delta": self.text(e.delta) if e.delta else e.delta,
                }
            )
            for e in items
        ]

    def _members(self, members: list[MemberRef]) -> list[MemberRef]:
        return [m.model_copy(update={"txn_id": self.text(m.txn_id)}) for m in members]

    def case(self, case: Case) -> Case:
        if self._pattern is None:
            return case
        return case.model_copy(
            update={
                "reason": self.text(case.reason),
                "evidence": self._evidence(case.evidence),
                "members": self._members(case.members),
                "counterpart": self._members(case.counterpart),
            }
        )

    def group(self, group: MatchGroup) -> MatchGroup:
        if self._pattern is None:
            return group
        return group.model_copy(
            update={
                "explanation": self.text(group.explanation),
                "evidence": self._evidence(group.evidence),
                "members": self._members(group.members),
            }
        )
