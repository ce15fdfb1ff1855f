"""The parse stage under moto through the real parse handler (local runtime): an uploaded profile read on
arrival, a re-parse requested by invoking the function, an invalid profile quarantined with an alert, a balance
chain break reported by a channel task, and the DynamoDB repository's account sequence."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from datetime import date
from typing import Any

import pyarrow.parquet as pq
import pytest

from recon.adapters.dynamodb import DynamoRunRepository
from recon.adapters.s3 import S3ObjectStore
from recon.keys import profile_key, project_config_key, raw_key
from recon_local.runtime import LocalCloud
from tests.unit.logic.test_parse_stage import ACME_V1, ACME_V2, acme_csv, check_account_sequence, mt940
from tests.unit.logic.test_parse_stage import PROJECT as UNIT_PROJECT

# The erp account never receives a file here, so no upload completes a day and starts a run.
PROJECT = UNIT_PROJECT + "  - {account_id: erp, source: erp, name: ERP order book}\n"


@pytest.fixture
def cloud() -> Iterator[LocalCloud]:
    with LocalCloud() as c:
        S3ObjectStore().put(c.data_bucket, project_config_key("acme"), PROJECT.encode())
        yield c


def _upload(cloud: LocalCloud, account: str, day: date, name: str, data: bytes) -> list[Any]:
    """Put a raw file and deliver its S3 "Object Created" event to the parse function."""
    rule = next(r for r in cloud.rules if r.startswith("ParseFunction"))
    cloud.subscribe_queue_to_rule(rule)
    S3ObjectStore().put(cloud.raw_bucket, raw_key("acme", account, day, name), data)
    return cloud.deliver_rule(rule)


def test_uploaded_profile_reads_on_arrival_and_a_reparse_is_one_invocation(cloud: LocalCloud) -> None:
    store = S3ObjectStore()
    store.put(cloud.data_bucket, profile_key("bank.acme.csv", "1"), ACME_V1.encode())
    store.put(cloud.data_bucket, profile_key("bank.acme.csv", "2"), ACME_V2.encode())
    (result,) = _upload(
        cloud, "bank-acme", date(2026, 11, 20), "acme.csv", acme_csv(("2026-11-20", "R1", "Payout", "100.00"))
    )
    (summary,) = result["statements"]
    assert (summary["status"], summary["profile"], summary["profile_version"]) == (
        "parsed",
        "bank.acme.csv",
        "2",
    )
    repo = DynamoRunRepository(cloud.table_name)
    first = repo.get_statement(summary["statement_id"])
    assert first is not None and first.raw_version_id  # the raw bucket is versioned: the version read is kept
    assert first.parquet_key is not None and first.parquet_key.endswith("@bank.acme.csv@2.parquet")

    out = cloud.invoke("ParseFunction", {"reparse_statement": first.statement_id, "profile_version": "1"})

    assert (out["status"], out["previous_parquet_key"]) == ("reparsed", first.parquet_key)
    current = repo.get_statement(first.statement_id)
    assert current is not None and (current.profile_version, current.parquet_key) == ("1", out["parquet_key"])
    keys = sorted(o.key for o in store.list(cloud.data_bucket, "normalized/"))
    assert keys == sorted([first.parquet_key, out["parquet_key"]])  # the old object stays
    table = pq.read_table(io.BytesIO(store.get(cloud.data_bucket, out["parquet_key"])))
    assert table.column("profile_version").to_pylist() == ["1"] and table.column("memo").to_pylist() == [
        "Payout"
    ]
    assert "overlap_of" in table.column_names


def test_invalid_profile_quarantines_the_file_and_alerts(cloud: LocalCloud) -> None:
    broken = ACME_V1.replace('formats: ["yyyy-MM-dd"]', "formats: []")
    S3ObjectStore().put(cloud.data_bucket, profile_key("bank.acme.csv", "1"), broken.encode())
    (result,) = _upload(
        cloud, "bank-acme", date(2026, 11, 20), "acme.csv", acme_csv(("2026-11-20", "R1", "Payout", "100.00"))
    )
    assert result["quarantined"] == 1 and result["statements"][0]["status"] == "quarantined"
    report_key = "quarantine/acme/bank-acme/2026-11-20/acme.csv.error.json"
    report = json.loads(S3ObjectStore().get(cloud.data_bucket, report_key))
    (error,) = report["errors"]
    assert error["file"] == "config/profiles/bank.acme.csv/1.yaml" and "booked_at" in error["reason"]
    alerts = cloud.published(cloud.alert_topic_arn)
    assert any("invalid parsing profile bank.acme.csv" in str(a.get("subject")) for a in alerts)


def test_channel_task_reports_a_balance_chain_break(cloud: LocalCloud) -> None:
    store = S3ObjectStore()
    days = {20: ("1000.00", [("A1", "200.00")]), 21: ("1200.00", [("B1", "100.00")]), 23: ("1400.00", [])}
    outputs = {}
    for day, (opening, entries) in days.items():
        when = date(2026, 11, day)
        store.put(
            cloud.raw_bucket, raw_key("acme", "bank-eur", when, f"{day}.sta"), mt940(when, opening, entries)
        )
        task = {
            "run_id": f"acme-202611{day}",
            "project_id": "acme",
            "business_date": when.isoformat(),
            "statement_date": when.isoformat(),
            "account_id": "bank-eur",
            "source": "bank",
            "delivery": "upload",
        }
        outputs[day] = cloud.invoke("ParseFunction", task)
    assert outputs[20]["blocked"] == [] and outputs[21]["blocked"] == []
    (reason,) = outputs[23]["blocked"]
    assert "opens with 1400.00 EUR" in reason and "closed with 1300.00 EUR" in reason
    alerts = cloud.published(cloud.alert_topic_arn)
    assert [a["subject"] for a in alerts] == ["[recon] balance chain break: acme bank-eur"]


def test_dynamodb_repository_lists_an_account_in_sequence(cloud: LocalCloud) -> None:
    check_account_sequence(DynamoRunRepository(cloud.table_name))
