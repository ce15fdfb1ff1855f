"""Let moto announce a delete on a versioned bucket, as S3 does.

A delete without a version id on a versioned bucket creates a delete marker. S3 then sends EventBridge an
"Object Deleted" event (``deletion-type`` "Delete Marker Created"); moto 5.2.5 sends nothing, so deleting a
project file from the (versioned) data bucket never reached the sync function and its schedule stayed. This
patch sends moto's own ``s3:ObjectRemoved:DeleteMarkerCreated`` notification after such a delete, nothing
else.
"""

from __future__ import annotations

from typing import Any
from unittest import mock


def install() -> list[Any]:
    """Start the patch; returns it (stop it on teardown)."""
    from moto.s3 import notifications
    from moto.s3.models import S3Backend

    original = S3Backend.delete_object

    def delete_object(
        self: Any, bucket_name: str, key_name: str, version_id: str | None = None, bypass: bool = False
    ) -> tuple[bool, dict[str, Any]]:
        bucket = self.get_bucket(bucket_name)
        current = bucket.keys.get(key_name) if version_id is None and bucket.is_versioned else None
        deleted, meta = original(self, bucket_name, key_name, version_id, bypass)
        if current is not None and meta.get("delete-marker") == "true":
            notifications.send_event(
                self.account_id,
                notifications.S3NotificationEvent.OBJECT_REMOVED_DELETE_MARKER_CREATED_EVENT,
                bucket,
                current,
            )
        return deleted, meta

    patch = mock.patch.object(S3Backend, "delete_object", delete_object)
    patch.start()
    return [patch]
