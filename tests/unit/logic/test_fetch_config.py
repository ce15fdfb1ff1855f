"""Connector configuration of accounts, fetch windows and endpoint selection (pure, no network)."""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml

from recon.adapters.memory import MemorySecrets
from recon.domain import Account, Project
from recon.domain.account import AlipayFetch, FetchWindow, WechatFetch
from recon.fetching.base import FetchedBill, redact_urls
from recon.pipeline.fetch import fetch_window, provider_endpoint
from recon.pipeline.projects import statement_date_for
from recon.ports import SecretUnavailable
from recon.settings import Settings

REPO = Path(__file__).resolve().parents[3]
SFTP = {
    "kind": "sftp",
    "host": "sftp.bank.example",
    "host_key_fingerprints": ["SHA256:" + "A" * 43],
    "filename_pattern": "STMT_{date:%Y%m%d}.xml",
}


def account(**values: Any) -> Account:
    base: dict[str, Any] = {"account_id": "bank-1", "source": "bank", "name": "Bank"}
    return Account.model_validate({**base, **values})


def test_a_connector_must_fit_the_accounts_source_and_delivery() -> None:
    ok = account(delivery="sftp", secret_id="recon/bank/bank-1", fetch=SFTP)
    assert ok.fetch is not None and ok.fetch.kind == "sftp"
    with pytest.raises(ValueError, match="needs source 'bank' and delivery 'sftp'"):
        account(delivery="api", secret_id="recon/bank/bank-1", fetch=SFTP)
    with pytest.raises(ValueError, match="needs source 'alipay' and delivery 'api'"):
        account(delivery="api", secret_id="recon/bank/bank-1", fetch={"kind": "alipay"})
    alipay = Account.model_validate(
        {
            "account_id": "ali",
            "source": "alipay",
            "name": "Alipay",
            "delivery": "api",
            "secret_id": "recon/alipay/ali",
            "fetch": {"kind": "alipay", "environment": "sandbox"},
        }
    )
    assert isinstance(alipay.fetch, AlipayFetch) and alipay.fetch.bill_types == ["trade"]


def test_secret_must_be_in_the_namespace_of_the_accounts_provider() -> None:
    """Each fetch function may read only ``recon/<its provider>/*`` (infra/template.yaml)."""
    for secret_id in (None, "", "prod/bank-1", "recon", "recon/bank-1", "recon/bank/", "recon/bank/a*"):
        with pytest.raises(ValueError, match="under 'recon/bank/'"):
            account(delivery="sftp", secret_id=secret_id, fetch=SFTP)
    for other in ("recon/alipay/shop", "recon/wechat/shop"):
        with pytest.raises(ValueError, match="bank fetch function may read only that namespace"):
            account(delivery="sftp", secret_id=other, fetch=SFTP)
    alipay = {"account_id": "ali", "source": "alipay", "name": "Alipay", "delivery": "api"}
    for other in ("recon/bank/cmb-mtls", "recon/wechat/shop", "recon/ali"):
        with pytest.raises(ValueError, match="under 'recon/alipay/'"):
            Account.model_validate({**alipay, "secret_id": other, "fetch": {"kind": "alipay"}})
    ok = Account.model_validate(
        {**alipay, "secret_id": "recon/alipay/shop/main", "fetch": {"kind": "alipay"}}
    )
    assert ok.secret_id == "recon/alipay/shop/main"
    # A secret on an account without a connector is checked too; ERP accounts are never fetched.
    with pytest.raises(ValueError, match="under 'recon/wechat/'"):
        Account.model_validate(
            {"account_id": "wx", "source": "wechat", "name": "WeChat", "secret_id": "recon/x"}
        )
    with pytest.raises(ValueError, match="not fetched"):
        Account.model_validate(
            {"account_id": "erp", "source": "erp", "name": "ERP", "secret_id": "recon/erp/x"}
        )


def test_custom_endpoints_are_https_or_loopback_and_carry_no_credentials() -> None:
    assert AlipayFetch(environment="custom", endpoint="https://gw.example/gateway.do").endpoint
    assert AlipayFetch(environment="custom", endpoint="http://127.0.0.1:9000/gateway.do").endpoint
    for bad in (
        {"environment": "custom"},  # custom needs an endpoint
        {"environment": "production", "endpoint": "https://gw.example"},  # and only custom has one
        {"environment": "custom", "endpoint": "http://gw.example/gateway.do"},
        {"environment": "custom", "endpoint": "https://app:key@gw.example/gateway.do"},
    ):
        with pytest.raises(ValueError):
            AlipayFetch.model_validate(bad)
    with pytest.raises(ValueError, match="no sandbox"):
        WechatFetch(environment="sandbox")
    with pytest.raises(ValueError, match="unique"):
        WechatFetch(bill_types=["ALL", "ALL"])


def test_gateway_urls_come_from_the_settings() -> None:
    settings = Settings(
        raw_bucket="r",
        data_bucket="d",
        table_name="t",
        alipay_gateway_url="https://alipay.prod.example/gateway.do",
        alipay_sandbox_gateway_url="https://alipay.sandbox.example/gateway.do",
        wechatpay_base_url="https://wechat.example",
    )
    assert provider_endpoint(AlipayFetch(), settings) == "https://alipay.prod.example/gateway.do"
    assert provider_endpoint(AlipayFetch(environment="sandbox"), settings) == (
        "https://alipay.sandbox.example/gateway.do"
    )
    assert provider_endpoint(WechatFetch(), settings) == "https://wechat.example"
    custom = WechatFetch(environment="custom", endpoint="https://proxy.internal.example")
    assert provider_endpoint(custom, settings) == "https://proxy.internal.example"
    defaults = Settings(raw_bucket="r", data_bucket="d", table_name="t")
    assert provider_endpoint(AlipayFetch(), defaults) == "https://openapi.alipay.com/gateway.do"
    assert provider_endpoint(WechatFetch(), defaults) == "https://api.mch.weixin.qq.com"


def test_fetch_window_is_counted_from_the_end_of_the_bill_date_in_the_projects_time_zone() -> None:
    opens, closes = fetch_window("Asia/Shanghai", date(2026, 11, 20), AlipayFetch().window)
    assert opens == datetime(2026, 11, 21, 1, 0, tzinfo=UTC)  # 09:00 in Shanghai
    assert closes == datetime(2026, 11, 21, 7, 0, tzinfo=UTC)  # 15:00 in Shanghai
    wechat_opens, _ = fetch_window("Asia/Shanghai", date(2026, 11, 20), WechatFetch().window)
    assert wechat_opens.astimezone(UTC).hour == 2  # 10:00 in Shanghai
    with pytest.raises(ValueError, match="after opens_after_hours"):
        FetchWindow(opens_after_hours=10, closes_after_hours=9)


def test_memory_secrets_cache_until_force_fetch_like_a_warm_lambda() -> None:
    secrets = MemorySecrets({"recon/a": {"password": "one"}})
    assert secrets.get_secret("recon/a") == {"password": "one"}
    secrets.rotate("recon/a", {"password": "two"})
    assert secrets.get_secret("recon/a") == {"password": "one"}  # cached
    assert secrets.get_secret("recon/a", force_fetch=True) == {"password": "two"}
    assert secrets.get_secret("recon/a") == {"password": "two"}
    assert secrets.reads == {"recon/a": 2}
    with pytest.raises(SecretUnavailable, match="recon/missing"):
        secrets.get_secret("recon/missing")


def test_fetched_bill_names_are_single_path_segments() -> None:
    assert FetchedBill("a.zip", b"x", date(2026, 1, 1)).checksum.startswith("2d711642")
    for bad in ("../x", "a/b", "", ".", "x\n"):
        with pytest.raises(ValueError):
            FetchedBill(bad, b"x", date(2026, 1, 1))


def test_download_urls_lose_their_tokens_in_messages() -> None:
    text = "GET https://dwbillcenter.alipay.com/downloadBillFile.resource?token=abc&fileId=1 failed"
    assert redact_urls(text) == "GET https://dwbillcenter.alipay.com/downloadBillFile.resource?… failed"


# --- one view of a channel's bills (recon.bill_views; docs/parse-stage.md step 3) ---------------------------


def channel_account(source: str, fetch: dict[str, Any], **values: Any) -> Account:
    return Account.model_validate(
        {
            "account_id": f"{source}-main",
            "source": source,
            "name": source,
            "delivery": "api",
            "secret_id": f"recon/{source}/main",
            "fetch": {"kind": source, **fetch},
            **values,
        }
    )


def test_an_alipay_account_fetches_one_view_of_its_bills() -> None:
    """Fetching the 业务明细 and the 账务明细 for one account quarantines one of them, with an alert, every day."""
    for one in ("trade", "signcustomer"):
        assert channel_account("alipay", {"bill_types": [one]}).fetch is not None
    with pytest.raises(ValueError) as refused:
        channel_account("alipay", {"bill_types": ["trade", "signcustomer"]})
    reason = str(refused.value)
    for said in (
        "account alipay-main fetches two views of the same Alipay bills",
        "bill_types trade is the 业务明细 (trade bill) and bill_types signcustomer is the 账务明细 (fund-flow bill)",
        "quarantined, with an alert, every day",
        "bill_types: [trade] for the 业务明细 (trade bill), or bill_types: [signcustomer] for the 账务明细",
        "docs/parse-stage.md",
    ):
        assert said in reason


def test_a_wechat_account_fetches_its_trade_bills_or_its_fund_flow_bills() -> None:
    trade = channel_account("wechat", {"bill_types": ["ALL", "SUCCESS"]})
    flows = channel_account("wechat", {"bill_types": [], "fundflow_accounts": ["BASIC", "OPERATION"]})
    assert isinstance(flows.fetch, WechatFetch) and flows.fetch.bill_types == []
    assert isinstance(trade.fetch, WechatFetch) and trade.fetch.fundflow_accounts == []
    with pytest.raises(ValueError) as refused:
        channel_account("wechat", {"bill_types": ["ALL"], "fundflow_accounts": ["BASIC"]})
    reason = str(refused.value)
    for said in (
        "account wechat-main fetches two views of the same WeChat Pay bills",
        "bill_types [ALL] is the 交易账单 (trade bill) and fundflow_accounts [BASIC] is the 资金账单",
        "fundflow_accounts (e.g. [BASIC]) and bill_types: [] for the 资金账单 (fund-flow bill)",
        "docs/parse-stage.md",
    ):
        assert said in reason
    # The default trade bill is the other view too: a fund-flow account says bill_types: [].
    with pytest.raises(ValueError, match=r"bill_types \[ALL\] \(the default\) is the 交易账单"):
        channel_account("wechat", {"fundflow_accounts": ["BASIC"]})
    with pytest.raises(ValueError, match="fetch at least one bill"):
        WechatFetch(bill_types=[])
    with pytest.raises(ValueError, match="at least 1 item"):
        AlipayFetch.model_validate({"bill_types": []})


@pytest.mark.parametrize(
    ("source", "fmt", "fetch", "fetched", "pinned"),
    [
        ("alipay", "alipay.trade", {"bill_types": ["signcustomer"]}, "bill_types signcustomer", "业务明细"),
        ("alipay", "alipay.signcustomer.zip", {"bill_types": ["trade"]}, "bill_types trade", "账务明细"),
        ("wechat", "wechat.fundflow", {"bill_types": ["ALL"]}, "bill_types [ALL]", "资金账单"),
        (
            "wechat",
            "wechat.tradebill",
            {"bill_types": [], "fundflow_accounts": ["FEES"]},
            "fundflow_accounts [FEES]",
            "交易账单",
        ),
    ],
)
def test_a_format_naming_one_view_refuses_fetching_the_other(
    source: str, fmt: str, fetch: dict[str, Any], fetched: str, pinned: str
) -> None:
    """Each fetched file of the other view would be refused by the format check and quarantined."""
    with pytest.raises(ValueError) as refused:
        channel_account(source, fetch, format=fmt)
    reason = str(refused.value)
    assert f"account {source}-main has format {fmt}, the {pinned}" in reason
    assert f"but fetches {fetched}, the " in reason and "docs/parse-stage.md" in reason
    # The same fetch with a format of its own view, or one admitting both views, is fine.
    assert channel_account(source, fetch, format=source).fetch is not None


def test_a_format_of_the_fetched_view_is_accepted() -> None:
    assert channel_account("alipay", {"bill_types": ["trade"]}, format="alipay.trade.zip").format
    assert channel_account(
        "wechat", {"bill_types": [], "fundflow_accounts": ["BASIC"]}, format="wechat.fundflow"
    ).format
    assert channel_account("wechat", {"bill_types": ["ALL"]}, format="wechat.tradebill").format


def test_a_fund_flow_account_is_read_for_its_business_date_in_the_wechat_window() -> None:
    """WeChat Pay generates the 资金账单 with the 交易账单 (from 09:00, fetch after 10:00); the run of a day
    reads that day's bill, as for the trade bill."""
    flows = channel_account("wechat", {"bill_types": [], "fundflow_accounts": ["BASIC"]})
    assert isinstance(flows.fetch, WechatFetch) and flows.fetch.window == WechatFetch().window
    project = Project.model_validate(
        yaml.safe_load((REPO / "local/recon_local/projects/demo.yaml").read_text())
    )
    day = date(2026, 11, 20)
    assert statement_date_for(project, flows, day) == day
