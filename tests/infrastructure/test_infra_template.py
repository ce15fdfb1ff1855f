"""Template rules: least-privilege IAM, layers per function, wiring that the local runtime relies on."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

from tests.infrastructure.helpers import REPO_ROOT, TEMPLATE_PATH, as_list, iter_policy_statements

FUNCTION_FOLDERS = {
    "StartRunFunction": "start_run",
    "FetchBankFunction": "fetch_bank",
    "FetchAlipayFunction": "fetch_alipay",
    "FetchWechatFunction": "fetch_wechat",
    "ParseFunction": "parse",
    "ExtractPdfFunction": "extract_pdf",
    "MatchFunction": "match",
    "ResolveFunction": "resolve",
    "ReportFunction": "report",
    "ApiFunction": "api",
    "SyncProjectFunction": "sync_project",
}
WITHOUT_PANDAS = {
    "StartRunFunction",
    "FetchBankFunction",
    "FetchAlipayFunction",
    "FetchWechatFunction",
    "ExtractPdfFunction",
    "ReportFunction",
    "ApiFunction",
    "SyncProjectFunction",
}
PANDAS = {"Ref": "PandasLayerArn"}
COMMON = {"Ref": "CommonLayer"}

# Actions that have no resource-level permissions, where AWS requires Resource "*".
RESOURCE_STAR_ALLOWED_ACTIONS = {
    # CloudWatch Logs vended-log delivery (Step Functions logging)
    "logs:CreateLogDelivery",
    "logs:GetLogDelivery",
    "logs:UpdateLogDelivery",
    "logs:DeleteLogDelivery",
    "logs:ListLogDeliveries",
    "logs:PutResourcePolicy",
    "logs:DescribeResourcePolicies",
    "logs:DescribeLogGroups",
    # X-Ray and CloudWatch metrics
    "xray:PutTraceSegments",
    "xray:PutTelemetryRecords",
    "cloudwatch:PutMetricData",
}
ALLOWED_SAM_POLICY_TEMPLATES = {"LambdaInvokePolicy", "SNSPublishMessagePolicy"}

STATE_MACHINE_ARN = (
    "arn:${AWS::Partition}:states:${AWS::Region}:${AWS::AccountId}:stateMachine:${AWS::StackName}-reconcile"
)


def _statement_actions(function: Mapping[str, Any]) -> set[str]:
    actions: set[str] = set()
    for policy in function["Properties"].get("Policies", []):
        if isinstance(policy, Mapping) and "Statement" in policy:
            for statement in policy["Statement"]:
                if statement["Effect"] == "Allow":
                    actions.update(as_list(statement["Action"]))
    return actions


def _statements(function: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    return [
        statement
        for policy in function["Properties"].get("Policies", [])
        if isinstance(policy, Mapping) and "Statement" in policy
        for statement in policy["Statement"]
    ]


# ------------------------------------------------------------------------------------------------ IAM
def test_policy_statements_are_found(template: Mapping[str, Any]) -> None:
    owners = {owner for owner, _ in iter_policy_statements(template)}
    assert set(FUNCTION_FOLDERS) <= owners
    assert {"RawBucketPolicy", "DataBucketPolicy", "ReconcileStateMachine", "DataKey"} <= owners


def test_no_allow_statement_grants_wildcard_actions(template: Mapping[str, Any]) -> None:
    offenders = []
    for owner, statement in iter_policy_statements(template):
        if statement.get("Effect") != "Allow":
            continue  # broad Deny statements (e.g. "deny s3:* without TLS") only take rights away
        assert "NotAction" not in statement, f"{owner}: Allow with NotAction"
        for action in as_list(statement.get("Action", [])):
            if action == "*" or action.endswith(":*") or action in {"s3:*", "dynamodb:*"}:
                offenders.append((owner, statement.get("Sid"), action))
    assert offenders == []


def test_resource_star_only_where_aws_requires_it(template: Mapping[str, Any]) -> None:
    resource_types = {lid: res["Type"] for lid, res in template["Resources"].items()}
    offenders = []
    for owner, statement in iter_policy_statements(template):
        if statement.get("Effect") != "Allow" or "*" not in as_list(statement.get("Resource", [])):
            continue
        if resource_types[owner] == "AWS::KMS::Key":
            continue  # in a key policy, Resource "*" means the key itself
        extra = set(as_list(statement["Action"])) - RESOURCE_STAR_ALLOWED_ACTIONS
        if extra:
            offenders.append((owner, statement.get("Sid"), sorted(extra)))
    assert offenders == []


def test_resource_star_exceptions_are_commented() -> None:
    lines = TEMPLATE_PATH.read_text(encoding="utf-8").splitlines()
    for number, line in enumerate(lines):
        if re.search(r'Resource:\s*"\*"', line):
            context = "\n".join(lines[max(0, number - 16) : number + 1])
            assert "#" in line or "requires" in context, f"line {number + 1}: undocumented Resource '*'"


def test_only_scoped_sam_policy_templates(template: Mapping[str, Any]) -> None:
    for logical_id, resource in template["Resources"].items():
        if resource["Type"] == "AWS::IAM::Role":
            continue  # inline role policies are plain statements, checked by the wildcard tests
        for policy in resource.get("Properties", {}).get("Policies", []) or []:
            assert not isinstance(policy, str), f"{logical_id}: managed/named policy {policy!r}"
            if "Statement" in policy:
                continue
            (name, parameters), *rest = policy.items()
            assert rest == []
            assert name in ALLOWED_SAM_POLICY_TEMPLATES, f"{logical_id}: {name}"
            for value in parameters.values():
                assert isinstance(value, Mapping), f"{logical_id}: {name} not scoped to a resource"
                assert {"Ref", "Fn::GetAtt"} & set(value), f"{logical_id}: {name} {value}"


def test_api_function_only_reads(functions: Mapping[str, Mapping[str, Any]]) -> None:
    """The run record from the table and the run's report digest from S3, nothing written."""
    actions = _statement_actions(functions["ApiFunction"])
    assert actions
    assert actions <= {
        "dynamodb:GetItem",
        "dynamodb:BatchGetItem",
        "dynamodb:Query",
        "s3:GetObject",
        "kms:Decrypt",
    }


def test_s3_object_statements_are_scoped_to_a_prefix(template: Mapping[str, Any]) -> None:
    """Object actions name `<bucket>/<prefix>/*` (or one file name under it), never a whole bucket."""
    for owner, statement in iter_policy_statements(template):
        if statement.get("Effect") != "Allow":
            continue
        actions = as_list(statement["Action"])
        if not any(a.startswith("s3:") and a != "s3:ListBucket" for a in actions):
            continue
        for resource in as_list(statement["Resource"]):
            sub = resource.get("Fn::Sub", "") if isinstance(resource, Mapping) else resource
            assert re.fullmatch(
                r"\$\{(Raw|Data)Bucket\.Arn\}/[a-z][a-z-]*(/[a-z-]+)*/\*(/[a-z]+\.[a-z]+)?", sub
            ), (
                owner,
                statement["Sid"],
            )


def test_list_bucket_is_limited_by_prefix(template: Mapping[str, Any]) -> None:
    found = 0
    for owner, statement in iter_policy_statements(template):
        if statement.get("Effect") == "Allow" and "s3:ListBucket" in as_list(statement["Action"]):
            found += 1
            prefixes = statement["Condition"]["StringLike"]["s3:prefix"]
            assert all(p.endswith("/*") and p != "*" for p in as_list(prefixes)), owner
    assert found >= 4


def test_ses_send_restricted_to_sender(functions: Mapping[str, Mapping[str, Any]]) -> None:
    ses = [
        s
        for name, fn in functions.items()
        for s in _statements(fn)
        if any(a.startswith("ses:") for a in as_list(s["Action"]))
        for _ in [name]
    ]
    assert len(ses) == 1
    statement = ses[0]
    assert set(statement["Action"]) == {"ses:SendEmail", "ses:SendRawEmail"}
    assert statement["Condition"] == {"StringEquals": {"ses:FromAddress": {"Ref": "SenderEmail"}}}
    assert statement["Resource"]["Fn::Sub"].endswith(":identity/${SenderEmail}")
    holders = [name for name, fn in functions.items() if "ses:SendEmail" in _statement_actions(fn)]
    assert holders == ["ReportFunction"]


def test_state_machine_arn_is_built_from_its_fixed_name(
    template: Mapping[str, Any], functions: Mapping[str, Mapping[str, Any]]
) -> None:
    env = template["Globals"]["Function"]["Environment"]["Variables"]
    assert env["RECON_STATE_MACHINE_ARN"] == {"Fn::Sub": STATE_MACHINE_ARN}
    start = [s for s in _statements(functions["ParseFunction"]) if s["Action"] == "states:StartExecution"]
    assert [s["Resource"] for s in start] == [{"Fn::Sub": STATE_MACHINE_ARN}]
    name = template["Resources"]["ReconcileStateMachine"]["Properties"]["Name"]["Fn::Sub"]
    assert STATE_MACHINE_ARN.endswith(":stateMachine:" + name)
    others = [n for n, fn in functions.items() if "states:StartExecution" in _statement_actions(fn)]
    assert others == ["ParseFunction"]


def test_secrets_only_for_fetchers(functions: Mapping[str, Mapping[str, Any]]) -> None:
    holders = {n for n, fn in functions.items() if "secretsmanager:GetSecretValue" in _statement_actions(fn)}
    assert holders == {"FetchBankFunction", "FetchAlipayFunction", "FetchWechatFunction"}
    # Each fetcher only its provider's namespace (test_infra_data_access.py evaluates these statements).
    namespaces = {
        "FetchBankFunction": "bank",
        "FetchAlipayFunction": "alipay",
        "FetchWechatFunction": "wechat",
    }
    for name in holders:
        (statement,) = [
            s for s in _statements(functions[name]) if s["Action"] == "secretsmanager:GetSecretValue"
        ]
        assert statement["Resource"]["Fn::Sub"].endswith(f":secret:recon/{namespaces[name]}/*"), name


# ------------------------------------------------------------------------------------------- functions
def test_function_set_and_code_folders(functions: Mapping[str, Mapping[str, Any]]) -> None:
    assert set(functions) == set(FUNCTION_FOLDERS)
    for logical_id, folder in FUNCTION_FOLDERS.items():
        code_uri = functions[logical_id]["Properties"]["CodeUri"]
        assert code_uri == f"../functions/{folder}/"
        app = (TEMPLATE_PATH.parent / code_uri / "app.py").resolve()
        assert app == REPO_ROOT / "functions" / folder / "app.py"
        assert app.is_file(), f"{app} missing"
        assert "def lambda_handler(" in app.read_text(encoding="utf-8"), app


def test_runtime_architecture_handler_and_tracing(
    template: Mapping[str, Any], functions: Mapping[str, Mapping[str, Any]]
) -> None:
    globals_fn = template["Globals"]["Function"]
    assert globals_fn["Runtime"] == "python3.12"
    assert globals_fn["Architectures"] == ["arm64"]
    assert globals_fn["Handler"] == "app.lambda_handler"
    assert globals_fn["Tracing"] == "Active"
    assert globals_fn["LoggingConfig"]["LogFormat"] == "JSON"
    for logical_id, function in functions.items():
        for key in ("Runtime", "Architectures", "Handler"):
            assert key not in function["Properties"], f"{logical_id} overrides {key}"


def test_pandas_layer_only_where_dataframes_are_needed(functions: Mapping[str, Mapping[str, Any]]) -> None:
    without = {name for name, fn in functions.items() if PANDAS not in fn["Properties"].get("Layers", [])}
    assert without == WITHOUT_PANDAS
    for name, function in functions.items():
        layers = function["Properties"]["Layers"]
        assert COMMON in layers, name
        if PANDAS in layers:
            # CommonLayer last, so our pinned copies win over the pandas layer's for shared packages
            assert layers == [PANDAS, COMMON], name


def test_common_layer_builds_for_arm64(template: Mapping[str, Any]) -> None:
    layer = template["Resources"]["CommonLayer"]
    assert layer["Type"] == "AWS::Serverless::LayerVersion"
    assert layer["Properties"]["ContentUri"] == "../layers/common/"
    assert layer["Properties"]["CompatibleRuntimes"] == ["python3.12"]
    assert layer["Properties"]["CompatibleArchitectures"] == ["arm64"]
    assert layer["Metadata"] == {"BuildMethod": "python3.12", "BuildArchitecture": "arm64"}
    content = (TEMPLATE_PATH.parent / layer["Properties"]["ContentUri"]).resolve()
    assert (content / "requirements.txt").is_file()
    assert (content / "recon" / "__init__.py").is_file()


def test_pandas_layer_parameter_default(template: Mapping[str, Any]) -> None:
    parameter = template["Parameters"]["PandasLayerArn"]
    assert re.fullmatch(parameter["AllowedPattern"], parameter["Default"])
    assert ":336392948345:layer:AWSSDKPandas-Python312-Arm64:" in parameter["Default"]
    assert "differs by region" in parameter["Description"]


def test_environment_variables(template: Mapping[str, Any]) -> None:
    env = template["Globals"]["Function"]["Environment"]["Variables"]
    assert env["RECON_RAW_BUCKET"] == {"Ref": "RawBucket"}
    assert env["RECON_DATA_BUCKET"] == {"Ref": "DataBucket"}
    assert env["RECON_TABLE_NAME"] == {"Ref": "RunsTable"}
    assert env["RECON_ALERT_TOPIC_ARN"] == {"Ref": "AlertTopic"}
    assert env["RECON_SENDER_EMAIL"] == {"Ref": "SenderEmail"}
    assert env["RECON_REPORT_RECIPIENTS"] == {"Ref": "ReportRecipients"}
    assert env["POWERTOOLS_SERVICE_NAME"] == "recon"
    assert env["POWERTOOLS_METRICS_NAMESPACE"] == "Recon"
    assert env["POWERTOOLS_LOG_LEVEL"] == "INFO"


def test_every_function_logs_to_its_own_group_with_retention(
    template: Mapping[str, Any], functions: Mapping[str, Mapping[str, Any]]
) -> None:
    groups = set()
    for name, function in functions.items():
        ref = function["Properties"]["LoggingConfig"]["LogGroup"]["Ref"]
        group = template["Resources"][ref]
        assert group["Type"] == "AWS::Logs::LogGroup", name
        assert group["Properties"]["RetentionInDays"] == {"Ref": "LogRetentionDays"}, name
        groups.add(ref)
    assert len(groups) == len(functions)


def test_parse_function_event_rule(functions: Mapping[str, Mapping[str, Any]]) -> None:
    props = functions["ParseFunction"]["Properties"]
    assert (props["Timeout"], props["MemorySize"]) == (300, 2048)
    (event,) = props["Events"].values()
    assert event["Type"] == "EventBridgeRule"
    pattern = event["Properties"]["Pattern"]
    assert pattern["source"] == ["aws.s3"]
    assert pattern["detail-type"] == ["Object Created"]
    assert pattern["detail"]["bucket"]["name"] == [{"Ref": "RawBucket"}]
    assert pattern["detail"]["object"]["key"] == [{"prefix": "raw/"}]
    assert "MaximumRetryAttempts" in event["Properties"]["RetryPolicy"]
    assert event["Properties"]["DeadLetterConfig"] == {
        "Arn": {"Fn::GetAtt": ["ParseEventsDeadLetterQueue", "Arn"]}
    }


def test_timeouts_and_memory(functions: Mapping[str, Mapping[str, Any]]) -> None:
    props = {name: fn["Properties"] for name, fn in functions.items()}
    for fetcher in ("FetchBankFunction", "FetchAlipayFunction", "FetchWechatFunction"):
        assert props[fetcher]["Timeout"] == 300
    assert (props["MatchFunction"]["Timeout"], props["MatchFunction"]["MemorySize"]) == (900, 3008)
    # resolve and report at 5M x 5M rows a side: 4.7 GiB and 1,007 MiB (docs/matching.md)
    assert (props["ResolveFunction"]["Timeout"], props["ResolveFunction"]["MemorySize"]) == (300, 7168)
    assert (props["ReportFunction"]["Timeout"], props["ReportFunction"]["MemorySize"]) == (120, 2048)


def test_review_api_is_iam_authenticated_logged_and_throttled(
    template: Mapping[str, Any], functions: Mapping[str, Mapping[str, Any]]
) -> None:
    api = template["Resources"]["ReviewApi"]["Properties"]
    assert api["StageName"] == "v1"
    assert api["Auth"]["DefaultAuthorizer"] == "AWS_IAM"
    assert "DestinationArn" in api["AccessLogSetting"]
    json.loads(api["AccessLogSetting"]["Format"])  # a JSON access-log line
    settings = api["MethodSettings"][0]
    assert settings["ThrottlingRateLimit"] > 0 and settings["ThrottlingBurstLimit"] > 0
    (event,) = functions["ApiFunction"]["Properties"]["Events"].values()
    assert event == {
        "Type": "Api",
        "Properties": {"RestApiId": {"Ref": "ReviewApi"}, "Path": "/runs/{id}", "Method": "GET"},
    }


# ------------------------------------------------------------------------------------------- storage
def test_buckets_are_private_encrypted_and_tls_only(template: Mapping[str, Any]) -> None:
    resources = template["Resources"]
    for bucket in ("RawBucket", "DataBucket"):
        props = resources[bucket]["Properties"]
        assert set(props["PublicAccessBlockConfiguration"].values()) == {True}, bucket
        (rule,) = props["BucketEncryption"]["ServerSideEncryptionConfiguration"]
        assert rule["ServerSideEncryptionByDefault"]["SSEAlgorithm"] in {"aws:kms", "AES256"}
        assert props["OwnershipControls"]["Rules"] == [{"ObjectOwnership": "BucketOwnerEnforced"}]
        policies = [
            res["Properties"]
            for res in resources.values()
            if res["Type"] == "AWS::S3::BucketPolicy" and res["Properties"]["Bucket"] == {"Ref": bucket}
        ]
        assert len(policies) == 1, bucket
        denies_plain_http = [
            s
            for s in policies[0]["PolicyDocument"]["Statement"]
            if s["Effect"] == "Deny" and s.get("Condition") == {"Bool": {"aws:SecureTransport": "false"}}
        ]
        assert denies_plain_http, bucket
    raw = resources["RawBucket"]["Properties"]
    assert raw["VersioningConfiguration"] == {"Status": "Enabled"}
    # A re-run replaces the day's report and results under the same keys: the replaced versions are kept.
    data = resources["DataBucket"]["Properties"]
    assert data["VersioningConfiguration"] == {"Status": "Enabled"}
    (replaced,) = [r for r in data["LifecycleConfiguration"]["Rules"] if "NoncurrentVersionExpiration" in r]
    assert replaced["NoncurrentVersionExpiration"] == {"NoncurrentDays": {"Ref": "NoncurrentRetentionDays"}}
    assert not [r for r in data["LifecycleConfiguration"]["Rules"] if "ExpirationInDays" in r]
    assert raw["NotificationConfiguration"] == {"EventBridgeConfiguration": {"EventBridgeEnabled": True}}


def test_runs_table_shape(template: Mapping[str, Any]) -> None:
    table = template["Resources"]["RunsTable"]["Properties"]
    assert table["BillingMode"] == "PAY_PER_REQUEST"
    assert table["KeySchema"] == [
        {"AttributeName": "pk", "KeyType": "HASH"},
        {"AttributeName": "sk", "KeyType": "RANGE"},
    ]
    (gsi,) = table["GlobalSecondaryIndexes"]
    assert gsi["IndexName"] == "gsi1"
    assert [k["AttributeName"] for k in gsi["KeySchema"]] == ["gsi1pk", "gsi1sk"]
    assert gsi["Projection"] == {"ProjectionType": "ALL"}
    assert {a["AttributeName"]: a["AttributeType"] for a in table["AttributeDefinitions"]} == {
        "pk": "S",
        "sk": "S",
        "gsi1pk": "S",
        "gsi1sk": "S",
    }
    assert table["SSESpecification"]["SSEEnabled"] is True
    assert table["PointInTimeRecoverySpecification"]["PointInTimeRecoveryEnabled"] is True
    assert table["DeletionProtectionEnabled"] == {"Ref": "TableDeletionProtection"}


def test_outputs(template: Mapping[str, Any]) -> None:
    assert {
        "RawBucketName",
        "DataBucketName",
        "RunsTableName",
        "StateMachineArn",
        "ReviewApiUrl",
        "AlertTopicArn",
    } <= set(template["Outputs"])
