"""Keep each project's schedule in step with its project file (one EventBridge schedule per project)."""

from __future__ import annotations

import logging

import yaml
from pydantic import ValidationError

from recon.domain import Project
from recon.reporting.masking import mask_digit_runs

from .contracts import ProjectSyncOutput
from .run import audit
from .services import Services

log = logging.getLogger(__name__)


def schedule_name(project_id: str) -> str:
    return f"recon-{project_id}"


def sync_project(bucket: str, key: str, *, deleted: bool, svc: Services) -> ProjectSyncOutput:
    """A project file was written or deleted: validate it and create, update or remove its schedule.

    An invalid file leaves the existing schedule as it was and alerts, naming the file and the errors.
    """
    prefix = svc.settings.config_prefix
    if bucket != svc.settings.data_bucket or not key.startswith(prefix) or not key.endswith(".yaml"):
        log.warning(
            "ignoring object that is not a project file",
            extra={"bucket": bucket, "key": mask_digit_runs(key)},
        )
        return ProjectSyncOutput(project_id="", status="ignored", detail=key)
    file_id = key[len(prefix) : -len(".yaml")]
    if deleted:
        removed = svc.schedules.delete(schedule_name(file_id))
        audit(svc, "system:project_sync", "project.unscheduled", file_id, key=key, existed=removed)
        return ProjectSyncOutput(project_id=file_id, status="unscheduled")
    try:
        project = Project.from_yaml(svc.store.get(bucket, key).decode("utf-8"))
        if project.project_id != file_id:
            raise ValueError(
                f"project_id {project.project_id!r} does not match the file name {file_id!r}.yaml"
            )
    except (ValidationError, yaml.YAMLError, ValueError, UnicodeDecodeError) as exc:
        detail = str(exc)
        svc.alerts.publish(
            subject=f"[recon] invalid project file: {file_id}",
            message=f"s3://{bucket}/{key} was rejected; its schedule is unchanged.\n{detail}",
            attributes={"kind": "project_invalid"},
        )
        audit(svc, "system:project_sync", "project.rejected", file_id, key=key, error=detail[:1000])
        return ProjectSyncOutput(project_id=file_id, status="invalid", detail=detail[:2000])
    svc.schedules.upsert(
        name=schedule_name(project.project_id),
        expression=project.schedule,
        timezone=project.timezone,
        payload={"project_id": project.project_id, "trigger": "schedule"},
        description=f"Reconcile {project.name} ({project.cycle.value}), project version {project.version}",
    )
    audit(
        svc,
        "system:project_sync",
        "project.scheduled",
        project.project_id,
        key=key,
        schedule=project.schedule,
        timezone=project.timezone,
        version=project.version,
    )
    return ProjectSyncOutput(project_id=project.project_id, status="scheduled", detail=project.schedule)
