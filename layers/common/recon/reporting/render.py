"""Render a run's report. Pure: takes domain objects, returns text."""

from __future__ import annotations

from collections import defaultdict

from jinja2 import Environment, PackageLoader, select_autoescape

from recon.domain import Case, Project, ResultsDigest, Run
from recon.money import format_amount

_env = Environment(
    loader=PackageLoader("recon", "reporting/templates"),
    autoescape=select_autoescape(["html", "j2"]),
    trim_blocks=True,
    lstrip_blocks=True,
)
_env.filters["money"] = lambda minor, currency="CNY": format_amount(int(minor), str(currency))

_SEVERITY_ORDER = {"high": 0, "medium": 1, "low": 2}


def render_report(project: Project, run: Run, digest: ResultsDigest, cases: list[Case]) -> str:
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
        cases=cases,
        groups=digest.sample_groups,
        group_count=run.match_groups,
        suggested=digest.suggested_groups,
        open_items=digest.open_items,
        open_total=digest.open_items_total,
        balanced=run.balanced,
    )


def summary_text(project: Project, run: Run, cases: list[Case], report_location: str = "") -> str:
    """Plain-text summary for e-mail bodies, SNS alerts and the command line."""
    currency = project.currency
    lines = [
        f"Reconciliation {project.name} ({project.project_id}) for {run.business_date.isoformat()}",
        f"Run {run.run_id}: {run.status.value}",
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
    lines.append(f"Open items (in flight): {run.open_items}")
    lines.append(f"Quarantined files: {run.quarantined_files}")
    lines.append(f"Cases: {len(cases)}")
    for case_type, count in sorted(run.cases_by_type.items()):
        amount = format_amount(run.case_minor_by_type.get(case_type, 0), currency)
        lines.append(f"  {case_type:<20} {count:>4}   Δ {amount} {currency}")
    if report_location:
        lines.append(f"Report: {report_location}")
    if run.error:
        lines.append(f"Errors: {run.error}")
    return "\n".join(lines) + "\n"
