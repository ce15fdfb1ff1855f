"""Render a run's report and the words of its notification. Pure: takes domain objects, returns text.

What a notification says, in this order: whether the day is complete (INCOMPLETE names each missing
statement), what to do, the open cases most severe and largest first (type, 长款/短款 and amount, the reason
in one line, the case id), where the report is, then the row accounting. It counts what its subject counts:
open cases (open, in review); the handled ones (resolved, auto-resolved) are counted apart, and so is their
money: the amounts at stake of the mail and the report are the open cases' (``stake_lines``), a case closed
since (resolved by a reviewer, paid by a later run) is shown as handled, in no open figure.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass

from jinja2 import Environment, PackageLoader, select_autoescape

from recon.domain import Case, CaseStatus, Project, ResultsDigest, Run
from recon.money import format_amount

from .export import Stake, case_money, case_stakes, evidence_line, stake_totals
from .notices import MissingStatement, local_time, missing_statements

_env = Environment(
    loader=PackageLoader("recon", "reporting/templates"),
    autoescape=select_autoescape(["html", "j2"]),
    trim_blocks=True,
    lstrip_blocks=True,
)
_env.filters["money"] = lambda minor, currency="CNY": format_amount(int(minor), str(currency))
_env.filters["evidence"] = evidence_line
_env.filters["direction"] = lambda case: case_money(case).word  # 长款 / 短款 / not at stake: why

_SEVERITY_ORDER = {"high": 0, "medium": 1, "low": 2}

#: A case a person still has to act on; resolved and auto-resolved cases are handled.
OPEN_STATUSES = frozenset({CaseStatus.OPEN, CaseStatus.IN_REVIEW})
#: Open cases a notification lists one by one (the report lists them all).
TOP_CASES = 10
_REASON_CHARS = 200
_SIDE_WORDS = {"surplus": "长款", "shortage": "短款"}


def open_cases(cases: list[Case]) -> list[Case]:
    """The cases still to act on, most severe and largest first."""
    return sorted(
        (c for c in cases if c.status in OPEN_STATUSES),
        key=lambda c: (_SEVERITY_ORDER[c.severity.value], -abs(c.delta_minor), c.case_id),
    )


def handled_cases(cases: list[Case]) -> list[Case]:
    """The cases a person no longer acts on: resolved by a reviewer, or closed by a later run."""
    return [c for c in cases if c.status not in OPEN_STATUSES]


@dataclass(frozen=True)
class StakeLine:
    """One line of the report's money tables: the open cases' money (``open``: what is still to act on) and
    the handled cases' apart (``handled``), so that a case closed since is in no figure of the open ones.
    ``case_type`` is empty on a currency's total line."""

    case_type: str
    currency: str
    open: Stake
    handled: Stake


def _stake_lines(open_: list[Stake], handled: list[Stake]) -> list[StakeLine]:
    opened = {(s.case_type, s.currency): s for s in open_}
    closed = {(s.case_type, s.currency): s for s in handled}
    return [
        StakeLine(t, c, opened.get((t, c), Stake(t, c)), closed.get((t, c), Stake(t, c)))
        for t, c in sorted(opened.keys() | closed.keys())
    ]


def stake_lines(cases: list[Case]) -> tuple[list[StakeLine], list[StakeLine]]:
    """(per case type and currency, per currency) the open and the handled cases' money (``case_stakes``,
    ``stake_totals``)."""
    open_ = [c for c in cases if c.status in OPEN_STATUSES]
    done = handled_cases(cases)
    return (
        _stake_lines(case_stakes(open_), case_stakes(done)),
        _stake_lines(stake_totals(open_), stake_totals(done)),
    )


def handled_counts(cases: list[Case]) -> dict[str, int]:
    """Handled cases by review status (resolved, auto_resolved), for "N handled" next to the open count."""
    return dict(sorted(Counter(c.status.value for c in cases if c.status not in OPEN_STATUSES).items()))


def case_amount(case: Case) -> str:
    """The case's amount as people read it: "短款 5,674.43 CNY" for a case with a direction, else
    "Δ -10.00 CNY" (this side minus the other side), with why when it is not money at stake ("Δ -10.00 CNY
    (not at stake: merchant discount to book)")."""
    money = case_money(case)
    if money.side in _SIDE_WORDS:
        return (
            f"{_SIDE_WORDS[money.side]} {format_amount(abs(case.delta_minor), case.currency)} {case.currency}"
        )
    amount = f"Δ {format_amount(case.delta_minor, case.currency)} {case.currency}"
    return f"{amount} ({money.word})" if money.aside else amount


def stake_line(label: str, stake: Stake) -> str:
    """A line of the mail's money: "  MISSING_IN_CHANNEL      3   at stake 560.06 CNY (长款 530.16, 短款
    29.90)", then what is not at stake (absolute amounts: a 长款 and a 短款 add up, they do not cancel out)."""
    split = ", ".join(
        f"{word} {format_amount(minor, stake.currency)}"
        for word, minor in (("长款", stake.surplus_minor), ("短款", stake.shortage_minor))
        if minor
    )
    if stake.not_at_stake_minor:
        aside = f"not at stake {format_amount(stake.not_at_stake_minor, stake.currency)}"
        split = f"{split}; {aside}" if split else aside
    return (
        f"  {label:<20} {stake.cases:>4}   at stake {format_amount(stake.at_stake_minor, stake.currency)} "
        f"{stake.currency}{f' ({split})' if split else ''}"
    )


def one_line(text: str, limit: int = _REASON_CHARS) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1].rstrip() + "…"


@dataclass(frozen=True)
class NextSteps:
    """What a reader of the day's notification does, from what the run found."""

    missing: list[MissingStatement]
    open: list[Case]
    handled: dict[str, int]
    suggested: int

    @classmethod
    def of(cls, project: Project, run: Run, cases: list[Case]) -> NextSteps:
        return cls(
            missing_statements(project, run), open_cases(cases), handled_counts(cases), run.suggested_groups
        )

    @property
    def complete(self) -> bool:
        return not self.missing

    def actions(self) -> list[str]:
        steps = []
        if self.missing:
            steps.append(
                f"Deliver the {len(self.missing)} missing statement(s) listed above; the day is reconciled "
                "again once they are in (an upload starts the run). Until then rows whose counterpart would "
                "be in them are held open (awaiting-statement), not reported as cases: this day's figures "
                "are not final."
            )
        if self.open:
            steps.append(
                f"Work through the {len(self.open)} open case(s) below, most severe and largest first: each "
                "says what differs and what to check. Settle it with the books, the channel or the bank and "
                "record the outcome against its case id."
            )
        if self.suggested:
            steps.append(
                f"Confirm or reject the {self.suggested} suggested match(es) (section Matches of the report): "
                "they are matched below the confidence threshold."
            )
        if not steps:
            steps.append(
                "Nothing to do: every statement arrived and every row is matched, filtered or in flight."
            )
        return steps

    def open_count(self) -> str:
        """The open count, with the handled ones apart: "6 (of 7 cases; 1 handled: 1 resolved)"."""
        handled = sum(self.handled.values())
        if not handled:
            return str(len(self.open))
        detail = ", ".join(f"{n} {status}" for status, n in self.handled.items())
        return f"{len(self.open)} (of {len(self.open) + handled} cases; {handled} handled: {detail})"


_env.filters["case_amount"] = case_amount
_env.filters["one_line"] = lambda text: one_line(str(text))


def render_report(
    project: Project,
    run: Run,
    digest: ResultsDigest,
    cases: list[Case],
    *,
    note: str = "",
    link: str = "",
    email: bool = False,
) -> str:
    """``note``: a line shown at the top (e.g. that this report supersedes an earlier one). ``link``: where
    the full report is (for the e-mail). ``email``: the e-mail's HTML part: what to do and the cases, the
    match groups and open items summarized (they are in the stored report and the CSVs)."""
    by_type: dict[str, list[Case]] = defaultdict(list)
    for case in sorted(
        cases, key=lambda c: (_SEVERITY_ORDER[c.severity.value], -abs(c.delta_minor), c.case_id)
    ):
        by_type[case.type.value].append(case)
    steps = NextSteps.of(project, run, cases)
    by_type_stakes, total_stakes = stake_lines(cases)
    return _env.get_template("report.html.j2").render(
        project=project,
        run=run,
        steps=steps,
        top_cases=steps.open[:TOP_CASES],
        started=local_time(run.started_at, project.timezone),
        finished=local_time(run.finished_at, project.timezone) if run.finished_at else "",
        link=link,
        email=email,
        currency=project.currency,
        rules=sorted(digest.groups_by_rule.items()),
        passes=sorted(digest.groups_by_pass.items()),
        cases_by_type=dict(sorted(by_type.items())),
        stakes=by_type_stakes,
        stake_totals=total_stakes,
        cases=cases,
        groups=digest.sample_groups,
        group_count=run.match_groups,
        suggested=digest.suggested_groups,
        open_items=digest.open_items,
        open_total=digest.open_items_total,
        balanced=run.balanced,
        note=note,
    )


def summary_text(
    project: Project, run: Run, cases: list[Case], report_location: str = "", *, note: str = ""
) -> str:
    """Plain-text summary for e-mail bodies, SNS alerts and the command line. ``report_location``: where
    people open the full report, in words a reader can follow (a link, or where it is stored)."""
    steps = NextSteps.of(project, run, cases)
    times = f"started {local_time(run.started_at, project.timezone)}"
    if run.finished_at:
        times += f", finished {local_time(run.finished_at, project.timezone)}"
    lines = [
        f"Reconciliation {project.name} ({project.project_id}) for {run.business_date.isoformat()}",
        f"Run {run.run_id}: {run.status.value} ({times})",
        *([note] if note else []),
    ]
    if steps.missing:
        lines += [
            "",
            f"INCOMPLETE: {len(steps.missing)} statement(s) missing; this day is not fully reconciled:",
            *(f"  - {m.describe()}" for m in steps.missing),
        ]
    lines += ["", "What to do:", *(f"  - {step}" for step in steps.actions())]
    lines += ["", f"Open cases: {steps.open_count()}"]
    for n, case in enumerate(steps.open[:TOP_CASES], 1):
        lines.append(f"  {n}. {case.type.value} {case_amount(case)}  [{case.case_id}, {case.status.value}]")
        lines.append(f"     {one_line(case.reason)}")
    if len(steps.open) > TOP_CASES:
        lines.append(f"  … and {len(steps.open) - TOP_CASES} more open case(s) in the report")
    stakes = case_stakes(steps.open)
    if stakes:
        lines.append("Open cases by type:")
        lines += [stake_line(stake.case_type, stake) for stake in stakes]
        lines += [stake_line("all open cases", total) for total in stake_totals(steps.open)]
    # A case closed since (resolved, or paid by a later run) is money no longer to act on: apart.
    handled = case_stakes(handled_cases(cases))
    if handled:
        lines.append("Handled cases by type (resolved, auto-resolved; in no figure above):")
        lines += [stake_line(stake.case_type, stake) for stake in handled]
    if report_location:
        lines.append(f"Report: {report_location}")
    lines += ["", "Rows per source (in + carried in = matched + in cases + filtered + open):"]
    for s in run.sources:
        rules = ", ".join(f"{k}: {v}" for k, v in sorted(s.filtered_by_rule.items()))
        carried = f" +{s.carried_in} carried" if s.carried_in else ""
        lines.append(
            f"  {s.source.value:<7} in {s.rows_in:>6}{carried}  matched {s.matched:>6}  cases {s.in_cases:>4}  "
            f"filtered {s.filtered:>4}{f' ({rules})' if rules else ''}  open {s.open:>4}  "
            f"{'OK' if s.balanced else 'UNBALANCED'}"
        )
    lines.append(f"Match groups: {run.match_groups} ({run.suggested_groups} suggested for review)")
    lines.append(f"Open items (in flight or awaiting a statement): {run.open_items}")
    lines.append(f"Quarantined files: {run.quarantined_files}")
    if run.error:
        lines.append(f"Errors: {run.error}")
    return "\n".join(lines) + "\n"
