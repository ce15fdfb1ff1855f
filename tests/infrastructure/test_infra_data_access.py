"""Least privilege on the runs table and the secrets, per function (infra/template.yaml).

Each function may perform only the DynamoDB actions its code performs, on the partition-key prefixes it
touches (adapters/dynamodb.py has the layout); the audit trail is append-only; each fetcher reads only its
own provider's secrets. The expected grants below were traced from each handler through its pipeline
module to the repository methods it calls; test_infra_data_access_traced.py checks them against the calls
a whole local day really makes.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import pytest
from boto3.dynamodb.conditions import ConditionExpressionBuilder

from recon.adapters.dynamodb import DynamoRunRepository
from recon.domain import AuditEvent, Source
from recon.domain.account import secret_namespace
from tests.infrastructure.helpers import REPO_ROOT, as_list
from tests.infrastructure.iam_policy import (
    TABLE_ARN,
    Request,
    allowed,
    function_statements,
    index_arn,
    resolve,
    secret_arn,
)

RUN, AUDIT, FETCH = "RUN#*", "AUDIT#*", "FETCH#*"
STATEMENTS = {"STMT#*", "STMTID#*", "CHECKSUM#*"}

# function -> {action on the table: the partition-key prefixes it may touch}
EXPECTED_TABLE_ACCESS: dict[str, dict[str, set[str]]] = {
    # start_run: put_run, append_audit
    "StartRunFunction": {"dynamodb:PutItem": {RUN, AUDIT}},
    # fetch_statements: list_fetch_log, put_fetch_log
    "FetchBankFunction": {"dynamodb:Query": {FETCH}, "dynamodb:PutItem": {FETCH}},
    "FetchAlipayFunction": {"dynamodb:Query": {FETCH}, "dynamodb:PutItem": {FETCH}},
    "FetchWechatFunction": {"dynamodb:Query": {FETCH}, "dynamodb:PutItem": {FETCH}},
    # parse_channel / ingest_upload / reparse_statement: put_statement (statement, id and checksum markers),
    # find_statement_by_checksum, get_statement, list_statements, append_audit (+ list_account_statements
    # on gsi1)
    "ParseFunction": {
        "dynamodb:GetItem": STATEMENTS,
        "dynamodb:PutItem": STATEMENTS | {AUDIT},
        "dynamodb:Query": {"STMT#*"},
    },
    "ExtractPdfFunction": {},
    # match_run: list_statements, get_run, put_run, append_audit
    "MatchFunction": {
        "dynamodb:Query": {"STMT#*"},
        "dynamodb:GetItem": {RUN},
        "dynamodb:PutItem": {RUN, AUDIT},
    },
    # resolve_run: replace_results (Query + BatchWriteItem of puts and deletes), get_run, put_run, append_audit
    # (cases reopened or kept by a re-run, cases closed); list_cases + update_case (GetItem, conditional
    # PutItem) of an earlier run's case a late payout explains (RUN#<earlier run>); get_statement of the
    # statements a filtered row repeats or was superseded by (filtered.csv's detail)
    "ResolveFunction": {
        "dynamodb:Query": {RUN},
        "dynamodb:BatchWriteItem": {RUN},
        "dynamodb:GetItem": {RUN, "STMT#*", "STMTID#*"},
        "dynamodb:PutItem": {RUN, AUDIT},
    },
    # report_run / record_failure: get_run, list_cases, put_run, append_audit, list_audit of the day's
    # notification ledger (audit subject notify:<project>:<date>, reporting/notices.py) and
    # claim_notification under that subject
    "ReportFunction": {
        "dynamodb:GetItem": {RUN},
        "dynamodb:Query": {RUN, "AUDIT#notify:*"},
        "dynamodb:PutItem": {RUN, AUDIT, "CLAIM#notify:*"},
    },
    # get_run_view: get_run, list_match_groups
    "ApiFunction": {"dynamodb:GetItem": {RUN}, "dynamodb:Query": {RUN}},
    # sync_project: append_audit
    "SyncProjectFunction": {"dynamodb:PutItem": {AUDIT}},
}
# function -> actions on the table's index gsi1 (read-only; no other index exists)
EXPECTED_INDEX_ACCESS: dict[str, set[str]] = {"ParseFunction": {"dynamodb:Query"}}

FETCHERS = {"FetchBankFunction", "FetchAlipayFunction", "FetchWechatFunction"}
WRITES_THAT_ALTER = (
    "dynamodb:UpdateItem",
    "dynamodb:DeleteItem",
    "dynamodb:BatchWriteItem",
    "dynamodb:TransactWriteItems",
    "dynamodb:PartiQLUpdate",
    "dynamodb:PartiQLDelete",
)


def _table_grants(function: Mapping[str, Any]) -> tuple[dict[str, set[str]], set[str]]:
    """(action -> LeadingKeys patterns on the table, actions on gsi1) as the function's statements grant."""
    table: dict[str, set[str]] = {}
    index: set[str] = set()
    for statement in function_statements(function):
        actions = [a for a in as_list(statement["Action"]) if a.startswith("dynamodb:")]
        if not actions:
            continue
        assert statement["Effect"] == "Allow", statement
        for resource in map(resolve, as_list(statement["Resource"])):
            if resource == index_arn("gsi1"):
                index.update(actions)
                continue
            assert resource == TABLE_ARN, (statement["Sid"], resource)
            condition = statement.get("Condition")
            assert condition is not None, f"{statement['Sid']}: table access without dynamodb:LeadingKeys"
            assert set(condition) == {"ForAllValues:StringLike"}, statement["Sid"]
            assert set(condition["ForAllValues:StringLike"]) == {"dynamodb:LeadingKeys"}, statement["Sid"]
            patterns = set(as_list(condition["ForAllValues:StringLike"]["dynamodb:LeadingKeys"]))
            for action in actions:
                table.setdefault(action, set()).update(patterns)
    return table, index


def test_each_function_has_exactly_the_table_access_its_code_needs(
    functions: Mapping[str, Mapping[str, Any]],
) -> None:
    assert set(functions) == set(EXPECTED_TABLE_ACCESS)
    for name, function in sorted(functions.items()):
        table, index = _table_grants(function)
        assert table == EXPECTED_TABLE_ACCESS[name], name
        assert index == EXPECTED_INDEX_ACCESS.get(name, set()), name


def test_leading_key_patterns_are_the_adapters_partition_prefixes() -> None:
    """Every pattern is `<PREFIX>#...*` for a prefix the single-table layout really uses."""
    layout = (REPO_ROOT / "layers/common/recon/adapters/dynamodb.py").read_text("utf-8")
    used = {p for access in EXPECTED_TABLE_ACCESS.values() for ps in access.values() for p in ps}
    for pattern in used:
        assert pattern.endswith("*") and pattern.count("*") == 1 and "?" not in pattern, pattern
        prefix = pattern.split("#", 1)[0] + "#"
        assert f'f"{prefix}{{' in layout, f"{pattern}: no partition key of the adapter starts so"


@pytest.mark.parametrize("action", WRITES_THAT_ALTER)
def test_no_function_may_update_or_delete_audit_items(
    functions: Mapping[str, Mapping[str, Any]], action: str
) -> None:
    for name, function in functions.items():
        statements = function_statements(function)
        for keys in (("AUDIT#demo-20261120",), ("RUN#demo-20261120", "AUDIT#demo-20261120")):
            assert not allowed(statements, Request(action, TABLE_ARN, keys)), (name, action, keys)


def test_only_resolve_deletes_and_nobody_updates(functions: Mapping[str, Mapping[str, Any]]) -> None:
    granted = {
        name: {a for s in function_statements(fn) for a in as_list(s["Action"]) if a.startswith("dynamodb:")}
        for name, fn in functions.items()
    }
    assert not any({"dynamodb:UpdateItem", "dynamodb:DeleteItem"} & actions for actions in granted.values())
    assert [n for n, actions in granted.items() if "dynamodb:BatchWriteItem" in actions] == [
        "ResolveFunction"
    ]
    resolve_statements = function_statements(functions["ResolveFunction"])
    assert allowed(resolve_statements, Request("dynamodb:BatchWriteItem", TABLE_ARN, ("RUN#r1", "RUN#r1")))
    for other in ("STMT#p#a#2026-11-20", "FETCH#p#a#2026-11-20", "CHECKSUM#p#a#abc"):
        assert not allowed(
            resolve_statements, Request("dynamodb:BatchWriteItem", TABLE_ARN, ("RUN#r1", other))
        )


def test_audit_entries_may_be_appended_but_only_with_a_not_exists_condition(
    functions: Mapping[str, Mapping[str, Any]],
) -> None:
    """IAM cannot demand a ConditionExpression: PutItem on AUDIT# is granted to the writers of the trail, and
    the adapter's append is what makes an existing entry impossible to overwrite."""
    writers = {n for n, fn in functions.items() if allowed(function_statements(fn), _put("AUDIT#x"))}
    assert writers == {
        "StartRunFunction",
        "ParseFunction",
        "MatchFunction",
        "ResolveFunction",
        "ReportFunction",
        "SyncProjectFunction",
    }

    class RecordingTable:
        def __init__(self) -> None:
            self.calls: list[dict[str, Any]] = []

        def put_item(self, **kwargs: Any) -> None:
            self.calls.append(kwargs)

    table = RecordingTable()
    repo = DynamoRunRepository(table=table)  # type: ignore[arg-type]
    repo.append_audit(
        AuditEvent(
            event_id="ev-1",
            at=datetime(2026, 11, 20, 1, 2, 3, tzinfo=UTC),
            actor="system:test",
            action="run.started",
            subject="demo-20261120",
        )
    )
    (call,) = table.calls
    assert call["Item"]["pk"] == "AUDIT#demo-20261120"
    expression = ConditionExpressionBuilder().build_expression(call["ConditionExpression"])
    assert expression.condition_expression == "attribute_not_exists(#n0)"
    assert expression.attribute_name_placeholders == {"#n0": "pk"}


def _put(pk: str) -> Request:
    return Request("dynamodb:PutItem", TABLE_ARN, (pk,))


# ------------------------------------------------------------------------------------------------ secrets
def _fetcher_by_source(template: Mapping[str, Any]) -> dict[Source, str]:
    """Which function the state machine sends each source to (ChooseFetcher in the deployed ASL)."""
    machine = template["Resources"]["ReconcileStateMachine"]["Properties"]
    definition = json.loads((REPO_ROOT / "infra" / machine["DefinitionUri"]).read_text("utf-8"))
    fan_out = definition["States"]["FetchAndParse"]
    states = (fan_out.get("ItemProcessor") or fan_out["Iterator"])["States"]
    substitutions = machine["DefinitionSubstitutions"]
    routes: dict[Source, str] = {}
    for choice in states["ChooseFetcher"]["Choices"]:
        placeholder = states[choice["Next"]]["Parameters"]["FunctionName"]
        arn = substitutions[placeholder.removeprefix("${").removesuffix("}")]
        routes[Source(choice["StringEquals"])] = arn["Fn::GetAtt"][0]
    return routes


def test_each_fetcher_reads_only_its_own_providers_secrets(
    template: Mapping[str, Any], functions: Mapping[str, Mapping[str, Any]]
) -> None:
    routes = _fetcher_by_source(template)
    assert set(routes.values()) == FETCHERS
    for source, fetcher in routes.items():
        for other in (Source.BANK, Source.ALIPAY, Source.WECHAT):
            for name in (f"{secret_namespace(other)}shop", f"{secret_namespace(other)}shop/main-mtls"):
                request = Request("secretsmanager:GetSecretValue", secret_arn(name))
                assert allowed(function_statements(functions[fetcher]), request) == (other == source), (
                    fetcher,
                    name,
                )
        # Names outside every provider namespace, or in a look-alike one, are unreadable too.
        for name in (
            "recon/shop",
            f"{secret_namespace(source).rstrip('/')}x/shop",
            "prod/shop",
            "recon/erp/x",
        ):
            request = Request("secretsmanager:GetSecretValue", secret_arn(name))
            assert not allowed(function_statements(functions[fetcher]), request), (fetcher, name)


def test_only_fetchers_read_secrets_and_only_with_get_secret_value(
    functions: Mapping[str, Mapping[str, Any]],
) -> None:
    for name, function in functions.items():
        actions = {
            a
            for s in function_statements(function)
            for a in as_list(s["Action"])
            if a.startswith("secretsmanager:")
        }
        assert actions == ({"secretsmanager:GetSecretValue"} if name in FETCHERS else set()), name
        request = Request("secretsmanager:GetSecretValue", secret_arn("recon/bank/shop"))
        assert allowed(function_statements(function), request) == (name == "FetchBankFunction"), name
