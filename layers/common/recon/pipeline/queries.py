"""Read-side queries for the review API."""

from __future__ import annotations

from pydantic import BaseModel

from recon.domain import Run

from .services import Services


class RunView(BaseModel):
    run: Run
    balanced: bool
    cases_total: int


def get_run_view(run_id: str, svc: Services) -> RunView | None:
    run = svc.repo.get_run(run_id)
    if run is None:
        return None
    return RunView(run=run, balanced=run.balanced, cases_total=sum(run.cases_by_type.values()))
