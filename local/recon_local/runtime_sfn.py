"""Let moto's Step Functions interpreter run the optimized ``states:startExecution`` integration.

moto 5.2.5 hands the task's parameters to boto3 as the state machine states them (``StateMachineArn``,
``Name``, ``Input``: the names AWS documents for the integration), but boto3 wants its own member names
(``stateMachineArn``, ...), so every such task fails with ``States.Runtime: 'StateMachineArn'``. AWS accepts
the documented names; this patch renames them after moto's own normalisation, nothing else.
"""

from __future__ import annotations

import logging
from typing import Any
from unittest import mock

#: The integration's documented parameter names -> boto3's StartExecution member names.
_START_EXECUTION_MEMBERS = {
    "StateMachineArn": "stateMachineArn",
    "Name": "name",
    "Input": "input",
    "TraceHeader": "traceHeader",
}


class _NextDayProbe(logging.Filter):
    """The state machine asks whether its input names a next day (``IsPresent`` on ``$.execution.input.then``,
    state ``NextDay``); moto logs the missing path as an error before the Choice answers false, on every run
    that has no next day. That one message is dropped; every other error moto logs stays."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        return not ("NoSuchJsonPathError" in message and "'$.execution.input.then'" in message)


def install() -> list[Any]:
    """Start the patch; returns it (stop it on teardown)."""
    logger = logging.getLogger("moto.stepfunctions.parser.asl.component.eval_component")
    probe = _NextDayProbe()
    logger.addFilter(probe)
    from moto.stepfunctions.parser.asl.component.state.exec.state_task.service.state_task_service_sfn import (
        StateTaskServiceSfn,
    )

    original = StateTaskServiceSfn._normalise_parameters

    def normalise_parameters(
        self: Any,
        parameters: dict[str, Any],
        boto_service_name: str | None = None,
        service_action_name: str | None = None,
    ) -> None:
        original(self, parameters, boto_service_name, service_action_name)
        if service_action_name is None and self._get_boto_service_action() == "start_execution":
            for documented, member in _START_EXECUTION_MEMBERS.items():
                if documented in parameters:
                    parameters[member] = parameters.pop(documented)

    patch = mock.patch.object(StateTaskServiceSfn, "_normalise_parameters", normalise_parameters)
    patch.start()
    return [patch, _Removal(lambda: logger.removeFilter(probe))]


class _Removal:
    """Undoes a change on teardown, as a patch's ``stop`` does."""

    def __init__(self, undo: Any) -> None:
        self.stop = undo
