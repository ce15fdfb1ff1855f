"""SES mailer, SNS alert publisher, Step Functions starter against moto; the fakes must agree with them."""

from __future__ import annotations

import json
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from moto.core.models import DEFAULT_ACCOUNT_ID
from moto.ses.models import ses_backends

from recon.adapters.memory import MemoryAlertPublisher, MemoryMailer, MemoryWorkflowStarter
from recon.adapters.notify import SesMailer, SnsAlertPublisher
from recon.adapters.workflow import StepFunctionsStarter

REGION = "us-east-1"
SENDER = "recon@example.com"
PASS_DEFINITION = json.dumps({"StartAt": "Done", "States": {"Done": {"Type": "Pass", "End": True}}})


# --- SES ---------------------------------------------------------------------------------------------------


@pytest.mark.usefixtures("moto")
def test_ses_mailer_sends_html_and_text_and_returns_the_message_id() -> None:
    boto3.client("ses").verify_email_identity(EmailAddress=SENDER)
    mailer = SesMailer()

    message_id = mailer.send(
        sender=SENDER,
        to=["finance@example.com", "cfo@example.com", "finance@example.com"],
        subject="对账报告 2024-05-01:\n3 条差异",
        html="<h1>对账报告</h1><p>差异 3 条</p>",
        text="对账报告\n差异 3 条",
    )

    sent = ses_backends[DEFAULT_ACCOUNT_ID][REGION].sent_messages
    assert len(sent) == 1
    assert sent[0].id == message_id
    assert sent[0].source == SENDER
    assert sent[0].destinations["ToAddresses"] == ["finance@example.com", "cfo@example.com"]  # de-duplicated
    assert sent[0].subject == "对账报告 2024-05-01: 3 条差异"  # one line
    assert "差异 3 条" in sent[0].body


@pytest.mark.usefixtures("moto")
def test_ses_mailer_refuses_unverified_sender_and_empty_recipients() -> None:
    mailer = SesMailer()
    with pytest.raises(ClientError) as rejected:
        mailer.send(sender="nobody@example.com", to=["a@example.com"], subject="s", html="<p>h</p>", text="t")
    assert rejected.value.response["Error"]["Code"] == "MessageRejected"
    with pytest.raises(ValueError, match="no recipients"):
        mailer.send(sender=SENDER, to=[" "], subject="s", html="h", text="t")
    assert ses_backends[DEFAULT_ACCOUNT_ID][REGION].sent_messages == []


def test_memory_mailer_records_what_ses_would_send() -> None:
    mailer = MemoryMailer()
    message_id = mailer.send(
        sender=SENDER, to=["a@example.com", "a@example.com"], subject="x\ny", html="h", text="t"
    )
    assert [(m.message_id, m.to, m.subject) for m in mailer.sent] == [(message_id, ["a@example.com"], "x y")]


# --- SNS ---------------------------------------------------------------------------------------------------


def _topic_with_queue() -> tuple[str, str]:
    """A topic whose messages land (as SNS notifications) in an SQS queue we can read."""
    topic_arn = boto3.client("sns").create_topic(Name="recon-alerts")["TopicArn"]
    sqs = boto3.client("sqs")
    queue_url = sqs.create_queue(QueueName="alerts")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    boto3.client("sns").subscribe(TopicArn=topic_arn, Protocol="sqs", Endpoint=queue_arn)
    return topic_arn, queue_url


def _received(queue_url: str) -> list[dict[str, Any]]:
    messages = boto3.client("sqs").receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10)["Messages"]
    return [json.loads(m["Body"]) for m in messages]


@pytest.mark.usefixtures("moto")
def test_sns_publisher_truncates_the_subject_and_sends_attributes() -> None:
    topic_arn, queue_url = _topic_with_queue()
    long_subject = "对账差异告警\n" + "项目 shop 2024-05-01 有未处理差异 " * 10
    assert len(long_subject) > 100

    message_id = SnsAlertPublisher(topic_arn).publish(
        subject=long_subject,
        message="3 open cases, 1,234.56 CNY at stake",
        attributes={"project": "shop", "severity": "high", "empty": ""},
    )

    [notification] = _received(queue_url)
    assert notification["MessageId"] == message_id
    assert notification["Message"] == "3 open cases, 1,234.56 CNY at stake"
    subject = notification["Subject"]
    assert len(subject) <= 100 and subject.endswith("…")
    assert "\n" not in subject and subject.startswith("对账差异告警 项目 shop")
    attributes = notification["MessageAttributes"]
    assert attributes["project"] == {"Type": "String", "Value": "shop"}
    assert attributes["severity"]["Value"] == "high"
    assert "empty" not in attributes  # SNS rejects empty values

    fake = MemoryAlertPublisher()  # the fake records what SNS received
    fake.publish(subject=long_subject, message="m", attributes={"project": "shop", "empty": ""})
    assert (fake.published[0].subject, fake.published[0].attributes) == (subject, {"project": "shop"})


@pytest.fixture
def settings_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    for name, value in {"RECON_RAW_BUCKET": "r", "RECON_DATA_BUCKET": "d", "RECON_TABLE_NAME": "t"}.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("RECON_ALERT_TOPIC_ARN", raising=False)
    return monkeypatch


@pytest.mark.usefixtures("moto")
def test_sns_publisher_uses_the_configured_topic(settings_env: pytest.MonkeyPatch) -> None:
    topic_arn, queue_url = _topic_with_queue()
    settings_env.setenv("RECON_ALERT_TOPIC_ARN", topic_arn)

    SnsAlertPublisher().publish(subject="short", message="hello")

    assert [(n["Subject"], n["Message"]) for n in _received(queue_url)] == [("short", "hello")]


@pytest.mark.usefixtures("settings_env")
def test_sns_publisher_without_topic_fails_clearly() -> None:
    with pytest.raises(ValueError, match="RECON_ALERT_TOPIC_ARN"):
        SnsAlertPublisher().publish(subject="s", message="m")


# --- Step Functions ----------------------------------------------------------------------------------------


def _state_machine() -> str:
    return boto3.client("stepfunctions").create_state_machine(
        name="recon-reconcile",
        definition=PASS_DEFINITION,
        roleArn="arn:aws:iam::123456789012:role/recon-states",
    )["stateMachineArn"]


@pytest.mark.usefixtures("moto")
def test_step_functions_starter_is_idempotent_per_name() -> None:
    machine = _state_machine()
    starter = StepFunctionsStarter(machine)
    payload = {"project_id": "shop", "business_date": "2024-05-01", "trigger": "upload"}

    first = starter.start(name="shop:2024-05-01:upload/alipay bill.csv", payload=payload)
    again = starter.start(name="shop:2024-05-01:upload/alipay bill.csv", payload=payload)  # re-delivery
    changed = starter.start(name="shop:2024-05-01:upload/alipay bill.csv", payload={**payload, "x": 1})
    other = starter.start(name="shop-2024-05-02", payload=payload)

    assert first == again == changed
    assert other != first and other.endswith(":shop-2024-05-02")
    sfn = boto3.client("stepfunctions")
    executions = sfn.list_executions(stateMachineArn=machine)["executions"]
    assert sorted(e["executionArn"] for e in executions) == sorted([first, other])
    name = sfn.describe_execution(executionArn=first)["name"]
    assert len(name) <= 80 and all(c.isalnum() or c in "-_" for c in name)
    assert json.loads(sfn.describe_execution(executionArn=first)["input"]) == payload

    fake = MemoryWorkflowStarter(machine)  # the fake names executions the same way
    assert fake.start(name="shop:2024-05-01:upload/alipay bill.csv", payload=payload) == first


@pytest.mark.usefixtures("moto")
def test_step_functions_starter_returns_the_finished_execution_of_a_reused_name() -> None:
    with_interpreter_off = _state_machine()
    starter = StepFunctionsStarter(with_interpreter_off)
    arn = starter.start(name="run-1", payload={"a": 1})
    sfn = boto3.client("stepfunctions")
    sfn.stop_execution(executionArn=arn)  # a closed execution: AWS raises ExecutionAlreadyExists for its name

    assert starter.start(name="run-1", payload={"a": 1}) == arn
    assert len(sfn.list_executions(stateMachineArn=with_interpreter_off)["executions"]) == 1


@pytest.mark.usefixtures("moto")
def test_step_functions_starter_propagates_other_errors() -> None:
    starter = StepFunctionsStarter("arn:aws:states:us-east-1:123456789012:stateMachine:missing")
    with pytest.raises(ClientError) as failed:
        starter.start(name="run-1", payload={})
    assert failed.value.response["Error"]["Code"] == "StateMachineDoesNotExist"
