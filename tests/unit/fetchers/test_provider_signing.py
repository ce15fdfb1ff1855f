"""Provider signing and verification, pure: published examples, the official WeChat Pay test vectors,
and the edge cases of extracting what Alipay signed."""

from __future__ import annotations

import base64
import hashlib
import json
import re
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding
from cryptography.x509.oid import NameOID

from recon.fetching._transport import TransientError, backoff_seconds, retrying
from recon.fetching.alipay import (
    cert_sn,
    root_cert_sn,
    rsa2_sign,
    rsa2_verify,
    sign_content,
    split_signed_response,
    verify_response,
)
from recon.fetching.base import ProviderUnavailable, RetryPolicy, VerificationError
from recon.fetching.wechatpay import (
    authorization_header,
    decrypt_resource,
    open_notification,
    signing_message,
    verification_message,
    verify_signed_message,
)
from recon_local.fakes.keys import certificate_pem, issue_certificate, new_rsa_key
from tests.unit.parsing._support import SAMPLES

VECTORS = SAMPLES / "wechatpay-go" / "notify_and_aes_test_vectors.json"


@pytest.fixture(scope="module")
def key():
    return new_rsa_key()


# ------------------------------------------------------------------------------------ Alipay request


def test_alipay_sign_content_matches_the_published_example():
    # Alipay's "自行实现签名" example: every parameter but sign, sorted, raw values joined by '&'.
    biz = (
        '{"button":[{"actionParam":"ZFB_HFCZ","actionType":"out","name":"话费充值"},{"name":"查询","subButton":'
        '[{"actionParam":"ZFB_YECX","actionType":"out","name":"余额查询"},{"actionParam":"ZFB_LLCX","actionType"'
        ':"out","name":"流量查询"},{"actionParam":"ZFB_HFCX","actionType":"out","name":"话费查询"}]},{"actionParam"'
        ':"http://m.alipay.com","actionType":"link","name":"最新优惠"}]}'
    )
    params = {
        "app_id": "2014072300007148",
        "method": "alipay.mobile.public.menu.add",
        "charset": "GBK",
        "sign_type": "RSA2",
        "timestamp": "2014-07-24 03:07:50",
        "biz_content": biz,
        "sign": "e9zEAe4TTQ4LPLQvETPoLGXTiURcxiAKfMVQ6Hrrsx2hmyIEGvSfAQzbLxHrhyZ48wOJXTsD4FPnt",
        "version": "1.0",
    }
    assert sign_content(params) == (
        f"app_id=2014072300007148&biz_content={biz}&charset=GBK&method=alipay.mobile.public.menu.add"
        "&sign_type=RSA2&timestamp=2014-07-24 03:07:50&version=1.0"
    )


def test_alipay_sign_content_drops_empty_values_and_sorts_by_ascii():
    params = {"b": "2", "a": "1", "B": "upper first", "empty": "", "sign": "x", "app_auth_token": ""}
    assert sign_content(params) == "B=upper first&a=1&b=2"


def test_rsa2_is_sha256withrsa_pkcs1v15_base64(key):
    content = 'app_id=1&biz_content={"bill_date":"2026-11-21"}&charset=utf-8'
    signature = rsa2_sign(key, content)
    key.public_key().verify(
        base64.b64decode(signature), content.encode(), padding.PKCS1v15(), hashes.SHA256()
    )
    assert rsa2_verify(key.public_key(), content.encode(), signature)
    assert not rsa2_verify(key.public_key(), content.encode() + b" ", signature)
    assert not rsa2_verify(new_rsa_key().public_key(), content.encode(), signature)
    assert not rsa2_verify(key.public_key(), content.encode(), "not base64!")


# ----------------------------------------------------------------------------------- Alipay response


NODE = "alipay_data_dataservice_bill_downloadurl_query_response"


def test_the_signed_content_is_the_exact_raw_text_of_the_node(key):
    # Spacing, member order and escapes exactly as sent; a brace inside a string does not end the node.
    inner = '{ "code" : "10000", "msg":"Success","bill_download_url":"http://x/y?a={b}&c=\\u4e2d","z":[1,{"k":"}"}] }'
    body = f'{{"{NODE}" : {inner} ,\n "sign":"{rsa2_sign(key, inner)}"}}'

    signed = split_signed_response(body)

    assert signed.content == inner
    assert signed.value["bill_download_url"] == "http://x/y?a={b}&c=中"
    assert verify_response(signed, key.public_key())
    assert signed.alipay_cert_sn is None


def test_certificate_mode_sn_and_error_response_are_found(key):
    inner = '{"code":"40002","msg":"Invalid Arguments","sub_code":"isv.invalid-signature"}'
    body = f'{{"error_response":{inner},"alipay_cert_sn":"abc123","sign":"{rsa2_sign(key, inner)}"}}'
    signed = split_signed_response(body)
    assert (signed.node, signed.content, signed.alipay_cert_sn) == ("error_response", inner, "abc123")
    assert verify_response(signed, key.public_key())


def test_escaped_slashes_verify_like_the_official_sdk(key):
    inner = '{"code":"10000","bill_download_url":"http://dwbillcenter.alipay.com/downloadBillFile.resource"}'
    sent = inner.replace("/", "\\/")
    signed = split_signed_response(f'{{"{NODE}":{sent},"sign":"{rsa2_sign(key, inner)}"}}')
    assert signed.content == sent
    assert verify_response(signed, key.public_key())


@pytest.mark.parametrize(
    "body",
    [
        f'{{"{NODE}":{{"code":"10000"}},"{NODE}":{{"code":"10000"}},"sign":"x"}}',  # ambiguous: which one?
        '{"other_response":{"code":"10000"},"sign":"x"}',
        f'{{"{NODE}":{{"code":"10000"}}',  # truncated
        "<html>502 Bad Gateway</html>",
    ],
    ids=["duplicate-node", "no-node", "truncated", "not-json"],
)
def test_malformed_answers_are_refused(body):
    with pytest.raises(VerificationError):
        split_signed_response(body)


def test_an_altered_or_unsigned_node_does_not_verify(key):
    inner = '{"code":"10000","bill_download_url":"http://a/b"}'
    sign = rsa2_sign(key, inner)
    altered = split_signed_response(f'{{"{NODE}":{inner.replace("a/b", "evil/b")},"sign":"{sign}"}}')
    unsigned = split_signed_response(f'{{"{NODE}":{inner}}}')
    assert not verify_response(altered, key.public_key())
    assert unsigned.sign is None and not verify_response(unsigned, key.public_key())


# ------------------------------------------------------------------------------- Alipay certificate SN


def _name(*parts: tuple[x509.ObjectIdentifier, str]) -> x509.Name:
    return x509.Name([x509.NameAttribute(oid, value) for oid, value in parts])


def test_cert_sn_is_md5_of_the_reversed_issuer_dn_and_the_decimal_serial(key):
    issuer = _name(
        (NameOID.COUNTRY_NAME, "CN"),
        (NameOID.ORGANIZATION_NAME, "Ant Financial"),
        (NameOID.ORGANIZATIONAL_UNIT_NAME, "Certification Authority"),
        (NameOID.COMMON_NAME, "Ant Financial Certification Authority Class 2 R1"),
    )
    serial = 0x1A2B3C4D5E6F
    cert = issue_certificate(
        _name((NameOID.COMMON_NAME, "app")), key.public_key(), issuer=issuer, issuer_key=key, serial=serial
    )
    # As Java's X500Principal.getName() prints it (RFC 2253: last RDN first), then the serial in decimal.
    expected_text = (
        "CN=Ant Financial Certification Authority Class 2 R1,OU=Certification Authority,O=Ant Financial,C=CN"
        + str(serial)
    )
    assert cert_sn(certificate_pem(cert)) == hashlib.md5(expected_text.encode()).hexdigest()


def test_root_cert_sn_joins_the_rsa_roots_and_skips_the_others(key):
    other = new_rsa_key()
    ec_key = ec.generate_private_key(ec.SECP256R1())
    first = issue_certificate(
        _name((NameOID.COMMON_NAME, "Root R1")), key.public_key(), issuer_key=key, ca=True
    )
    second = issue_certificate(
        _name((NameOID.COMMON_NAME, "Root R2")), other.public_key(), issuer_key=other, ca=True
    )
    ecc = issue_certificate(
        _name((NameOID.COMMON_NAME, "Root E1")), ec_key.public_key(), issuer_key=ec_key, ca=True
    )
    bundle = certificate_pem(first) + certificate_pem(ecc) + certificate_pem(second)

    expected = f"{cert_sn(certificate_pem(first))}_{cert_sn(certificate_pem(second))}"
    assert root_cert_sn(bundle) == expected


# ---------------------------------------------------------------------------------- WeChat Pay request


def test_wechat_signing_message_matches_the_documented_example():
    # The APIv3 docs' example: GET /v3/certificates at 1554208460 with nonce 593BEC0C…; an empty body
    # still ends with its own '\n'.
    assert (
        signing_message("GET", "/v3/certificates", 1554208460, "593BEC0C930BF1AFEB40B4A08C8FB242")
        == "GET\n/v3/certificates\n1554208460\n593BEC0C930BF1AFEB40B4A08C8FB242\n\n"
    )
    assert signing_message("POST", "/v3/x?a=1", 1, "n", '{"k":1}') == 'POST\n/v3/x?a=1\n1\nn\n{"k":1}\n'


def test_wechat_authorization_header_has_the_documented_shape(key):
    header = authorization_header(
        mchid="1900009191",
        serial_no="1DDE55AD98ED71D6EDD4A4A16996DE7B47773A8C",
        private_key=key,
        method="GET",
        canonical_url="/v3/bill/tradebill?bill_date=2019-06-11&bill_type=ALL",
        timestamp=1554208460,
        nonce="593BEC0C930BF1AFEB40B4A08C8FB242",
    )
    match = re.fullmatch(
        r'WECHATPAY2-SHA256-RSA2048 mchid="1900009191",nonce_str="593BEC0C930BF1AFEB40B4A08C8FB242",'
        r'timestamp="1554208460",serial_no="1DDE55AD98ED71D6EDD4A4A16996DE7B47773A8C",signature="([^"]+)"',
        header,
    )
    assert match is not None
    message = b"GET\n/v3/bill/tradebill?bill_date=2019-06-11&bill_type=ALL\n1554208460\n593BEC0C930BF1AFEB40B4A08C8FB242\n\n"
    key.public_key().verify(base64.b64decode(match.group(1)), message, padding.PKCS1v15(), hashes.SHA256())


# ------------------------------------------------------------------ WeChat Pay: the official vectors


@pytest.fixture(scope="module")
def vectors() -> dict[str, Any]:
    if not VECTORS.is_file():
        pytest.skip(f"{VECTORS.relative_to(SAMPLES.parent)} absent: the official wechatpay-go vectors")
    loaded: dict[str, Any] = json.loads(VECTORS.read_text(encoding="utf-8"))
    return loaded


def _vector_key(notification: dict[str, Any]) -> Any:
    return x509.load_pem_x509_certificate(notification["platform_certificate_pem"].encode()).public_key()


@pytest.mark.needs_samples
def test_official_notification_verifies_and_decrypts(vectors):
    n = vectors["notification"]
    headers, body = n["headers"], n["body"].encode("utf-8")
    when = datetime.fromtimestamp(int(headers["Wechatpay-Timestamp"]) + 30, UTC)

    assert verification_message(headers["Wechatpay-Timestamp"], headers["Wechatpay-Nonce"], body) == n[
        "string_to_verify"
    ].encode("utf-8")
    signed = verify_signed_message(headers, body, _vector_key(n), now=when)
    assert signed.serial == "D7CE59D1F522D701"
    plaintext = open_notification(
        headers, body, {headers["Wechatpay-Serial"]: _vector_key(n)}, n["apiv3_key"], now=when
    )
    assert plaintext.decode("utf-8") == n["expected_plaintext"]


@pytest.mark.needs_samples
def test_official_aes_gcm_vector_decrypts(vectors):
    v = vectors["aes_util"]
    plain = decrypt_resource(
        v["apiv3_key"], nonce=v["nonce"], associated_data=v["associated_data"], ciphertext=v["ciphertext"]
    )
    assert plain == v["expected_plaintext"].encode()
    with pytest.raises(VerificationError, match="does not decrypt"):
        decrypt_resource(
            v["apiv3_key"], nonce=v["nonce"], associated_data="other", ciphertext=v["ciphertext"]
        )


@pytest.mark.needs_samples
@pytest.mark.parametrize("change", ["body", "stale", "probe", "missing-header", "unknown-serial"])
def test_official_notification_fails_when_anything_is_off(vectors, change):
    n = vectors["notification"]
    headers, body = dict(n["headers"]), n["body"].encode("utf-8")
    when = datetime.fromtimestamp(int(headers["Wechatpay-Timestamp"]), UTC)
    keys = {headers["Wechatpay-Serial"]: _vector_key(n)}
    if change == "body":
        body = body.replace(b"PAYSCORE", b"PAYSCORF")
    elif change == "stale":
        when += timedelta(minutes=5)
    elif change == "probe":
        headers["Wechatpay-Signature"] = "WECHATPAY/SIGNTEST/" + headers["Wechatpay-Signature"]
    elif change == "missing-header":
        del headers["Wechatpay-Nonce"]
    else:
        keys = {}
    with pytest.raises(VerificationError):
        open_notification(headers, body, keys, n["apiv3_key"], now=when)


# ----------------------------------------------------------------------------------------- backoff


def test_backoff_is_full_jitter_under_a_capped_exponential_ceiling():
    policy = RetryPolicy(attempts=6, base_seconds=0.5, max_seconds=3.0)
    assert [backoff_seconds(policy, n, rand=lambda: 1.0) for n in range(1, 6)] == [0.5, 1.0, 2.0, 3.0, 3.0]
    assert backoff_seconds(policy, 4, rand=lambda: 0.0) == 0.0
    assert backoff_seconds(policy, 1, rand=lambda: 0.25, retry_after=2.0) == 2.0  # Retry-After is a floor
    assert backoff_seconds(policy, 1, rand=lambda: 0.25, retry_after=60.0) == 3.0  # …capped by the policy


def test_retrying_counts_attempts_and_gives_up_as_unavailable():
    calls: list[int] = []
    sleeps: list[float] = []

    def flaky() -> str:
        calls.append(1)
        if len(calls) < 3:
            raise TransientError("busy", code="SYSTEM_ERROR")
        return "ok"

    policy = RetryPolicy(attempts=3)
    assert retrying(flaky, policy=policy, sleep=sleeps.append, what="op") == "ok"
    assert (len(calls), len(sleeps)) == (3, 2)


def test_retrying_gives_up_as_unavailable_and_lets_other_errors_through():
    sleeps: list[float] = []

    def down() -> str:
        raise TransientError("busy", code="SYSTEM_ERROR")

    with pytest.raises(ProviderUnavailable, match=r"op: busy \(gave up after 3 attempts\)") as caught:
        retrying(down, policy=RetryPolicy(attempts=3), sleep=sleeps.append, what="op")
    assert caught.value.code == "SYSTEM_ERROR" and len(sleeps) == 2

    def rejected() -> str:
        raise VerificationError("bad")

    with pytest.raises(VerificationError):
        retrying(rejected, policy=RetryPolicy(attempts=3), sleep=sleeps.append, what="op")
    assert len(sleeps) == 2  # not retried
