"""Handlers and adapters under moto through the local runtime: the S3 upload trigger, the schedule and the
review API, each exercising the resources declared in infra/template.yaml."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from recon.adapters.dynamodb import DynamoRunRepository
from recon.adapters.s3 import S3ObjectStore
from recon.keys import project_config_key, raw_key
from recon_local.demo_data import generate_day
from recon_local.runtime import LocalCloud

REPO = Path(__file__).resolve().parents[3]
PROJECT_TEXT = (REPO / "local/recon_local/projects/demo.yaml").read_text("utf-8")
DAY = date(2026, 11, 20)


@pytest.fixture
def cloud():
    with LocalCloud() as c:
        rule = next(r for r in c.rules if r.startswith("SyncProjectFunction"))
        c.subscribe_queue_to_rule(rule)
        S3ObjectStore().put(c.data_bucket, project_config_key("demo"), PROJECT_TEXT.encode())
        assert [r["status"] for r in c.deliver_rule(rule)] == ["scheduled"]
        yield c


def _fire_project_schedule(cloud: LocalCloud, project_id: str) -> str:
    """Do what EventBridge Scheduler does when the project's schedule fires (moto never fires schedules)."""
    group = cloud.function_env("SyncProjectFunction")["RECON_SCHEDULE_GROUP"]
    schedule = cloud.client("scheduler").get_schedule(Name=f"recon-{project_id}", GroupName=group)
    assert schedule["Target"]["Arn"] == cloud.state_machine_arn
    return cloud.start_execution(json.loads(schedule["Target"]["Input"]))


def _rule_for(cloud: LocalCloud, function: str) -> str:
    return next(r for r in cloud.rules if r.startswith(function))


def test_uploads_parse_on_arrival_and_start_the_day_once_inputs_are_complete(cloud: LocalCloud) -> None:
    day = generate_day(DAY)
    rule = _rule_for(cloud, "ParseFunction")
    cloud.subscribe_queue_to_rule(rule)
    store = S3ObjectStore()
    for account_id, (name, data) in sorted(day.files.items()):
        store.put(cloud.raw_bucket, raw_key("demo", account_id, day.statement_dates[account_id], name), data)
    store.put(cloud.raw_bucket, "elsewhere/readme.txt", b"not a statement")  # outside raw/: no event
    results = cloud.deliver_rule(rule)  # what EventBridge does with the S3 events
    assert len(results) == 4, results
    assert all(r["statements"][0]["status"] == "parsed" for r in results)
    executions = cloud.client("stepfunctions").list_executions(stateMachineArn=cloud.state_machine_arn)[
        "executions"
    ]
    assert [e["name"][:21] for e in executions] == ["demo-20261120-upload-"]  # + the versions' tag
    result = cloud.wait(executions[0]["executionArn"])
    assert result.status == "SUCCEEDED", result.summary()
    run = DynamoRunRepository(cloud.table_name).get_run("demo-20261120")
    assert run is not None and run.trigger == "upload" and sum(run.cases_by_type.values()) == len(day.planted)
    # the same S3 event delivered again changes nothing
    cloud.client("s3").copy_object(
        Bucket=cloud.raw_bucket,
        Key=raw_key("demo", "erp", DAY, day.files["erp"][0]),
        CopySource={"Bucket": cloud.raw_bucket, "Key": raw_key("demo", "erp", DAY, day.files["erp"][0])},
        MetadataDirective="REPLACE",
    )
    again = cloud.deliver_rule(rule)
    first_erp = next(r for r in results if r["account_id"] == "erp")
    assert len(again) == 1 and again[0]["statements"] == first_erp["statements"]  # same checksum: parsed once
    executions = cloud.client("stepfunctions").list_executions(stateMachineArn=cloud.state_machine_arn)[
        "executions"
    ]
    assert len(executions) == 1


def _executions(cloud: LocalCloud) -> list[dict[str, Any]]:
    found = cloud.client("stepfunctions").list_executions(stateMachineArn=cloud.state_machine_arn)
    return sorted(found["executions"], key=lambda e: e["startDate"])


def test_corrected_upload_after_a_quarantined_one_reconciles_the_day_again(cloud: LocalCloud) -> None:
    """The reviewer's case: a bad WeChat bill is quarantined, the corrected bill is uploaded to the same key."""
    day = generate_day(DAY)
    rule = _rule_for(cloud, "ParseFunction")
    cloud.subscribe_queue_to_rule(rule)
    store = S3ObjectStore()
    name, good = day.files["wechat-main"]
    lines = good.decode("utf-8").splitlines(keepends=True)
    lines[-1] = lines[-1].replace("`", "`9", 1)  # a wrong stated count: quarantined
    for account_id, (file_name, data) in sorted(day.files.items()):
        content = "".join(lines).encode("utf-8") if account_id == "wechat-main" else data
        store.put(
            cloud.raw_bucket, raw_key("demo", account_id, day.statement_dates[account_id], file_name), content
        )
    results = cloud.deliver_rule(rule)
    assert sorted(r["statements"][0]["status"] for r in results) == ["parsed"] * 3 + ["quarantined"]
    (first,) = _executions(cloud)
    assert cloud.wait(first["executionArn"]).status == "SUCCEEDED"
    repo = DynamoRunRepository(cloud.table_name)
    before = repo.get_run("demo-20261120")
    assert before is not None and before.quarantined_files == 1

    store.put(cloud.raw_bucket, raw_key("demo", "wechat-main", DAY, name), good)  # the corrected bill
    (fixed,) = cloud.deliver_rule(rule)
    assert fixed["statements"][0]["status"] == "parsed"
    executions = _executions(cloud)
    assert len(executions) == 2 and executions[1]["name"] != first["name"]
    assert cloud.wait(executions[1]["executionArn"]).status == "SUCCEEDED"
    after = repo.get_run("demo-20261120")
    assert after is not None and after.quarantined_files == 0
    assert sum(after.cases_by_type.values()) == len(day.planted)
    # The bad version is still listed (it was delivered), replaced by the corrected upload of the same name.
    wechat = sorted((f.status, f.superseded_by) for f in after.files if f.account_id == "wechat-main")
    assert wechat == [("parsed", None), ("superseded", raw_key("demo", "wechat-main", DAY, name))]
    every = repo.list_statements("demo", "wechat-main", DAY, include_superseded=True)
    assert sorted((s.status.value, s.superseded_by is not None) for s in every) == [
        ("parsed", False),
        ("quarantined", True),
    ]
    # The corrected bill's event delivered again starts nothing.
    cloud.client("s3").copy_object(
        Bucket=cloud.raw_bucket,
        Key=raw_key("demo", "wechat-main", DAY, name),
        CopySource={"Bucket": cloud.raw_bucket, "Key": raw_key("demo", "wechat-main", DAY, name)},
        MetadataDirective="REPLACE",
    )
    assert len(cloud.deliver_rule(rule)) == 1 and len(_executions(cloud)) == 2


def test_bank_statement_of_another_day_is_quarantined_not_reconciled(cloud: LocalCloud) -> None:
    """The reviewer's case: the camt of 2026-11-22 delivered where the run of 2026-11-20 reads 2026-11-21's."""
    day, later = generate_day(DAY), generate_day(date(2026, 11, 21))
    rule = _rule_for(cloud, "ParseFunction")
    cloud.subscribe_queue_to_rule(rule)
    store = S3ObjectStore()
    files = dict(day.files) | {"bank-cmb": later.files["bank-cmb"]}
    for account_id, (name, data) in sorted(files.items()):
        store.put(cloud.raw_bucket, raw_key("demo", account_id, day.statement_dates[account_id], name), data)
    bank = next(r for r in cloud.deliver_rule(rule) if r["account_id"] == "bank-cmb")
    (statement,) = bank["statements"]
    assert statement["status"] == "quarantined"
    assert statement["rows_read"] == statement["rows_skipped"] + statement["rows_rejected"]
    assert "2026-11-22" in statement["error"] and "filed for 2026-11-21" in statement["error"]
    (execution,) = _executions(cloud)
    assert cloud.wait(execution["executionArn"]).status == "SUCCEEDED"
    run = DynamoRunRepository(cloud.table_name).get_run("demo-20261120")
    assert run is not None and run.quarantined_files == 1
    (bank_file,) = [f for f in run.files if f.account_id == "bank-cmb"]  # the run says why the bank is short
    assert bank_file.status == "quarantined" and "filed for 2026-11-21" in bank_file.errors[0]


def test_project_file_creates_its_schedule_and_rejects_invalid_edits(cloud: LocalCloud) -> None:
    group = cloud.function_env("SyncProjectFunction")["RECON_SCHEDULE_GROUP"]
    scheduler = cloud.client("scheduler")
    schedule = scheduler.get_schedule(Name="recon-demo", GroupName=group)
    assert schedule["ScheduleExpression"] == "cron(30 9 * * ? *)"
    assert schedule["ScheduleExpressionTimezone"] == "Asia/Shanghai"
    assert json.loads(schedule["Target"]["Input"]) == {"project_id": "demo", "trigger": "schedule"}
    assert (
        schedule["Target"]["RoleArn"] == cloud.function_env("SyncProjectFunction")["RECON_SCHEDULER_ROLE_ARN"]
    )
    rule = next(r for r in cloud.rules if r.startswith("SyncProjectFunction"))
    store = S3ObjectStore()
    store.put(
        cloud.data_bucket,
        project_config_key("demo"),
        PROJECT_TEXT.replace("cron(30 9", "cron(45 11").encode(),
    )
    assert [r["status"] for r in cloud.deliver_rule(rule)] == ["scheduled"]
    assert (
        scheduler.get_schedule(Name="recon-demo", GroupName=group)["ScheduleExpression"]
        == "cron(45 11 * * ? *)"
    )
    store.put(cloud.data_bucket, project_config_key("demo"), b"project_id: demo\naccounts: []\n")
    (invalid,) = cloud.deliver_rule(rule)
    assert invalid["status"] == "invalid" and "accounts" in invalid["detail"]
    assert (
        scheduler.get_schedule(Name="recon-demo", GroupName=group)["ScheduleExpression"]
        == "cron(45 11 * * ? *)"
    )
    assert any("invalid project file" in str(a.get("subject")) for a in cloud.published_alerts())
    cloud.client("s3").delete_object(Bucket=cloud.data_bucket, Key=project_config_key("demo"))
    assert [r["status"] for r in cloud.deliver_rule(rule)] == ["unscheduled"]
    assert scheduler.list_schedules(GroupName=group)["Schedules"] == []


def test_scheduled_run_with_nothing_delivered_alerts(cloud: LocalCloud) -> None:
    result = cloud.wait(_fire_project_schedule(cloud, "demo"))
    assert result.status == "SUCCEEDED", result.summary()
    runs = DynamoRunRepository(cloud.table_name).list_runs("demo")
    assert len(runs) == 1 and runs[0].trigger == "schedule"
    assert runs[0].error and "no statement delivered" in runs[0].error and "bank-cmb" in runs[0].error
    assert "NotifyAlert" in result.entered_states()


def _api_event(path: str, run_id: str) -> dict[str, Any]:
    return {
        "resource": "/runs/{id}",
        "path": path,
        "httpMethod": "GET",
        "headers": {"Accept": "application/json"},
        "multiValueHeaders": {},
        "queryStringParameters": None,
        "multiValueQueryStringParameters": None,
        "pathParameters": {"id": run_id},
        "stageVariables": None,
        "requestContext": {
            "resourcePath": "/runs/{id}",
            "httpMethod": "GET",
            "path": f"/v1{path}",
            "stage": "v1",
            "requestId": "req-1",
            "identity": {"userArn": "arn:aws:iam::123456789012:user/reviewer", "sourceIp": "127.0.0.1"},
        },
        "body": None,
        "isBase64Encoded": False,
    }


def test_review_api_returns_runs_validates_input_and_404s(cloud: LocalCloud) -> None:
    cloud.wait(_fire_project_schedule(cloud, "demo"))
    run_id = DynamoRunRepository(cloud.table_name).list_runs("demo")[0].run_id
    ok = cloud.invoke("ApiFunction", _api_event(f"/runs/{run_id}", run_id))
    assert ok["statusCode"] == 200, ok
    body = json.loads(ok["body"])
    assert body["run"]["run_id"] == run_id and body["run"]["project_id"] == "demo"
    assert "no statement delivered" in body["run"]["error"]
    missing = cloud.invoke("ApiFunction", _api_event("/runs/demo-19990101", "demo-19990101"))
    assert missing["statusCode"] == 404
    bad = cloud.invoke("ApiFunction", _api_event("/runs/DROP%20TABLE", "DROP TABLE"))
    assert bad["statusCode"] == 422
    message = json.loads(bad["body"])["message"]  # which parameter, what is wrong, what is expected
    assert message.startswith("run_id (in the path) is not in the expected form: a run id is ")
