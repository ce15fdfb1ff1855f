"""Read-side queries for the review API (no dataframe library: the repository and the results digest)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from pydantic import BaseModel, Field

from recon.domain import MatchGroup, OpenItem, ResultsDigest, Run
from recon.keys import REPORT_DATA_FILE, result_key
from recon.reporting.masking import Masker

from .projects import load_project
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
    """The run as the review API shows it, with the project's account numbers masked as in the report: a
    raw key names the file, and Alipay names its bill files after the account (2088…_20261120.csv.zip)."""
    run = svc.repo.get_run(run_id)
    if run is None:
        return None
    items: list[OpenItem] = []
    key = result_key(run.project_id, run.business_date, run.run_id, REPORT_DATA_FILE)
    if svc.store.head(svc.settings.data_bucket, key) is not None:
        items = ResultsDigest.model_validate_json(svc.store.get(svc.settings.data_bucket, key)).open_items
    view = RunView(
        run=run,
        balanced=run.balanced,
        cases_total=sum(run.cases_by_type.values()),
        suggested_groups=svc.repo.list_match_groups(run_id),
        open_items=items,
    )
    # Without the project its numbers are unknown: the view is refused (ProjectNotFound) rather than shown
    # unmasked. The whole view is masked, as every text the report writes is.
    masker = Masker.for_project(load_project(svc.store, svc.settings, run.project_id))
    return RunView.model_validate_json(masker.text(view.model_dump_json()))


#: What each request parameter is, for the message of a request that gives it wrong.
PARAMETERS = {
    "run_id": "a run id is <project id>-<business date as YYYYMMDD>, e.g. demo-20261120: lowercase letters, "
    "digits and '-', 2 to 81 characters, starting with a letter or digit",
}
_PROBLEMS = {
    "string_pattern_mismatch": "is not in the expected form",
    "string_too_long": "is too long",
    "string_too_short": "is too short",
    "missing": "is missing",
}


def invalid_request(errors: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    """The body of a 422: a ``message`` naming each parameter, what is wrong and what is expected; ``detail``
    as before (location and type) with the same words per parameter. The value given is not echoed."""
    detail: list[dict[str, Any]] = []
    messages: list[str] = []
    for e in errors:
        loc = [str(part) for part in e.get("loc", ())]
        name = loc[-1] if loc else "request"
        where = f"{name} (in the {loc[0]})" if len(loc) > 1 else name
        problem = _PROBLEMS.get(str(e.get("type", "")), "is not valid")
        expected = PARAMETERS.get(name)
        messages.append(f"{where} {problem}" + (f": {expected}" if expected else ""))
        detail.append({"loc": loc, "type": e.get("type"), "message": messages[-1]})
    return {
        "statusCode": 422,
        "message": "; ".join(messages) or "the request is not valid",
        "detail": detail,
    }
