"""WechatPayBillClient and PlatformCertificateStore against the fake WeChat Pay APIv3 (127.0.0.1)."""

from __future__ import annotations

import gzip
import hashlib
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from recon.domain import Source
from recon.fetching.base import (
    BillNotReady,
    ProviderRejected,
    ProviderUnavailable,
    RetryPolicy,
    VerificationError,
)
from recon.fetching.wechatpay import (
    NoBillForDate,
    PlatformCertificateStore,
    WechatPayBillClient,
    WechatPayCredentials,
)
from recon_local.fakes import BillBook, PlatformKey, WechatPayApi, WechatPayKeyMaterial
from recon_local.fakes.keys import new_rsa_key, private_key_pem

from .conftest import Sleeps, china_today, parse_bill, yesterday

FAST = RetryPolicy(attempts=4, base_seconds=0.5, max_seconds=8.0, timeout_seconds=5.0)
BILLS = "/v3/bill/tradebill"
FLOWS = "/v3/bill/fundflowbill"
CERTS = "/v3/certificates"
DOWNLOAD = "/v3/billdownload/file"


def setup(
    http: httpx.Client,
    api: WechatPayApi,
    sleeps: Sleeps,
    *,
    credentials: WechatPayCredentials | None = None,
    retry: RetryPolicy = FAST,
    with_store: bool = True,
    clock=None,
) -> tuple[WechatPayBillClient, PlatformCertificateStore | None]:
    creds = credentials or api.client_credentials()
    extra = {"clock": clock} if clock else {}
    store = (
        PlatformCertificateStore(http, api.base_url, creds, retry=retry, sleep=sleeps, **extra)
        if with_store
        else None
    )
    client = WechatPayBillClient(http, api.base_url, creds, store, retry, sleep=sleeps, **extra)
    return client, store


def count(api: WechatPayApi, path: str) -> int:
    return len(api.requests_to(path))


def plain_of(bill_data: bytes, gzipped: bool) -> bytes:
    return gzip.decompress(bill_data) if gzipped else bill_data


# --------------------------------------------------------------------------------------- happy paths


@pytest.mark.parametrize("bill_type", ["ALL", "SUCCESS", "REFUND"])
@pytest.mark.parametrize("tar_type", ["GZIP", None])
def test_fetches_every_trade_bill_type(http, wechat_api, sleeps, bill_type, tar_type):
    client, store = setup(http, wechat_api, sleeps)
    day = yesterday()

    bill = client.fetch_trade_bill(day, bill_type, tar_type)

    expected = wechat_api.bills.get(f"wechat.tradebill.{bill_type}", day.isoformat())
    gzipped = tar_type == "GZIP"
    assert bill.data[:2] == (b"\x1f\x8b" if gzipped else expected[:2])  # returned as delivered
    assert plain_of(bill.data, gzipped) == expected
    assert bill.filename == f"wechatpay_tradebill_{bill_type}_{day:%Y%m%d}" + (
        ".csv.gz" if gzipped else ".csv"
    )
    assert bill.bill_date == day
    assert bill.details["sha1"] == hashlib.sha1(expected).hexdigest()
    assert (count(wechat_api, BILLS), count(wechat_api, DOWNLOAD), count(wechat_api, CERTS)) == (1, 1, 1)
    assert store is not None and [c.serial_no for c in store.certificates] == [wechat_api.signing.serial_no]
    parsed = parse_bill(bill, Source.WECHAT)
    assert parsed.profile == f"wechat.tradebill.{bill_type.lower()}"
    assert parsed.errors == [] and parsed.rows_read > parsed.rows_skipped


@pytest.mark.parametrize("account_type", ["BASIC", "OPERATION", "FEES"])
def test_fetches_every_fundflow_account(http, wechat_keys, sleeps, account_type):
    book = BillBook()
    day = yesterday()
    if account_type == "OPERATION":  # none by default (no flows): give the account one
        book.put(
            "wechat.fundflowbill.OPERATION",
            day.isoformat(),
            book.get("wechat.fundflowbill.FEES", day.isoformat()),
        )
    with WechatPayApi(wechat_keys, book) as api:
        client, _ = setup(http, api, sleeps)
        bill = client.fetch_fundflow_bill(day, account_type)
        (apply,) = api.requests_to(FLOWS)

    assert gzip.decompress(bill.data) == book.get(f"wechat.fundflowbill.{account_type}", day.isoformat())
    assert apply.query == {"bill_date": day.isoformat(), "account_type": account_type, "tar_type": "GZIP"}
    assert bill.details["kind"] == account_type
    parsed = parse_bill(bill, Source.WECHAT)
    assert parsed.profile == "wechat.fundflow" and parsed.errors == []


def test_requests_carry_the_documented_authorization(http, wechat_api, sleeps):
    client, _ = setup(http, wechat_api, sleeps)
    client.fetch_trade_bill(yesterday())

    for request in wechat_api.requests:  # the fake verified each signature; here: the visible shape
        header = request.header("Authorization")
        assert header.startswith('WECHATPAY2-SHA256-RSA2048 mchid="1900000109",nonce_str="')
        assert f'serial_no="{wechat_api.keys.merchant_serial_no}"' in header
        assert request.header("User-Agent")
    nonces = {r.header("Authorization").split('nonce_str="')[1][:32] for r in wechat_api.requests}
    assert len(nonces) == len(wechat_api.requests) == 3  # certificates, apply, download


def test_public_key_mode_needs_no_certificates(http, wechat_keys, bills, sleeps):
    with WechatPayApi(wechat_keys, bills, sign_with="public_key") as api:
        creds = api.client_credentials(public_key_mode=True)
        client, _ = setup(http, api, sleeps, credentials=creds, with_store=False)
        bill = client.fetch_trade_bill(yesterday(), "ALL", None)
        assert count(api, CERTS) == 0
    assert bill.data == bills.get("wechat.tradebill.ALL", yesterday().isoformat())


def test_a_rotated_platform_certificate_is_picked_up_with_one_refresh(http, wechat_api, sleeps):
    client, store = setup(http, wechat_api, sleeps)
    client.fetch_trade_bill(yesterday())
    assert store is not None and store.refreshes == 1

    new = wechat_api.rotate_platform_certificate()
    bill = client.fetch_trade_bill(yesterday(), "SUCCESS")

    assert bill.size > 0
    assert store.refreshes == 2 and count(wechat_api, CERTS) == 2
    assert new.serial_no in {c.serial_no for c in store.certificates}


def test_certificates_near_expiry_are_renewed_ahead_of_rotation(http, wechat_keys, bills, sleeps):
    now = [datetime.now(UTC)]

    def clock() -> datetime:
        return now[0]

    expiring = PlatformKey.generate(
        not_before=now[0] - timedelta(days=30), valid_for=timedelta(days=30, hours=12)
    )
    keys = WechatPayKeyMaterial(**{**wechat_keys.__dict__, "platform": expiring})
    with WechatPayApi(keys, bills, clock=clock) as api:
        client, store = setup(http, api, sleeps, clock=clock)
        client.fetch_trade_bill(yesterday())
        assert store is not None and store.refreshes == 1
        successor = api.rotate_platform_certificate()
        api.signing = expiring  # WeChat keeps signing with the old one until it expires
        now[0] += timedelta(minutes=10)

        client.fetch_trade_bill(yesterday())

    assert store.refreshes == 2  # proactively: the newest certificate expires within a day
    assert {c.serial_no for c in store.certificates} == {expiring.serial_no, successor.serial_no}


# ----------------------------------------------------------------------------- not ready, rejected


def test_statement_creating_is_not_ready(http, wechat_api, sleeps):
    wechat_api.not_ready.add(("tradebill.ALL", yesterday().isoformat()))
    client, _ = setup(http, wechat_api, sleeps)

    with pytest.raises(BillNotReady) as caught:
        client.fetch_trade_bill(yesterday())

    assert type(caught.value) is BillNotReady
    assert caught.value.code == "STATEMENT_CREATING"
    assert count(wechat_api, BILLS) == 1 and count(wechat_api, DOWNLOAD) == 0


def test_no_statement_exist_is_a_distinguishable_not_ready(http, wechat_api, sleeps):
    client, _ = setup(http, wechat_api, sleeps)  # the fake has no OPERATION flows by default

    with pytest.raises(NoBillForDate) as caught:
        client.fetch_fundflow_bill(yesterday(), "OPERATION")

    assert isinstance(caught.value, BillNotReady)
    assert caught.value.code == "NO_STATEMENT_EXIST"
    assert count(wechat_api, FLOWS) == 1


def test_today_is_not_ready_without_asking(http, wechat_api, sleeps):
    client, _ = setup(http, wechat_api, sleeps)
    with pytest.raises(BillNotReady) as caught:
        client.fetch_trade_bill(china_today())
    assert caught.value.code == "PERIOD_NOT_ENDED"
    assert wechat_api.requests == []


def test_a_wrong_merchant_key_is_rejected(http, wechat_api, sleeps):
    own = wechat_api.client_credentials()
    impostor = WechatPayCredentials(
        mchid=own.mchid,
        merchant_serial_no=own.merchant_serial_no,
        merchant_private_key_pem=private_key_pem(new_rsa_key()),
        apiv3_key=own.apiv3_key,
    )
    client, _ = setup(http, wechat_api, sleeps, credentials=impostor)

    with pytest.raises(ProviderRejected) as caught:
        client.fetch_trade_bill(yesterday())

    assert caught.value.code == "SIGN_ERROR"
    assert "401" in str(caught.value)
    assert count(wechat_api, BILLS) == 1 and sleeps == []


def test_a_wrong_certificate_serial_is_rejected(http, wechat_api, sleeps):
    own = wechat_api.client_credentials()
    other = WechatPayCredentials(
        mchid=own.mchid,
        merchant_serial_no="0" * 40,
        merchant_private_key_pem=own.merchant_private_key_pem,
        apiv3_key=own.apiv3_key,
    )
    client, _ = setup(http, wechat_api, sleeps, credentials=other)
    with pytest.raises(ProviderRejected) as caught:
        client.fetch_trade_bill(yesterday())
    assert caught.value.code == "SIGN_ERROR"


# ------------------------------------------------------------------------------------------ retries


@pytest.mark.parametrize(
    "faults",
    [["rate_limited", "rate_limited"], ["system_error"], ["http_502", "rate_limited", "system_error"]],
    ids=["429x2", "500", "502-429-500"],
)
def test_transient_failures_are_retried_with_backoff(http, wechat_api, sleeps, faults):
    client, store = setup(http, wechat_api, sleeps)
    assert store is not None
    store.refresh()
    wechat_api.faults = list(faults)

    bill = client.fetch_trade_bill(yesterday())

    assert bill.size > 0
    assert count(wechat_api, BILLS) == len(faults) + 1 and count(wechat_api, DOWNLOAD) == 1
    assert len(sleeps) == len(faults)
    assert all(0 <= s <= FAST.max_seconds for s in sleeps)
    assert all(s >= 1.0 for f, s in zip(faults, sleeps, strict=True) if f == "rate_limited")  # Retry-After


def test_timeouts_are_retried(http, wechat_api, sleeps):
    quick = RetryPolicy(attempts=3, base_seconds=0.5, max_seconds=8.0, timeout_seconds=0.2)
    client, store = setup(http, wechat_api, sleeps, retry=quick)
    assert store is not None
    store.refresh()
    wechat_api.faults = ["slow", "slow"]

    assert client.fetch_trade_bill(yesterday()).size > 0
    assert count(wechat_api, BILLS) == 3 and len(sleeps) == 2


def test_gives_up_as_unavailable_after_the_policy(http, wechat_api, sleeps):
    client, store = setup(http, wechat_api, sleeps)
    assert store is not None
    store.refresh()
    wechat_api.faults = ["rate_limited"] * 4

    with pytest.raises(ProviderUnavailable) as caught:
        client.fetch_trade_bill(yesterday())

    assert caught.value.code == "HTTP_429" and caught.value.retryable
    assert count(wechat_api, BILLS) == 4 and len(sleeps) == 3


def test_a_failed_download_applies_again(http, wechat_api, sleeps):
    client, _ = setup(http, wechat_api, sleeps)
    wechat_api.download_faults = ["http_502"]

    assert client.fetch_fundflow_bill(yesterday()).size > 0
    assert count(wechat_api, FLOWS) == 2 and count(wechat_api, DOWNLOAD) == 2 and len(sleeps) == 1


def test_certificate_download_failures_are_retried(http, wechat_api, sleeps):
    _, store = setup(http, wechat_api, sleeps)
    assert store is not None
    wechat_api.faults = ["system_error", "http_502"]

    store.refresh()

    assert store.refreshes == 1 and count(wechat_api, CERTS) == 3 and len(sleeps) == 2
    assert [c.serial_no for c in store.certificates] == [wechat_api.signing.serial_no]


# ---------------------------------------------------------------------------------------- tampering


@pytest.mark.parametrize(("tamper", "code"), [("signature", "BAD_SIGNATURE"), ("body", "BAD_SIGNATURE")])
def test_an_answer_that_does_not_verify_is_refused(http, wechat_api, sleeps, tamper, code):
    client, store = setup(http, wechat_api, sleeps)
    assert store is not None
    store.refresh()
    wechat_api.tamper = tamper

    with pytest.raises(VerificationError) as caught:
        client.fetch_trade_bill(yesterday())

    assert caught.value.code == code
    assert "does not verify" in str(caught.value)
    assert count(wechat_api, DOWNLOAD) == 0  # nothing taken from it, not even its download URL


def test_a_stale_timestamp_is_refused(http, wechat_api, sleeps):
    client, store = setup(http, wechat_api, sleeps)
    assert store is not None
    store.refresh()
    wechat_api.tamper = "stale_timestamp"

    with pytest.raises(VerificationError) as caught:
        client.fetch_trade_bill(yesterday())

    assert caught.value.code == "STALE_TIMESTAMP"
    assert "(limit 300s): stale" in str(caught.value)
    assert store.refreshes == 1 and count(wechat_api, DOWNLOAD) == 0


def test_an_unknown_serial_is_refused_after_one_refresh(http, wechat_api, sleeps):
    client, store = setup(http, wechat_api, sleeps)
    assert store is not None
    store.refresh()
    wechat_api.tamper = "unknown_serial"

    with pytest.raises(VerificationError) as caught:
        client.fetch_trade_bill(yesterday())

    assert caught.value.code == "UNKNOWN_SERIAL"
    assert "after refreshing" in str(caught.value)
    assert store.refreshes == 2 and count(wechat_api, CERTS) == 2
    assert count(wechat_api, DOWNLOAD) == 0


def test_a_public_key_id_we_do_not_hold_is_refused(http, wechat_keys, bills, sleeps):
    with WechatPayApi(wechat_keys, bills, sign_with="public_key") as api:
        client, _ = setup(http, api, sleeps)  # platform-certificate mode only
        with pytest.raises(VerificationError) as caught:
            client.fetch_trade_bill(yesterday())
    assert caught.value.code == "UNKNOWN_SERIAL"
    assert wechat_keys.public_key_id in str(caught.value)


@pytest.mark.parametrize("tamper", ["hash", "file"])
@pytest.mark.parametrize("tar_type", ["GZIP", None])
def test_a_file_that_does_not_match_its_signed_hash_is_refused(http, wechat_api, sleeps, tamper, tar_type):
    client, _ = setup(http, wechat_api, sleeps)
    wechat_api.tamper = tamper

    with pytest.raises(VerificationError) as caught:
        client.fetch_trade_bill(yesterday(), "ALL", tar_type)

    assert caught.value.code == "HASH_MISMATCH"
    assert count(wechat_api, DOWNLOAD) == 1
