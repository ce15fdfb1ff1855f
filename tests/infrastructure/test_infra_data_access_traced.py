"""Every DynamoDB, Secrets Manager and S3 call a local day really makes is allowed by the calling function's
policy in infra/template.yaml.

moto does not enforce IAM: the integration and workflow tests would pass under any policy. So this test runs
a day through the local runtime (the real handlers, the deployed ASL, moto), records each call at the
botocore level together with the function that made it, and evaluates it against that function's
statements (iam_policy.py). A call the narrowed policy would refuse in AWS fails here. It also checks the
other way: each grant of test_infra_data_access.EXPECTED_TABLE_ACCESS is used by some call (no dead grants).

Paths covered: the project-file trigger (SyncProject), S3 uploads parsed on arrival (Parse, ingest_upload),
the run they start (StartRun, the three fetchers on upload delivery, Parse, Match, Resolve, Report), a
re-run of the same day (replace_results replacing the first run's results), the failure path of Report
(record_failure) and the review API. API/SFTP fetching with secrets is covered statically (the secret
names a fetcher may read) and by tests/workflow/test_fetch_retry.py for its behaviour.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator, Mapping
from datetime import date
from decimal import Decimal
from fnmatch import fnmatchcase
from pathlib import Path
from typing import Any
from unittest import mock

import botocore.client
import pytest

from recon.adapters.s3 import S3ObjectStore
from recon.keys import project_config_key, raw_key
from recon_local.demo_data import generate_day
from recon_local.runtime import LocalCloud
from tests.infrastructure.iam_policy import (
    DATA_BUCKET_ARN,
    RAW_BUCKET_ARN,
    TABLE_ARN,
    Request,
    allowed,
    function_statements,
    index_arn,
    secret_arn,
)
from tests.infrastructure.test_infra_data_access import EXPECTED_INDEX_ACCESS, EXPECTED_TABLE_ACCESS

REPO = Path(__file__).resolve().parents[2]
PROJECT_TEXT = (REPO / "local/recon_local/projects/demo.yaml").read_text("utf-8")
DAY = date(2026, 11, 20)
_EQUALS = re.compile(r"(#\w+)\s*=\s*(:\w+)")


def _key_value(params: Mapping[str, Any], attribute: str) -> str:
    """The value a Query's KeyConditionExpression binds the partition key attribute to."""
    names = params.get("ExpressionAttributeNames", {})
    for name, value in _EQUALS.findall(params["KeyConditionExpression"]):
        if names.get(name, name) == attribute:
            return str(params["ExpressionAttributeValues"][value]["S"])
    raise AssertionError(f"no {attribute} equality in {params['KeyConditionExpression']!r}")


def to_requests(service: str, operation: str, params: Mapping[str, Any]) -> list[Request]:
    """The IAM request(s) one API call amounts to (action, resource ARN, partition keys)."""
    action = f"{service}:{operation}"
    if service == "secretsmanager":
        assert operation == "GetSecretValue", operation
        return [Request(action, secret_arn(params["SecretId"]))]
    assert service == "dynamodb", service
    if operation in {"GetItem", "DeleteItem", "UpdateItem"}:
        return [Request(action, TABLE_ARN, (params["Key"]["pk"]["S"],))]
    if operation == "PutItem":
        return [Request(action, TABLE_ARN, (params["Item"]["pk"]["S"],))]
    if operation == "Query":
        if "IndexName" in params:
            return [Request(action, index_arn(params["IndexName"]), (_key_value(params, "gsi1pk"),))]
        return [Request(action, TABLE_ARN, (_key_value(params, "pk"),))]
    if operation == "BatchWriteItem":
        (writes,) = params["RequestItems"].values()
        keys = tuple(
            (w["PutRequest"]["Item"] if "PutRequest" in w else w["DeleteRequest"]["Key"])["pk"]["S"]
            for w in writes
        )
        return [Request(action, TABLE_ARN, keys)]
    raise AssertionError(f"no IAM translation for {action}: add one before using it")


_S3_ACTIONS = {
    "GetObject": "s3:GetObject",
    "HeadObject": "s3:GetObject",  # HEAD is authorised as GetObject
    "PutObject": "s3:PutObject",
    "CreateMultipartUpload": "s3:PutObject",
    "UploadPart": "s3:PutObject",
    "CompleteMultipartUpload": "s3:PutObject",
    "AbortMultipartUpload": "s3:AbortMultipartUpload",
    "DeleteObject": "s3:DeleteObject",
}


def s3_requests(operation: str, params: Mapping[str, Any], bucket_arns: Mapping[str, str]) -> list[Request]:
    """The IAM request(s) one S3 call amounts to (object ARN, or bucket ARN and prefix for a listing)."""
    bucket = bucket_arns[params["Bucket"]]
    if operation in {"ListObjectsV2", "ListObjects"}:
        return [Request("s3:ListBucket", bucket, s3_prefix=params.get("Prefix", ""))]
    if operation == "CopyObject":
        source = params["CopySource"]
        source_bucket, _, source_key = (
            (source["Bucket"], "/", source["Key"]) if isinstance(source, Mapping) else source.partition("/")
        )
        return [
            Request("s3:GetObject", f"{bucket_arns[source_bucket]}/{source_key}"),
            Request("s3:PutObject", f"{bucket}/{params['Key']}"),
        ]
    if operation not in _S3_ACTIONS:
        raise AssertionError(f"no IAM translation for s3:{operation}: add one before using it")
    return [Request(_S3_ACTIONS[operation], f"{bucket}/{params['Key']}")]


@pytest.fixture(scope="module")
def traced() -> Iterator[tuple[list[tuple[str, Request, str]], list[tuple[str, Request, str]]]]:
    """(function logical id, IAM request, operation) for every data call made inside a handler: DynamoDB
    and Secrets Manager calls, then S3 calls."""
    calls: list[tuple[str, Request, str]] = []
    s3_calls: list[tuple[str, Request, str]] = []
    original = botocore.client.BaseClient._make_request
    original_api_call = botocore.client.BaseClient._make_api_call

    with LocalCloud() as cloud:
        logical_by_name = {cloud.function_name(lid): lid for lid in cloud.function_ids}
        bucket_arns = {cloud.raw_bucket: RAW_BUCKET_ARN, cloud.data_bucket: DATA_BUCKET_ARN}

        def recording(client: Any, operation_model: Any, request_dict: Any, request_context: Any) -> Any:
            service = client.meta.service_model.service_name
            function = os.environ.get("AWS_LAMBDA_FUNCTION_NAME")
            if function in logical_by_name and service in {"dynamodb", "secretsmanager"}:
                params = json.loads(request_dict["body"] or b"{}")
                for request in to_requests(service, operation_model.name, params):
                    calls.append((logical_by_name[function], request, operation_model.name))
            return original(client, operation_model, request_dict, request_context)

        def recording_s3(client: Any, operation_name: str, api_params: Any) -> Any:
            function = os.environ.get("AWS_LAMBDA_FUNCTION_NAME")
            if function in logical_by_name and client.meta.service_model.service_name == "s3":
                for request in s3_requests(operation_name, api_params, bucket_arns):
                    s3_calls.append((logical_by_name[function], request, operation_name))
            return original_api_call(client, operation_name, api_params)

        with (
            mock.patch.object(botocore.client.BaseClient, "_make_request", recording),
            mock.patch.object(botocore.client.BaseClient, "_make_api_call", recording_s3),
        ):
            _a_day(cloud)
    yield calls, s3_calls


@pytest.fixture(scope="module")
def traced_calls(
    traced: tuple[list[tuple[str, Request, str]], list[tuple[str, Request, str]]],
) -> list[tuple[str, Request, str]]:
    return traced[0]


@pytest.fixture(scope="module")
def traced_s3_calls(
    traced: tuple[list[tuple[str, Request, str]], list[tuple[str, Request, str]]],
) -> list[tuple[str, Request, str]]:
    return traced[1]


def _a_day(cloud: LocalCloud) -> None:
    store = S3ObjectStore()
    sync_rule = next(r for r in cloud.rules if r.startswith("SyncProjectFunction"))
    cloud.subscribe_queue_to_rule(sync_rule)
    store.put(cloud.data_bucket, project_config_key("demo"), PROJECT_TEXT.encode())
    assert [r["status"] for r in cloud.deliver_rule(sync_rule)] == ["scheduled"]

    parse_rule = next(r for r in cloud.rules if r.startswith("ParseFunction"))
    cloud.subscribe_queue_to_rule(parse_rule)
    day = generate_day(DAY)
    for account_id, (name, data) in sorted(day.files.items()):
        store.put(cloud.raw_bucket, raw_key("demo", account_id, day.statement_dates[account_id], name), data)
    assert len(cloud.deliver_rule(parse_rule)) == len(day.files)  # parsed on arrival; starts the day's run
    sfn = cloud.client("stepfunctions")
    executions = sfn.list_executions(stateMachineArn=cloud.state_machine_arn)["executions"]
    statuses = [cloud.wait(e["executionArn"]).status for e in executions]
    assert "SUCCEEDED" in statuses, statuses

    # A corrected ERP export under another name: its unchanged rows repeat the first export's (overlap
    # marks), its changed row supersedes the first export's (the parse stage rewrites that statement's
    # Parquet); the resolve stage names both statements in filtered.csv (statement records read).
    name, data = day.files["erp"]
    lines = data.decode("utf-8-sig").splitlines()
    first = lines[1].split(",")
    first[4] = str(Decimal(first[4]) + 1)  # the amount column
    corrected = "\n".join([lines[0], ",".join(first), *lines[2:]]) + "\n"
    store.put(
        cloud.raw_bucket,
        raw_key("demo", "erp", day.statement_dates["erp"], name.replace(".csv", "_corrected.csv")),
        corrected.encode("utf-8-sig"),
    )
    assert len(cloud.deliver_rule(parse_rule)) == 1
    rerun = [
        e
        for e in sfn.list_executions(stateMachineArn=cloud.state_machine_arn)["executions"]
        if e["executionArn"] not in {x["executionArn"] for x in executions}
    ]
    assert len(rerun) == 1 and cloud.wait(rerun[0]["executionArn"]).status == "SUCCEEDED"

    # The same day again: results replaced in place (replace_results), statements found by checksum.
    again = cloud.start_execution(
        {"project_id": "demo", "business_date": DAY.isoformat(), "trigger": "manual"}
    )
    assert cloud.wait(again).status == "SUCCEEDED"

    failure = {"error": {"Error": "States.TaskFailed", "Cause": "{}"}, "execution": "x", "input": {}}
    failure["input"] = {"project_id": "demo", "business_date": DAY.isoformat()}
    assert "subject" in cloud.invoke("ReportFunction", {"failure": failure})

    api_event = {
        "resource": "/runs/{id}",
        "path": "/runs/demo-20261120",
        "httpMethod": "GET",
        "headers": {"Accept": "application/json"},
        "multiValueHeaders": {},
        "queryStringParameters": None,
        "multiValueQueryStringParameters": None,
        "pathParameters": {"id": "demo-20261120"},
        "stageVariables": None,
        "requestContext": {
            "resourcePath": "/runs/{id}",
            "httpMethod": "GET",
            "path": "/v1/runs/demo-20261120",
            "stage": "v1",
            "requestId": "req-1",
            "identity": {"userArn": "arn:aws:iam::123456789012:user/reviewer", "sourceIp": "127.0.0.1"},
        },
        "body": None,
        "isBase64Encoded": False,
    }
    assert cloud.invoke("ApiFunction", api_event)["statusCode"] == 200


def test_every_traced_call_is_allowed_by_the_calling_functions_policy(
    traced_calls: list[tuple[str, Request, str]], functions: Mapping[str, Mapping[str, Any]]
) -> None:
    callers = {function for function, _, _ in traced_calls}
    assert callers == set(EXPECTED_TABLE_ACCESS) - {"ExtractPdfFunction"}  # no PDF statement in the day
    refused = sorted(
        {
            (f, r.action, r.leading_keys)
            for f, r, _ in traced_calls
            if not allowed(function_statements(functions[f]), r)
        }
    )
    assert refused == []


def test_every_granted_table_access_is_used(traced_calls: list[tuple[str, Request, str]]) -> None:
    """No dead grants: each (function, action, key prefix) of the expected access occurs in the day."""
    used_index = {(f, r.action) for f, r, _ in traced_calls if r.resource.startswith(index_arn(""))}
    keys_used = {
        (f, r.action, key)
        for f, r, _ in traced_calls
        if not r.resource.startswith(index_arn(""))
        for key in r.leading_keys or ()
    }
    unused = [
        (function, action, pattern)
        for function, access in sorted(EXPECTED_TABLE_ACCESS.items())
        for action, patterns in sorted(access.items())
        for pattern in sorted(patterns)
        if not any(f == function and a == action and fnmatchcase(k, pattern) for f, a, k in keys_used)
    ]
    assert unused == []
    assert used_index == {(f, a) for f, actions in EXPECTED_INDEX_ACCESS.items() for a in actions}


def test_every_traced_s3_call_is_allowed_by_the_calling_functions_policy(
    traced_s3_calls: list[tuple[str, Request, str]], functions: Mapping[str, Mapping[str, Any]]
) -> None:
    """Object reads and writes, listings (with their prefix) and multipart uploads, per function."""
    assert {f for f, _, _ in traced_s3_calls} >= {"ParseFunction", "MatchFunction", "ResolveFunction"}
    refused = sorted(
        {
            (f, r.action, r.resource.rsplit(":::", 1)[-1], r.s3_prefix)
            for f, r, _ in traced_s3_calls
            if not allowed(function_statements(functions[f]), r)
        }
    )
    assert refused == [], "\n".join(map(str, refused))
