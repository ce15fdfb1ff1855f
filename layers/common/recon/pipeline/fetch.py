"""Fetch stage: make the account's statement for the date available in the raw bucket and log the attempt.

This module must stay free of dataframe libraries: the fetch functions carry no pandas/pyarrow layer.
"""

from __future__ import annotations

import time

from recon.domain import Delivery
from recon.keys import raw_prefix
from recon.ports import FetchLogEntry

from .contracts import ChannelTask, FetchOutput
from .services import Services


class ConnectorNotConfigured(Exception):
    """The account asks for a delivery (API, SFTP) this deployment has no connector configured for."""


def fetch_statements(task: ChannelTask, svc: Services) -> FetchOutput:
    """Collect what has been delivered for ``task``.

    Upload delivery: people or systems put files under ``raw/<project>/<account>/<date>/``; the fetcher
    records what is there (and that nothing is, if so: parse then reports the missing statement).
    """
    started = time.monotonic()
    if task.delivery is not Delivery.UPLOAD:
        raise ConnectorNotConfigured(
            f"account {task.account_id}: delivery {task.delivery.value!r} needs a provider connector"
        )
    objects = svc.store.list(
        svc.settings.raw_bucket, raw_prefix(task.project_id, task.account_id, task.statement_date)
    )
    attempts = svc.repo.list_fetch_log(task.project_id, task.account_id, task.statement_date)
    status = "uploaded" if objects else "none_dropped"
    svc.repo.put_fetch_log(
        FetchLogEntry(
            project_id=task.project_id,
            account_id=task.account_id,
            channel=task.source.value,
            bill_date=task.statement_date,
            attempt=len(attempts) + 1,
            status=status,
            at=svc.clock().isoformat(),
            raw_key=objects[0].key if len(objects) == 1 else None,
            size=sum(o.size for o in objects),
            duration_ms=int((time.monotonic() - started) * 1000),
            detail=f"{len(objects)} file(s) delivered by upload",
        )
    )
    return FetchOutput(
        account_id=task.account_id, source=task.source, status=status, raw_keys=[o.key for o in objects]
    )
