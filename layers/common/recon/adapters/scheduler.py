"""``ScheduleManager`` on EventBridge Scheduler: one schedule per project, in the stack's schedule group."""

from __future__ import annotations

import json
from typing import Any

from botocore.exceptions import ClientError

from . import aws


class EventBridgeScheduleManager:
    """Schedules that start the reconcile state machine with a fixed input, evaluated in a time zone."""

    def __init__(self, *, group: str, target_arn: str, role_arn: str, client: Any | None = None) -> None:
        self._group = group
        self._target_arn = target_arn
        self._role_arn = role_arn
        self._client = client

    @property
    def client(self) -> Any:
        if self._client is None:
            self._client = aws.client("scheduler")
        return self._client

    def _check(self) -> None:
        missing = [
            n
            for n, v in (("group", self._group), ("target", self._target_arn), ("role", self._role_arn))
            if not v
        ]
        if missing:
            raise ValueError(f"schedule manager not configured: {', '.join(missing)} missing")

    def upsert(
        self, *, name: str, expression: str, timezone: str, payload: dict[str, Any], description: str
    ) -> None:
        self._check()
        request = {
            "Name": name,
            "GroupName": self._group,
            "ScheduleExpression": expression,
            "ScheduleExpressionTimezone": timezone,
            "FlexibleTimeWindow": {"Mode": "OFF"},
            "Description": description[:512],
            "State": "ENABLED",
            "Target": {
                "Arn": self._target_arn,
                "RoleArn": self._role_arn,
                "Input": json.dumps(payload, sort_keys=True),
                "RetryPolicy": {"MaximumRetryAttempts": 10, "MaximumEventAgeInSeconds": 3600},
            },
        }
        try:
            self.client.create_schedule(**request)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") != "ConflictException":
                raise
            self.client.update_schedule(**request)

    def delete(self, name: str) -> bool:
        self._check()
        try:
            self.client.delete_schedule(Name=name, GroupName=self._group)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") == "ResourceNotFoundException":
                return False
            raise
        return True
