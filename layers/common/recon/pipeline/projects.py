"""Loading projects and deriving what a run needs from them."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from recon.adapters._shared import execution_name
from recon.domain import Account, Project, Source, Statement, stable_id
from recon.keys import project_config_key
from recon.ports import ObjectStore
from recon.settings import Settings


class ProjectNotFound(Exception):
    """No project file under the configured prefix."""


def load_project(store: ObjectStore, settings: Settings, project_id: str) -> Project:
    key = project_config_key(project_id, settings.config_prefix)
    if store.head(settings.data_bucket, key) is None:
        raise ProjectNotFound(f"project {project_id!r}: s3://{settings.data_bucket}/{key} does not exist")
    return Project.from_yaml(store.get(settings.data_bucket, key).decode("utf-8"))


def default_business_date(project: Project, now: datetime) -> date:
    """Yesterday in the project's time zone: a run reconciles a closed day."""
    return now.astimezone(ZoneInfo(project.timezone)).date() - timedelta(days=1)


def statement_date_for(project: Project, account: Account, business_date: date) -> date:
    """The statement date a run of ``business_date`` reads from ``account``.

    A bank account receives the channels' settlements T+n: the run reads its statement of the smallest
    settlement lag crediting it (``Project.statement_lag``), so each bank statement is
    read by exactly one run and none is skipped when the day before was not run; a batch whose credit may
    be in a later statement waits, open, for that statement's run. Every other source is read for the
    business date itself.
    """
    if account.source is not Source.BANK:
        return business_date
    return business_date + timedelta(days=project.statement_lag(account.account_id))


def business_dates_needing(project: Project, account: Account, statement_date: date) -> list[date]:
    """Inverse of ``statement_date_for``: which business dates read this account's statement of a date."""
    if account.source is not Source.BANK:
        return [statement_date]
    return [statement_date - timedelta(days=project.statement_lag(account.account_id))]


def run_id_for(project_id: str, business_date: date) -> str:
    """Deterministic: a re-run of the same day replaces, never duplicates, its results."""
    return f"{project_id}-{business_date:%Y%m%d}"


def upload_execution_name(project_id: str, business_date: date, statements: Iterable[Statement]) -> str:
    """The execution an upload starts for a day: one per set of statement versions the day counts.

    The same inputs (a re-delivered event, the same bytes again) give the same name, so Step Functions
    starts the day once; a new version of a file (other bytes: another statement id) or a statement read
    again with a fixed profile (another status) gives another name, so the day is reconciled again.
    """
    versions = sorted(
        f"{s.statement_id}:{s.status.value}:{s.profile}@{s.profile_version}" for s in statements
    )
    tag = hashlib.sha256("\n".join(versions).encode()).hexdigest()[:12]
    # A valid execution name as is (a long project id shortened): the state machine starts a chained day
    # under exactly this name (StartRunInput.then), as the workflow starter would name it.
    return execution_name(f"{project_id}-{business_date:%Y%m%d}-upload-{tag}")


def statement_id_for(project_id: str, account_id: str, checksum: str) -> str:
    return stable_id("st", project_id, account_id, checksum)
