"""Turn the matcher's findings into cases a finance user can act on."""

from __future__ import annotations

from recon.domain import Case, CaseType, MemberRef, Project, Source, SourceAccounting, stable_id
from recon.matching import Finding, FindingKind, MatchOutcome
from recon.money import format_amount


def _real(members: list[MemberRef]) -> list[MemberRef]:
    return [m for m in members if not m.is_aggregate]


def _case_type(finding: Finding) -> CaseType:
    kind = finding.kind
    if kind is FindingKind.DUPLICATE:
        return CaseType.DUPLICATE
    if kind is FindingKind.KEY_STATUS_MISMATCH:
        return CaseType.STATUS_MISMATCH
    if kind is FindingKind.KEY_TIME_MISMATCH:
        return CaseType.TIME_MISMATCH
    if kind in (FindingKind.KEY_AMOUNT_MISMATCH, FindingKind.SETTLEMENT_AMOUNT_MISMATCH):
        return CaseType.AMOUNT_MISMATCH
    if kind is FindingKind.SETTLEMENT_MISSING:
        return CaseType.MISSING_IN_BANK
    source = finding.members[0].source
    if source is Source.ERP:
        return CaseType.MISSING_IN_CHANNEL  # 短款: booked, never paid through the channel
    if source.is_channel:
        return CaseType.MISSING_IN_ERP  # 长款: paid, never booked
    return CaseType.MISSING_IN_CHANNEL  # a bank row no channel settlement or rule explains


def _delta(finding: Finding, case_type: CaseType) -> int:
    """Signed amount at stake: what this side shows minus what the other side shows."""
    if finding.kind is FindingKind.KEY_AMOUNT_MISMATCH:
        sides: dict[bool, int] = {True: 0, False: 0}
        first = finding.members[0].source
        for m in finding.members:
            sides[m.source == first] += m.amount_minor
        return sides[False] - sides[True]  # channel - ERP
    if finding.kind is FindingKind.SETTLEMENT_AMOUNT_MISMATCH:
        return sum(m.amount_minor for m in finding.members) - sum(m.amount_minor for m in finding.counterpart)
    if case_type is CaseType.MISSING_IN_BANK:
        return -sum(m.amount_minor for m in finding.members)  # money expected in the bank, not there
    if finding.kind in (FindingKind.KEY_STATUS_MISMATCH, FindingKind.KEY_TIME_MISMATCH):
        return sum(m.amount_minor for m in finding.members if m.source is not Source.ERP)
    return sum(m.amount_minor for m in finding.members)


_REASONS = {
    CaseType.DUPLICATE: "The same source id appears more than once; only the first occurrence was matched.",
    CaseType.STATUS_MISMATCH: "Both sides know the transaction but disagree on whether it happened.",
    CaseType.TIME_MISMATCH: "Keys and amounts agree but the booking times are further apart than allowed.",
    CaseType.AMOUNT_MISMATCH: "Both sides know the transaction but the amounts differ.",
    CaseType.MISSING_IN_BANK: "短款: the channel settled this day but no matching bank credit arrived.",
    CaseType.MISSING_IN_ERP: "长款: the channel received money for an order the ERP does not have.",
    CaseType.MISSING_IN_CHANNEL: "The other side has no counterpart for this row.",
}


def _reason(finding: Finding, case_type: CaseType) -> str:
    base = _REASONS.get(case_type, "Unclassified difference.")
    first = finding.members[0] if finding.members else None
    refund = first is not None and first.amount_minor < 0
    if case_type is CaseType.MISSING_IN_CHANNEL and first is not None and first.source is Source.ERP:
        base = (
            "长款: the ERP booked a refund the channel never executed; the customer has not been paid back."
            if refund
            else "短款: the ERP booked this order but the channel never received the money."
        )
    elif case_type is CaseType.MISSING_IN_CHANNEL:
        base = "长款: money arrived in the bank that no channel settlement or rule explains."
    elif case_type is CaseType.MISSING_IN_ERP and refund:
        base = "短款: the channel paid out a refund the ERP has not booked."
    return f"{base} {finding.detail}".strip()


def classify_findings(project: Project, run_id: str, outcome: MatchOutcome) -> list[Case]:
    cases: list[Case] = []
    for finding in outcome.findings:
        case_type = _case_type(finding)
        delta = _delta(finding, case_type)
        currency = (finding.members or finding.counterpart)[0].currency
        uids = sorted(m.txn_uid for m in finding.members + finding.counterpart)
        cases.append(
            Case(
                case_id=stable_id("case", run_id, case_type.value, *uids),
                run_id=run_id,
                type=case_type,
                members=finding.members,
                counterpart=finding.counterpart,
                delta_minor=delta,
                currency=currency,
                severity=project.severity.classify(delta),
                rule=finding.rule,
                reason=_reason(finding, case_type),
                evidence=finding.evidence,
            )
        )
    cases.sort(key=lambda c: (c.type.value, c.case_id))
    return cases


def run_accounting(outcome: MatchOutcome, cases: list[Case]) -> list[SourceAccounting]:
    """Rows in = matched + in cases + filtered, per source. Raises if any row is lost or placed twice."""
    per: dict[str, SourceAccounting] = {
        s: SourceAccounting(source=Source(s), rows_in=n) for s, n in sorted(outcome.rows_in.items())
    }
    seen: set[str] = set()

    def count(members: list[MemberRef], field: str, money_field: str | None) -> None:
        for m in _real(members):
            if m.txn_uid in seen:
                raise ValueError(f"row {m.txn_uid} is in more than one place")
            seen.add(m.txn_uid)
            acc = per.setdefault(m.source.value, SourceAccounting(source=m.source))
            setattr(acc, field, getattr(acc, field) + 1)
            if money_field:
                setattr(acc, money_field, getattr(acc, money_field) + m.amount_minor)

    for group in outcome.groups:
        count(group.members, "matched", "matched_minor")
    for case in cases:
        count(case.members, "in_cases", "in_cases_minor")
    for uid, rule in outcome.filtered.items():
        if uid in seen:
            raise ValueError(f"row {uid} is in more than one place")
        seen.add(uid)
        source = uid.split(":", 1)[0]
        acc = per.setdefault(source, SourceAccounting(source=Source(source)))
        acc.filtered += 1
        acc.filtered_by_rule[rule] = acc.filtered_by_rule.get(rule, 0) + 1
    unbalanced = [a for a in per.values() if not a.balanced]
    if unbalanced:
        detail = "; ".join(
            f"{a.source.value}: in {a.rows_in} != matched {a.matched} + cases {a.in_cases} + filtered {a.filtered}"
            for a in unbalanced
        )
        raise ValueError(f"rows lost or invented: {detail}")
    return list(per.values())


def describe_delta(case: Case) -> str:
    return format_amount(case.delta_minor, case.currency)
