"""``ObjectStore`` on Amazon S3.

- ``put`` encrypts server-side: SSE-S3 (``AES256``) by default, SSE-KMS when a KMS key id is given, and
  returns the ``VersionId`` S3 assigned (None on an unversioned bucket).
- ``get`` reads the latest version or the one named; a missing key or version raises ``ObjectNotFoundError``.
- ``head`` returns None for a missing key.
- ``list`` pages through ``ListObjectsV2`` (latest versions, key order; ``version_id`` is None there).
- User metadata keys are lower-cased and non-ASCII values RFC 2047 encoded on the wire (see
  ``_shared.encode_metadata``); callers read back what they wrote.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from recon.ports import StoredObject

from . import aws
from ._shared import decode_metadata, encode_metadata
from .errors import ObjectNotFoundError

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

_MISSING = frozenset({"NoSuchKey", "NoSuchVersion", "404", "NotFound"})


class S3ObjectStore:
    """S3 implementation of ``recon.ports.ObjectStore``."""

    def __init__(
        self,
        *,
        kms_key_id: str | None = None,
        client: S3Client | None = None,
        page_size: int = 1000,
    ) -> None:
        self._kms_key_id = kms_key_id
        self._client = client
        self._page_size = page_size

    @property
    def client(self) -> S3Client:
        if self._client is None:
            self._client = aws.client("s3")
        return self._client

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
        extra: dict[str, Any] = {"ServerSideEncryption": "AES256"}
        if self._kms_key_id:
            extra = {"ServerSideEncryption": "aws:kms", "SSEKMSKeyId": self._kms_key_id}
        response = self.client.put_object(
            Bucket=bucket, Key=key, Body=body, ContentType=content_type, Metadata=wire_metadata, **extra
        )
        return StoredObject(
            key=key,
            size=len(body),
            version_id=_version(response.get("VersionId")),
            metadata=decode_metadata(wire_metadata),
        )

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
