"""The whole application in moto, in-process, built from infra/template.yaml.

``LocalCloud`` reads the SAM template (the single source of truth), creates every supported resource in moto,
patches moto's Lambda runtime to run our real handlers in this process, and loads our real ASL into moto's
Step Functions interpreter::

    with LocalCloud() as cloud:
        arn = cloud.start_execution({"project": "demo", "business_date": "2024-05-01"})
        result = cloud.wait(arn)
        assert result.status == "SUCCEEDED", result.summary()

moto facts this relies on (moto 5.2.5; see /work/shared/notes/aws-local.md): boto3 clients must be
created after the mock starts; moto validates ASL on CreateStateMachine (Retry IntervalSeconds >= 1);
EventBridge rules with Lambda/Step Functions targets are not delivered (and a matching event raises
NotImplementedError inside moto), so rules are created with their patterns but only SQS targets
(``subscribe_queue_to_rule``, ``deliver_rule``); schedules never fire (``fire_schedule``).
"""

from __future__ import annotations

import contextlib
import copy
import email
import email.policy
import io
import json
import logging
import os
import time
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any

from recon_local import runtime_s3, runtime_ses, runtime_sfn
from recon_local.cfn_template import DEFAULT_ACCOUNT_ID, Resource, Template
from recon_local.runtime_lambda import FunctionSpec, InProcessLambdaRuntime

LOG = logging.getLogger(__name__)

REPO = Path(__file__).resolve().parents[2]
DEFAULT_TEMPLATE = REPO / "infra" / "template.yaml"
STACK_NAME = "recon-local"

_FAKE_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SECURITY_TOKEN": "testing",
    "AWS_SESSION_TOKEN": "testing",
}
# Variables that would send boto3 somewhere other than moto's in-process mock.
_UNSET_ENV_PREFIXES = ("AWS_ENDPOINT_URL", "AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_CA_BUNDLE")

FUNCTION_TYPES = ("AWS::Serverless::Function",)
STATE_MACHINE_TYPES = ("AWS::Serverless::StateMachine", "AWS::StepFunctions::StateMachine")
# Created when moto accepts them; a failure is a warning (self.warnings), not a broken stack.
_AUXILIARY = {"AWS::KMS::Alias", "AWS::Events::Rule", "AWS::SNS::Subscription", "AWS::IAM::Role"}
_RULE_EVENTS = ("EventBridgeRule", "CloudWatchEvent", "Schedule", "ScheduleV2")
_HANDLED_ELSEWHERE = {
    # Created implicitly or deliberately not modelled (no local behaviour to emulate).
    "AWS::Serverless::LayerVersion",
    "AWS::Lambda::LayerVersion",
    "AWS::Lambda::Permission",
    "AWS::SNS::TopicPolicy",
    "AWS::SQS::QueuePolicy",
    "AWS::S3::BucketPolicy",
    "AWS::IAM::Policy",
    "AWS::IAM::ManagedPolicy",
}


# ------------------------------------------------------------------------------------------- results


@dataclass
class ExecutionResult:
    """A finished (or timed-out) Step Functions execution."""

    execution_arn: str
    status: str
    output: Any = None
    error: str | None = None
    cause: str | None = None
    history: list[dict[str, Any]] = field(default_factory=list)

    def entered_states(self) -> list[str]:
        """Names of the states entered, in order (Map iterations included)."""
        return [
            e["stateEnteredEventDetails"]["name"] for e in self.history if "stateEnteredEventDetails" in e
        ]

    def events(self, event_type: str) -> list[dict[str, Any]]:
        return [e for e in self.history if e.get("type") == event_type]

    def task_failures(self) -> list[tuple[str, str]]:
        """(error, cause) of every failed task attempt, in order."""
        out = []
        for e in self.history:
            details = e.get("taskFailedEventDetails") or e.get("lambdaFunctionFailedEventDetails")
            if details:
                out.append((str(details.get("error", "")), str(details.get("cause", ""))))
        return out

    def summary(self) -> str:
        states = " -> ".join(self.entered_states())
        return f"{self.status} error={self.error!r} cause={(self.cause or '')[:500]!r} states: {states}"


# ------------------------------------------------------------------------------------------- helpers


def _dummy_zip() -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("placeholder.py", "# code runs in-process from the repository (recon_local.runtime)\n")
    return buf.getvalue()


def _env_str(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (dict, list)):
        return json.dumps(value)
    return "" if value is None else str(value)


def _bool(value: Any) -> bool:
    return value is True or str(value).lower() == "true"


def _walk_states(definition: dict[str, Any]) -> list[dict[str, Any]]:
    """Every state object of a definition, nested Map/Parallel states included."""
    out: list[dict[str, Any]] = []
    for state in (definition.get("States") or {}).values():
        out.append(state)
        for key in ("ItemProcessor", "Iterator"):
            if isinstance(state.get(key), dict):
                out.extend(_walk_states(state[key]))
        for branch in state.get("Branches") or []:
            out.extend(_walk_states(branch))
    return out


def shorten_waits_and_retries(definition: dict[str, Any]) -> dict[str, Any]:
    """A copy of an ASL definition whose retries and waits take (almost) no time.

    Retry: IntervalSeconds 1 (moto rejects 0), MaxAttempts at most 2, BackoffRate 1, no MaxDelaySeconds or
    JitterStrategy.
    Wait: Seconds 0 (SecondsPath/Timestamp/TimestampPath become Seconds 0 as well).
    """
    out = copy.deepcopy(definition)
    for state in _walk_states(out):
        for retrier in state.get("Retry") or []:
            retrier["IntervalSeconds"] = 1
            retrier["MaxAttempts"] = min(int(retrier.get("MaxAttempts", 3)), 2)
            retrier["BackoffRate"] = 1.0
            retrier.pop("MaxDelaySeconds", None)
            retrier.pop("JitterStrategy", None)
        if state.get("Type") == "Wait":
            for key in ("Seconds", "SecondsPath", "Timestamp", "TimestampPath"):
                state.pop(key, None)
            state["Seconds"] = 0
    return out


def apply_substitutions(value: Any, substitutions: dict[str, str]) -> Any:
    """SAM DefinitionSubstitutions: replace ${Key} in every string of the definition."""
    if isinstance(value, dict):
        return {k: apply_substitutions(v, substitutions) for k, v in value.items()}
    if isinstance(value, list):
        return [apply_substitutions(v, substitutions) for v in value]
    if isinstance(value, str):
        for key, sub in substitutions.items():
            value = value.replace("${" + key + "}", sub)
        return value
    return value


# --------------------------------------------------------------------------------------------- cloud


class LocalCloud:
    """Every resource of the SAM template, created in moto; handlers run in-process."""

    def __init__(
        self,
        template_path: Path = DEFAULT_TEMPLATE,
        *,
        region: str = "us-east-1",
        fast_retries: bool = True,
        env_overrides: dict[str, str] | None = None,
        parameter_overrides: dict[str, str] | None = None,
    ) -> None:
        self.template_path = Path(template_path).resolve()
        self.region = region
        self.fast_retries = fast_retries
        self.env_overrides = dict(env_overrides or {})
        self.parameter_overrides = dict(parameter_overrides or {})
        self.account_id = DEFAULT_ACCOUNT_ID
        self.template: Template
        self.runtime: InProcessLambdaRuntime
        self.definitions: dict[str, dict[str, Any]] = {}  # state machine logical id -> definition as created
        # rule logical id -> {name, bus, pattern, schedule, targets, input}
        self.rules: dict[str, dict[str, Any]] = {}
        # ScheduleV2 logical id -> {name, expression, timezone, target, input}
        self.schedules: dict[str, dict[str, Any]] = {}
        self.skipped: dict[str, str] = {}  # logical id -> resource type not modelled
        self.warnings: list[str] = []  # best-effort settings moto refused
        self._mock: Any = None
        self._patches: list[Any] = []
        self._saved_env: dict[str, str] | None = None
        self._clients: dict[str, Any] = {}
        self._functions: dict[str, FunctionSpec] = {}  # by logical id
        self._role_arn = ""
        self._bucket_notifications: dict[str, dict[str, list[dict[str, Any]]]] = {}
        self._rule_queues: dict[str, str] = {}

    # -- context manager

    def __enter__(self) -> LocalCloud:
        from moto import mock_aws

        self._saved_env = dict(os.environ)
        for key in list(os.environ):
            if key.startswith(_UNSET_ENV_PREFIXES):
                del os.environ[key]
        os.environ.update(_FAKE_ENV)
        os.environ["AWS_DEFAULT_REGION"] = self.region
        os.environ["AWS_REGION"] = self.region
        self.account_id = os.environ.get("MOTO_ACCOUNT_ID", DEFAULT_ACCOUNT_ID)
        try:
            self.template = Template(
                self.template_path,
                stack_name=STACK_NAME,
                region=self.region,
                account_id=self.account_id,
                parameter_overrides=self.parameter_overrides,
            )
            self.runtime = InProcessLambdaRuntime(env_overrides=self.env_overrides)
            self._mock = mock_aws(config={"stepfunctions": {"execute_state_machine": True}})
            self._mock.start()
            self.runtime.install()
            self._patches = runtime_ses.install() + runtime_sfn.install() + runtime_s3.install()
            self._create_all()
        except BaseException:
            self.__exit__(None, None, None)
            raise
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        try:
            if getattr(self, "runtime", None) is not None:
                self.runtime.uninstall()
            for patch in reversed(self._patches):
                patch.stop()
            self._patches = []
        finally:
            if self._mock is not None:
                self._mock.stop()
                self._mock = None
            self._clients.clear()
            if self._saved_env is not None:
                os.environ.clear()
                os.environ.update(self._saved_env)
                self._saved_env = None

    def client(self, service: str) -> Any:
        """A boto3 client bound to the mock (created lazily, after the mock is active)."""
        if self._mock is None:
            raise RuntimeError("LocalCloud is not active: use it as a context manager")
        if service not in self._clients:
            import boto3

            factory: Any = boto3.client  # service names are dynamic here; the stubs want literals
            self._clients[service] = factory(service, region_name=self.region)
        return self._clients[service]

    # -- names

    def physical(self, logical_id: str) -> str:
        """Ref of a resource: bucket/table/function/rule name, topic/state machine ARN, queue URL."""
        return str(self.template.ref(logical_id))

    def arn(self, logical_id: str) -> str:
        return str(self.template.get_att(logical_id, "Arn"))

    def function_env(self, logical_id: str) -> dict[str, str]:
        """The resolved environment of a template function (Globals merged, overrides applied)."""
        spec = self._functions[logical_id]
        return {**spec.environment, **self.env_overrides}

    def function_name(self, logical_id: str) -> str:
        return self._functions[logical_id].function_name

    @property
    def function_ids(self) -> list[str]:
        return list(self._functions)

    def _global_env(self, key: str) -> str | None:
        """A RECON_* value as the functions see it (the template, not a second list, names the resources)."""
        for spec in self._functions.values():
            if spec.environment.get(key):
                return spec.environment[key]
        return None

    def _single(self, types: tuple[str, ...], hint: str) -> str | None:
        candidates = self.template.of_type(*types)
        hinted = [r for r in candidates if hint.lower() in r.logical_id.lower()]
        chosen = hinted if len(hinted) == 1 else candidates
        return self.physical(chosen[0].logical_id) if len(chosen) == 1 else None

    def _required(self, value: str | None, what: str) -> str:
        if not value:
            raise LookupError(
                f"{what}: not found in {self.template_path} (no function env var and no single match)"
            )
        return value

    @property
    def raw_bucket(self) -> str:
        found = self._global_env("RECON_RAW_BUCKET") or self._single(("AWS::S3::Bucket",), "raw")
        return self._required(found, "raw bucket")

    @property
    def data_bucket(self) -> str:
        found = self._global_env("RECON_DATA_BUCKET") or self._single(("AWS::S3::Bucket",), "data")
        return self._required(found, "data bucket")

    @property
    def table_name(self) -> str:
        found = self._global_env("RECON_TABLE_NAME") or self._single(("AWS::DynamoDB::Table",), "table")
        return self._required(found, "table")

    @property
    def alert_topic_arn(self) -> str:
        found = self._global_env("RECON_ALERT_TOPIC_ARN") or self._single(("AWS::SNS::Topic",), "alert")
        return self._required(found, "alert topic")

    @property
    def state_machine_arn(self) -> str:
        found = self._global_env("RECON_STATE_MACHINE_ARN") or self._single(STATE_MACHINE_TYPES, "reconcile")
        return self._required(found, "state machine")

    @property
    def sender_email(self) -> str:
        found = self._global_env("RECON_SENDER_EMAIL") or self._single(("AWS::SES::EmailIdentity",), "sender")
        return self._required(found, "sender e-mail")

    # -- creation

    def _create_all(self) -> None:
        tpl = self.template
        iam = self.client("iam")
        role = iam.create_role(
            RoleName=f"{STACK_NAME}-local-execution",
            AssumeRolePolicyDocument=json.dumps(
                {
                    "Version": "2012-10-17",
                    "Statement": [
                        {
                            "Effect": "Allow",
                            "Principal": {"Service": ["lambda.amazonaws.com", "states.amazonaws.com"]},
                            "Action": "sts:AssumeRole",
                        }
                    ],
                }
            ),
        )
        self._role_arn = role["Role"]["Arn"]
        creators = {
            "AWS::KMS::Key": self._create_kms_key,
            "AWS::KMS::Alias": self._create_kms_alias,
            "AWS::SNS::Topic": self._create_topic,
            "AWS::SQS::Queue": self._create_queue,
            "AWS::DynamoDB::Table": self._create_table,
            "AWS::Serverless::SimpleTable": self._create_simple_table,
            "AWS::S3::Bucket": self._create_bucket,
            "AWS::SES::EmailIdentity": self._create_email_identity,
            "AWS::IAM::Role": self._create_role,
            "AWS::Serverless::Function": self._create_function,
            "AWS::Serverless::StateMachine": self._create_state_machine,
            "AWS::StepFunctions::StateMachine": self._create_state_machine,
            "AWS::Events::Rule": self._create_events_rule,
            "AWS::SNS::Subscription": self._create_subscription,
            "AWS::Scheduler::ScheduleGroup": self._create_schedule_group,
        }
        for rtype, create in creators.items():  # dependency order: targets before what points at them
            for res in tpl.of_type(rtype):
                if rtype in _AUXILIARY:
                    with self._best_effort(f"{rtype} {res.logical_id}"):
                        create(res)
                else:
                    create(res)
        for res in tpl.resources.values():
            if res.type not in creators and res.type not in _HANDLED_ELSEWHERE:
                LOG.debug("LocalCloud: skipping %s (%s): not modelled locally", res.logical_id, res.type)
                self.skipped[res.logical_id] = res.type
        self._apply_bucket_notifications()

    def _create_kms_key(self, res: Resource) -> None:
        props = self._props(res)
        key = self.client("kms").create_key(Description=str(props.get("Description", res.logical_id)))
        key_id = str(key["KeyMetadata"]["KeyId"])
        self.template.bind(res.logical_id, key_id)
        if _bool(props.get("EnableKeyRotation")):
            with self._best_effort(f"key rotation for {res.logical_id}"):
                self.client("kms").enable_key_rotation(KeyId=key_id)

    def _create_kms_alias(self, res: Resource) -> None:
        props = self._props(res)
        self.client("kms").create_alias(
            AliasName=str(props["AliasName"]), TargetKeyId=str(props["TargetKeyId"])
        )

    @contextlib.contextmanager
    def _best_effort(self, what: str) -> Iterator[None]:
        """Settings with no local behaviour (encryption, PITR, schedules...) must never block the stack."""
        try:
            yield
        except Exception as exc:
            LOG.warning("LocalCloud: %s not applied: %s", what, exc)
            self.warnings.append(f"{what}: {exc}")

    def _props(self, res: Resource) -> dict[str, Any]:
        props = self.template.resolve(res.properties)
        return props if isinstance(props, dict) else {}

    def _create_topic(self, res: Resource) -> None:
        props = self._props(res)
        attrs = {}
        if str(props.get("FifoTopic", "")).lower() == "true":
            attrs["FifoTopic"] = "true"
            if props.get("ContentBasedDeduplication") is not None:
                attrs["ContentBasedDeduplication"] = _env_str(props["ContentBasedDeduplication"])
        for key in ("DisplayName", "KmsMasterKeyId"):
            if props.get(key):
                attrs[key] = str(props[key])
        arn = self.client("sns").create_topic(
            Name=self.template.physical_name(res.logical_id), Attributes=attrs
        )["TopicArn"]
        for sub in props.get("Subscription") or []:
            self.client("sns").subscribe(
                TopicArn=arn, Protocol=sub["Protocol"], Endpoint=str(sub["Endpoint"])
            )

    def _create_queue(self, res: Resource) -> None:
        props = self._props(res)
        attrs: dict[str, str] = {}
        for key in (
            "VisibilityTimeout",
            "MessageRetentionPeriod",
            "DelaySeconds",
            "ReceiveMessageWaitTimeSeconds",
            "SqsManagedSseEnabled",
            "KmsMasterKeyId",
        ):
            if key in props:
                attrs[key] = _env_str(props[key])
        if str(props.get("FifoQueue", "")).lower() == "true":
            attrs["FifoQueue"] = "true"
        if isinstance(props.get("RedrivePolicy"), dict):
            attrs["RedrivePolicy"] = json.dumps(props["RedrivePolicy"])
        self.client("sqs").create_queue(
            QueueName=self.template.physical_name(res.logical_id), Attributes=attrs
        )

    def _create_table(self, res: Resource) -> None:
        props = self._props(res)
        billing = str(props.get("BillingMode", "PROVISIONED"))
        kwargs: dict[str, Any] = {
            "TableName": self.template.physical_name(res.logical_id),
            "AttributeDefinitions": props["AttributeDefinitions"],
            "KeySchema": props["KeySchema"],
            "BillingMode": billing,
        }
        throughput = props.get("ProvisionedThroughput") or {"ReadCapacityUnits": 5, "WriteCapacityUnits": 5}
        if billing == "PROVISIONED":
            kwargs["ProvisionedThroughput"] = self._int_values(throughput)
        gsis = []
        for gsi in props.get("GlobalSecondaryIndexes") or []:
            item = {k: v for k, v in gsi.items() if k in ("IndexName", "KeySchema", "Projection")}
            if billing == "PROVISIONED":
                item["ProvisionedThroughput"] = self._int_values(
                    gsi.get("ProvisionedThroughput") or throughput
                )
            gsis.append(item)
        if gsis:
            kwargs["GlobalSecondaryIndexes"] = gsis
        lsis = [
            {k: v for k, v in lsi.items() if k in ("IndexName", "KeySchema", "Projection")}
            for lsi in props.get("LocalSecondaryIndexes") or []
        ]
        if lsis:
            kwargs["LocalSecondaryIndexes"] = lsis
        if isinstance(props.get("StreamSpecification"), dict):
            kwargs["StreamSpecification"] = {"StreamEnabled": True, **props["StreamSpecification"]}
        sse = props.get("SSESpecification")
        if isinstance(sse, dict) and _bool(sse.get("SSEEnabled")):
            kwargs["SSESpecification"] = {"Enabled": True}
        if props.get("DeletionProtectionEnabled") is not None:
            kwargs["DeletionProtectionEnabled"] = _bool(props["DeletionProtectionEnabled"])
        ddb = self.client("dynamodb")
        ddb.create_table(**kwargs)
        pitr = props.get("PointInTimeRecoverySpecification")
        if isinstance(pitr, dict) and _bool(pitr.get("PointInTimeRecoveryEnabled")):
            with self._best_effort(f"update_continuous_backups for {res.logical_id}"):
                ddb.update_continuous_backups(
                    TableName=kwargs["TableName"],
                    PointInTimeRecoverySpecification={"PointInTimeRecoveryEnabled": True},
                )
        ttl = props.get("TimeToLiveSpecification")
        if isinstance(ttl, dict) and str(ttl.get("Enabled", "")).lower() == "true":
            with self._best_effort(f"update_time_to_live for {res.logical_id}"):
                ddb.update_time_to_live(
                    TableName=kwargs["TableName"],
                    TimeToLiveSpecification={"Enabled": True, "AttributeName": ttl["AttributeName"]},
                )

    @staticmethod
    def _int_values(d: dict[str, Any]) -> dict[str, int]:
        return {k: int(v) for k, v in d.items()}

    def _create_simple_table(self, res: Resource) -> None:
        props = self._props(res)
        pk = props.get("PrimaryKey") or {"Name": "id", "Type": "String"}
        type_code = {"String": "S", "Number": "N", "Binary": "B"}[str(pk.get("Type", "String"))]
        self.client("dynamodb").create_table(
            TableName=self.template.physical_name(res.logical_id),
            AttributeDefinitions=[{"AttributeName": pk["Name"], "AttributeType": type_code}],
            KeySchema=[{"AttributeName": pk["Name"], "KeyType": "HASH"}],
            BillingMode="PAY_PER_REQUEST",
        )

    def _create_bucket(self, res: Resource) -> None:
        props = self._props(res)
        name = self.template.physical_name(res.logical_id)
        s3 = self.client("s3")
        create: dict[str, Any] = {"Bucket": name}
        if self.region != "us-east-1":
            create["CreateBucketConfiguration"] = {"LocationConstraint": self.region}
        if _bool(props.get("ObjectLockEnabled")):
            create["ObjectLockEnabledForBucket"] = True
        s3.create_bucket(**create)
        lock = props.get("ObjectLockConfiguration")
        if create.get("ObjectLockEnabledForBucket") and isinstance(lock, dict):
            retention = ((lock.get("Rule") or {}).get("DefaultRetention")) or {}
            lock_config: dict[str, Any] = {"ObjectLockEnabled": "Enabled"}
            if retention:
                lock_config["Rule"] = {
                    "DefaultRetention": {
                        "Mode": str(retention["Mode"]),
                        **{k: int(retention[k]) for k in ("Days", "Years") if k in retention},
                    }
                }
            with self._best_effort(f"put_object_lock_configuration for {res.logical_id}"):
                s3.put_object_lock_configuration(Bucket=name, ObjectLockConfiguration=lock_config)
        encryption = props.get("BucketEncryption")
        if isinstance(encryption, dict):
            rules = []
            for rule in encryption.get("ServerSideEncryptionConfiguration") or []:
                default = rule.get("ServerSideEncryptionByDefault") or {}
                item: dict[str, Any] = {
                    "ApplyServerSideEncryptionByDefault": {
                        k: str(v) for k, v in default.items() if k in ("SSEAlgorithm", "KMSMasterKeyID")
                    }
                }
                if rule.get("BucketKeyEnabled") is not None:
                    item["BucketKeyEnabled"] = _bool(rule["BucketKeyEnabled"])
                rules.append(item)
            if rules:
                with self._best_effort(f"put_bucket_encryption for {res.logical_id}"):
                    s3.put_bucket_encryption(Bucket=name, ServerSideEncryptionConfiguration={"Rules": rules})
        block = props.get("PublicAccessBlockConfiguration")
        if isinstance(block, dict):
            with self._best_effort(f"put_public_access_block for {res.logical_id}"):
                s3.put_public_access_block(
                    Bucket=name, PublicAccessBlockConfiguration={k: _bool(v) for k, v in block.items()}
                )
        versioning = props.get("VersioningConfiguration")
        if isinstance(versioning, dict) and versioning.get("Status"):
            s3.put_bucket_versioning(
                Bucket=name, VersioningConfiguration={"Status": str(versioning["Status"])}
            )
        lifecycle = props.get("LifecycleConfiguration")
        if isinstance(lifecycle, dict) and lifecycle.get("Rules"):
            with self._best_effort(f"lifecycle for {res.logical_id}"):
                s3.put_bucket_lifecycle_configuration(
                    Bucket=name, LifecycleConfiguration={"Rules": self._lifecycle_rules(lifecycle["Rules"])}
                )
        notif = self._bucket_notifications.setdefault(name, {})
        config = props.get("NotificationConfiguration") or {}
        if config.get("EventBridgeConfiguration") is not None:
            eb = config["EventBridgeConfiguration"]
            if not isinstance(eb, dict) or str(eb.get("EventBridgeEnabled", "true")).lower() == "true":
                notif["EventBridgeConfiguration"] = [{}]
        for cfn_key, api_key, arn_key in (
            ("LambdaConfigurations", "LambdaFunctionConfigurations", "LambdaFunctionArn"),
            ("QueueConfigurations", "QueueConfigurations", "QueueArn"),
            ("TopicConfigurations", "TopicConfigurations", "TopicArn"),
        ):
            cfn_arn_key = {"LambdaFunctionArn": "Function", "QueueArn": "Queue", "TopicArn": "Topic"}[arn_key]
            for item in config.get(cfn_key) or []:
                entry: dict[str, Any] = {arn_key: item[cfn_arn_key], "Events": [item["Event"]]}
                if isinstance(item.get("Filter"), dict):
                    entry["Filter"] = self._s3_filter(item["Filter"])
                notif.setdefault(api_key, []).append(entry)

    @staticmethod
    def _lifecycle_rules(rules: list[dict[str, Any]]) -> list[dict[str, Any]]:
        out = []
        for i, rule in enumerate(rules):
            item: dict[str, Any] = {"ID": str(rule.get("Id", f"rule{i}")), "Status": str(rule.get("Status"))}
            item["Filter"] = {"Prefix": str(rule.get("Prefix", ""))}
            if "ExpirationInDays" in rule:
                item["Expiration"] = {"Days": int(rule["ExpirationInDays"])}
            if "NoncurrentVersionExpiration" in rule:
                days = rule["NoncurrentVersionExpiration"].get("NoncurrentDays")
                item["NoncurrentVersionExpiration"] = {"NoncurrentDays": int(days)}
            if "AbortIncompleteMultipartUpload" in rule:
                days = rule["AbortIncompleteMultipartUpload"]["DaysAfterInitiation"]
                item["AbortIncompleteMultipartUpload"] = {"DaysAfterInitiation": int(days)}
            if "NoncurrentVersionExpirationInDays" in rule:
                item["NoncurrentVersionExpiration"] = {
                    "NoncurrentDays": int(rule["NoncurrentVersionExpirationInDays"])
                }
            out.append(item)
        return out

    @staticmethod
    def _s3_filter(cfn_filter: dict[str, Any]) -> dict[str, Any]:
        """CloudFormation's S3Key.Rules (or SAM's) -> the API's Key.FilterRules."""
        key = cfn_filter.get("S3Key") or cfn_filter.get("Key") or {}
        rules = key.get("Rules") or key.get("FilterRules") or []
        return {"Key": {"FilterRules": [{"Name": str(r["Name"]), "Value": str(r["Value"])} for r in rules]}}

    def _apply_bucket_notifications(self) -> None:
        s3 = self.client("s3")
        for bucket, notif in self._bucket_notifications.items():
            if not notif:
                continue
            config: dict[str, Any] = {}
            for key, items in notif.items():
                config[key] = {} if key == "EventBridgeConfiguration" else items
            s3.put_bucket_notification_configuration(Bucket=bucket, NotificationConfiguration=config)

    def _create_schedule_group(self, res: Resource) -> None:
        self.client("scheduler").create_schedule_group(Name=self.template.physical_name(res.logical_id))

    def _create_email_identity(self, res: Resource) -> None:
        identity = self.template.physical_name(res.logical_id)
        ses = self.client("ses")
        if "@" in identity:
            ses.verify_email_identity(EmailAddress=identity)
        else:
            ses.verify_domain_identity(Domain=identity)

    def _create_role(self, res: Resource) -> None:
        props = self._props(res)
        policy = props.get("AssumeRolePolicyDocument") or {}
        self.client("iam").create_role(
            RoleName=self.template.physical_name(res.logical_id),
            AssumeRolePolicyDocument=policy if isinstance(policy, str) else json.dumps(policy),
        )

    def _layer_dirs(self, layers: list[Any]) -> list[Path]:
        """Source folders of the template's own layers (managed layer ARNs are provided by the venv)."""
        dirs = []
        by_arn = {
            str(self.template.ref(r.logical_id)): r
            for r in self.template.of_type("AWS::Serverless::LayerVersion", "AWS::Lambda::LayerVersion")
        }
        for layer in layers:
            res = by_arn.get(str(layer))
            if res is None:
                continue
            content = res.properties.get("ContentUri") or (res.properties.get("Content") or {}).get("S3Key")
            if isinstance(content, str):
                dirs.append(self.template.path_from(content))
        return dirs

    def _create_function(self, res: Resource) -> None:
        props = self._props(res)
        name = self.template.physical_name(res.logical_id)
        arn = str(self.template.get_att(res.logical_id, "Arn"))
        if str(props.get("PackageType", "Zip")) == "Image" or not isinstance(props.get("CodeUri"), str):
            LOG.debug("%s: only local CodeUri functions run in-process; created without code", res.logical_id)
        code_dir = self.template.path_from(str(props.get("CodeUri", ".")))
        env = {k: _env_str(v) for k, v in ((props.get("Environment") or {}).get("Variables") or {}).items()}
        spec = FunctionSpec(
            logical_id=res.logical_id,
            function_name=name,
            function_arn=arn,
            code_dir=code_dir,
            handler=str(props.get("Handler", "app.lambda_handler")),
            layer_dirs=self._layer_dirs(props.get("Layers") or []),
            environment=env,
            timeout_s=int(props.get("Timeout", 3)),
            memory_mb=int(props.get("MemorySize", 128)),
            region=self.region,
        )
        self._functions[res.logical_id] = spec
        self.runtime.register(spec)
        self.client("lambda").create_function(
            FunctionName=name,
            Runtime=str(props.get("Runtime", "python3.12")),
            Role=self._role_arn,
            Handler=spec.handler,
            Code={"ZipFile": _dummy_zip()},
            Timeout=spec.timeout_s,
            MemorySize=spec.memory_mb,
            Architectures=[str(a) for a in props.get("Architectures") or ["x86_64"]],
            Environment={"Variables": {**env, **self.env_overrides}},
        )
        for event_id, event in (props.get("Events") or {}).items():
            self._function_event(res.logical_id, arn, event_id, event)

    def _function_event(self, fn_logical: str, fn_arn: str, event_id: str, event: dict[str, Any]) -> None:
        etype = str(event.get("Type"))
        eprops = event.get("Properties") or {}
        if etype == "S3":
            events = eprops.get("Events")
            entry: dict[str, Any] = {
                "LambdaFunctionArn": fn_arn,
                "Events": events if isinstance(events, list) else [events],
            }
            if isinstance(eprops.get("Filter"), dict):
                entry["Filter"] = self._s3_filter(eprops["Filter"])
            notif = self._bucket_notifications.setdefault(str(eprops["Bucket"]), {})
            notif.setdefault("LambdaFunctionConfigurations", []).append(entry)
        elif etype == "SQS":
            self.client("lambda").create_event_source_mapping(
                EventSourceArn=str(eprops["Queue"]),
                FunctionName=fn_arn,
                BatchSize=int(eprops.get("BatchSize", 10)),
            )
        elif etype == "SNS":
            self.client("sns").subscribe(TopicArn=str(eprops["Topic"]), Protocol="lambda", Endpoint=fn_arn)
        elif etype in _RULE_EVENTS:
            self._event_source(fn_logical, fn_arn, event_id, event)
        else:
            LOG.debug("%s event %s of type %s has no local wiring", fn_logical, event_id, etype)

    def _event_source(self, owner: str, target_arn: str, event_id: str, event: dict[str, Any]) -> None:
        """SAM EventBridgeRule/CloudWatchEvent/Schedule (events rules) and ScheduleV2 (Scheduler)."""
        etype = str(event.get("Type"))
        props = event.get("Properties") or {}
        logical = f"{owner}{event_id}"  # the logical id SAM gives the generated rule/schedule
        if etype == "ScheduleV2":
            name = str(props.get("Name") or f"{STACK_NAME}-{logical}")[:64]
            target: dict[str, Any] = {"Arn": target_arn, "RoleArn": self._role_arn}
            if props.get("Input") is not None:
                target["Input"] = _env_str(props["Input"])
            kwargs: dict[str, Any] = {
                "Name": name,
                "ScheduleExpression": str(props["ScheduleExpression"]),
                "FlexibleTimeWindow": {"Mode": "OFF"},
                "Target": target,
                "State": str(props.get("State", "ENABLED")),
            }
            if props.get("ScheduleExpressionTimezone"):
                kwargs["ScheduleExpressionTimezone"] = str(props["ScheduleExpressionTimezone"])
            with self._best_effort(f"schedule {logical}"):
                self.client("scheduler").create_schedule(**kwargs)
            self.schedules[logical] = {
                "name": name,
                "expression": kwargs["ScheduleExpression"],
                "timezone": kwargs.get("ScheduleExpressionTimezone"),
                "target": target_arn,
                "input": target.get("Input"),
            }
            return
        self._put_rule(logical, props, targets=[target_arn])

    def _put_rule(self, logical: str, props: dict[str, Any], *, targets: list[str]) -> None:
        """Create an events rule (pattern/schedule); its Lambda/Step Functions targets are only recorded.

        moto does not deliver to Lambda or Step Functions targets and raises NotImplementedError for a
        matching event, which would break unrelated PutEvents calls, so targets are attached only by
        subscribe_queue_to_rule (SQS) and delivered explicitly by deliver_rule.
        """
        name = str(props.get("RuleName") or props.get("Name") or f"{STACK_NAME}-{logical}")[:64]
        bus = str(props.get("EventBusName", "default"))
        kwargs: dict[str, Any] = {
            "Name": name,
            "EventBusName": bus,
            "State": str(props.get("State", "ENABLED")),
        }
        pattern = props.get("Pattern") or props.get("EventPattern")
        schedule = props.get("Schedule") or props.get("ScheduleExpression")
        if pattern is not None:
            kwargs["EventPattern"] = pattern if isinstance(pattern, str) else json.dumps(pattern)
        if schedule is not None:
            kwargs["ScheduleExpression"] = str(schedule)
        if pattern is None and schedule is None:
            LOG.debug("rule %s has neither pattern nor schedule", logical)
            return
        self.client("events").put_rule(**kwargs)
        self.rules[logical] = {
            "name": name,
            "bus": bus,
            "pattern": json.loads(kwargs["EventPattern"]) if "EventPattern" in kwargs else None,
            "schedule": kwargs.get("ScheduleExpression"),
            "targets": [t for t in targets if t],
            "input": _env_str(props["Input"]) if props.get("Input") is not None else None,
        }

    def _create_events_rule(self, res: Resource) -> None:
        props = self._props(res)
        props.setdefault("Name", self.template.physical_name(res.logical_id))
        targets = [t for t in props.get("Targets") or [] if isinstance(t, dict)]
        self._put_rule(res.logical_id, props, targets=[str(t.get("Arn")) for t in targets])
        if res.logical_id not in self.rules:
            return
        sqs_targets = [
            {"Id": str(t["Id"]), "Arn": str(t["Arn"])} for t in targets if ":sqs:" in str(t.get("Arn", ""))
        ]
        if sqs_targets:
            self.client("events").put_targets(
                Rule=self.rules[res.logical_id]["name"],
                EventBusName=self.rules[res.logical_id]["bus"],
                Targets=sqs_targets,
            )

    def _create_subscription(self, res: Resource) -> None:
        props = self._props(res)
        kwargs: dict[str, Any] = {
            "TopicArn": str(props["TopicArn"]),
            "Protocol": str(props["Protocol"]),
            "Endpoint": str(props["Endpoint"]),
        }
        attrs = {}
        if props.get("RawMessageDelivery") is not None:
            attrs["RawMessageDelivery"] = _env_str(props["RawMessageDelivery"])
        if props.get("FilterPolicy") is not None:
            attrs["FilterPolicy"] = json.dumps(props["FilterPolicy"])
        if attrs:
            kwargs["Attributes"] = attrs
        self.client("sns").subscribe(**kwargs)

    def _load_definition(self, res: Resource, props: dict[str, Any]) -> dict[str, Any]:
        if isinstance(props.get("Definition"), dict):
            definition: dict[str, Any] = props["Definition"]
        elif isinstance(props.get("DefinitionString"), str):
            definition = json.loads(props["DefinitionString"])
        elif isinstance(props.get("DefinitionUri"), str):
            path = self.template.path_from(props["DefinitionUri"])
            text = path.read_text(encoding="utf-8")
            if path.suffix in (".yaml", ".yml"):
                import yaml

                definition = yaml.safe_load(text)
            else:
                definition = json.loads(text)
        else:
            raise ValueError(f"{res.logical_id}: no Definition, DefinitionString or local DefinitionUri")
        substitutions = props.get("DefinitionSubstitutions") or {}
        definition = apply_substitutions(definition, {k: _env_str(v) for k, v in substitutions.items()})
        if self.fast_retries:
            definition = shorten_waits_and_retries(definition)
        return definition

    def _create_state_machine(self, res: Resource) -> None:
        props = self._props(res)
        definition = self._load_definition(res, props)
        self.definitions[res.logical_id] = definition
        self.client("stepfunctions").create_state_machine(
            name=self.template.physical_name(res.logical_id),
            definition=json.dumps(definition),
            roleArn=self._role_arn,
            type=str(props.get("Type", props.get("StateMachineType", "STANDARD"))),
        )
        sm_arn = str(self.template.ref(res.logical_id))
        for event_id, event in (props.get("Events") or {}).items():
            etype = str(event.get("Type"))
            if etype in _RULE_EVENTS:
                self._event_source(res.logical_id, sm_arn, event_id, event)
            else:
                LOG.debug("%s event %s of type %s has no local wiring", res.logical_id, event_id, etype)

    # -- running things

    def invoke(self, logical_id: str, event: Any, *, raise_on_error: bool = True) -> Any:
        """Invoke a template function through moto's Lambda API and return its decoded payload.

        On a function error (the handler raised) this raises LambdaInvocationError, or with
        raise_on_error=False returns Lambda's error document {"errorType", "errorMessage", "stackTrace"}.
        """
        resp = self.client("lambda").invoke(
            FunctionName=self.function_name(logical_id), Payload=json.dumps(event).encode()
        )
        payload = json.loads(resp["Payload"].read() or b"null")
        if resp.get("FunctionError") and raise_on_error:
            raise LambdaInvocationError(logical_id, payload)
        return payload

    def start_execution(
        self, payload: Any, name: str | None = None, *, state_machine: str | None = None
    ) -> str:
        """Start the (or the named logical id's) state machine; returns the execution ARN."""
        arn = self.physical(state_machine) if state_machine else self.state_machine_arn
        kwargs: dict[str, Any] = {"stateMachineArn": arn, "input": json.dumps(payload)}
        if name:
            kwargs["name"] = name
        return str(self.client("stepfunctions").start_execution(**kwargs)["executionArn"])

    def wait(self, execution_arn: str, timeout_s: float = 120) -> ExecutionResult:
        """Poll DescribeExecution until the execution leaves RUNNING (TimeoutError after timeout_s)."""
        sfn = self.client("stepfunctions")
        deadline = time.monotonic() + timeout_s
        delay = 0.02
        while True:
            desc = sfn.describe_execution(executionArn=execution_arn)
            if desc["status"] != "RUNNING":
                break
            if time.monotonic() > deadline:
                history = self._history(execution_arn)
                states = [
                    e["stateEnteredEventDetails"]["name"] for e in history if "stateEnteredEventDetails" in e
                ]
                raise TimeoutError(f"{execution_arn} still RUNNING after {timeout_s}s; states: {states}")
            time.sleep(delay)
            delay = min(delay * 1.5, 0.25)
        history = self._history(execution_arn)
        output = desc.get("output")
        error, cause = desc.get("error"), desc.get("cause")
        if desc["status"] != "SUCCEEDED" and error is None:
            for e in reversed(history):
                details = e.get("executionFailedEventDetails") or e.get("executionAbortedEventDetails")
                if details:
                    error, cause = details.get("error"), details.get("cause")
                    break
        return ExecutionResult(
            execution_arn=execution_arn,
            status=str(desc["status"]),
            output=json.loads(output) if output else None,
            error=error,
            cause=cause,
            history=history,
        )

    def run(self, payload: Any, name: str | None = None, timeout_s: float = 120) -> ExecutionResult:
        return self.wait(self.start_execution(payload, name), timeout_s)

    def _history(self, execution_arn: str) -> list[dict[str, Any]]:
        sfn = self.client("stepfunctions")
        events: list[dict[str, Any]] = []
        kwargs: dict[str, Any] = {"executionArn": execution_arn, "maxResults": 1000}
        while True:
            page = sfn.get_execution_history(**kwargs)
            events.extend(page["events"])
            if not page.get("nextToken"):
                return events
            kwargs["nextToken"] = page["nextToken"]

    # -- observing side effects

    def sent_emails(self) -> list[dict[str, Any]]:
        """Messages accepted by moto's SES (v1 and v2 share the store).

        moto keeps a single body for simple messages (HTML if given, else text) in ``body``; the HTML and
        text parts as sent are captured separately (runtime_ses) into ``html`` and ``text``. Raw messages
        are parsed: subject, html, text, attachment names.
        """
        from moto.ses.models import RawMessage, TemplateMessage, ses_backends

        out: list[dict[str, Any]] = []
        for msg in ses_backends[self.account_id][self.region].sent_messages:
            item: dict[str, Any] = {"id": getattr(msg, "id", None), "source": msg.source}
            if isinstance(msg, RawMessage):
                parsed = email.message_from_string(msg.raw_data, policy=email.policy.default)
                item.update(
                    destinations=list(msg.destinations),
                    subject=str(parsed.get("Subject", "")),
                    raw=msg.raw_data,
                )
                html_part = parsed.get_body(preferencelist=("html",))
                text_part = parsed.get_body(preferencelist=("plain",))
                item["html"] = html_part.get_content() if html_part is not None else None
                item["text"] = text_part.get_content() if text_part is not None else None
                item["body"] = item["html"] or item["text"]
                item["attachments"] = [
                    {"filename": part.get_filename(), "content_type": part.get_content_type()}
                    for part in parsed.iter_attachments()
                ]
            elif isinstance(msg, TemplateMessage):
                item.update(
                    destinations=msg.destinations, subject=None, template=msg.template, body=msg.template_data
                )
            else:
                body = str(msg.body or "")
                if hasattr(msg, "local_html"):  # captured by runtime_ses: both parts as sent
                    html, text = msg.local_html, msg.local_text
                else:
                    looks_html = body.lstrip().startswith("<")
                    html, text = (body, None) if looks_html else (None, body)
                item.update(
                    destinations=msg.destinations,
                    subject=msg.subject,
                    body=body,
                    html=html,
                    text=text,
                    attachments=[],
                )
            out.append(item)
        return out

    def published(self, topic_arn: str) -> list[dict[str, Any]]:
        """Every message published to a topic (moto's SNS backend); JSON messages parsed into ``json``."""
        from moto.sns.models import sns_backends

        topic = sns_backends[self.account_id][self.region].topics.get(topic_arn)
        if topic is None:
            raise LookupError(f"no SNS topic {topic_arn}")
        out = []
        for message_id, message, subject, attributes, _group in topic.sent_notifications:
            try:
                parsed: Any = json.loads(message)
            except (TypeError, ValueError):
                parsed = None
            out.append(
                {
                    "message_id": message_id,
                    "subject": subject,
                    "message": message,
                    "json": parsed,
                    "attributes": attributes,
                }
            )
        return out

    def published_alerts(self) -> list[dict[str, Any]]:
        return self.published(self.alert_topic_arn)

    def subscribe_queue_to_rule(self, rule_logical_id: str) -> str:
        """Give a template EventBridge rule an SQS target; returns the queue URL (see read_queue)."""
        if rule_logical_id in self._rule_queues:
            return self._rule_queues[rule_logical_id]
        if rule_logical_id not in self.rules:
            raise KeyError(f"no rule {rule_logical_id!r}; known: {sorted(self.rules)}")
        rule = self.rules[rule_logical_id]
        sqs = self.client("sqs")
        url = sqs.create_queue(QueueName=f"rule-{rule['name']}"[:80])["QueueUrl"]
        queue_arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"][
            "QueueArn"
        ]
        self.client("events").put_targets(
            Rule=rule["name"], EventBusName=rule["bus"], Targets=[{"Id": "local-sqs", "Arn": queue_arn}]
        )
        self._rule_queues[rule_logical_id] = url
        return str(url)

    def read_queue(self, queue_url: str, *, max_messages: int = 100) -> list[Any]:
        """Receive and delete up to max_messages, returning the bodies (JSON-decoded when possible)."""
        sqs = self.client("sqs")
        bodies: list[Any] = []
        while len(bodies) < max_messages:
            msgs = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=0).get(
                "Messages"
            )
            if not msgs:
                break
            for m in msgs:
                try:
                    bodies.append(json.loads(m["Body"]))
                except ValueError:
                    bodies.append(m["Body"])
                sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=m["ReceiptHandle"])
        return bodies

    def _deliver(self, target_arn: str, event: Any) -> Any:
        """What EventBridge would do with an event for a Lambda or Step Functions target."""
        if ":states:" in target_arn:
            return self.client("stepfunctions").start_execution(
                stateMachineArn=target_arn, input=json.dumps(event)
            )["executionArn"]
        if ":lambda:" in target_arn:
            for logical, spec in self._functions.items():
                if spec.function_arn == target_arn:
                    return self.invoke(logical, event, raise_on_error=False)
        raise LookupError(f"cannot deliver to {target_arn}")

    def deliver_rule(self, rule_logical_id: str) -> list[Any]:
        """Deliver the events queued for a rule (see subscribe_queue_to_rule) to its declared targets.

        Stands in for EventBridge -> Lambda / Step Functions, which moto does not deliver. Returns, per event
        and target, the Lambda payload (error document on a function error) or the execution ARN.
        """
        url = self.subscribe_queue_to_rule(rule_logical_id)
        results = []
        for event in self.read_queue(url):
            for target in self.rules[rule_logical_id]["targets"]:
                results.append(self._deliver(target, event))
        return results

    def fire_schedule(self, logical_id: str) -> Any:
        """Do what a schedule does when it fires (moto never fires them): send its Input to its target."""
        sched = self.schedules.get(logical_id) or self.rules.get(logical_id)
        if sched is None:
            raise KeyError(
                f"no schedule {logical_id!r}; known: {sorted(self.schedules) + sorted(self.rules)}"
            )
        payload = json.loads(sched["input"]) if sched.get("input") else {}
        targets = [sched["target"]] if "target" in sched else sched["targets"]
        results = [self._deliver(t, payload) for t in targets]
        return results[0] if len(results) == 1 else results


class LambdaInvocationError(RuntimeError):
    """A function returned a function error (the handler raised)."""

    def __init__(self, logical_id: str, payload: Any) -> None:
        self.logical_id = logical_id
        self.payload = payload
        self.error_type = payload.get("errorType") if isinstance(payload, dict) else None
        message = payload.get("errorMessage") if isinstance(payload, dict) else payload
        super().__init__(f"{logical_id} failed with {self.error_type}: {message}")
