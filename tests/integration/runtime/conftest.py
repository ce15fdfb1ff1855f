"""A throwaway SAM app (template + ASL + handlers) to test LocalCloud's mechanics apart from the real app."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest

TEMPLATE = r"""
AWSTemplateFormatVersion: "2010-09-09"
Transform: AWS::Serverless-2016-10-31
Parameters:
  Stage:
    Type: String
    Default: test
  SenderEmail:
    Type: String
    Default: reports@example.com
  UseLock:
    Type: String
    Default: "false"
Conditions:
  Locked: !Equals [!Ref UseLock, "true"]
Globals:
  Function:
    Runtime: python3.12
    Handler: app.lambda_handler
    Timeout: 30
    MemorySize: 256
    Environment:
      Variables:
        RECON_RAW_BUCKET: !Ref RawBucket
        RECON_DATA_BUCKET: !Ref DataBucket
        RECON_TABLE_NAME: !Ref Table
        RECON_ALERT_TOPIC_ARN: !Ref AlertTopic
        RECON_SENDER_EMAIL: !Ref SenderEmail
        RECON_STATE_MACHINE_ARN: !Sub "arn:${AWS::Partition}:states:${AWS::Region}:${AWS::AccountId}:\
          stateMachine:${AWS::StackName}-flow"
        STAGE: !Ref Stage
Resources:
  RawBucket:
    Type: AWS::S3::Bucket
    Properties:
      VersioningConfiguration:
        Status: Enabled
      ObjectLockEnabled: !If [Locked, true, !Ref AWS::NoValue]
      NotificationConfiguration:
        EventBridgeConfiguration:
          EventBridgeEnabled: true
  DataBucket:
    Type: AWS::S3::Bucket
    Properties:
      BucketName: !Sub "${AWS::StackName}-data-${AWS::AccountId}"
  Table:
    Type: AWS::DynamoDB::Table
    Properties:
      BillingMode: PAY_PER_REQUEST
      AttributeDefinitions:
        - {AttributeName: pk, AttributeType: S}
        - {AttributeName: sk, AttributeType: S}
        - {AttributeName: gsi1pk, AttributeType: S}
        - {AttributeName: gsi1sk, AttributeType: S}
      KeySchema:
        - {AttributeName: pk, KeyType: HASH}
        - {AttributeName: sk, KeyType: RANGE}
      GlobalSecondaryIndexes:
        - IndexName: gsi1
          KeySchema:
            - {AttributeName: gsi1pk, KeyType: HASH}
            - {AttributeName: gsi1sk, KeyType: RANGE}
          Projection: {ProjectionType: ALL}
  AlertTopic:
    Type: AWS::SNS::Topic
  SenderIdentity:
    Type: AWS::SES::EmailIdentity
    Properties:
      EmailIdentity: !Ref SenderEmail
  Alarm:
    Type: AWS::CloudWatch::Alarm
    Properties:
      AlarmName: not-modelled
  EchoFunction:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: ../functions/echo/
      Environment:
        Variables:
          ONLY_ECHO: !Join ["-", [echo, !Ref Stage]]
      Events:
        Uploaded:
          Type: EventBridgeRule
          Properties:
            RuleName: !Sub "${AWS::StackName}-uploaded"
            Pattern:
              source: [aws.s3]
              detail-type: [Object Created]
              detail:
                bucket:
                  name: [!Ref RawBucket]
                object:
                  key: [{prefix: raw/}]
  FlakyFunction:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: ../functions/flaky/
      Timeout: 5
  Flow:
    Type: AWS::Serverless::StateMachine
    Properties:
      Name: !Sub "${AWS::StackName}-flow"
      DefinitionUri: ../statemachine/flow.asl.json
      DefinitionSubstitutions:
        EchoFunctionArn: !GetAtt EchoFunction.Arn
        FlakyFunctionArn: !GetAtt FlakyFunction.Arn
        AlertTopicArn: !Ref AlertTopic
      Events:
        Nightly:
          Type: ScheduleV2
          Properties:
            ScheduleExpression: cron(0 2 * * ? *)
            Input: !Sub '{"stage": "${Stage}", "fetch": {"mode": "ok"}}'
"""

FLOW = {
    "StartAt": "Echo",
    "States": {
        "Echo": {
            "Type": "Task",
            "Resource": "arn:aws:states:::lambda:invoke",
            "Parameters": {"FunctionName": "${EchoFunctionArn}", "Payload.$": "$"},
            "ResultSelector": {"stage.$": "$.Payload.env.STAGE", "function.$": "$.Payload.function_name"},
            "ResultPath": "$.echo",
            "Next": "Pause",
        },
        "Pause": {"Type": "Wait", "Seconds": 3600, "Next": "Fetch"},
        "Fetch": {
            "Type": "Task",
            "Resource": "arn:aws:states:::lambda:invoke",
            "Parameters": {"FunctionName": "${FlakyFunctionArn}", "Payload.$": "$.fetch"},
            "ResultSelector": {"attempts.$": "$.Payload.attempts"},
            "ResultPath": "$.fetched",
            "Retry": [
                {
                    "ErrorEquals": ["StatementNotReady"],
                    "IntervalSeconds": 900,
                    "MaxAttempts": 8,
                    "BackoffRate": 2.0,
                }
            ],
            "Catch": [{"ErrorEquals": ["StatementNotReady"], "ResultPath": "$.error", "Next": "NotReady"}],
            "Next": "Notify",
        },
        "NotReady": {"Type": "Pass", "Result": "not-ready", "ResultPath": "$.outcome", "Next": "Notify"},
        "Notify": {
            "Type": "Task",
            "Resource": "arn:aws:states:::sns:publish",
            "Parameters": {
                "TopicArn": "${AlertTopicArn}",
                "Subject": "flow",
                "Message.$": "States.JsonToString($)",
            },
            "ResultPath": None,
            "Next": "Done",
        },
        "Done": {"Type": "Succeed"},
    },
}

ECHO = """
import os

import boto3


def lambda_handler(event, context):
    if event.get("send_email"):
        boto3.client("ses").send_email(
            Source=os.environ["RECON_SENDER_EMAIL"],
            Destination={"ToAddresses": ["finance@example.com"]},
            Message={
                "Subject": {"Data": "report"},
                "Body": {"Html": {"Data": "<h1>ok</h1>"}, "Text": {"Data": "ok"}},
            },
        )
    if event.get("send_email_v2"):
        boto3.client("sesv2").send_email(
            FromEmailAddress=os.environ["RECON_SENDER_EMAIL"],
            Destination={"ToAddresses": ["audit@example.com"]},
            Content={"Simple": {"Subject": {"Data": "v2"}, "Body": {"Text": {"Data": "plain only"}}}},
        )
    if event.get("boom"):
        raise ValueError("boom requested")
    try:
        from recon.settings import get_settings

        settings_bucket = get_settings().raw_bucket
    except ImportError:
        settings_bucket = None
    return {
        "event": event,
        "env": {k: v for k, v in os.environ.items() if k.startswith(("RECON_", "STAGE", "ONLY_"))},
        "settings_raw_bucket": settings_bucket,
        "function_name": context.function_name,
        "memory": context.memory_limit_in_mb,
        "arn": context.invoked_function_arn,
        "remaining_ms": context.get_remaining_time_in_millis(),
    }
"""

FLAKY = '''
ATTEMPTS = {"n": 0}


class StatementNotReady(Exception):
    """The provider has not published the statement yet."""


def lambda_handler(event, context):
    ATTEMPTS["n"] += 1
    mode = event.get("mode", "ok")
    if mode == "never" or (mode == "once" and ATTEMPTS["n"] == 1):
        raise StatementNotReady(f"not yet (attempt {ATTEMPTS['n']})")
    return {"attempts": ATTEMPTS["n"]}
'''


@pytest.fixture
def mini_app(tmp_path: Path) -> Path:
    """Write the throwaway app and return the template path (infra/template.yaml layout, like the repo)."""
    (tmp_path / "infra").mkdir()
    (tmp_path / "infra" / "template.yaml").write_text(TEMPLATE, encoding="utf-8")
    (tmp_path / "statemachine").mkdir()
    (tmp_path / "statemachine" / "flow.asl.json").write_text(json.dumps(FLOW, indent=2), encoding="utf-8")
    for name, code in (("echo", ECHO), ("flaky", FLAKY)):
        (tmp_path / "functions" / name).mkdir(parents=True)
        (tmp_path / "functions" / name / "app.py").write_text(textwrap.dedent(code), encoding="utf-8")
    return tmp_path / "infra" / "template.yaml"
