"""A bank statement covering several days, uploaded, runs those days one after the other through the
local runtime (moto executing the real ASL, the real parse handler on the S3 event): the upload starts the
first day, and each run starts the next when it ends, successfully or not (StartRunInput.then)."""

from __future__ import annotations

import json
from datetime import date, timedelta
from itertools import pairwise
from pathlib import Path
from typing import Any

import pytest

from recon.adapters.dynamodb import DynamoRunRepository
from recon.adapters.s3 import S3ObjectStore
from recon.keys import project_config_key, raw_key
from recon_local.demo_data import BANK_ACCOUNT, generate_day
from recon_local.runtime import LocalCloud
from tests.integration.test_multi_day_statement import _one_camt

REPO = Path(__file__).resolve().parents[3]
PROJECT_TEXT = (REPO / "local/recon_local/projects/demo.yaml").read_text("utf-8")
FIRST = date(2026, 11, 21)
DAYS = [FIRST + timedelta(days=n) for n in range(3)]


@pytest.fixture
def cloud():
    with LocalCloud() as c:
        S3ObjectStore().put(c.data_bucket, project_config_key("demo"), PROJECT_TEXT.encode())
        yield c


def _executions(cloud: LocalCloud) -> list[dict[str, Any]]:
    found = cloud.client("stepfunctions").list_executions(stateMachineArn=cloud.state_machine_arn)
    return sorted(found["executions"], key=lambda e: e["startDate"])


def _business_date(cloud: LocalCloud, execution: dict[str, Any]) -> str:
    described = cloud.client("stepfunctions").describe_execution(executionArn=execution["executionArn"])
    return str(json.loads(described["input"])["business_date"])


def _wait_for_chain(cloud: LocalCloud, count: int) -> list[dict[str, Any]]:
    """Wait for each execution in turn: the next one exists only once the one before has ended."""
    seen = 0
    while seen < count:
        executions = _executions(cloud)
        assert len(executions) > seen, f"the chain stopped after {seen} run(s)"
        cloud.wait(executions[seen]["executionArn"])
        seen += 1
    return _executions(cloud)


def test_a_three_day_statement_upload_runs_the_days_one_after_the_other(cloud: LocalCloud) -> None:
    days = [generate_day(d) for d in DAYS]
    rule = next(r for r in cloud.rules if r.startswith("ParseFunction"))
    cloud.subscribe_queue_to_rule(rule)
    store = S3ObjectStore()
    for day in days:  # the channels and the ERP first: no day is complete without the bank statement
        for account_id, (name, data) in sorted(day.files.items()):
            if account_id != BANK_ACCOUNT:
                store.put(
                    cloud.raw_bucket, raw_key("demo", account_id, day.statement_dates[account_id], name), data
                )
    cloud.deliver_rule(rule)
    assert _executions(cloud) == []
    week = _one_camt([day.files[BANK_ACCOUNT][1] for day in days])
    bank_key = raw_key("demo", BANK_ACCOUNT, days[0].statement_dates[BANK_ACCOUNT], "camt053_week.xml")
    store.put(cloud.raw_bucket, bank_key, week)

    (parsed,) = cloud.deliver_rule(rule)
    assert parsed["statements"][0]["status"] == "parsed"
    (started,) = _executions(cloud)  # the first day only: the others wait for the day before them
    assert _business_date(cloud, started) == str(DAYS[0])

    executions = _wait_for_chain(cloud, len(DAYS))
    assert [_business_date(cloud, e) for e in executions] == [str(d) for d in DAYS]
    assert [e["status"] for e in executions] == ["SUCCEEDED"] * len(DAYS)
    for before, after in pairwise(executions):
        # Started by the day before, once its report was written (its last stage), not before.
        ended = cloud.wait(before["executionArn"])
        (reported,) = [
            e for e in ended.events("TaskStateExited") if e["stateExitedEventDetails"]["name"] == "Report"
        ]
        assert after["startDate"] >= reported["timestamp"], (before, after)
        assert ended.entered_states()[-4:] == ["LookForNextDay", "NextDay", "StartNextDay", "Done"]
    last = cloud.wait(executions[-1]["executionArn"])
    assert "StartNextDay" not in last.entered_states() and last.entered_states()[-1] == "Done"
    repo = DynamoRunRepository(cloud.table_name)
    for business_date in DAYS:
        run = repo.get_run(f"demo-{business_date:%Y%m%d}")
        assert run is not None and run.trigger == "upload", business_date
        assert run.status.value == "succeeded", business_date

    # The statement's event delivered again: the same chain, whose first run exists; nothing starts.
    cloud.client("s3").copy_object(
        Bucket=cloud.raw_bucket,
        Key=bank_key,
        CopySource={"Bucket": cloud.raw_bucket, "Key": bank_key},
        MetadataDirective="REPLACE",
    )
    assert len(cloud.deliver_rule(rule)) == 1
    assert len(_executions(cloud)) == len(DAYS)


def test_a_failed_day_still_starts_the_next_and_its_alert_names_the_days_after_it(cloud: LocalCloud) -> None:
    """The chain as an upload builds it, with a first day that fails (its project file is missing)."""
    last = {"project_id": "gone", "business_date": "2026-11-23", "trigger": "upload", "days_after": []}
    middle = {
        "project_id": "gone",
        "business_date": "2026-11-22",
        "trigger": "upload",
        "then": {"name": "gone-20261123-upload-c", "input": last},
        "days_after": ["2026-11-23"],
    }
    first = {
        "project_id": "gone",
        "business_date": "2026-11-21",
        "trigger": "upload",
        "then": {"name": "gone-20261122-upload-b", "input": middle},
        "days_after": ["2026-11-22", "2026-11-23"],
    }
    cloud.start_execution(first, name="gone-20261121-upload-a")

    executions = _wait_for_chain(cloud, 3)
    assert [e["name"] for e in executions] == [
        "gone-20261121-upload-a",
        "gone-20261122-upload-b",
        "gone-20261123-upload-c",
    ]
    assert [e["status"] for e in executions] == ["FAILED"] * 3  # each failed, and each started the next
    ended = cloud.wait(executions[0]["executionArn"])
    assert ended.error == "ReconciliationFailed"
    assert ended.entered_states()[-6:] == [
        "RecordFailure",
        "NotifyFailure",
        "LookForNextDayAfterFailure",
        "NextDayAfterFailure",
        "StartNextDayAfterFailure",
        "RunFailed",
    ]
    final = cloud.wait(executions[-1]["executionArn"])
    assert final.error == "ReconciliationFailed"
    assert final.entered_states()[-3:] == ["LookForNextDayAfterFailure", "NextDayAfterFailure", "RunFailed"]
    failures = [str(a["message"]) for a in cloud.published_alerts() if "FAILED" in str(a.get("subject"))]
    assert len(failures) == 3
    assert "still run after it, in order: 2026-11-22, 2026-11-23" in failures[0], failures[0]
    assert "run 2026-11-21 again, then each of those days in date order" in failures[0]
    assert "still run after it" not in failures[2]


def test_a_next_day_that_cannot_be_started_is_alerted_with_the_days_not_run(cloud: LocalCloud) -> None:
    run = {
        "project_id": "gone",
        "business_date": "2026-11-21",
        "trigger": "upload",
        "then": {"name": "gone-20261122-upload-b", "input": "not an execution input"},
        "days_after": ["2026-11-22", "2026-11-23"],
    }
    ended = cloud.run(run, name="gone-20261121-upload-a")

    assert ended.status == "FAILED" and ended.error == "NextDayNotStarted"
    assert ended.entered_states()[-3:] == [
        "StartNextDayAfterFailure",
        "NotifyNextDayNotStarted",
        "NextDayNotStarted",
    ]
    (alert,) = [a for a in cloud.published_alerts() if "days not run" in str(a.get("subject"))]
    assert alert["subject"] == "[recon] days not run: gone after 2026-11-21"
    assert (
        'These days of the same upload were not reconciled: ["2026-11-22","2026-11-23"]' in alert["message"]
    )
