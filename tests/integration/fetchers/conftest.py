"""Fake providers on 127.0.0.1 and the key material both sides share (generated once per session)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta

import httpx
import pytest

from recon.domain import Source
from recon.fetching.base import FetchedBill
from recon.parsing import ParsedStatement, parse_statement
from recon_local.fakes import AlipayGateway, AlipayKeyMaterial, BillBook, WechatPayApi, WechatPayKeyMaterial


def china_today() -> date:
    return (datetime.now(UTC) + timedelta(hours=8)).date()


def yesterday() -> date:
    return china_today() - timedelta(days=1)


def last_month() -> str:
    first = china_today().replace(day=1) - timedelta(days=1)
    return f"{first:%Y-%m}"


def parse_bill(bill: FetchedBill, source: Source) -> ParsedStatement:
    """A fetched bill read by our own parser, as the parse stage would read it."""
    return parse_statement(
        bill.data, filename=bill.filename, raw_key="raw/x", statement_id="s", source=source, account_id="a"
    )


class Sleeps(list[float]):
    """A no-op ``sleep`` that records the delays it was asked for."""

    def __call__(self, seconds: float) -> None:
        self.append(seconds)


@pytest.fixture
def sleeps() -> Sleeps:
    return Sleeps()


@pytest.fixture(scope="session")
def bills() -> BillBook:
    return BillBook()


@pytest.fixture(scope="session")
def alipay_keys() -> AlipayKeyMaterial:
    return AlipayKeyMaterial.generate("2021000000000001")


@pytest.fixture(scope="session")
def alipay_cert_keys() -> AlipayKeyMaterial:
    return AlipayKeyMaterial.generate("2021000000000002", cert_mode=True)


@pytest.fixture(scope="session")
def wechat_keys() -> WechatPayKeyMaterial:
    return WechatPayKeyMaterial.generate("1900000109")


@pytest.fixture(scope="session")
def http() -> Iterator[httpx.Client]:
    with httpx.Client() as client:  # one pool: each fake listens on its own port
        yield client


@pytest.fixture
def gateway(alipay_keys: AlipayKeyMaterial, bills: BillBook) -> Iterator[AlipayGateway]:
    with AlipayGateway(alipay_keys, bills) as server:
        server.slow_seconds = 1.0
        yield server


@pytest.fixture
def wechat_api(wechat_keys: WechatPayKeyMaterial, bills: BillBook) -> Iterator[WechatPayApi]:
    with WechatPayApi(wechat_keys, bills) as server:
        server.slow_seconds = 1.0
        yield server
