"""The ports a stage needs, bundled. AWS wiring lives in ``recon.wiring``; tests pass fakes."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from recon.ports import (
    AlertPublisher,
    Mailer,
    ObjectStore,
    PdfTableReader,
    RunRepository,
    ScheduleManager,
    SecretsProvider,
    WorkflowStarter,
)
from recon.settings import Settings


def _utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass
class Services:
    settings: Settings
    store: ObjectStore
    repo: RunRepository
    mailer: Mailer
    alerts: AlertPublisher
    workflow: WorkflowStarter
    schedules: ScheduleManager
    clock: Callable[[], datetime] = field(default=_utcnow)
    # Only the fetch stage reads secrets; stages that do not fetch run without a provider.
    secrets: SecretsProvider | None = None
    # How client-side retries wait (tests pass a recorder instead of sleeping).
    sleep: Callable[[float], None] = field(default=time.sleep)
    # Where the parse stage reads PDF tables; None: in this process (recon.pdf_tables, pdfplumber installed).
    pdf_tables: PdfTableReader | None = None
