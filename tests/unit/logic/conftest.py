from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml

from recon.adapters.memory import (
    MemoryAlertPublisher,
    MemoryMailer,
    MemoryObjectStore,
    MemoryRunRepository,
    MemoryScheduleManager,
    MemoryWorkflowStarter,
)
from recon.domain import Project, Source, Transaction, TxnStatus, TxnType
from recon.keys import project_config_key
from recon.pipeline.services import Services
from recon.settings import Settings

REPO = Path(__file__).resolve().parents[3]
DAY = date(2026, 11, 20)


@pytest.fixture
def project() -> Project:
    return Project.from_yaml((REPO / "local/recon_local/projects/demo.yaml").read_text("utf-8"))


def notifying_settings(**extra: Any) -> Settings:
    """Settings of a pipeline that e-mails reports and publishes alerts (in-memory adapters)."""
    return Settings(
        raw_bucket="raw",
        data_bucket="data",
        table_name="t",
        sender_email="recon@example.com",
        alert_topic_arn="arn:aws:sns:us-east-1:123456789012:alerts",
        **extra,
    )


def memory_services(
    project_id: str,
    project: Project | str,
    *,
    settings: Settings | None = None,
    clock: Callable[[], datetime] | None = None,
) -> Services:
    """Services on in-memory adapters, with the project's configuration (YAML text, or a ``Project``) stored
    where the stages load it from."""
    text = (
        project
        if isinstance(project, str)
        else yaml.safe_dump(project.model_dump(mode="json"), allow_unicode=True)
    )
    store = MemoryObjectStore()
    store.put("data", project_config_key(project_id), text.encode())
    optional: dict[str, Any] = {"clock": clock} if clock is not None else {}
    return Services(
        settings=settings or Settings(raw_bucket="raw", data_bucket="data", table_name="t"),
        store=store,
        repo=MemoryRunRepository(),
        mailer=MemoryMailer(),
        alerts=MemoryAlertPublisher(),
        workflow=MemoryWorkflowStarter(),
        schedules=MemoryScheduleManager(),
        **optional,
    )


_counter = {"row": 0}


def txn(
    source: str,
    txn_id: str,
    amount: int,
    *,
    account: str | None = None,
    order_ref: str | None = None,
    refund_ref: str | None = None,
    fee: int = 0,
    at: datetime | None = None,
    value_date: date | None = None,
    status: TxnStatus = TxnStatus.SUCCESS,
    memo: str | None = None,
    counterparty: str | None = None,
    txn_type: TxnType | None = None,
) -> Transaction:
    _counter["row"] += 1
    src = Source(source)
    account = (
        account
        or {"erp": "erp", "wechat": "wechat-main", "alipay": "alipay-main", "bank": "bank-cmb"}[source]
    )
    at = at or datetime(2026, 11, 20, 2, 0, tzinfo=UTC) + timedelta(seconds=_counter["row"])
    return Transaction(
        txn_uid=f"{source}:{account}:{txn_id}",
        source=src,
        account_id=account,
        statement_id=f"st-{source}",
        txn_id=txn_id,
        order_ref=order_ref,
        refund_ref=refund_ref,
        amount_minor=amount,
        fee_minor=fee,
        net_minor=amount - fee,
        currency="CNY",
        booked_at=at,
        value_date=value_date or at.date(),
        txn_type=txn_type or (TxnType.REFUND if amount < 0 else TxnType.PAYMENT),
        status=status,
        counterparty=counterparty,
        memo=memo,
        raw_key=f"raw/demo/{account}/2026-11-20/file",
        row_number=_counter["row"],
        profile="test",
        profile_version="1",
    )


class Clock:
    """A clock the test moves forward a second a call: statements ingested later get later times (the order
    versions and overlaps are decided by)."""

    def __init__(self, start: datetime) -> None:
        self.now = start

    def __call__(self) -> datetime:
        self.now += timedelta(seconds=1)
        return self.now
