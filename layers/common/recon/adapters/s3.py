"""``ObjectStore`` on Amazon S3.

- ``put`` encrypts server-side: SSE-S3 (``AES256``) by default, SSE-KMS when a KMS key id is given, and
  returns the ``VersionId`` S3 assigned (None on an unversioned bucket).
- ``put_stream`` uploads its chunks as the parts of a multipart upload (parts of ``part_size`` bytes, at least
  S3's 5 MiB), a body smaller than one part in one ``put_object``; a failure aborts the upload.
- ``get`` reads the latest version or the one named; a missing key or version raises ``ObjectNotFoundError``.
- ``head`` returns None for a missing key.
- ``list`` pages through ``ListObjectsV2`` (latest versions, key order; ``version_id`` is None there).
- User metadata keys are lower-cased and non-ASCII values RFC 2047 encoded on the wire (see
  ``_shared.encode_metadata``); callers read back what they wrote.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from recon.ports import StoredObject

from . import aws
from ._shared import decode_metadata, encode_metadata
from .errors import ObjectNotFoundError

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_s3.type_defs import CompletedPartTypeDef

MIN_PART_SIZE = 5 * 1024 * 1024  # S3's smallest part but the last
_MISSING = frozenset({"NoSuchKey", "NoSuchVersion", "404", "NotFound"})


class S3ObjectStore:
    """S3 implementation of ``recon.ports.ObjectStore``."""

    def __init__(
        self,
        *,
        kms_key_id: str | None = None,
        client: S3Client | None = None,
        page_size: int = 1000,
        part_size: int = 16 * 1024 * 1024,
    ) -> None:
        self._part_size = max(part_size, MIN_PART_SIZE)
        self._kms_key_id = kms_key_id
        self._client = client
        self._page_size = page_size

    @property
    def client(self) -> S3Client:
        if self._client is None:
            self._client = aws.client("s3")
        return self._client

    def _encryption(self) -> dict[str, Any]:
        if self._kms_key_id:
            return {"ServerSideEncryption": "aws:kms", "SSEKMSKeyId": self._kms_key_id}
        return {"ServerSideEncryption": "AES256"}

    def put(
        self,
        bucket: str,
        key: str,
        body: bytes,
        *,
        content_type: str = "application/octet-stream",
        metadata: dict[str, str] | None = None,
    ) -> StoredObject:
        wire_metadata = encode_metadata(metadata)
        extra = self._encryption()
        response = self.client.put_object(
            Bucket=bucket, Key=key, Body=body, ContentType=content_type, Metadata=wire_metadata, **extra
        )
        return StoredObject(
            key=key,
            size=len(body),
            version_id=_version(response.get("VersionId")),
            metadata=decode_metadata(wire_metadata),
        )

    def put_stream(
        self,
        bucket: str,
        key: str,
        chunks: Iterable[bytes],
        *,
        content_type: str = "application/octet-stream",
    ) -> StoredObject:
        pending = bytearray()
        parts: list[CompletedPartTypeDef] = []
        upload_id: str | None = None
        size = 0
        try:
            for chunk in chunks:
                pending += chunk
                size += len(chunk)
                while len(pending) >= self._part_size:
                    if upload_id is None:
                        upload_id = self.client.create_multipart_upload(
                            Bucket=bucket, Key=key, ContentType=content_type, **self._encryption()
                        )["UploadId"]
                    part = bytes(pending[: self._part_size])
                    del pending[: self._part_size]
                    etag = self.client.upload_part(
                        Bucket=bucket, Key=key, UploadId=upload_id, PartNumber=len(parts) + 1, Body=part
                    )["ETag"]
                    parts.append({"ETag": etag, "PartNumber": len(parts) + 1})
            if upload_id is None:  # smaller than one part
                return self.put(bucket, key, bytes(pending), content_type=content_type)
            if pending:
                etag = self.client.upload_part(
                    Bucket=bucket, Key=key, UploadId=upload_id, PartNumber=len(parts) + 1, Body=bytes(pending)
                )["ETag"]
                parts.append({"ETag": etag, "PartNumber": len(parts) + 1})
            response = self.client.complete_multipart_upload(
                Bucket=bucket, Key=key, UploadId=upload_id, MultipartUpload={"Parts": parts}
            )
        except BaseException:
            if upload_id is not None:
                self._abort(bucket, key, upload_id)
            raise
        return StoredObject(key=key, size=size, version_id=_version(response.get("VersionId")))

    def _abort(self, bucket: str, key: str, upload_id: str) -> None:
        # The original error matters; the bucket's lifecycle rule removes an upload left incomplete.
        with contextlib.suppress(ClientError):
            self.client.abort_multipart_upload(Bucket=bucket, Key=key, UploadId=upload_id)

    def get(self, bucket: str, key: str, *, version_id: str | None = None) -> bytes:
        extra: dict[str, Any] = {"VersionId": version_id} if version_id else {}
        try:
            response = self.client.get_object(Bucket=bucket, Key=key, **extra)
        except ClientError as exc:
            code = aws.error_code(exc)
            # S3 answers a malformed version id with 400 InvalidArgument: that version does not exist either.
            if code in _MISSING or (version_id and code == "InvalidArgument"):
                raise ObjectNotFoundError(bucket, key, version_id) from exc
            raise
        with response["Body"] as stream:
            return stream.read()

    def head(self, bucket: str, key: str) -> StoredObject | None:
        try:
            response = self.client.head_object(Bucket=bucket, Key=key)
        except ClientError as exc:
            if aws.error_code(exc) in _MISSING:
                return None
            raise
        return StoredObject(
            key=key,
            size=int(response["ContentLength"]),
            version_id=_version(response.get("VersionId")),
            metadata=decode_metadata(response.get("Metadata")),
        )

    def list(self, bucket: str, prefix: str) -> list[StoredObject]:
        paginator = self.client.get_paginator("list_objects_v2")
        pages = paginator.paginate(
            Bucket=bucket, Prefix=prefix, PaginationConfig={"PageSize": self._page_size}
        )
        return [
            StoredObject(key=item["Key"], size=int(item["Size"]))
            for page in pages
            for item in page.get("Contents", [])
        ]


def _version(version_id: str | None) -> str | None:
    # An unversioned bucket reports no version (or the literal 'null' for objects put before versioning).
    return version_id if version_id and version_id != "null" else None
