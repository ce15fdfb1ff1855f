"""Extract the table rows of a raw PDF statement for the parse function, which has no room for pdfplumber
(``{"bucket", "key", "version_id", "sha256"}`` -> the rows object's key and counts, or a refusal)."""

from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.typing import LambdaContext

from recon.pipeline.contracts import ExtractPdfRequest
from recon.pipeline.extract_pdf import extract_pdf
from recon.wiring import aws_services

logger = Logger()


@logger.inject_lambda_context
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    request = ExtractPdfRequest.model_validate(event)
    return extract_pdf(request, aws_services()).model_dump(mode="json")
