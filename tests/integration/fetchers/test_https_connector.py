"""``HttpsBankConnector`` against a real local TLS server that requires client certificates."""

from __future__ import annotations

import base64
import hashlib
import tempfile
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from recon.domain.account import HttpsFetch
from recon.fetching.bank import HttpsBankConnector, HttpsCredentials
from recon.fetching.base import (
    BillNotReady,
    CredentialsInvalid,
    ProviderRejected,
    ProviderUnavailable,
    RetryPolicy,
    VerificationError,
    load_credentials,
)

from ._tls_server import HttpsTestServer, Reply, Route, SeenRequest, TestCA

DAY = date(2026, 11, 21)
BAI2 = b"01,BANK,RECON,261121,0600,1,,,2/\r\n99,0,1,2/\r\n"
TOKEN = "bank-api-token-0123456789"
FAST = RetryPolicy(attempts=3, base_seconds=0.5, max_seconds=4.0, timeout_seconds=10.0)


@pytest.fixture(scope="module")
def ca() -> TestCA:
    return TestCA()


@pytest.fixture(scope="module")
def client_cert(ca: TestCA) -> Any:
    return ca.issue("recon-fetcher", server=False)


def statement(_: SeenRequest) -> Reply:
    return Reply(
        200, BAI2, {"Content-Type": "text/plain", "X-Content-SHA256": hashlib.sha256(BAI2).hexdigest()}
    )


@pytest.fixture
def mtls(ca: TestCA) -> Iterator[HttpsTestServer]:
    with HttpsTestServer(
        ca, {"/v1/statements/2026-11-21/bai2": statement}, require_client_cert=True
    ) as server:
        yield server


def config(server: HttpsTestServer, **overrides: Any) -> HttpsFetch:
    values: dict[str, Any] = {
        "url_template": server.url("/v1/statements/{date:%Y-%m-%d}/bai2"),
        "filename_template": "bai2_{date:%Y%m%d}.txt",
    }
    values.update(overrides)
    return HttpsFetch.model_validate(values)


def mtls_creds(ca: TestCA, client_cert: Any, **extra: str) -> HttpsCredentials:
    return HttpsCredentials.model_validate(
        {
            "client_cert": client_cert.cert_pem,
            "client_key": client_cert.key_pem,
            "ca_bundle": ca.cert_pem,
            **extra,
        }
    )


def connector(
    server: HttpsTestServer, creds: HttpsCredentials, sleeps: list[float] | None = None, **cfg: Any
) -> HttpsBankConnector:
    waits = sleeps if sleeps is not None else []
    return HttpsBankConnector(config(server, **cfg), creds, retry=FAST, sleep=waits.append)


def test_mutual_tls_download_is_byte_exact(mtls: HttpsTestServer, ca: TestCA, client_cert: Any) -> None:
    before = set(Path(tempfile.gettempdir()).glob("recon-mtls-*"))
    bills = connector(mtls, mtls_creds(ca, client_cert), checksum_header="X-Content-SHA256").fetch(DAY)
    assert set(Path(tempfile.gettempdir()).glob("recon-mtls-*")) == before  # the key file is gone again
    assert [(b.filename, b.data, b.bill_date) for b in bills] == [("bai2_20261121.txt", BAI2, DAY)]
    assert bills[0].content_type == "text/plain"
    assert [r.client_cert_subject for r in mtls.requests] == ["commonName=recon-fetcher"]
    assert "authorization" not in mtls.requests[0].headers


def test_bearer_token_is_sent(ca: TestCA) -> None:
    def guarded(request: SeenRequest) -> Reply:
        if request.headers.get("authorization") != f"Bearer {TOKEN}":
            return Reply(401)
        return statement(request)

    routes: dict[str, Route] = {"/v1/statements/2026-11-21/bai2": guarded}
    with HttpsTestServer(ca, routes, require_client_cert=False) as server:
        creds = HttpsCredentials.model_validate({"token": TOKEN, "ca_bundle": ca.cert_pem})
        assert connector(server, creds).fetch(DAY)[0].data == BAI2
        wrong = HttpsCredentials.model_validate({"token": "expired", "ca_bundle": ca.cert_pem})
        with pytest.raises(ProviderRejected, match="HTTP 401") as rejected:
            connector(server, wrong).fetch(DAY)
        assert rejected.value.code == "auth"


def test_server_refuses_a_client_without_a_certificate_it_trusts(mtls: HttpsTestServer, ca: TestCA) -> None:
    stranger = TestCA("Somebody Else's CA").issue("intruder", server=False)
    creds = HttpsCredentials.model_validate(
        {"client_cert": stranger.cert_pem, "client_key": stranger.key_pem, "ca_bundle": ca.cert_pem}
    )
    sleeps: list[float] = []
    with pytest.raises(ProviderRejected, match="refused the TLS session") as rejected:
        connector(mtls, creds, sleeps).fetch(DAY)
    assert rejected.value.code == "auth" and sleeps == []
    token_only = HttpsCredentials.model_validate({"token": TOKEN, "ca_bundle": ca.cert_pem})
    with pytest.raises(ProviderRejected):
        connector(mtls, token_only).fetch(DAY)
    assert mtls.requests == []  # nothing got past the handshake


def test_server_certificate_from_an_untrusted_ca_is_a_verification_error(
    mtls: HttpsTestServer, client_cert: Any
) -> None:
    other_ca = TestCA("Not The Bank's CA")
    creds = HttpsCredentials.model_validate(
        {
            "client_cert": client_cert.cert_pem,
            "client_key": client_cert.key_pem,
            "ca_bundle": other_ca.cert_pem,
        }
    )
    with pytest.raises(VerificationError, match="server certificate failed verification") as failed:
        connector(mtls, creds).fetch(DAY)
    assert failed.value.code == "server_certificate"
    assert mtls.requests == []


def test_not_published_yet(mtls: HttpsTestServer, ca: TestCA, client_cert: Any) -> None:
    with pytest.raises(BillNotReady, match="HTTP 404"):
        connector(mtls, mtls_creds(ca, client_cert)).fetch(date(2026, 11, 22))
    mtls.routes["/v1/statements/2026-11-23/bai2"] = lambda _: Reply(425)
    with pytest.raises(BillNotReady, match="HTTP 425"):
        connector(mtls, mtls_creds(ca, client_cert)).fetch(date(2026, 11, 23))


def test_5xx_and_429_are_retried_with_backoff_honouring_retry_after(
    mtls: HttpsTestServer, ca: TestCA, client_cert: Any
) -> None:
    replies = iter([Reply(503, b"busy"), Reply(429, b"slow down", {"Retry-After": "3"})])
    mtls.routes["/v1/statements/2026-11-21/bai2"] = lambda r: next(replies, None) or statement(r)
    sleeps: list[float] = []
    assert connector(mtls, mtls_creds(ca, client_cert), sleeps).fetch(DAY)[0].data == BAI2
    assert len(mtls.requests) == 3
    assert len(sleeps) == 2
    assert 0 <= sleeps[0] <= FAST.base_seconds  # full jitter after the first failure
    assert sleeps[1] >= 3  # the server's Retry-After is a floor


def test_persistent_5xx_gives_up_as_unavailable(mtls: HttpsTestServer, ca: TestCA, client_cert: Any) -> None:
    mtls.routes["/v1/statements/2026-11-21/bai2"] = lambda _: Reply(500, b"down")
    sleeps: list[float] = []
    with pytest.raises(ProviderUnavailable, match="gave up after 3 attempts"):
        connector(mtls, mtls_creds(ca, client_cert), sleeps).fetch(DAY)
    assert len(mtls.requests) == 3 and len(sleeps) == 2


def test_checksum_header_must_match(mtls: HttpsTestServer, ca: TestCA, client_cert: Any) -> None:
    digest = base64.b64encode(hashlib.sha256(BAI2).digest()).decode()
    mtls.routes["/v1/statements/2026-11-21/bai2"] = lambda _: Reply(
        200, BAI2, {"Repr-Digest": f"sha-256=:{digest}:"}
    )
    assert connector(mtls, mtls_creds(ca, client_cert), checksum_header="Repr-Digest").fetch(DAY)
    tampered = BAI2.replace(b"0600", b"0700")
    mtls.routes["/v1/statements/2026-11-21/bai2"] = lambda _: Reply(
        200, tampered, {"Repr-Digest": f"sha-256=:{digest}:"}
    )
    with pytest.raises(VerificationError, match="different digest"):
        connector(mtls, mtls_creds(ca, client_cert), checksum_header="Repr-Digest").fetch(DAY)
    with pytest.raises(VerificationError, match="missing"):
        connector(mtls, mtls_creds(ca, client_cert), checksum_header="X-Absent").fetch(DAY)


def test_unexpected_status_is_rejected(mtls: HttpsTestServer, ca: TestCA, client_cert: Any) -> None:
    mtls.routes["/v1/statements/2026-11-21/bai2"] = lambda _: Reply(
        302, b"", {"Location": "https://elsewhere.example/"}
    )
    with pytest.raises(ProviderRejected, match="unexpected HTTP 302"):
        connector(mtls, mtls_creds(ca, client_cert)).fetch(DAY)


def test_credentials_shape(client_cert: Any) -> None:
    with pytest.raises(CredentialsInvalid, match="client_cert and client_key go together"):
        load_credentials(HttpsCredentials, {"client_cert": client_cert.cert_pem}, "recon/bank")
    with pytest.raises(CredentialsInvalid) as nothing:
        load_credentials(HttpsCredentials, {"ca_bundle": "x"}, "recon/bank")
    assert "token" in str(nothing.value)
    garbage = HttpsCredentials.model_validate({"client_cert": "not a cert", "client_key": "not a key"})
    with pytest.raises(ProviderRejected, match="could not be loaded") as unloadable:
        HttpsBankConnector(
            HttpsFetch.model_validate(
                {"url_template": "https://h.example/{date:%Y%m%d}", "filename_template": "f_{date:%Y%m%d}"}
            ),
            garbage,
            retry=FAST,
        ).fetch(DAY)
    assert "not a key" not in str(unloadable.value)


def test_config_validation() -> None:
    ok = {
        "url_template": "https://files.bank.example/{date:%Y-%m-%d}.xml",
        "filename_template": "s_{date:%Y%m%d}.xml",
    }
    assert HttpsFetch.model_validate(ok).not_ready_statuses == [404, 425]
    assert HttpsFetch.model_validate({**ok, "url_template": "http://127.0.0.1:8080/{date:%Y%m%d}"})
    for bad in (
        {"url_template": "http://files.bank.example/{date:%Y%m%d}"},  # plain http to a real host
        {"url_template": "https://user:pw@files.bank.example/{date:%Y%m%d}"},  # credentials in the URL
        {"url_template": "https://files.bank.example/latest.xml"},  # no date
        {"filename_template": "../{date:%Y%m%d}.xml"},
        {"not_ready_statuses": [500]},
        {"not_ready_statuses": [401]},
    ):
        with pytest.raises(ValueError):
            HttpsFetch.model_validate({**ok, **bad})
