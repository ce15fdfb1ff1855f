"""``WorkflowStarter`` on AWS Step Functions (standard workflows)."""

from __future__ import annotations

import json
import logging
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from recon.settings import get_settings

from . import aws
from ._shared import execution_arn, execution_name

if TYPE_CHECKING:
    from mypy_boto3_stepfunctions import SFNClient

logger = logging.getLogger(__name__)


class StepFunctionsStarter:
    """Starts executions by name; a name that already ran (re-delivered event) returns that execution's ARN.

    Names are sanitised to ``[A-Za-z0-9_-]``, at most 80 characters (see ``_shared.execution_name``).
    """

    def __init__(self, state_machine_arn: str | None = None, *, client: SFNClient | None = None) -> None:
        self._state_machine_arn = state_machine_arn
        self._client = client

    @property
    def client(self) -> SFNClient:
        if self._client is None:
            self._client = aws.client("stepfunctions")
        return self._client

    @property
    def state_machine_arn(self) -> str:
        if not self._state_machine_arn:
            self._state_machine_arn = get_settings().state_machine_arn
        if not self._state_machine_arn:
            raise ValueError("no state machine configured (RECON_STATE_MACHINE_ARN)")
        return self._state_machine_arn

    def start(self, *, name: str, payload: dict[str, Any]) -> str:
        exec_name = execution_name(name)
        try:
            response = self.client.start_execution(
                stateMachineArn=self.state_machine_arn,
                name=exec_name,
                input=json.dumps(payload, ensure_ascii=False, sort_keys=True, default=str),
            )
        except ClientError as exc:
            if aws.error_code(exc) != "ExecutionAlreadyExists":
                raise
            arn = execution_arn(self.state_machine_arn, exec_name)
            existing = self.client.describe_execution(executionArn=arn)
            logger.info(
                "execution %s already exists (status %s): not started again", exec_name, existing["status"]
            )
            return existing["executionArn"]
        return response["executionArn"]
