"""PDF extraction stage: a stored PDF statement -> its table rows, written once under their content address.

The parse function carries the AWS SDK for pandas layer and has no room left for pdfplumber, so in AWS it
asks the extract_pdf function (common layer + pdfplumber, no pandas) for the rows (docs/formats-bank.md).

* Only raw statements are read, and rows come only from the bytes the parse function read: when the
  object's SHA-256 is not the one asked for, the request fails (``ObjectChanged``) rather than answering
  for other bytes.
* The rows go to ``derived/pdf-rows/<sha256>.json.gz`` in the data bucket. The same PDF gives the same
  object, so an existing one is reused without reading the PDF again, never rewritten (its counts are in
  its metadata).
* A document that is not a readable PDF statement is an answer (``refusal``, the reason the parse stage
  reports), not a failure: failures are for the retries of the caller.
"""

from __future__ import annotations

import hashlib
import logging

from recon.keys import RAW_PREFIX, pdf_rows_key
from recon.pdf_tables import PdfRefusal, extract_rows, rows_document
from recon.ports import StoredObject
from recon.reporting.masking import mask_digit_runs

from .contracts import ExtractPdfOutput, ExtractPdfRequest
from .services import Services

log = logging.getLogger(__name__)

_ROWS = "rows"
_PAGES = "pages-with-rows"


class ObjectChanged(ValueError):
    """The stored object's bytes are not the ones the caller read."""


def _stored(svc: Services, bucket: str, key: str) -> StoredObject | None:
    """The object if it exists. Listed first: S3 answers a HEAD of a missing key with 403, not 404, unless
    the caller may list the whole bucket, and this function may only list the rows prefix."""
    if not any(o.key == key for o in svc.store.list(bucket, key)):
        return None
    return svc.store.head(bucket, key)


def extract_pdf(request: ExtractPdfRequest, svc: Services) -> ExtractPdfOutput:
    """The table rows of the raw PDF ``request`` names, stored under their content address."""
    settings = svc.settings
    if request.bucket != settings.raw_bucket or not request.key.startswith(RAW_PREFIX):
        raise ValueError(
            f"only raw statements are read, not s3://{request.bucket}/{mask_digit_runs(request.key)}"
        )
    rows_key = pdf_rows_key(request.sha256)
    stored = _stored(svc, settings.data_bucket, rows_key)
    if stored is not None:
        return ExtractPdfOutput(
            sha256=request.sha256,
            rows_key=rows_key,
            rows=int(stored.metadata.get(_ROWS, "0")),
            pages_with_rows=int(stored.metadata.get(_PAGES, "0")),
            reused=True,
        )
    data = svc.store.get(request.bucket, request.key, version_id=request.version_id)
    found = hashlib.sha256(data).hexdigest()
    if found != request.sha256:
        raise ObjectChanged(
            f"s3://{request.bucket}/{mask_digit_runs(request.key)} (version {request.version_id}) has "
            f"SHA-256 {found}, not {request.sha256}"
        )
    try:
        rows = extract_rows(data)
    except PdfRefusal as exc:
        # No project here to know its numbers: digit runs are masked (the file name may be an account's).
        log.info("PDF refused", extra={"raw_key": mask_digit_runs(request.key), "reason": exc.reason})
        return ExtractPdfOutput(sha256=found, refusal=exc.reason)
    pages = len({row.page for row in rows})
    svc.store.put(
        settings.data_bucket,
        rows_key,
        rows_document(rows, sha256=found),
        content_type="application/gzip",
        metadata={_ROWS: str(len(rows)), _PAGES: str(pages)},
    )
    return ExtractPdfOutput(sha256=found, rows_key=rows_key, rows=len(rows), pages_with_rows=pages)


__all__ = ["ObjectChanged", "extract_pdf"]
