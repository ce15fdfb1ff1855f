"""Review API (API Gateway REST, IAM-authenticated): GET /runs/{id}."""

from typing import Annotated, Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response, content_types
from aws_lambda_powertools.event_handler.exceptions import NotFoundError
from aws_lambda_powertools.event_handler.openapi.exceptions import RequestValidationError
from aws_lambda_powertools.event_handler.openapi.params import Path
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext

from recon.pipeline.queries import RunView, get_run_view, invalid_request
from recon.wiring import aws_services

logger = Logger()
app = APIGatewayRestResolver(enable_validation=True)

RunId = Annotated[str, Path(pattern=r"^[a-z0-9][a-z0-9-]{1,80}$", max_length=81)]


@app.get("/runs/<run_id>")
def get_run(run_id: RunId) -> RunView:
    view = get_run_view(run_id, aws_services())
    if view is None:
        raise NotFoundError(f"run {run_id} not found")
    return view


@app.exception_handler(RequestValidationError)  # type: ignore[untyped-decorator]
def invalid(exc: RequestValidationError) -> Response[dict[str, Any]]:
    """422 with a message a person reads (which parameter, what is wrong), not only pydantic's type."""
    return Response(
        status_code=422, content_type=content_types.APPLICATION_JSON, body=invalid_request(exc.errors())
    )


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)
