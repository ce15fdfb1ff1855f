"""Machine-readable run results: cases.csv and summary.json, plus the column lists of every export.

matches.csv, filtered.csv and open_items.csv are one row per input row and are written column-wise from
the result tables by ``recon.reporting.tabular`` (resolve stage); this module stays free of dataframe
libraries (the report function has none). New columns are only ever appended (the foundation contract).
Every CSV file is UTF-8 with a byte order mark (``CSV_BOM``, ``CSV_CONTENT_TYPE``).

``case_money`` is the one place a case is read as money: 长款, 短款, or not money at stake (a DUPLICATE, a
late payout, a merchant discount the ERP has to book); cases.csv, summary.json (``case_stakes``,
``stake_totals``), the report, the e-mail and the alert all take it from there. summary.json counts every
case the run found whatever its review status; the report and the e-mail count the open cases' money and the
handled ones' apart (``render.stake_lines``).
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Literal, Protocol

from recon.domain import Case, CaseType, Evidence, MatchGroup, MemberRef, MoneyAccounting, Run, Source
from recon.money import to_decimal, to_minor
from recon.vocabulary import (
    DID_NOT_COMPLETE,
    MERCHANT_DISCOUNT,
    REFUND_OTHER_ORDER_RULE,
    REFUNDS_PAID_ORDER_RULE,
    UNMATCHED_RULE,
)

MATCH_COLUMNS = [
    "group_id",
    "rule",
    "source",
    "txn_id",
    "amount",
    "currency",
    "status",
    "confidence",
    "pass",
    # The group's, repeated on each member's row: the batches it settles ('<channel account>@<date>', comma
    # separated), the engine's explanation and the field-by-field evidence (``evidence_text``).
    "settles",
    "explanation",
    "evidence",
]
CASE_COLUMNS = [
    "case_id",
    "type",
    "source",
    "txn_id",
    "amount",
    "currency",
    "counterpart_source",
    "counterpart_txn_id",
    # The case's Δ, on its first row only: the column adds up to the cases' total (each member row has its
    # own ``amount``).
    "delta",
    "severity",
    "reason",
    "rule",
    # 长款 / 短款 (empty: no money difference; ``not at stake: <why>``) and the case's amount at stake, on its
    # first row only; the case's review status; when the row was booked (the project's time zone) and its
    # value date, to find it in the statement.
    "direction",
    "at_stake",
    "status",
    "booked_at",
    "value_date",
]
# detail: "repeats row N of <file>" (a row an earlier statement delivered), else the filter rule's description.
FILTERED_COLUMNS = ["source", "account_id", "txn_id", "amount", "currency", "rule", "detail"]
# One line per open row and per settlement batch left waiting (txn_id '<channel account>@<date>', its net).
# held_by: the rule that keeps it open (a carry-over or settlement rule: in flight; awaiting-statement:<accounts>:
# the statement its counterpart would be in is missing or quarantined).
OPEN_ITEM_COLUMNS = [
    "source",
    "account_id",
    "txn_id",
    "amount",
    "currency",
    "first_seen",
    "age_days",
    "held_by",
]


def evidence_line(e: Evidence) -> str:
    """One compared field, left side first: ``amount: 99.00`` (the same on both sides), ``memo: 支付宝 ~
    支付宝结算 ****6241`` (they agree: a pattern, a count), ``net_total: 4,692.51 ≠ 4,682.51 (Δ -10.00)``
    (they disagree), ``booked_at: Δ 3 s`` when only the difference is known."""
    if not e.left and not e.right:
        return f"{e.field}: Δ {e.delta}" if e.delta else f"{e.field}: {'agrees' if e.equal else 'differs'}"
    if e.equal and e.left == e.right:
        return f"{e.field}: {e.left}"
    text = f"{e.field}: {e.left} {'~' if e.equal else '≠'} {e.right}".rstrip()
    return f"{text} (Δ {e.delta})" if e.delta else text


def evidence_text(evidence: Iterable[Evidence]) -> str:
    """A group's or case's evidence on one line, fields separated by ``; ``."""
    return "; ".join(evidence_line(e) for e in evidence)


def _amount(m: MemberRef) -> str:
    return str(to_decimal(m.amount_minor, m.currency))


# Every CSV file people open is UTF-8 with a byte order mark: Excel on a zh-CN Windows reads a CSV without
# one as GBK and garbles the Chinese (短款 -> 鐭�娆�). Read them back with ``utf-8-sig``.
CSV_BOM = b"\xef\xbb\xbf"
CSV_CONTENT_TYPE = "text/csv; charset=utf-8"


def csv_bytes(text: str) -> bytes:
    """The file of a CSV text: UTF-8 with a byte order mark."""
    return CSV_BOM + text.encode("utf-8")


def _csv(columns: list[str], rows: Iterable[list[str]]) -> str:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(columns)
    writer.writerows(rows)
    return buf.getvalue()


def matches_csv(groups: list[MatchGroup]) -> str:
    """One row per member of the given match groups (the full file comes from ``tabular.matches_csv``)."""
    rows = (
        [
            g.group_id,
            g.rule,
            m.source.value,
            m.txn_id,
            _amount(m),
            m.currency,
            g.status.value,
            _confidence(g.confidence),
            g.match_pass,
            ",".join(g.settles),
            g.explanation,
            evidence_text(g.evidence),
        ]
        for g in sorted(groups, key=lambda g: g.group_id)
        for m in g.members
    )
    return _csv(MATCH_COLUMNS, rows)


def _confidence(value: float) -> str:
    """Up to four decimals, no trailing zeros (``1``, ``0.95``)."""
    text = f"{value:.4f}".rstrip("0").rstrip(".")
    return text or "0"


def _counterpart(case: Case, member: MemberRef) -> MemberRef | None:
    if case.counterpart:
        return case.counterpart[0]
    # A keyed mismatch holds both sides as members: each side's counterpart is the other side.
    return next((m for m in case.members if m.source != member.source), None)


class RowDates(Protocol):
    """When a case's row was booked and its value date, as text (empty when not known)."""

    def booked_at(self, member: MemberRef) -> str: ...

    def value_date(self, member: MemberRef) -> str: ...


def cases_csv(cases: list[Case], dates: RowDates | None = None) -> str:
    """One row per member of a case (an aggregate member, e.g. a missing settlement, is one row too). The
    case's own amounts (``delta``, ``at_stake``) are on its first row only, so that summing a column never
    counts a case twice; each row has its own ``amount``. ``dates``: the rows' booking time and value date
    (``resolving.RowDates``; without it those columns are empty)."""
    rows: list[list[str]] = []
    for case in sorted(cases, key=lambda c: (c.type.value, c.case_id)):
        delta = str(to_decimal(case.delta_minor, case.currency))
        money = case_money(case)
        at_stake = str(to_decimal(money.at_stake_minor, case.currency))
        for i, m in enumerate(case.members):
            other = _counterpart(case, m)
            first = i == 0
            rows.append(
                [
                    case.case_id,
                    case.type.value,
                    m.source.value,
                    m.txn_id,
                    _amount(m),
                    m.currency,
                    other.source.value if other else "",
                    other.txn_id if other else "",
                    delta if first else "",
                    case.severity.value,
                    case.reason,
                    case.rule,
                    money.word,
                    at_stake if first else "",
                    case.status.value,
                    dates.booked_at(m) if dates and not m.is_aggregate else "",
                    dates.value_date(m) if dates and not m.is_aggregate else "",
                ]
            )
    return _csv(CASE_COLUMNS, rows)


Side = Literal["surplus", "shortage"]
# Why a case's amount is not money at stake: a repeated row (no money moved twice), a row that did not
# complete (no money moved at all), money an earlier run's case already counts (a late payout), or the
# channel's merchant-funded discount (the money is as agreed; the ERP has the discount to book).
Aside = Literal["data defect", "no money moved", "already reported", "merchant discount to book"]

_SUCCESS = "success"  # a row's status when it happened (recon.domain.TxnStatus.SUCCESS)


@dataclass(frozen=True)
class CaseMoney:
    """What a case means in money, from the merchant's books (docs/matching.md, "Case types").

    ``at_stake_minor``: what it adds to the amount at stake (|Δ|; 0 when ``aside`` says why it is not money
    at stake, its |Δ| then being ``aside_minor``). ``side``: 长款 (surplus: money received that the books do
    not explain) or 短款 (shortage: money the books expect that did not arrive), None when there is no
    money difference to direct (amounts agree, currencies differ, a payable the channel may still collect).
    ``directed_minor``: the part of the amount at stake that is 长款 / 短款 (|Δ| but for a refund booked on
    another order, where only the difference between the two refunds is money)."""

    at_stake_minor: int
    side: Side | None = None
    directed_minor: int = 0
    aside: Aside | None = None
    aside_minor: int = 0

    @property
    def word(self) -> str:
        """cases.csv's ``direction``: 长款, 短款, empty, or ``not at stake: <why>``."""
        if self.aside:
            return f"not at stake: {self.aside}"
        return {"surplus": "长款", "shortage": "短款", None: ""}[self.side]


def _sign(minor: int) -> Side | None:
    """The side of a difference "what the money shows − what the books expect"."""
    return "surplus" if minor > 0 else "shortage" if minor < 0 else None


def _opposite(side: Side | None) -> Side | None:
    return None if side is None else "shortage" if side == "surplus" else "surplus"


def _status(case: Case) -> tuple[str, str] | None:
    """(left, right) status of a keyed case: the rule's left side (the ERP) first."""
    return next(((e.left, e.right) for e in case.evidence if e.field == "status"), None)


def _erp_minor(case: Case) -> int:
    return sum(m.amount_minor for m in case.members if m.source is Source.ERP)


def _discount_explained(case: Case) -> int | None:
    """The Δ the channel's merchant discount explains (its evidence, written by the engine), None without."""
    found = next((e.delta for e in case.evidence if e.field == MERCHANT_DISCOUNT and e.delta), None)
    return to_minor(found, case.currency) if found is not None else None


def case_money(case: Case) -> CaseMoney:
    """The one place a case's type, rule and rows are read as 长款 / 短款 / not money at stake. Every
    ``delta`` sign used here is the engine's (docs/matching.md, "Case types"): channel − ERP (keyed), bank −
    the channel day's net (settlement), the row's own amount (residue)."""
    delta = case.delta_minor
    amount = abs(delta)
    bank = any(m.source is Source.BANK for m in case.members)
    erp = any(m.source is Source.ERP for m in case.members)
    # A settlement case: a bank row compared with a channel day (``<account>@<date>``), not a keyed pair.
    settlement = bank and any(m.is_aggregate for m in case.counterpart)
    side: Side | None = None
    directed = amount
    match case.type:
        case CaseType.DUPLICATE:
            return CaseMoney(0, aside="data defect", aside_minor=amount)
        case CaseType.MISSING_IN_BANK:
            side = "shortage"
        case CaseType.MISSING_IN_CHANNEL:
            # A bank credit nothing explains (long); an ERP payment the channel never received (short), an
            # ERP refund it never paid out (long: the customer is still owed).
            side = "surplus" if bank else _opposite(_sign(delta))
        case CaseType.MISSING_IN_ERP:
            side = _sign(delta)  # money taken for no order (long); a refund paid out unbooked (short)
        case CaseType.AMOUNT_MISMATCH:
            if delta and _discount_explained(case) == delta:  # the settlement is as agreed: a booking
                return CaseMoney(0, aside="merchant discount to book", aside_minor=amount)
            side = _sign(delta)  # WeChat 189.00 for an order of 199.00: Δ -10.00, short
        case CaseType.FEE_MISMATCH:
            # Keyed: Δ = stated − scheduled fee, a higher fee is money short. Settlement: Δ = credit − the
            # channel's net (the credit follows the contract, the bill states other fees).
            side = _sign(delta) if settlement else _opposite(_sign(delta))
        case CaseType.TIME_MISMATCH:
            if settlement:  # a late payout: the same money as the earlier run's MISSING_IN_BANK it names
                return CaseMoney(0, aside="already reported", aside_minor=amount)
            side = None  # keys and amounts agree: a timing difference, no money missing
        case CaseType.STATUS_MISMATCH:
            status = _status(case)
            if case.rule == REFUNDS_PAID_ORDER_RULE or (status and status[1] == _SUCCESS):
                side = _sign(delta)  # the channel moved the money, the books do not show it
            elif status and status[0] == _SUCCESS:
                side = _opposite(_sign(_erp_minor(case)))  # the books expect money that never moved
        case CaseType.OTHER:
            if case.rule == UNMATCHED_RULE and case.reason.startswith(DID_NOT_COMPLETE):
                return CaseMoney(0, aside="no money moved", aside_minor=amount)
            if case.rule == REFUND_OTHER_ORDER_RULE:
                # The refund is booked on the wrong order (no money missing); a difference is.
                channel = sum(m.amount_minor for m in case.members if m.source is not Source.ERP)
                side, directed = _sign(channel - _erp_minor(case)), abs(channel - _erp_minor(case))
            elif case.rule == UNMATCHED_RULE and bank:
                side = "shortage" if delta < 0 else None  # money left the account, no rule explains it
            elif erp and len({m.currency for m in case.members}) == 1:
                side = "shortage" if delta < 0 else None  # a refund larger than the order's payment
    return CaseMoney(amount, side, directed if side else 0)


def stake_side(case: Case) -> Side | None:
    """长款 (surplus) or 短款 (shortage) of a case (``case_money``), None for a case without either."""
    return case_money(case).side


@dataclass(frozen=True)
class Stake:
    """The amount at stake in one case type and currency: absolute deltas, so that a 长款 and a 短款 add up
    instead of cancelling out. ``at_stake_minor`` = 长款 + 短款 + the amount of cases without either;
    ``not_at_stake_minor`` is shown apart (data defects, amounts an earlier case already counts)."""

    case_type: str
    currency: str
    cases: int = 0
    at_stake_minor: int = 0
    surplus_minor: int = 0
    shortage_minor: int = 0
    not_at_stake_minor: int = 0


def _add(acc: list[int], money: CaseMoney) -> None:
    acc[0] += 1
    acc[1] += money.at_stake_minor
    acc[2] += money.directed_minor if money.side == "surplus" else 0
    acc[3] += money.directed_minor if money.side == "shortage" else 0
    acc[4] += money.aside_minor


def case_stakes(cases: list[Case]) -> list[Stake]:
    """Per case type and currency, sorted by both."""
    totals: dict[tuple[str, str], list[int]] = {}
    for case in cases:
        _add(totals.setdefault((case.type.value, case.currency), [0] * 5), case_money(case))
    return [Stake(t, c, *totals[(t, c)]) for t, c in sorted(totals)]


def stake_totals(cases: list[Case]) -> list[Stake]:
    """All case types together, per currency (``case_type`` is empty): the day's 长款 and 短款."""
    totals: dict[str, list[int]] = {}
    for s in case_stakes(cases):
        acc = totals.setdefault(s.currency, [0] * 5)
        for i, v in enumerate((s.cases, s.at_stake_minor, s.surplus_minor, s.shortage_minor)):
            acc[i] += v
        acc[4] += s.not_at_stake_minor
    return [Stake("", c, *totals[c]) for c in sorted(totals)]


def minor_at_stake_by_type(cases: list[Case], currency: str) -> dict[str, int]:
    """Absolute amount at stake per case type, of the cases in ``currency`` (the project's)."""
    return {s.case_type: s.at_stake_minor for s in case_stakes(cases) if s.currency == currency}


def _stake_json(s: Stake) -> dict[str, Any]:
    return {
        "cases": s.cases,
        "at_stake": str(to_decimal(s.at_stake_minor, s.currency)),
        "surplus": str(to_decimal(s.surplus_minor, s.currency)),
        "shortage": str(to_decimal(s.shortage_minor, s.currency)),
        "not_at_stake": str(to_decimal(s.not_at_stake_minor, s.currency)),
    }


def _stakes_json(cases: list[Case]) -> dict[str, dict[str, dict[str, Any]]]:
    out: dict[str, dict[str, dict[str, Any]]] = {}
    for s in case_stakes(cases):
        out.setdefault(s.case_type, {})[s.currency] = _stake_json(s)
    return out


def _money_json(m: MoneyAccounting) -> dict[str, Any]:
    """One source's money tie-out in one currency: in + carried_in = matched + in_cases + filtered + open."""

    def text(minor: int) -> str:
        return str(to_decimal(minor, m.currency))

    out = m.matched_minor + m.in_cases_minor + m.filtered_minor + m.open_minor
    return {
        "in": text(m.in_minor),
        "carried_in": text(m.carried_in_minor),
        "matched": text(m.matched_minor),
        "in_cases": text(m.in_cases_minor),
        "filtered": text(m.filtered_minor),
        "open": text(m.open_minor),
        "held": text(m.held_minor),  # of open: held for a missing or quarantined statement
        "out": text(out),
        "balanced": m.balanced,
        # Appended: of in (and of filtered), rows another statement of the day already delivered
        # (overlapping-statement); in − repeated is the money that arrived, counted once.
        "repeated": text(m.repeated_minor),
        "received": text(m.in_minor - m.repeated_minor),
    }


def _quarantined(run: Run) -> dict[str, dict[str, int]]:
    """Per source, the quarantined files and their rows: never read into the run, so in no amount of the
    money tie-out (a source whose only file is quarantined has no rows in ``sources`` at all)."""
    out: dict[str, dict[str, int]] = {}
    for f in run.files:
        if f.status == "quarantined":
            acc = out.setdefault(f.source.value, {"files": 0, "rows": 0})
            acc["files"] += 1
            acc["rows"] += f.rows_rejected
    return dict(sorted(out.items()))


def summary(run: Run, cases: list[Case], currency: str = "CNY") -> dict[str, Any]:
    """Rows in/out per source and per file, matched, cases by type, filtered, quarantined."""
    dispositions = {
        "matched": sum(s.matched for s in run.sources),
        "suggested": sum(s.suggested for s in run.sources),
        "case": sum(s.in_cases for s in run.sources),
        "filtered": sum(s.filtered for s in run.sources),
        "open": sum(s.open for s in run.sources),
    }
    return {
        "run_id": run.run_id,
        "project_id": run.project_id,
        "business_date": run.business_date.isoformat(),
        "status": run.status.value,
        "balanced": run.balanced,
        "sources": {
            s.source.value: {
                "rows_in": s.rows_in,
                "matched": s.matched,
                "in_cases": s.in_cases,
                "filtered": s.filtered,
                "filtered_by_rule": s.filtered_by_rule,
                "rows_out": s.matched + s.in_cases + s.filtered + s.open,
                "carried_in": s.carried_in,
                "suggested": s.suggested,
                "open": s.open,
                "money": {m.currency: _money_json(m) for m in s.money},
            }
            for s in run.sources
        },
        "files": [
            {
                "raw_key": f.raw_key,
                "source": f.source.value,
                "account_id": f.account_id,
                "status": f.status,
                "rows_read": f.rows_read,
                "rows_parsed": f.rows_parsed,
                "rows_skipped": f.rows_skipped,
                "rows_rejected": f.rows_rejected,
                "errors": f.errors,
                # A statement covering several days: this run's day of it, and the whole file's rows.
                **({"day": f.day.isoformat(), "file_rows_read": f.file_rows_read} if f.day else {}),
                # A file a newer upload replaced: listed because it was delivered, in no row or amount.
                **({"superseded_by": f.superseded_by} if f.superseded_by else {}),
            }
            for f in run.files
        ],
        "match_groups": run.match_groups,
        "matched_rows": sum(s.matched for s in run.sources),
        "filtered_rows": sum(s.filtered for s in run.sources),
        "quarantined_files": run.quarantined_files,
        "quarantined_rows": sum(f.rows_rejected for f in run.files if f.status == "quarantined"),
        "quarantined_by_source": _quarantined(run),
        "cases": len(cases),
        "cases_by_type": run.cases_by_type,
        # Absolute amount at stake per type in the project's currency (it used to be the signed net, in which
        # a 长款 cancelled a 短款); the split by 长款 / 短款 and by currency is in case_stakes.
        "case_amount_by_type": {
            k: str(to_decimal(v, currency)) for k, v in minor_at_stake_by_type(cases, currency).items()
        },
        "case_stakes": _stakes_json(cases),
        # The day's 长款 and 短款 over every case type, per currency (DUPLICATE and late payouts: not_at_stake).
        "stake_totals": {t.currency: _stake_json(t) for t in stake_totals(cases)},
        "error": run.error,
        "dispositions": dispositions,
        "suggested_groups": run.suggested_groups,
        "open_items": run.open_items,  # open rows + settlement batches left waiting (open_items.csv's lines)
        "groups_by_pass": run.groups_by_pass,
    }


def summary_json(run: Run, cases: list[Case], currency: str = "CNY") -> str:
    return json.dumps(summary(run, cases, currency), ensure_ascii=False, indent=2) + "\n"
