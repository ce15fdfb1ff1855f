"""LocalCloud mechanics on a throwaway SAM app: in-process Lambda, real ASL in moto's interpreter, wiring."""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

import boto3
import pytest
from moto.awslambda.models import LambdaFunction

from recon_local.runtime import LambdaInvocationError, LocalCloud

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


@pytest.fixture
def cloud(mini_app: Path):
    with LocalCloud(mini_app) as c:
        yield c


def test_function_sees_its_resolved_environment_and_context(cloud: LocalCloud) -> None:
    out = cloud.invoke("EchoFunction", {"hello": "world"})

    assert out["event"] == {"hello": "world"}
    env = out["env"]
    assert env["RECON_RAW_BUCKET"] == cloud.raw_bucket == "recon-local-rawbucket"
    assert env["RECON_DATA_BUCKET"] == cloud.data_bucket == "recon-local-data-123456789012"
    assert env["RECON_TABLE_NAME"] == cloud.table_name
    assert env["RECON_ALERT_TOPIC_ARN"] == cloud.alert_topic_arn
    assert env["RECON_STATE_MACHINE_ARN"] == cloud.state_machine_arn
    assert cloud.state_machine_arn == "arn:aws:states:us-east-1:123456789012:stateMachine:recon-local-flow"
    assert env["STAGE"] == "test"
    assert env["ONLY_ECHO"] == "echo-test"  # function-level variable merged with Globals
    assert out["settings_raw_bucket"] == cloud.raw_bucket  # recon.settings cache cleared and re-read
    assert out["function_name"] == cloud.function_name("EchoFunction")
    assert out["memory"] == 256
    assert out["arn"].endswith(":function:recon-local-EchoFunction")
    assert 0 < out["remaining_ms"] <= 30_000
    # the function's variables are applied only for the duration of the call
    assert "ONLY_ECHO" not in os.environ
    assert os.environ.get("RECON_RAW_BUCKET") != cloud.raw_bucket
    assert cloud.function_env("FlakyFunction")["STAGE"] == "test"
    assert "ONLY_ECHO" not in cloud.function_env("FlakyFunction")


def test_env_overrides_win(mini_app: Path) -> None:
    with LocalCloud(mini_app, env_overrides={"STAGE": "override"}) as cloud:
        assert cloud.invoke("EchoFunction", {})["env"]["STAGE"] == "override"
        assert cloud.function_env("EchoFunction")["STAGE"] == "override"


def test_handler_exception_is_a_lambda_function_error(cloud: LocalCloud) -> None:
    with pytest.raises(LambdaInvocationError) as info:
        cloud.invoke("EchoFunction", {"boom": True})
    assert info.value.error_type == "ValueError"
    doc = cloud.invoke("EchoFunction", {"boom": True}, raise_on_error=False)
    assert doc["errorType"] == "ValueError"
    assert doc["errorMessage"] == "boom requested"
    assert any("boom requested" in line or "lambda_handler" in line for line in doc["stackTrace"])


def test_state_machine_runs_real_handlers_with_substitutions(cloud: LocalCloud) -> None:
    definition = cloud.definitions["Flow"]
    assert "${" not in json.dumps(definition)
    fetch_target = definition["States"]["Fetch"]["Parameters"]["FunctionName"]
    assert fetch_target == "arn:aws:lambda:us-east-1:123456789012:function:recon-local-FlakyFunction"

    started = time.monotonic()
    result = cloud.wait(cloud.start_execution({"fetch": {"mode": "ok"}}, name="happy"))

    assert result.status == "SUCCEEDED", result.summary()
    assert result.output["echo"] == {"stage": "test", "function": "recon-local-EchoFunction"}
    assert result.output["fetched"] == {"attempts": 1}
    assert result.entered_states() == ["Echo", "Pause", "Fetch", "Notify", "Done"]
    assert result.events("ExecutionSucceeded")
    assert time.monotonic() - started < 10  # the 3600 s Wait was shortened
    alerts = cloud.published_alerts()
    assert len(alerts) == 1
    assert alerts[0]["subject"] == "flow"
    assert alerts[0]["json"]["echo"]["stage"] == "test"


def test_custom_error_is_retried_then_caught_by_name(cloud: LocalCloud) -> None:
    started = time.monotonic()
    result = cloud.wait(cloud.start_execution({"fetch": {"mode": "never"}}))
    elapsed = time.monotonic() - started

    assert result.status == "SUCCEEDED", result.summary()
    failures = result.task_failures()
    # MaxAttempts 8 in the ASL, at most 2 retries locally: 1 attempt + 2 retries, all StatementNotReady
    assert [error for error, _ in failures] == ["StatementNotReady"] * 3
    assert "not yet" in failures[0][1]
    assert result.output["error"]["Error"] == "StatementNotReady"
    assert json.loads(result.output["error"]["Cause"])["errorType"] == "StatementNotReady"
    assert result.output["outcome"] == "not-ready"
    assert result.entered_states() == ["Echo", "Pause", "Fetch", "NotReady", "Notify", "Done"]
    assert elapsed < 10  # IntervalSeconds 900 (BackoffRate 2) became 1 s, backoff 1


def test_custom_error_retry_then_success(cloud: LocalCloud) -> None:
    result = cloud.wait(cloud.start_execution({"fetch": {"mode": "once"}}))

    assert result.status == "SUCCEEDED", result.summary()
    assert [e for e, _ in result.task_failures()] == ["StatementNotReady"]
    assert result.output["fetched"] == {"attempts": 2}
    assert "NotReady" not in result.entered_states()


def test_fast_retries_shorten_intervals_and_waits(mini_app: Path) -> None:
    with LocalCloud(mini_app) as cloud:
        stored = json.loads(
            boto3.client("stepfunctions").describe_state_machine(stateMachineArn=cloud.state_machine_arn)[
                "definition"
            ]
        )
    retry = stored["States"]["Fetch"]["Retry"][0]
    assert (retry["IntervalSeconds"], retry["MaxAttempts"], retry["BackoffRate"]) == (1, 2, 1.0)
    assert stored["States"]["Pause"]["Seconds"] == 0

    with LocalCloud(mini_app, fast_retries=False) as slow:
        original = slow.definitions["Flow"]
    assert original["States"]["Fetch"]["Retry"][0]["IntervalSeconds"] == 900
    assert original["States"]["Fetch"]["Retry"][0]["MaxAttempts"] == 8
    assert original["States"]["Pause"]["Seconds"] == 3600


def test_resources_follow_the_template(cloud: LocalCloud) -> None:
    s3 = boto3.client("s3")
    assert s3.get_bucket_versioning(Bucket=cloud.raw_bucket)["Status"] == "Enabled"
    assert "Status" not in s3.get_bucket_versioning(Bucket=cloud.data_bucket)
    table = boto3.client("dynamodb").describe_table(TableName=cloud.table_name)["Table"]
    assert {k["AttributeName"]: k["KeyType"] for k in table["KeySchema"]} == {"pk": "HASH", "sk": "RANGE"}
    assert [g["IndexName"] for g in table["GlobalSecondaryIndexes"]] == ["gsi1"]
    assert table["BillingModeSummary"]["BillingMode"] == "PAY_PER_REQUEST"
    boto3.client("sns").get_topic_attributes(TopicArn=cloud.alert_topic_arn)
    ses = boto3.client("ses")
    attrs = ses.get_identity_verification_attributes(Identities=[cloud.sender_email])[
        "VerificationAttributes"
    ]
    assert attrs[cloud.sender_email]["VerificationStatus"] == "Success"
    fn = boto3.client("lambda").get_function(FunctionName=cloud.function_name("FlakyFunction"))[
        "Configuration"
    ]
    assert fn["Timeout"] == 5
    assert fn["Environment"]["Variables"]["RECON_TABLE_NAME"] == cloud.table_name
    sm = boto3.client("stepfunctions").describe_state_machine(stateMachineArn=cloud.state_machine_arn)
    assert sm["name"] == "recon-local-flow"
    assert cloud.skipped == {"Alarm": "AWS::CloudWatch::Alarm"}  # unknown types are skipped, not fatal
    assert cloud.warnings == []
    assert cloud.rules["EchoFunctionUploaded"]["name"] == "recon-local-uploaded"
    schedule = boto3.client("scheduler").get_schedule(Name=cloud.schedules["FlowNightly"]["name"])
    assert schedule["ScheduleExpression"] == "cron(0 2 * * ? *)"
    assert schedule["Target"]["Arn"] == cloud.state_machine_arn


def test_condition_and_parameter_overrides(mini_app: Path) -> None:
    with LocalCloud(mini_app, parameter_overrides={"UseLock": "true", "Stage": "prod"}) as cloud:
        lock = boto3.client("s3").get_object_lock_configuration(Bucket=cloud.raw_bucket)
        assert lock["ObjectLockConfiguration"]["ObjectLockEnabled"] == "Enabled"
        assert cloud.function_env("EchoFunction")["ONLY_ECHO"] == "echo-prod"


def test_sent_emails_are_read_from_ses(cloud: LocalCloud) -> None:
    cloud.invoke("EchoFunction", {"send_email": True})

    emails = cloud.sent_emails()
    assert len(emails) == 1
    assert emails[0]["source"] == cloud.sender_email
    assert emails[0]["subject"] == "report"
    assert emails[0]["html"] == "<h1>ok</h1>"
    assert emails[0]["text"] == "ok"  # moto keeps one body; runtime_ses keeps both parts
    assert emails[0]["destinations"]["ToAddresses"] == ["finance@example.com"]

    cloud.invoke("EchoFunction", {"send_email_v2": True})
    v2 = cloud.sent_emails()[1]
    assert (v2["subject"], v2["text"], v2["html"]) == ("v2", "plain only", None)
    assert v2["destinations"]["ToAddresses"] == ["audit@example.com"]


def test_s3_upload_matches_rule_and_is_delivered_to_its_lambda_target(cloud: LocalCloud) -> None:
    cloud.subscribe_queue_to_rule("EchoFunctionUploaded")
    s3 = boto3.client("s3")
    s3.put_object(Bucket=cloud.raw_bucket, Key="raw/p/a.csv", Body=b"x")
    s3.put_object(Bucket=cloud.raw_bucket, Key="elsewhere/b.csv", Body=b"x")  # outside the rule's prefix

    delivered = cloud.deliver_rule("EchoFunctionUploaded")

    assert len(delivered) == 1
    event = delivered[0]["event"]
    assert event["source"] == "aws.s3"
    assert event["detail-type"] == "Object Created"
    assert event["detail"]["object"]["key"] == "raw/p/a.csv"
    assert event["detail"]["object"]["version-id"]  # versioned bucket
    assert cloud.deliver_rule("EchoFunctionUploaded") == []  # the queue was drained


def test_fire_schedule_starts_the_state_machine_with_its_input(cloud: LocalCloud) -> None:
    arn = cloud.fire_schedule("FlowNightly")
    result = cloud.wait(arn)
    assert result.status == "SUCCEEDED", result.summary()
    assert result.output["stage"] == "test"
    assert result.output["fetched"] == {"attempts": 1}


def test_exit_restores_process_state(mini_app: Path) -> None:
    original = LambdaFunction._invoke_lambda
    env_before = dict(os.environ)
    path_before = list(sys.path)
    with LocalCloud(mini_app) as cloud:
        assert LambdaFunction._invoke_lambda is not original
        cloud.invoke("FlakyFunction", {})
        assert any(name.startswith("_recon_local_fn_") for name in sys.modules)
    assert LambdaFunction._invoke_lambda is original
    assert dict(os.environ) == env_before
    assert sys.path == path_before
    assert not any(name.startswith("_recon_local_fn_") for name in sys.modules)


def test_handler_module_state_is_fresh_per_cloud(mini_app: Path) -> None:
    for _ in range(2):
        with LocalCloud(mini_app) as cloud:
            assert cloud.invoke("FlakyFunction", {})["attempts"] == 1
            assert cloud.invoke("FlakyFunction", {})["attempts"] == 2


def test_missing_template_fails_cleanly(tmp_path: Path) -> None:
    env_before = dict(os.environ)
    with pytest.raises(FileNotFoundError), LocalCloud(tmp_path / "nope.yaml"):
        pass
    assert dict(os.environ) == env_before
    assert LambdaFunction._invoke_lambda.__name__ == "_invoke_lambda"
    assert LambdaFunction._invoke_lambda.__module__ == "moto.awslambda.models"
