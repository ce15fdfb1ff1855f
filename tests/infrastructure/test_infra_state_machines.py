"""ASL definitions: valid per the pinned asl-validator and wired to the DefinitionSubstitutions."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

from tests.infrastructure.helpers import (
    NODE_BIN,
    PLACEHOLDER,
    REPO_ROOT,
    TEMPLATE_PATH,
    run,
    tool,
)

ASL_FILES = sorted((REPO_ROOT / "statemachine").glob("*.asl.json"))
RECONCILE_ASL = REPO_ROOT / "statemachine" / "reconcile.asl.json"
ASL_VALIDATOR_VERSION = "4.0.0"

EXPECTED_RECONCILE_SUBSTITUTIONS = {
    "StartRunFunctionArn",
    "FetchBankFunctionArn",
    "FetchAlipayFunctionArn",
    "FetchWechatFunctionArn",
    "ParseFunctionArn",
    "MatchFunctionArn",
    "ResolveFunctionArn",
    "ReportFunctionArn",
    "AlertTopicArn",
    "DataBucketName",
}


def _asl_validator() -> Path:
    return tool(NODE_BIN / "asl-validator", "npm ci")


def _validate(path: Path) -> tuple[int, str]:
    result = run([str(_asl_validator()), "--json-path", str(path)])
    return result.returncode, result.stdout + result.stderr


def _definition_path(state_machine: Mapping[str, Any]) -> Path:
    uri = state_machine["Properties"]["DefinitionUri"]
    assert isinstance(uri, str), "DefinitionUri must be a local file"
    return (TEMPLATE_PATH.parent / uri).resolve()


def _fake_value(value: Any) -> str:
    """What a substitution resolves to once deployed (account 123456789012, us-east-1)."""
    if isinstance(value, Mapping) and "Fn::GetAtt" in value:
        logical_id, attribute = value["Fn::GetAtt"]
        assert attribute == "Arn"
        return f"arn:aws:lambda:us-east-1:123456789012:function:stack-{logical_id}-AbC123"
    if isinstance(value, Mapping) and "Ref" in value:
        return f"arn:aws:sns:us-east-1:123456789012:stack-{value['Ref']}-AbC123"
    return str(value)


def _substitute(text: str, substitutions: Mapping[str, Any]) -> str:
    def replace(match: re.Match[str]) -> str:
        return _fake_value(substitutions[match.group(1)])

    return PLACEHOLDER.sub(replace, text)


def test_asl_files_exist() -> None:
    assert RECONCILE_ASL in ASL_FILES


def test_asl_validator_is_pinned_exactly() -> None:
    package = json.loads((REPO_ROOT / "package.json").read_text(encoding="utf-8"))
    lock = json.loads((REPO_ROOT / "package-lock.json").read_text(encoding="utf-8"))
    assert package["devDependencies"]["asl-validator"] == ASL_VALIDATOR_VERSION
    assert lock["packages"]["node_modules/asl-validator"]["version"] == ASL_VALIDATOR_VERSION


@pytest.mark.needs_node
@pytest.mark.parametrize("asl_file", ASL_FILES, ids=lambda path: path.name)
def test_asl_validator_accepts_definition(asl_file: Path) -> None:
    returncode, output = _validate(asl_file)
    assert returncode == 0, output
    assert "is valid" in output, output


@pytest.mark.needs_node
def test_asl_validator_accepts_deployed_form(
    state_machines: dict[str, Mapping[str, Any]], tmp_path: Path
) -> None:
    """The definition with every ${X} replaced by what CloudFormation substitutes is valid too."""
    for logical_id, state_machine in state_machines.items():
        text = _definition_path(state_machine).read_text(encoding="utf-8")
        substitutions = state_machine["Properties"]["DefinitionSubstitutions"]
        deployed = _substitute(text, substitutions)
        assert "${" not in deployed
        target = tmp_path / f"{logical_id}.asl.json"
        target.write_text(deployed, encoding="utf-8")
        returncode, output = _validate(target)
        assert returncode == 0, f"{logical_id}: {output}"


@pytest.mark.needs_node
def test_asl_validator_rejects_a_broken_definition(tmp_path: Path) -> None:
    """Guards the guard: a dangling Next must make the validator (and so the test above) fail."""
    definition = json.loads(RECONCILE_ASL.read_text(encoding="utf-8"))
    definition["States"][definition["StartAt"]]["Next"] = "NoSuchState"
    broken = tmp_path / "broken.asl.json"
    broken.write_text(json.dumps(definition), encoding="utf-8")
    returncode, output = _validate(broken)
    assert returncode == 1, output
    assert "NoSuchState" in output


def test_reconcile_state_machine_uses_the_tested_definition(
    state_machines: dict[str, Mapping[str, Any]],
) -> None:
    assert "ReconcileStateMachine" in state_machines
    assert _definition_path(state_machines["ReconcileStateMachine"]) == RECONCILE_ASL.resolve()
    assert RECONCILE_ASL.is_file()


def test_every_placeholder_is_substituted_and_every_substitution_used(
    state_machines: dict[str, Mapping[str, Any]],
) -> None:
    assert state_machines, "no AWS::Serverless::StateMachine in the template"
    for logical_id, state_machine in state_machines.items():
        path = _definition_path(state_machine)
        assert path.is_file(), f"{logical_id}: {path} missing"
        used = set(PLACEHOLDER.findall(path.read_text(encoding="utf-8")))
        declared = set(state_machine["Properties"].get("DefinitionSubstitutions", {}))
        assert used - declared == set(), f"{logical_id}: placeholders without substitution"
        assert declared - used == set(), f"{logical_id}: substitutions never used"


def test_reconcile_substitutions_point_at_the_right_resources(
    template: Mapping[str, Any], state_machines: dict[str, Mapping[str, Any]]
) -> None:
    substitutions = state_machines["ReconcileStateMachine"]["Properties"]["DefinitionSubstitutions"]
    assert set(substitutions) == EXPECTED_RECONCILE_SUBSTITUTIONS
    resources = template["Resources"]
    for key, value in substitutions.items():
        if key == "AlertTopicArn":
            assert value == {"Ref": "AlertTopic"}
            assert resources["AlertTopic"]["Type"] == "AWS::SNS::Topic"
            continue
        if key == "DataBucketName":  # the Distributed Map reads its partition manifest from there
            assert value == {"Ref": "DataBucket"}
            assert resources["DataBucket"]["Type"] == "AWS::S3::Bucket"
            continue
        function_id = key.removesuffix("Arn")
        assert value == {"Fn::GetAtt": [function_id, "Arn"]}, key
        assert resources[function_id]["Type"] == "AWS::Serverless::Function"


def test_state_machine_may_invoke_exactly_the_substituted_functions(
    state_machines: dict[str, Mapping[str, Any]],
) -> None:
    props = state_machines["ReconcileStateMachine"]["Properties"]
    invokable = {
        policy["LambdaInvokePolicy"]["FunctionName"]["Ref"]
        for policy in props["Policies"]
        if isinstance(policy, Mapping) and "LambdaInvokePolicy" in policy
    }
    substituted = {
        key.removesuffix("Arn") for key in props["DefinitionSubstitutions"] if key.endswith("FunctionArn")
    }
    assert invokable == substituted
    topics = [
        policy["SNSPublishMessagePolicy"]["TopicName"]
        for policy in props["Policies"]
        if isinstance(policy, Mapping) and "SNSPublishMessagePolicy" in policy
    ]
    assert topics == [{"Fn::GetAtt": ["AlertTopic", "TopicName"]}]


def test_state_machine_logging_tracing_and_schedule(state_machines: dict[str, Mapping[str, Any]]) -> None:
    props = state_machines["ReconcileStateMachine"]["Properties"]
    assert props["Name"] == {"Fn::Sub": "${AWS::StackName}-reconcile"}
    assert props["Logging"]["Level"] == "ERROR"
    assert props["Logging"]["IncludeExecutionData"] is False
    assert props["Tracing"] == {"Enabled": True}
    # Schedules are per project (created by SyncProjectFunction from each project file), not in the template.
    assert "Events" not in props


def test_project_schedules_can_only_start_the_reconcile_state_machine(template: Mapping[str, Any]) -> None:
    resources = template["Resources"]
    assert resources["ProjectSchedules"]["Type"] == "AWS::Scheduler::ScheduleGroup"
    role = resources["SchedulerRole"]["Properties"]
    (trust,) = role["AssumeRolePolicyDocument"]["Statement"]
    assert trust["Principal"] == {"Service": "scheduler.amazonaws.com"}
    statements = [st for policy in role["Policies"] for st in policy["PolicyDocument"]["Statement"]]
    assert [(st["Action"], st["Resource"]["Fn::Sub"]) for st in statements] == [
        (
            "states:StartExecution",
            "arn:${AWS::Partition}:states:${AWS::Region}:${AWS::AccountId}:stateMachine:"
            "${AWS::StackName}-reconcile",
        )
    ]
    sync = resources["SyncProjectFunction"]["Properties"]
    sync_statements = {st["Sid"]: st for p in sync["Policies"] for st in p["Statement"]}
    assert sync_statements["PassSchedulerRole"]["Resource"] == {"Fn::GetAtt": ["SchedulerRole", "Arn"]}
    assert sync_statements["PassSchedulerRole"]["Condition"] == {
        "StringEquals": {"iam:PassedToService": "scheduler.amazonaws.com"}
    }
    assert sync_statements["ManageProjectSchedules"]["Resource"]["Fn::Sub"].endswith(
        ":schedule/${ProjectSchedules}/*"
    )
