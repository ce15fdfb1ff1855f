"""A small CloudFormation/SAM template reader for the local runtime.

Loads YAML with the short-form intrinsic tags (``!Ref``, ``!GetAtt``, ``!Sub`` ...), applies SAM ``Globals``
to functions, evaluates ``Conditions`` and resolves intrinsic functions against deterministic physical names,
so every resource's name/ARN is known before anything is created (functions may reference the state machine
and the state machine the functions, exactly as CloudFormation allows through physical-name references).

This is not a CloudFormation engine: it covers what our template uses (Ref, Fn::GetAtt, Fn::Sub, Fn::Join,
Fn::Select, Fn::Split, Fn::If/Equals/Not/And/Or, Fn::FindInMap, Fn::Base64, Fn::ImportValue as a
placeholder) and names resources the way a stack called ``StackName`` would, minus the random suffixes.
"""

from __future__ import annotations

import base64
import copy
import json
import logging
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

LOG = logging.getLogger(__name__)

DEFAULT_ACCOUNT_ID = "123456789012"

# Marker returned by Ref AWS::NoValue; removed from dicts and lists after resolution.
_NO_VALUE = object()


class TemplateError(ValueError):
    """The template cannot be read or an intrinsic function cannot be resolved."""


# --------------------------------------------------------------------------------------------------- YAML


class _CfnLoader(yaml.SafeLoader):
    """SafeLoader that understands CloudFormation short-form tags and keeps dates as strings."""


# CloudFormation treats 2024-01-01 as a string; PyYAML would make it a date.
_CfnLoader.yaml_implicit_resolvers = {
    key: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for key, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


def _construct_intrinsic(loader: yaml.SafeLoader, tag_suffix: str, node: yaml.Node) -> dict[str, Any]:
    value: Any
    if isinstance(node, yaml.ScalarNode):
        value = loader.construct_scalar(node)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    elif isinstance(node, yaml.MappingNode):
        value = loader.construct_mapping(node, deep=True)
    else:  # pragma: no cover - PyYAML has no other node kinds
        raise TemplateError(f"unsupported node for !{tag_suffix}")
    if tag_suffix == "Ref":
        return {"Ref": value}
    if tag_suffix == "Condition":
        return {"Condition": value}
    if tag_suffix == "GetAtt" and isinstance(value, str):
        logical, _, attr = value.partition(".")
        return {"Fn::GetAtt": [logical, attr]}
    return {f"Fn::{tag_suffix}": value}


_CfnLoader.add_multi_constructor("!", _construct_intrinsic)


def load_template_file(path: Path) -> dict[str, Any]:
    """Read a CloudFormation/SAM template (YAML or JSON) into plain dicts with long-form intrinsics."""
    text = path.read_text(encoding="utf-8")
    data = yaml.load(text, Loader=_CfnLoader)  # noqa: S506 - SafeLoader subclass
    if not isinstance(data, dict) or not isinstance(data.get("Resources"), dict):
        raise TemplateError(f"{path} is not a CloudFormation template (no Resources mapping)")
    return data


# ------------------------------------------------------------------------------------------ naming rules


def _sanitize(name: str, *, lower: bool = False, max_len: int = 64, allowed: str = r"[^A-Za-z0-9\-_]") -> str:
    out = re.sub(allowed, "-", name)
    if lower:
        out = out.lower()
    return out[:max_len].rstrip("-")


@dataclass(frozen=True)
class _TypeRule:
    """How a resource type is named and what Ref/GetAtt return."""

    name_prop: str | None
    make_name: Callable[[str, str], str]  # (stack, logical) -> physical name
    ref: Callable[[PhysicalContext, str], str]  # (ctx, name) -> Ref value
    atts: Mapping[str, Callable[[PhysicalContext, str], str]] = field(default_factory=dict)


@dataclass(frozen=True)
class PhysicalContext:
    region: str
    account_id: str
    partition: str = "aws"

    def arn(self, service: str, resource: str, *, region: bool = True, account: bool = True) -> str:
        reg = self.region if region else ""
        acct = self.account_id if account else ""
        return f"arn:{self.partition}:{service}:{reg}:{acct}:{resource}"


def _default_name(stack: str, logical: str) -> str:
    return _sanitize(f"{stack}-{logical}")


def _name(_ctx: PhysicalContext, name: str) -> str:
    return name


_RULES: dict[str, _TypeRule] = {
    "AWS::S3::Bucket": _TypeRule(
        "BucketName",
        lambda s, lg: _sanitize(f"{s}-{lg}", lower=True, max_len=63, allowed=r"[^A-Za-z0-9\-]"),
        _name,
        {
            "Arn": lambda c, n: f"arn:{c.partition}:s3:::{n}",
            "DomainName": lambda c, n: f"{n}.s3.amazonaws.com",
            "RegionalDomainName": lambda c, n: f"{n}.s3.{c.region}.amazonaws.com",
            "WebsiteURL": lambda c, n: f"http://{n}.s3-website-{c.region}.amazonaws.com",
        },
    ),
    "AWS::DynamoDB::Table": _TypeRule(
        "TableName",
        _default_name,
        _name,
        {
            "Arn": lambda c, n: c.arn("dynamodb", f"table/{n}"),
            "StreamArn": lambda c, n: c.arn("dynamodb", f"table/{n}/stream/1970-01-01T00:00:00.000"),
        },
    ),
    "AWS::Serverless::SimpleTable": _TypeRule(
        "TableName", _default_name, _name, {"Arn": lambda c, n: c.arn("dynamodb", f"table/{n}")}
    ),
    "AWS::SNS::Topic": _TypeRule(
        "TopicName",
        _default_name,
        lambda c, n: c.arn("sns", n),
        {"TopicArn": lambda c, n: c.arn("sns", n), "TopicName": _name},
    ),
    "AWS::SQS::Queue": _TypeRule(
        "QueueName",
        _default_name,
        lambda c, n: f"https://sqs.{c.region}.amazonaws.com/{c.account_id}/{n}",
        {
            "Arn": lambda c, n: c.arn("sqs", n),
            "QueueName": _name,
            "QueueUrl": lambda c, n: f"https://sqs.{c.region}.amazonaws.com/{c.account_id}/{n}",
        },
    ),
    "AWS::Serverless::Function": _TypeRule(
        "FunctionName", _default_name, _name, {"Arn": lambda c, n: c.arn("lambda", f"function:{n}")}
    ),
    "AWS::Lambda::Function": _TypeRule(
        "FunctionName", _default_name, _name, {"Arn": lambda c, n: c.arn("lambda", f"function:{n}")}
    ),
    "AWS::Serverless::StateMachine": _TypeRule(
        "Name",
        _default_name,
        lambda c, n: c.arn("states", f"stateMachine:{n}"),
        {"Arn": lambda c, n: c.arn("states", f"stateMachine:{n}"), "Name": _name},
    ),
    "AWS::StepFunctions::StateMachine": _TypeRule(
        "StateMachineName",
        _default_name,
        lambda c, n: c.arn("states", f"stateMachine:{n}"),
        {"Arn": lambda c, n: c.arn("states", f"stateMachine:{n}"), "Name": _name},
    ),
    "AWS::IAM::Role": _TypeRule(
        "RoleName",
        _default_name,
        _name,
        {"Arn": lambda c, n: c.arn("iam", f"role/{n}", region=False), "RoleId": lambda c, n: f"AROA{n}"},
    ),
    "AWS::Events::Rule": _TypeRule(
        "Name", _default_name, _name, {"Arn": lambda c, n: c.arn("events", f"rule/{n}")}
    ),
    "AWS::Serverless::LayerVersion": _TypeRule(
        "LayerName", _default_name, lambda c, n: c.arn("lambda", f"layer:{n}:1"), {}
    ),
    "AWS::Lambda::LayerVersion": _TypeRule(
        "LayerName", _default_name, lambda c, n: c.arn("lambda", f"layer:{n}:1"), {}
    ),
    "AWS::SES::EmailIdentity": _TypeRule("EmailIdentity", _default_name, _name, {}),
    # Key ids are random: the runtime creates keys first and binds the real id (Template.bind).
    "AWS::KMS::Key": _TypeRule(
        None, _default_name, _name, {"Arn": lambda c, n: c.arn("kms", f"key/{n}"), "KeyId": _name}
    ),
    "AWS::KMS::Alias": _TypeRule("AliasName", lambda s, lg: f"alias/{s}-{lg}", _name, {}),
    "AWS::Logs::LogGroup": _TypeRule(
        "LogGroupName", _default_name, _name, {"Arn": lambda c, n: c.arn("logs", f"log-group:{n}:*")}
    ),
    "AWS::Scheduler::ScheduleGroup": _TypeRule(
        "Name", _default_name, _name, {"Arn": lambda c, n: c.arn("scheduler", f"schedule-group/{n}")}
    ),
}

# SAM-generated resources referenced from templates: <Function>Role, ServerlessRestApi, ...
_IMPLICIT_SUFFIX_RULES: dict[str, _TypeRule] = {"Role": _RULES["AWS::IAM::Role"]}

_FALLBACK_RULE = _TypeRule(
    None,
    _default_name,
    _name,
    {"Arn": lambda c, n: c.arn("local", n)},
)

PSEUDO_PARAMETERS = (
    "AWS::StackName",
    "AWS::StackId",
    "AWS::Region",
    "AWS::AccountId",
    "AWS::Partition",
    "AWS::URLSuffix",
    "AWS::NotificationARNs",
    "AWS::NoValue",
)


# ------------------------------------------------------------------------------------------- the model


@dataclass
class Resource:
    logical_id: str
    type: str
    properties: dict[str, Any]  # raw (intrinsics unresolved), Globals applied for serverless functions
    condition: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)


def _merge_globals(global_value: Any, local_value: Any) -> Any:
    """SAM Globals: maps merge (local wins), lists concatenate, scalars and intrinsics are overridden."""
    if isinstance(global_value, dict) and isinstance(local_value, dict):
        is_intrinsic = any(k == "Ref" or k.startswith("Fn::") for k in (*global_value, *local_value))
        if is_intrinsic:
            return copy.deepcopy(local_value)
        merged = copy.deepcopy(global_value)
        for key, value in local_value.items():
            merged[key] = _merge_globals(merged[key], value) if key in merged else copy.deepcopy(value)
        return merged
    if isinstance(global_value, list) and isinstance(local_value, list):
        return copy.deepcopy(global_value) + copy.deepcopy(local_value)
    return copy.deepcopy(local_value)


_GLOBALS_SECTION = {
    "AWS::Serverless::Function": "Function",
    "AWS::Serverless::StateMachine": "StateMachine",
    "AWS::Serverless::Api": "Api",
    "AWS::Serverless::HttpApi": "HttpApi",
    "AWS::Serverless::SimpleTable": "SimpleTable",
    "AWS::Serverless::LayerVersion": "LayerVersion",
}


class Template:
    """A parsed template with deterministic physical names and an intrinsic-function resolver."""

    def __init__(
        self,
        path: Path,
        *,
        stack_name: str = "recon-local",
        region: str = "us-east-1",
        account_id: str = DEFAULT_ACCOUNT_ID,
        partition: str = "aws",
        parameter_overrides: Mapping[str, str] | None = None,
    ) -> None:
        self.path = path.resolve()
        self.base_dir = self.path.parent
        self.raw = load_template_file(self.path)
        self.stack_name = stack_name
        self.ctx = PhysicalContext(region=region, account_id=account_id, partition=partition)
        self.parameters = self._parameter_values(dict(parameter_overrides or {}))
        self.mappings: dict[str, Any] = self.raw.get("Mappings") or {}
        self._condition_defs: dict[str, Any] = self.raw.get("Conditions") or {}
        self._condition_cache: dict[str, bool] = {}
        self._names: dict[str, str] = {}
        self._naming: set[str] = set()
        globals_section: dict[str, Any] = self.raw.get("Globals") or {}
        self.resources: dict[str, Resource] = {}
        for logical_id, body in (self.raw.get("Resources") or {}).items():
            if not isinstance(body, dict) or "Type" not in body:
                LOG.debug("skipping malformed resource %s", logical_id)
                continue
            rtype = str(body["Type"])
            props = copy.deepcopy(body.get("Properties") or {})
            section = _GLOBALS_SECTION.get(rtype)
            if section and isinstance(globals_section.get(section), dict):
                props = _merge_globals(globals_section[section], props)
            self.resources[logical_id] = Resource(
                logical_id=logical_id,
                type=rtype,
                properties=props,
                condition=body.get("Condition"),
                metadata=body.get("Metadata") or {},
            )

    # -- parameters / conditions

    def _parameter_values(self, overrides: dict[str, str]) -> dict[str, Any]:
        values: dict[str, Any] = {}
        for name, declared in (self.raw.get("Parameters") or {}).items():
            spec = declared or {}
            if name in overrides:
                value: Any = overrides.pop(name)
            elif "Default" in spec:
                value = spec["Default"]
            else:
                LOG.warning("template parameter %s has no Default and no override; using ''", name)
                value = ""
            ptype = str(spec.get("Type", "String"))
            if ptype.startswith("List<") or ptype == "CommaDelimitedList":
                value = value if isinstance(value, list) else [v.strip() for v in str(value).split(",")]
            elif isinstance(value, bool):
                value = "true" if value else "false"
            else:
                value = str(value)
            values[name] = value
        for name in overrides:
            LOG.warning("parameter override %s is not declared by the template; ignored", name)
        return values

    def condition(self, name: str) -> bool:
        if name not in self._condition_cache:
            if name not in self._condition_defs:
                raise TemplateError(f"unknown condition {name!r}")
            self._condition_cache[name] = bool(self.resolve(self._condition_defs[name]))
        return self._condition_cache[name]

    def is_enabled(self, logical_id: str) -> bool:
        res = self.resources.get(logical_id)
        return res is not None and (res.condition is None or self.condition(res.condition))

    def of_type(self, *types: str) -> list[Resource]:
        return [r for r in self.resources.values() if r.type in types and self.is_enabled(r.logical_id)]

    # -- physical names

    def _rule_for(self, logical_id: str) -> tuple[_TypeRule, Resource | None]:
        res = self.resources.get(logical_id)
        if res is not None:
            return _RULES.get(res.type, _FALLBACK_RULE), res
        for suffix, rule in _IMPLICIT_SUFFIX_RULES.items():
            if logical_id.endswith(suffix) and logical_id[: -len(suffix)] in self.resources:
                return rule, None
        raise TemplateError(f"unknown logical id {logical_id!r}")

    def physical_name(self, logical_id: str) -> str:
        """The resource's name: its declared name property (resolved) or a deterministic stack-based one."""
        if logical_id in self._names:
            return self._names[logical_id]
        if logical_id in self._naming:
            raise TemplateError(f"circular name reference through {logical_id!r}")
        self._naming.add(logical_id)
        try:
            rule, res = self._rule_for(logical_id)
            name: str | None = None
            if res is not None and rule.name_prop and res.properties.get(rule.name_prop) is not None:
                name = str(self.resolve(res.properties[rule.name_prop]))
            if name is None:
                name = rule.make_name(self.stack_name, logical_id)
                if res is not None and res.type in ("AWS::SNS::Topic", "AWS::SQS::Queue"):
                    fifo = self.resolve(res.properties.get("FifoTopic") or res.properties.get("FifoQueue"))
                    if str(fifo).lower() == "true":
                        name = f"{name[:59]}.fifo"
            self._names[logical_id] = name
            return name
        finally:
            self._naming.discard(logical_id)

    def bind(self, logical_id: str, name: str) -> None:
        """Fix a physical name that only exists after creation (e.g. a KMS key id)."""
        self._names[logical_id] = name

    def ref(self, logical_id: str) -> Any:
        if logical_id in self.parameters:
            return self.parameters[logical_id]
        pseudo = {
            "AWS::StackName": self.stack_name,
            "AWS::StackId": self.ctx.arn("cloudformation", f"stack/{self.stack_name}/00000000-local"),
            "AWS::Region": self.ctx.region,
            "AWS::AccountId": self.ctx.account_id,
            "AWS::Partition": self.ctx.partition,
            "AWS::URLSuffix": "amazonaws.com",
            "AWS::NotificationARNs": [],
        }
        if logical_id == "AWS::NoValue":
            return _NO_VALUE
        if logical_id in pseudo:
            return pseudo[logical_id]
        rule, _ = self._rule_for(logical_id)
        return rule.ref(self.ctx, self.physical_name(logical_id))

    def get_att(self, logical_id: str, attribute: str) -> Any:
        rule, _ = self._rule_for(logical_id)
        name = self.physical_name(logical_id)
        getter = rule.atts.get(attribute)
        if getter is None:
            LOG.debug("GetAtt %s.%s not modelled; using a placeholder", logical_id, attribute)
            return f"{name}.{attribute}"
        return getter(self.ctx, name)

    # -- intrinsic resolution

    def resolve(self, value: Any) -> Any:
        """Resolve every intrinsic function in value (a deep copy is returned)."""
        out = self._resolve(value)
        return None if out is _NO_VALUE else out

    def _resolve(self, value: Any) -> Any:
        if isinstance(value, list):
            items = [self._resolve(v) for v in value]
            return [v for v in items if v is not _NO_VALUE]
        if not isinstance(value, dict):
            return value
        if len(value) == 1:
            ((key, arg),) = value.items()
            if key == "Ref":
                return self.ref(str(self._resolve(arg)))
            if key == "Condition" and isinstance(arg, str):
                return self.condition(arg)
            if key.startswith("Fn::"):
                return self._fn(key[4:], arg)
        result = {}
        for k, v in value.items():
            rv = self._resolve(v)
            if rv is not _NO_VALUE:
                result[k] = rv
        return result

    def _fn(self, fn: str, arg: Any) -> Any:
        if fn == "GetAtt":
            if isinstance(arg, str):
                logical, _, attr = arg.partition(".")
            else:
                logical, attr = self._resolve(arg[0]), self._resolve(arg[1])
            return self.get_att(str(logical), str(attr))
        if fn == "Sub":
            return self._sub(arg)
        if fn == "Join":
            sep, items = arg
            parts = self._resolve(items)
            return str(self._resolve(sep)).join(self._str(p) for p in parts)
        if fn == "Select":
            index, items = arg
            return self._resolve(items)[int(self._resolve(index))]
        if fn == "Split":
            sep, text = arg
            return str(self._resolve(text)).split(str(self._resolve(sep)))
        if fn == "If":
            cond, if_true, if_false = arg
            return self._resolve(if_true if self.condition(str(cond)) else if_false)
        if fn == "Equals":
            left, right = (self._resolve(a) for a in arg)
            return self._str(left) == self._str(right)
        if fn == "Not":
            return not bool(self._resolve(arg[0]))
        if fn == "And":
            return all(bool(self._resolve(a)) for a in arg)
        if fn == "Or":
            return any(bool(self._resolve(a)) for a in arg)
        if fn == "FindInMap":
            m, k1, k2 = (self._resolve(a) for a in arg[:3])
            return self.mappings[str(m)][str(k1)][str(k2)]
        if fn == "Base64":
            return base64.b64encode(str(self._resolve(arg)).encode()).decode()
        if fn == "GetAZs":
            return [f"{self.ctx.region}{s}" for s in "abc"]
        if fn == "ImportValue":
            LOG.debug("Fn::ImportValue has no local stack to read; using a placeholder")
            return f"import:{self._resolve(arg)}"
        if fn == "ToJsonString":
            return json.dumps(self._resolve(arg), separators=(",", ":"))
        if fn == "Length":
            return len(self._resolve(arg))
        LOG.debug("intrinsic Fn::%s not supported; left unresolved", fn)
        return {f"Fn::{fn}": arg}

    @staticmethod
    def _str(value: Any) -> str:
        if isinstance(value, bool):
            return "true" if value else "false"
        return str(value)

    def _sub(self, arg: Any) -> str:
        if isinstance(arg, list):
            text, variables = arg[0], {k: self._resolve(v) for k, v in (arg[1] or {}).items()}
        else:
            text, variables = arg, {}

        def replace(match: re.Match[str]) -> str:
            expr = match.group(1)
            if expr.startswith("!"):
                return "${" + expr[1:] + "}"
            expr = expr.strip()
            if expr in variables:
                return self._str(variables[expr])
            if "." in expr and not expr.startswith("AWS::"):
                logical, _, attr = expr.partition(".")
                return self._str(self.get_att(logical, attr))
            value = self.ref(expr)
            if isinstance(value, list):
                return ",".join(value)
            return self._str(value)

        return re.sub(r"\$\{([^}]*)\}", replace, str(text))

    # -- helpers for the runtime

    def path_from(self, relative: str) -> Path:
        """A CodeUri/ContentUri/DefinitionUri resolved like SAM does (relative to the template)."""
        return (self.base_dir / relative).resolve()
