"""The real infra/template.yaml, created in moto by LocalCloud: every declared resource exists as declared."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import boto3
import pytest

from recon_local.cfn_template import Template
from recon_local.runtime import DEFAULT_TEMPLATE, LocalCloud

REPO = Path(__file__).resolve().parents[3]
TEMPLATE = REPO / "infra" / "template.yaml"

pytestmark = pytest.mark.skipif(not TEMPLATE.exists(), reason="infra/template.yaml not written yet")


@pytest.fixture(scope="module")
def cloud():
    with LocalCloud(TEMPLATE) as c:
        yield c


def _tasks(definition: dict[str, Any]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for state in definition["States"].values():
        if state["Type"] == "Task":
            out.append(state)
        for key in ("ItemProcessor", "Iterator"):
            if key in state:
                out.extend(_tasks(state[key]))
        for branch in state.get("Branches", []):
            out.extend(_tasks(branch))
    return out


def test_default_template_is_the_repo_template() -> None:
    assert DEFAULT_TEMPLATE == TEMPLATE


def test_every_declared_resource_exists(cloud: LocalCloud) -> None:
    tpl: Template = cloud.template
    assert cloud.warnings == []  # nothing declared was refused by moto
    s3, ddb, sns = boto3.client("s3"), boto3.client("dynamodb"), boto3.client("sns")
    lam, sfn = boto3.client("lambda"), boto3.client("stepfunctions")
    buckets = tpl.of_type("AWS::S3::Bucket")
    assert len(buckets) >= 2
    existing = {b["Name"] for b in s3.list_buckets()["Buckets"]}
    assert {cloud.physical(b.logical_id) for b in buckets} <= existing
    for table in tpl.of_type("AWS::DynamoDB::Table"):
        assert (
            ddb.describe_table(TableName=cloud.physical(table.logical_id))["Table"]["TableStatus"] == "ACTIVE"
        )
    for topic in tpl.of_type("AWS::SNS::Topic"):
        sns.get_topic_attributes(TopicArn=cloud.physical(topic.logical_id))
    functions = tpl.of_type("AWS::Serverless::Function")
    assert functions
    for fn in functions:
        conf = lam.get_function(FunctionName=cloud.function_name(fn.logical_id))["Configuration"]
        assert conf["Environment"]["Variables"] == cloud.function_env(fn.logical_id)
    machines = tpl.of_type("AWS::Serverless::StateMachine")
    assert machines
    for sm in machines:
        assert sfn.describe_state_machine(stateMachineArn=cloud.physical(sm.logical_id))["status"] == "ACTIVE"


def test_raw_bucket_is_versioned_and_sends_events_to_eventbridge(cloud: LocalCloud) -> None:
    s3 = boto3.client("s3")
    assert s3.get_bucket_versioning(Bucket=cloud.raw_bucket)["Status"] == "Enabled"
    assert cloud.raw_bucket != cloud.data_bucket
    rules_on_raw = [
        logical
        for logical, rule in cloud.rules.items()
        if rule["pattern"] and cloud.raw_bucket in json.dumps(rule["pattern"])
    ]
    assert rules_on_raw, "no EventBridge rule listens to the raw bucket"
    url = cloud.subscribe_queue_to_rule(rules_on_raw[0])
    s3.put_object(Bucket=cloud.raw_bucket, Key="raw/demo/acct/2024-05-01/statement.csv", Body=b"x")
    events = cloud.read_queue(url)
    assert [e["detail"]["object"]["key"] for e in events] == ["raw/demo/acct/2024-05-01/statement.csv"]


def test_table_key_schema_and_gsi(cloud: LocalCloud) -> None:
    table = boto3.client("dynamodb").describe_table(TableName=cloud.table_name)["Table"]
    assert {k["AttributeName"]: k["KeyType"] for k in table["KeySchema"]} == {"pk": "HASH", "sk": "RANGE"}
    gsis = {g["IndexName"]: g for g in table.get("GlobalSecondaryIndexes", [])}
    assert "gsi1" in gsis
    declared = next(r for r in cloud.template.of_type("AWS::DynamoDB::Table") if r.logical_id)
    billing = declared.properties.get("BillingMode", "PROVISIONED")
    assert table["BillingModeSummary"]["BillingMode"] == billing


def test_functions_point_at_existing_handlers_and_resources(cloud: LocalCloud) -> None:
    for logical in cloud.function_ids:
        spec = cloud.runtime.functions[cloud.function_name(logical)]
        module = spec.handler.rpartition(".")[0].replace(".", "/")
        assert (spec.code_dir / f"{module}.py").is_file(), f"{logical}: {spec.code_dir}/{module}.py missing"
        env = cloud.function_env(logical)
        assert env["RECON_RAW_BUCKET"] == cloud.raw_bucket
        assert env["RECON_DATA_BUCKET"] == cloud.data_bucket
        assert env["RECON_TABLE_NAME"] == cloud.table_name
        for layer in spec.layer_dirs:
            assert layer.is_dir(), f"{logical}: layer source {layer} missing"


def test_state_machine_definition_is_fully_substituted(cloud: LocalCloud) -> None:
    sfn = boto3.client("stepfunctions")
    assert sfn.describe_state_machine(stateMachineArn=cloud.state_machine_arn)["status"] == "ACTIVE"
    function_arns = {cloud.arn(logical) for logical in cloud.function_ids}
    for logical, definition in cloud.definitions.items():
        text = json.dumps(definition)
        assert "${" not in text, f"{logical}: unresolved DefinitionSubstitutions"
        for task in _tasks(definition):
            target = task.get("Parameters", {}).get("FunctionName")
            if target is not None:
                assert target in function_arns, f"{logical}: task targets unknown function {target}"
            topic = task.get("Parameters", {}).get("TopicArn")
            if topic is not None:
                assert topic == cloud.alert_topic_arn
            for retrier in task.get("Retry", []):
                assert retrier["IntervalSeconds"] == 1
                assert retrier["MaxAttempts"] <= 2


def test_sender_identity_is_verified(cloud: LocalCloud) -> None:
    attrs = boto3.client("ses").get_identity_verification_attributes(Identities=[cloud.sender_email])
    assert attrs["VerificationAttributes"][cloud.sender_email]["VerificationStatus"] == "Success"
