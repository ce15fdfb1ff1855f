from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest

from recon.domain import Project, Source, Transaction, TxnStatus, TxnType

REPO = Path(__file__).resolve().parents[3]
DAY = date(2026, 11, 20)


@pytest.fixture
def project() -> Project:
    return Project.from_yaml((REPO / "local/recon_local/projects/demo.yaml").read_text("utf-8"))


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
