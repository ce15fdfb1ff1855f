"""``PdfTableReader`` adapters: read PDF tables in this process, or have the extract_pdf function read them.

* ``InProcessPdfTables``: pdfplumber is importable (local runs, ``recon parse``, tests).
* ``RemotePdfTables``: AWS, where the parse function has no room for pdfplumber. It invokes the extractor
  function with the raw object's location and SHA-256, then reads the rows object the extractor wrote
  (``recon.keys.pdf_rows_key``). A refusal comes back as ``PdfRefusal`` with the extractor's reason, so
  the parse error (and the quarantine report) reads the same as in-process.

The extractor reads stored objects only, so the remote reader takes the bytes of the stored object
itself; a PDF unpacked from a zip or gzip upload is refused with the reason (upload the PDF itself).
"""

from __future__ import annotations

import hashlib

from recon.pdf_tables import PdfRefusal, PdfRow, extract_rows, is_pdf, rows_from_document
from recon.pipeline.contracts import ExtractPdfOutput, ExtractPdfRequest
from recon.ports import FunctionFailed, FunctionInvoker, ObjectStore, StoredDocument

UNPACKED_PDF = (
    "a PDF inside a zip or gzip upload cannot be read by the PDF extractor of this deployment: "
    "upload the PDF itself"
)


class InProcessPdfTables:
    """Extract in this process (``recon.pdf_tables.extract_rows``)."""

    def read(self, data: bytes, *, stored_at: StoredDocument) -> list[PdfRow]:
        return extract_rows(data)


class RemotePdfTables:
    """Extract in the extractor function, then read the rows it stored in ``rows_bucket``."""

    def __init__(
        self, invoker: FunctionInvoker, store: ObjectStore, *, function_name: str, rows_bucket: str
    ) -> None:
        self._invoker = invoker
        self._store = store
        self._function_name = function_name
        self._rows_bucket = rows_bucket

    def read(self, data: bytes, *, stored_at: StoredDocument) -> list[PdfRow]:
        if not is_pdf(data):
            return extract_rows(data)  # refuses at once, with the same reason: no round trip for that
        if hashlib.sha256(data).hexdigest() != stored_at.sha256:
            raise PdfRefusal(UNPACKED_PDF)
        request = ExtractPdfRequest(
            bucket=stored_at.bucket,
            key=stored_at.key,
            version_id=stored_at.version_id,
            sha256=stored_at.sha256,
        )
        answer = self._invoker.invoke(self._function_name, request.model_dump(mode="json"))
        try:
            output = ExtractPdfOutput.model_validate(answer)
        except ValueError as exc:
            raise FunctionFailed(f"{self._function_name} answered {answer!r}") from exc
        if output.refusal is not None:
            raise PdfRefusal(output.refusal)
        assert output.rows_key is not None  # the contract: rows_key or refusal
        return rows_from_document(
            self._store.get(self._rows_bucket, output.rows_key), sha256=stored_at.sha256
        )


__all__ = ["UNPACKED_PDF", "InProcessPdfTables", "RemotePdfTables"]
