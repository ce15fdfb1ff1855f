"""Read-side queries for the review API (no dataframe library: the repository and the results digest)."""

from __future__ import annotations

from pydantic import BaseModel, Field

from recon.domain import MatchGroup, OpenItem, ResultsDigest, Run
from recon.keys import REPORT_DATA_FILE, result_key

from .services import Services


class RunView(BaseModel):
    run: Run
    balanced: bool
    cases_total: int
    suggested_groups: list[MatchGroup] = Field(
        default_factory=list, description="Matches below the confidence threshold, for a person to confirm"
    )
    open_items: list[OpenItem] = Field(default_factory=list, description="Rows still in flight (first 1,000)")


def get_run_view(run_id: str, svc: Services) -> RunView | None:
    run = svc.repo.get_run(run_id)
    if run is None:
        return None
    items: list[OpenItem] = []
    key = result_key(run.project_id, run.business_date, run.run_id, REPORT_DATA_FILE)
    if svc.store.head(svc.settings.data_bucket, key) is not None:
        items = ResultsDigest.model_validate_json(svc.store.get(svc.settings.data_bucket, key)).open_items
    return RunView(
        run=run,
        balanced=run.balanced,
        cases_total=sum(run.cases_by_type.values()),
        suggested_groups=svc.repo.list_match_groups(run_id),
        open_items=items,
    )
