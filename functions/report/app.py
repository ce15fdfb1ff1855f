"""Render and send a run's report; or, on the failure path, record the failed run and word the alert."""

from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.typing import LambdaContext

from recon.pipeline.contracts import FailureInput, RunRef
from recon.pipeline.report import report_run
from recon.pipeline.run import record_failure
from recon.wiring import aws_services

logger = Logger()


@logger.inject_lambda_context
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    if "failure" in event:
        failure = FailureInput.model_validate(event["failure"])
        return record_failure(failure, aws_services()).model_dump(mode="json")
    ref = RunRef.model_validate(event)
    # The workflow passes its execution id: a retry of this task is told apart from a re-run of the day.
    execution = event.get("execution")
    return report_run(ref, aws_services(), execution=str(execution) if execution else None).model_dump(
        mode="json"
    )
