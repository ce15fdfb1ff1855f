"""Exceptions raised alike by the AWS adapters and the in-memory fakes (no boto3 here)."""

from __future__ import annotations


class ObjectNotFoundError(KeyError):
    """``ObjectStore.get`` of a key (or a version of it) that does not exist."""

    def __init__(self, bucket: str, key: str, version_id: str | None = None) -> None:
        self.bucket = bucket
        self.key = key
        self.version_id = version_id
        where = f"s3://{bucket}/{key}" + (f" (version {version_id})" if version_id else "")
        super().__init__(f"no such object: {where}")

    def __str__(self) -> str:  # KeyError would print the repr of its argument
        return str(self.args[0])


class ItemTooLargeError(ValueError):
    """A record does not fit into one DynamoDB item (400 KB), even compressed."""
