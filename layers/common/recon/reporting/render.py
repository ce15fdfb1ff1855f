"""Render a run's report. Pure: takes domain objects, returns text."""

from __future__ import annotations

from collections import defaultdict

from jinja2 import Environment, PackageLoader, select_autoescape

from recon.domain import Case, Project, ResultsDigest, Run
from recon.money import format_amount

from .export import case_stakes, evidence_line

_env = Environment(
    loader=PackageLoader("recon", "reporting/templates"),
    autoescape=select_autoescape(["html", "j2"]),
    trim_blocks=True,
    lstrip_blocks=True,
)
_env.filters["money"] = lambda minor, currency="CNY": format_amount(int(minor), str(currency))
_env.filters["evidence"] = evidence_line

_SEVERITY_ORDER = {"high": 0, "medium": 1, "low": 2}


def render_report(
    project: Project, run: Run, digest: ResultsDigest, cases: list[Case], *, note: str = ""
) -> str:
    """``note``: a line shown at the top (e.g. that this report supersedes an earlier one)."""
    by_type: dict[str, list[Case]] = defaultdict(list)
    for case in sorted(
        cases, key=lambda c: (_SEVERITY_ORDER[c.severity.value], -abs(c.delta_minor), c.case_id)
    ):
        by_type[case.type.value].append(case)
    return _env.get_template("report.html.j2").render(
        project=project,
        run=run,
        currency=project.currency,
        rules=sorted(digest.groups_by_rule.items()),
        passes=sorted(digest.groups_by_pass.items()),
        cases_by_type=dict(sorted(by_type.items())),
        stakes=case_stakes(cases),
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
    """Plain-text summary for e-mail bodies, SNS alerts and the command line."""
    lines = [
        f"Reconciliation {project.name} ({project.project_id}) for {run.business_date.isoformat()}",
        f"Run {run.run_id}: {run.status.value}",
        *([note] if note else []),
        "",
        "Rows per source (in + carried in = matched + in cases + filtered + open):",
    ]
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
    lines.append(f"Cases: {len(cases)}")
    for stake in case_stakes(cases):
        # Absolute amounts: a 长款 and a 短款 of one type add up, they do not cancel out.
        split = ", ".join(
            f"{word} {format_amount(minor, stake.currency)}"
            for word, minor in (("长款", stake.surplus_minor), ("短款", stake.shortage_minor))
            if minor
        )
        lines.append(
            f"  {stake.case_type:<20} {stake.cases:>4}   at stake "
            f"{format_amount(stake.at_stake_minor, stake.currency)} {stake.currency}"
            f"{f' ({split})' if split else ''}"
        )
    if report_location:
        lines.append(f"Report: {report_location}")
    if run.error:
        lines.append(f"Errors: {run.error}")
    return "\n".join(lines) + "\n"
