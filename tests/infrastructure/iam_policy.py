"""A small evaluator of the template's function policies, for the data-access tests.

It answers "may function F perform action A on resource R with these partition keys?" from the statements
written in infra/template.yaml, the way IAM decides it: an explicit Deny wins, otherwise some Allow must
match the action, the resource and its Condition. It understands only what the template's DynamoDB,
Secrets Manager and S3 statements use (ARN placeholders, `*`/`?` wildcards, ForAllValues:StringLike on
dynamodb:LeadingKeys, StringLike on s3:prefix); anything else raises, so a new kind of statement cannot be silently misread.

moto does not enforce IAM, which is why this exists: the integration tests prove the code works, these
checks prove the deployed roles would let it (and nothing more).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from fnmatch import fnmatchcase
from typing import Any

from tests.infrastructure.helpers import as_list

PARTITION, REGION, ACCOUNT = "aws", "us-east-1", "123456789012"
TABLE_ARN = f"arn:{PARTITION}:dynamodb:{REGION}:{ACCOUNT}:table/recon-RunsTable-ABC123"
SECRET_ARN_PREFIX = f"arn:{PARTITION}:secretsmanager:{REGION}:{ACCOUNT}:secret:"
RAW_BUCKET_ARN = f"arn:{PARTITION}:s3:::recon-rawbucket-abc123"
DATA_BUCKET_ARN = f"arn:{PARTITION}:s3:::recon-databucket-abc123"
# What the statements' placeholders stand for. Only the resources the data-access statements name are
# known: a statement naming another one is skipped when it cannot match the requested service anyway.
_PLACEHOLDERS = {
    "AWS::Partition": PARTITION,
    "AWS::Region": REGION,
    "AWS::AccountId": ACCOUNT,
    "AWS::StackName": "recon",
    "RunsTable.Arn": TABLE_ARN,
    "RawBucket.Arn": RAW_BUCKET_ARN,
    "DataBucket.Arn": DATA_BUCKET_ARN,
}
_SUB = re.compile(r"\$\{([^}]+)\}")


def index_arn(index: str) -> str:
    return f"{TABLE_ARN}/index/{index}"


def secret_arn(name: str) -> str:
    """A secret's ARN as Secrets Manager forms it: the name plus a dash and six random characters."""
    return f"{SECRET_ARN_PREFIX}{name}-AbC123"


@dataclass(frozen=True)
class Request:
    action: str  # e.g. "dynamodb:PutItem"
    resource: str  # an ARN
    leading_keys: tuple[str, ...] | None = None  # partition keys of a DynamoDB item request
    s3_prefix: str | None = None  # the Prefix of an S3 listing


class Unresolvable(Exception):
    """A statement names a resource this evaluator has no value for."""


def resolve(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, Mapping) and set(value) == {"Fn::GetAtt"}:
        logical_id, attribute = value["Fn::GetAtt"]
        return _placeholder(f"{logical_id}.{attribute}")
    if isinstance(value, Mapping) and set(value) == {"Fn::Sub"} and isinstance(value["Fn::Sub"], str):
        return _SUB.sub(lambda m: _placeholder(m.group(1)), value["Fn::Sub"])
    raise Unresolvable(repr(value))


def _placeholder(name: str) -> str:
    if name not in _PLACEHOLDERS:
        raise Unresolvable(name)
    return _PLACEHOLDERS[name]


def _matches(pattern: str, value: str) -> bool:
    # IAM wildcards: * any run of characters, ? one character; no character classes (escape "[").
    return fnmatchcase(value, pattern.replace("[", "[[]"))


def _condition_holds(condition: Mapping[str, Any] | None, request: Request) -> bool:
    if not condition:
        return True
    for operator, keys in condition.items():
        for key, patterns in keys.items():
            if (operator, key) == ("StringLike", "s3:prefix"):
                if request.s3_prefix is None or not any(
                    _matches(p, request.s3_prefix) for p in as_list(patterns)
                ):
                    return False
                continue
            if (operator, key) != ("ForAllValues:StringLike", "dynamodb:LeadingKeys"):
                raise AssertionError(f"the evaluator does not know condition {operator} {key}")
            if request.leading_keys is None:
                raise AssertionError(f"{request.action} on {request.resource}: partition keys needed")
            # ForAllValues: every key of the request must match one of the patterns.
            if not all(any(_matches(p, k) for p in as_list(patterns)) for k in request.leading_keys):
                return False
    return True


def _statement_matches(statement: Mapping[str, Any], request: Request) -> bool:
    service = request.action.split(":", 1)[0]
    actions = [a for a in as_list(statement["Action"]) if a.lower().startswith(service.lower() + ":")]
    if not any(_matches(a.lower(), request.action.lower()) for a in actions):
        return False
    resources = [resolve(r) for r in as_list(statement["Resource"])]
    if not any(_matches(r, request.resource) for r in resources):
        return False
    return _condition_holds(statement.get("Condition"), request)


def function_statements(function: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    """The statements of a Serverless function's inline policies (SAM policy templates grant no data)."""
    return [
        statement
        for policy in function["Properties"].get("Policies", [])
        if isinstance(policy, Mapping) and "Statement" in policy
        for statement in policy["Statement"]
    ]


def allowed(statements: Sequence[Mapping[str, Any]], request: Request) -> bool:
    if any(s["Effect"] == "Deny" and _statement_matches(s, request) for s in statements):
        return False
    return any(s["Effect"] == "Allow" and _statement_matches(s, request) for s in statements)


def denied_requests(statements: Sequence[Mapping[str, Any]], requests: Iterable[Request]) -> list[Request]:
    return [r for r in requests if not allowed(statements, r)]
