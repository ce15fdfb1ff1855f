"""The run's "no statement" message tells a missing statement from one filed under another of its days."""

from __future__ import annotations

from datetime import date

import pytest

from recon.domain import Project
from recon.pipeline.match import _not_delivered
from recon.pipeline.services import Services

from .test_parse_stage import ACME_V1, PROJECT, _deliver, _services, _upload_profile, acme_csv


@pytest.fixture
def svc() -> Services:
    return _services()


def test_a_day_inside_a_statement_filed_under_another_day_is_not_reported_missing(svc: Services) -> None:
    project = Project.from_yaml(PROJECT)
    _upload_profile(svc, "bank.acme.csv", "1", ACME_V1)
    filed = date(2026, 11, 21)
    statement = _deliver(
        svc,
        "bank-acme",
        filed,
        "week.csv",
        acme_csv(("2026-11-21", "R1", "Payout", "100.00"), ("2026-11-23", "R2", "Payout", "90.00")),
    )
    assert (statement.period_start, statement.period_end) == (date(2026, 11, 21), date(2026, 11, 23))
    inside = _not_delivered(svc, project, "bank-acme", date(2026, 11, 22))
    assert "no statement delivered" not in inside
    assert "no statement is filed for 2026-11-22" in inside and statement.raw_key in inside
    assert f"read whole by the run of {statement.business_date}" in inside
    after = _not_delivered(svc, project, "bank-acme", date(2026, 11, 24))
    assert after == "bank-acme: no statement delivered for 2026-11-24"
