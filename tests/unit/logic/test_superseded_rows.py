"""A corrected re-delivery, end to end: a re-delivered statement under another name whose row
has the same dedupe key but another content replaces the earlier row; identical rows stay repeats."""

from __future__ import annotations

from datetime import date

import pytest

from recon.pipeline.services import Services

from .test_parse_stage import ACME_V1, _deliver, _rows, _services, _upload_profile, acme_csv


@pytest.fixture
def svc() -> Services:
    return _services()


def test_a_corrected_redelivery_supersedes_the_changed_row_of_the_earlier_file(svc: Services) -> None:
    _upload_profile(svc, "bank.acme.csv", "1", ACME_V1)
    day = date(2026, 11, 20)
    first = _deliver(
        svc,
        "bank-acme",
        day,
        "day.csv",
        acme_csv(("2026-11-20", "R1", "Payout", "100.00"), ("2026-11-20", "R2", "Fee", "-1.50")),
    )
    corrected = _deliver(
        svc,
        "bank-acme",
        day,
        "day-corrected.csv",
        acme_csv(("2026-11-20", "R1", "Payout", "90.00"), ("2026-11-20", "R2", "Fee", "-1.50")),
    )
    # The corrected amount counts; the identical fee repeats the first delivery.
    assert _rows(svc, corrected, "txn_id", "overlap_of", "overlap_row") == [
        {"txn_id": "R1", "overlap_of": None, "overlap_row": None},
        {"txn_id": "R2", "overlap_of": first.statement_id, "overlap_row": 3},
    ]
    # The stale row of the first delivery is marked as delivered again (differently) by the later one.
    stored = svc.repo.get_statement(first.statement_id)
    assert stored is not None and stored.rows_overlapping == 1
    assert _rows(svc, stored, "txn_id", "overlap_of", "overlap_row") == [
        {"txn_id": "R1", "overlap_of": corrected.statement_id, "overlap_row": 2},
        {"txn_id": "R2", "overlap_of": None, "overlap_row": None},
    ]
