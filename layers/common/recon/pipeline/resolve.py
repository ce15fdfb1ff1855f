"""Resolve stage: classify what matching left over into cases, account for every row, store results."""

from __future__ import annotations

from collections import Counter

from recon.resolving import classify_findings, run_accounting

from .contracts import ResolveOutput, RunRef
from .match import load_outcome
from .projects import load_project
from .run import RunNotFound, audit
from .services import Services


def resolve_run(ref: RunRef, svc: Services) -> ResolveOutput:
    project = load_project(svc.store, svc.settings, ref.project_id)
    outcome = load_outcome(svc, ref)
    cases = classify_findings(project, ref.run_id, outcome)
    accounting = run_accounting(outcome, cases)  # raises if a row was lost or placed twice
    svc.repo.replace_results(ref.run_id, outcome.groups, cases)
    run = svc.repo.get_run(ref.run_id)
    if run is None:
        raise RunNotFound(ref.run_id)
    by_type = Counter(c.type.value for c in cases)
    minor_by_type: Counter[str] = Counter()
    for c in cases:
        minor_by_type[c.type.value] += c.delta_minor
    run.sources = accounting
    run.match_groups = len(outcome.groups)
    run.cases_by_type = dict(sorted(by_type.items()))
    run.case_minor_by_type = dict(sorted(minor_by_type.items()))
    svc.repo.put_run(run)
    audit(svc, "system:resolve", "run.resolved", ref.run_id, cases=len(cases), by_type=dict(by_type))
    return ResolveOutput(
        run_id=ref.run_id,
        project_id=ref.project_id,
        business_date=ref.business_date,
        cases=len(cases),
        cases_by_type=run.cases_by_type,
    )
