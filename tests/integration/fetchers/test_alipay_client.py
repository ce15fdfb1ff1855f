"""AlipayBillClient against the fake Alipay gateway (a real HTTP server on 127.0.0.1)."""

from __future__ import annotations

import zipfile
from datetime import date
from io import BytesIO

import httpx
import pytest

from recon.domain import Source
from recon.fetching.alipay import AlipayBillClient, AlipayCredentials, root_cert_sn
from recon.fetching.base import (
    BillNotReady,
    ProviderRejected,
    ProviderUnavailable,
    RetryPolicy,
    VerificationError,
)
from recon_local.fakes import AlipayGateway, BillBook
from recon_local.fakes.keys import new_rsa_key, private_key_pem

from .conftest import Sleeps, china_today, last_month, parse_bill, yesterday

FAST = RetryPolicy(attempts=4, base_seconds=0.5, max_seconds=8.0, timeout_seconds=5.0)


def client(
    http: httpx.Client,
    gateway: AlipayGateway,
    sleeps: Sleeps,
    *,
    credentials: AlipayCredentials | None = None,
    retry: RetryPolicy = FAST,
) -> AlipayBillClient:
    return AlipayBillClient(
        http, gateway.gateway_url, credentials or gateway.client_credentials(), retry, sleep=sleeps
    )


def calls(gateway: AlipayGateway) -> tuple[int, int]:
    """(gateway queries, downloads) the fake has received."""
    return len(gateway.requests_to("/gateway.do")), len(gateway.requests_to("/downloadBillFile.resource"))


# --------------------------------------------------------------------------------------- happy paths


@pytest.mark.parametrize("bill_type", ["trade", "signcustomer"])
@pytest.mark.parametrize("granularity", ["daily", "monthly"])
def test_fetches_every_bill_type_daily_and_monthly(http, gateway, sleeps, bill_type, granularity):
    period: date | str = yesterday() if granularity == "daily" else last_month()
    key = period.isoformat() if isinstance(period, date) else period

    bill = client(http, gateway, sleeps).fetch(bill_type, period)

    assert bill.data == gateway.bills.get(f"alipay.{bill_type}", key)  # stored exactly as delivered
    assert bill.content_type == "application/zip"
    assert bill.filename == f"{gateway.keys.app_id}0156_{key.replace('-', '')}.csv.zip"
    assert bill.bill_date == (period if isinstance(period, date) else date.fromisoformat(key + "-01"))
    assert bill.details["granularity"] == granularity
    assert bill.details["bill_type"] == bill_type
    assert calls(gateway) == (1, 1)
    assert sleeps == []
    # The real layout: our own parser reads it without a rejected row.
    parsed = parse_bill(bill, Source.ALIPAY)
    assert parsed.profile == f"alipay.{bill_type}.zip"
    assert parsed.errors == []
    assert parsed.rows_read > parsed.rows_skipped  # data rows, all parsed


def test_request_is_signed_and_download_carries_no_credentials(http, gateway, sleeps):
    client(http, gateway, sleeps).fetch("trade", yesterday())

    (query,) = gateway.requests_to("/gateway.do")
    params = query.query
    assert params["method"] == "alipay.data.dataservice.bill.downloadurl.query"
    assert params["sign_type"] == "RSA2" and params["charset"] == "utf-8" and params["sign"]
    assert "biz_content" not in params  # business parameters travel in the form body
    assert query.body.startswith(b"biz_content=")
    (download,) = gateway.requests_to("/downloadBillFile.resource")
    assert download.header("Authorization") == ""
    assert "sign" not in download.query and "app_id" not in download.query


def test_certificate_mode(http, alipay_cert_keys, bills, sleeps):
    with AlipayGateway(alipay_cert_keys, bills) as gateway:
        bill = client(http, gateway, sleeps).fetch("trade", yesterday())
        (query,) = gateway.requests_to("/gateway.do")

    assert bill.data == bills.get("alipay.trade", yesterday().isoformat())
    assert query.query["app_cert_sn"] == alipay_cert_keys.app_cert_sn
    # The root bundle holds an RSA and an EC root: only the RSA one's SN takes part.
    assert query.query["alipay_root_cert_sn"] == root_cert_sn(alipay_cert_keys.root_bundle_pem)
    assert "_" not in query.query["alipay_root_cert_sn"] and len(query.query["alipay_root_cert_sn"]) == 32


def test_escaped_slashes_in_the_answer_still_verify(http, gateway, sleeps):
    gateway.escape_slashes = True
    bill = client(http, gateway, sleeps).fetch("trade", yesterday())
    assert bill.data == gateway.bills.get("alipay.trade", yesterday().isoformat())


def test_empty_bill_is_still_downloaded(http, gateway, sleeps):
    day = yesterday()
    gateway.empty.add(("trade", day.isoformat()))

    bill = client(http, gateway, sleeps).fetch("trade", day)

    assert bill.details["bill_file_code"] == "EMPTY_DATA_WITH_BILL_FILE"
    assert bill.details["empty"] == "true"
    with zipfile.ZipFile(BytesIO(bill.data)) as archive:
        assert len(archive.infolist()) == 2
    parsed = parse_bill(bill, Source.ALIPAY)
    assert parsed.errors == [] and parsed.rows_read == parsed.rows_skipped  # nothing but layout


# ----------------------------------------------------------------------------- not ready, rejected


def test_bill_not_generated_yet_is_not_ready(http, gateway, sleeps):
    gateway.not_ready.add(("signcustomer", yesterday().isoformat()))

    with pytest.raises(BillNotReady) as caught:
        client(http, gateway, sleeps).fetch("signcustomer", yesterday())

    assert caught.value.code == "isp.bill_not_exist"
    assert calls(gateway) == (1, 0)  # not retried here: the state machine waits, not the client


@pytest.mark.parametrize("period", ["today", "this month"])
def test_a_period_that_has_not_ended_is_not_ready_without_asking(http, gateway, sleeps, period):
    value: date | str = china_today() if period == "today" else f"{china_today():%Y-%m}"
    with pytest.raises(BillNotReady) as caught:
        client(http, gateway, sleeps).fetch("trade", value)
    assert caught.value.code == "PERIOD_NOT_ENDED"
    assert calls(gateway) == (0, 0)


def test_wrong_app_key_is_rejected_with_the_gateway_reason(http, gateway, sleeps):
    impostor = AlipayCredentials(
        app_id=gateway.keys.app_id,
        app_private_key_pem=private_key_pem(new_rsa_key()),
        alipay_public_key_pem=gateway.client_credentials().alipay_public_key_pem,
    )
    with pytest.raises(ProviderRejected) as caught:
        client(http, gateway, sleeps, credentials=impostor).fetch("trade", yesterday())

    assert caught.value.code == "isv.invalid-signature"
    assert "40002" in str(caught.value)
    assert calls(gateway) == (1, 0) and sleeps == []


def test_the_rejection_never_repeats_the_app_auth_token(http, gateway, sleeps):
    isv = AlipayCredentials(
        app_id=gateway.keys.app_id,
        app_private_key_pem=private_key_pem(new_rsa_key()),
        alipay_public_key_pem=gateway.client_credentials().alipay_public_key_pem,
        app_auth_token="202611BBc1e2d3f4secret",
    )
    with pytest.raises(ProviderRejected) as caught:
        client(http, gateway, sleeps, credentials=isv).fetch("trade", yesterday())
    assert "app_auth_token=***" in str(caught.value)  # the gateway echoed what it verified…
    assert "202611BBc1e2d3f4secret" not in str(caught.value)  # …without the token
    assert "202611BBc1e2d3f4secret" not in repr(isv)


def test_unknown_app_id_is_rejected(http, gateway, sleeps):
    own = gateway.client_credentials()
    other = AlipayCredentials(
        app_id="2021999999999999",
        app_private_key_pem=own.app_private_key_pem,
        alipay_public_key_pem=own.alipay_public_key_pem,
    )
    with pytest.raises(ProviderRejected) as caught:
        client(http, gateway, sleeps, credentials=other).fetch("trade", yesterday())
    assert caught.value.code == "isv.invalid-app-id"


# ------------------------------------------------------------------------------------------ retries


@pytest.mark.parametrize(
    "faults",
    [["http_503", "http_503"], ["http_429"], ["call_limited", "unavailable"], ["unavailable"] * 3],
    ids=["5xx", "429", "40005-then-20000", "20000x3"],
)
def test_transient_failures_are_retried_with_backoff(http, gateway, sleeps, faults):
    gateway.faults = list(faults)

    bill = client(http, gateway, sleeps).fetch("trade", yesterday())

    assert bill.data == gateway.bills.get("alipay.trade", yesterday().isoformat())
    assert calls(gateway) == (len(faults) + 1, 1)
    assert len(sleeps) == len(faults)
    for attempt, (fault, delay) in enumerate(zip(faults, sleeps, strict=True), start=1):
        if fault == "http_429":  # the fake says Retry-After: 1, a floor under the jitter
            assert 1.0 <= delay <= FAST.max_seconds
        else:  # full jitter under an exponential ceiling
            assert 0 <= delay <= FAST.base_seconds * 2 ** (attempt - 1)


def test_timeouts_are_retried(http, gateway, sleeps):
    gateway.faults = ["slow", "slow"]
    quick = RetryPolicy(attempts=3, base_seconds=0.5, max_seconds=8.0, timeout_seconds=0.2)

    bill = client(http, gateway, sleeps, retry=quick).fetch("trade", yesterday())

    assert bill.size > 0
    assert calls(gateway) == (3, 1)
    assert len(sleeps) == 2


def test_gives_up_as_unavailable_after_the_policy(http, gateway, sleeps):
    gateway.faults = ["http_503"] * 4

    with pytest.raises(ProviderUnavailable) as caught:
        client(http, gateway, sleeps).fetch("trade", yesterday())

    assert caught.value.code == "HTTP_503"
    assert caught.value.retryable
    assert calls(gateway) == (4, 0)
    assert len(sleeps) == 3


def test_a_failed_download_asks_for_a_fresh_url(http, gateway, sleeps):
    gateway.download_faults = ["http_503", "expired"]

    bill = client(http, gateway, sleeps).fetch("trade", yesterday())

    assert bill.data == gateway.bills.get("alipay.trade", yesterday().isoformat())
    assert calls(gateway) == (3, 3)
    tokens = {r.query["token"] for r in gateway.requests_to("/downloadBillFile.resource")}
    assert len(tokens) == 3


# ---------------------------------------------------------------------------------------- tampering


@pytest.mark.parametrize(
    ("tamper", "code"),
    [
        ("signature", "BAD_SIGNATURE"),
        ("content", "BAD_SIGNATURE"),
        ("wrong_key", "BAD_SIGNATURE"),
        ("unsigned", ""),
    ],
)
def test_an_answer_that_does_not_verify_is_refused_before_downloading(http, gateway, sleeps, tamper, code):
    gateway.tamper = tamper

    with pytest.raises(VerificationError) as caught:
        client(http, gateway, sleeps).fetch("trade", yesterday())

    assert caught.value.code == code
    assert "sign" in str(caught.value).lower()
    assert calls(gateway) == (1, 0)  # nothing taken from an unverified answer, not even its URL


def test_an_unexpected_alipay_certificate_is_refused(http, alipay_cert_keys, bills, sleeps):
    with AlipayGateway(alipay_cert_keys, bills) as gateway:
        gateway.tamper = "cert_sn"
        with pytest.raises(VerificationError) as caught:
            client(http, gateway, sleeps).fetch("trade", yesterday())
    assert caught.value.code == "ALIPAY_CERT_SN_MISMATCH"
    assert "rotated" in str(caught.value)


def test_a_corrupt_zip_is_refused(http, gateway, sleeps):
    gateway.tamper = "corrupt_zip"
    with pytest.raises(VerificationError) as caught:
        client(http, gateway, sleeps).fetch("trade", yesterday())
    assert caught.value.code == "BAD_ZIP"


def test_a_page_instead_of_a_zip_is_retried_then_unavailable(http, gateway, sleeps):
    gateway.tamper = "not_zip"
    with pytest.raises(ProviderUnavailable) as caught:
        client(http, gateway, sleeps).fetch("trade", yesterday())
    assert caught.value.code == "NOT_A_ZIP"
    assert calls(gateway) == (4, 4)


def test_the_bill_book_serves_explicit_files(http, alipay_keys, sleeps):
    book = BillBook()
    day = yesterday()
    custom = book.empty("alipay.trade", day.isoformat())
    book.put("alipay.trade", day.isoformat(), custom)
    book.put("alipay.signcustomer", day.isoformat(), None)
    with AlipayGateway(alipay_keys, book) as gateway:
        assert client(http, gateway, sleeps).fetch("trade", day).data == custom
        with pytest.raises(BillNotReady):
            client(http, gateway, sleeps).fetch("signcustomer", day)
