"""Alipay open platform: ``alipay.data.dataservice.bill.downloadurl.query``, then the bill zip.

Protocol (``shared/notes/formats.md`` §1, the official SDKs):

* The request is a POST to the gateway. The common parameters and ``sign`` go in the query string,
  ``biz_content`` (JSON) in the form body. ``sign`` is RSA2 (SHA256withRSA, PKCS#1 v1.5, base64) over
  every non-empty parameter except ``sign``, sorted by key and joined raw (not URL-encoded) as
  ``k=v&k=v``.
* The response is verified over the **exact raw text** of the ``<method>_response`` node with the Alipay
  public key (public-key mode) or the public key of the Alipay certificate (certificate mode). A success
  must be signed; an error may come unsigned (the official Java SDK accepts that too) and is then only
  ever reported, never used.
* The bill itself is a zip behind ``bill_download_url``. That URL expires 30 s after it is issued, so it is
  downloaded at once, without credentials. Alipay publishes no hash of the file, so the zip's own CRCs are
  the integrity check.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import io
import json
import re
import time
import zipfile
import zlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta, timezone
from typing import Any, Literal
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from ._crypto import load_private_key, load_public_key
from ._transport import TransientError, retrying, send
from .base import BillNotReady, FetchedBill, ProviderRejected, RetryPolicy, VerificationError

__all__ = [
    "GATEWAY_URL",
    "METHOD",
    "RESPONSE_NODE",
    "AlipayBillClient",
    "AlipayCredentials",
    "BillType",
    "SignedResponse",
    "cert_sn",
    "root_cert_sn",
    "rsa2_sign",
    "rsa2_verify",
    "sign_content",
    "split_signed_response",
]

GATEWAY_URL = "https://openapi.alipay.com/gateway.do"
METHOD = "alipay.data.dataservice.bill.downloadurl.query"
RESPONSE_NODE = METHOD.replace(".", "_") + "_response"
ERROR_NODE = "error_response"
CHARSET = "utf-8"
SUCCESS_CODE = "10000"
EMPTY_BILL = "EMPTY_DATA_WITH_BILL_FILE"

BillType = Literal["trade", "signcustomer"]
BILL_TYPES: tuple[str, ...] = ("trade", "signcustomer")

# Bill not generated yet (or, for signcustomer, no balance movement that day): the official enum says
# BILL_NOT_EXIST, the gateway answers isp.bill_not_exist.
NOT_READY_SUB_CODES = frozenset({"isp.bill_not_exist", "BILL_NOT_EXIST"})
# 20000 Service Currently Unavailable, 40005 Call Limited (isv.app-call-limited / isv.method-call-limited).
TRANSIENT_CODES = frozenset({"20000", "40005"})

CHINA = timezone(timedelta(hours=8), "Asia/Shanghai")  # no DST: Alipay's clock, and its bill dates
_MONTH = re.compile(r"^(\d{4})-(\d{2})$")
_AUTH_TOKEN = re.compile(r"(app_auth_token=)[^&\s]+")
_SAFE_FILENAME = re.compile(r"^[A-Za-z0-9_.\-]{1,120}\.zip$")
# Root certificates whose SN takes part: RSA with SHA-1 / SHA-256 (the ECC/SM2 ones do not).
_ROOT_SN_SIGNATURES = frozenset({"1.2.840.113549.1.1.5", "1.2.840.113549.1.1.11"})


def _utcnow() -> datetime:
    return datetime.now(UTC)


# --------------------------------------------------------------------------------------- keys and certs


def _sn(certificate: x509.Certificate) -> str:
    # Java's X500Principal.getName() (RFC 2253): attributes in reverse order, "CN=…,OU=…,O=…,C=…",
    # which is what RFC 4514 strings are; then the serial in decimal; MD5, lowercase hex.
    principal = certificate.issuer.rfc4514_string()
    text = principal + str(certificate.serial_number)
    return hashlib.md5(text.encode("utf-8"), usedforsecurity=False).hexdigest()


def cert_sn(certificate_pem: str) -> str:
    """``app_cert_sn`` / ``alipay_cert_sn``: MD5 of the issuer DN followed by the decimal serial."""
    return _sn(x509.load_pem_x509_certificate(certificate_pem.strip().encode("ascii")))


def root_cert_sn(root_bundle_pem: str) -> str:
    """``alipay_root_cert_sn``: the SNs of the bundle's RSA certificates, joined with ``_``."""
    certificates = x509.load_pem_x509_certificates(root_bundle_pem.strip().encode("ascii"))
    return "_".join(
        _sn(c) for c in certificates if c.signature_algorithm_oid.dotted_string in _ROOT_SN_SIGNATURES
    )


@dataclass(frozen=True)
class AlipayCredentials:
    """What Secrets Manager holds for one Alipay app. Either public-key mode (``alipay_public_key_pem``)
    or certificate mode (``app_cert_pem`` + ``alipay_cert_pem`` + ``alipay_root_cert_pem``).

    ``app_auth_token`` is for a service provider (ISV) fetching on behalf of an authorising merchant.
    """

    app_id: str
    app_private_key_pem: str = field(repr=False)
    alipay_public_key_pem: str = field(default="", repr=False)
    app_cert_pem: str = field(default="", repr=False)
    alipay_cert_pem: str = field(default="", repr=False)
    alipay_root_cert_pem: str = field(default="", repr=False)
    app_auth_token: str = field(default="", repr=False)

    def __post_init__(self) -> None:
        if not self.app_id.strip():
            raise ValueError("app_id is required")
        certs = (self.app_cert_pem, self.alipay_cert_pem, self.alipay_root_cert_pem)
        if any(certs) and not all(certs):
            raise ValueError("certificate mode needs app_cert_pem, alipay_cert_pem and alipay_root_cert_pem")
        if not self.cert_mode and not self.alipay_public_key_pem:
            raise ValueError("either alipay_public_key_pem or the three certificates are required")

    @property
    def cert_mode(self) -> bool:
        return bool(self.app_cert_pem)


# ------------------------------------------------------------------------------------ signing (pure)


def sign_content(params: Mapping[str, str]) -> str:
    """The string Alipay signs: non-empty parameters except ``sign``, by key, raw ``k=v`` joined by ``&``."""
    return "&".join(f"{k}={v}" for k, v in sorted(params.items()) if k != "sign" and v)


def rsa2_sign(private_key: rsa.RSAPrivateKey, content: str, charset: str = CHARSET) -> str:
    """SHA256withRSA (PKCS#1 v1.5) of ``content`` in ``charset``, base64."""
    signature = private_key.sign(content.encode(charset), padding.PKCS1v15(), hashes.SHA256())
    return base64.b64encode(signature).decode("ascii")


def rsa2_verify(public_key: rsa.RSAPublicKey, content: bytes, signature_b64: str) -> bool:
    try:
        signature = base64.b64decode(signature_b64, validate=True)
        public_key.verify(signature, content, padding.PKCS1v15(), hashes.SHA256())
    except (InvalidSignature, binascii.Error, ValueError):
        return False
    return True


@dataclass(frozen=True)
class SignedResponse:
    """A gateway answer split as Alipay signs it. ``content`` is the node's value exactly as received."""

    node: str
    content: str
    value: Any
    sign: str | None
    alipay_cert_sn: str | None


def split_signed_response(body: str, node: str = RESPONSE_NODE) -> SignedResponse:
    """Find ``node`` (or ``error_response``) among the top-level members of ``body``, keeping its raw text.

    A small scanner over the top-level object: each value's exact span comes from the JSON decoder
    itself, so strings containing braces cannot confuse it. A node present twice is refused.
    """
    decoder = json.JSONDecoder()
    members: dict[str, tuple[int, int, Any]] = {}
    pos = _skip_ws(body, 0)
    if body[pos : pos + 1] != "{":
        raise VerificationError(f"Alipay response is not a JSON object: {body[:80]!r}")
    pos = _skip_ws(body, pos + 1)
    try:
        while body[pos : pos + 1] != "}":
            key, pos = decoder.raw_decode(body, pos)
            pos = _skip_ws(body, pos)
            if not isinstance(key, str) or body[pos : pos + 1] != ":":
                raise ValueError("expected a member name and ':'")
            start = _skip_ws(body, pos + 1)
            value, end = decoder.raw_decode(body, start)
            if key in members:
                raise VerificationError(f"Alipay response repeats the member {key!r}")
            members[key] = (start, end, value)
            pos = _skip_ws(body, end)
            if body[pos : pos + 1] == ",":
                pos = _skip_ws(body, pos + 1)
            elif body[pos : pos + 1] != "}":
                raise ValueError("expected ',' or '}'")
    except ValueError as exc:
        raise VerificationError(f"Alipay response is not valid JSON: {exc}") from None
    name = node if node in members else ERROR_NODE if ERROR_NODE in members else None
    if name is None:
        raise VerificationError(f"Alipay response has no {node!r} member: {sorted(members)}")
    start, end, value = members[name]
    sign = members.get("sign", (0, 0, None))[2]
    cert = members.get("alipay_cert_sn", (0, 0, None))[2]
    return SignedResponse(
        node=name,
        content=body[start:end],
        value=value,
        sign=sign if isinstance(sign, str) and sign else None,
        alipay_cert_sn=cert if isinstance(cert, str) and cert else None,
    )


def _skip_ws(text: str, pos: int) -> int:
    while pos < len(text) and text[pos] in " \t\r\n":
        pos += 1
    return pos


def verify_response(signed: SignedResponse, public_key: rsa.RSAPublicKey) -> bool:
    """Verify ``signed.sign`` over the node's raw bytes. Like the official Java SDK, a second try with
    ``\\/`` unescaped covers gateways that escape slashes in the text they send but not in what they sign."""
    if signed.sign is None:
        return False
    content = signed.content
    if rsa2_verify(public_key, content.encode(CHARSET), signed.sign):
        return True
    return "\\/" in content and rsa2_verify(
        public_key, content.replace("\\/", "/").encode(CHARSET), signed.sign
    )


# ---------------------------------------------------------------------------------------------- client


@dataclass(frozen=True)
class _Period:
    api_value: str  # what bill_date carries: yyyy-MM-dd or yyyy-MM
    first_day: date
    monthly: bool

    @property
    def compact(self) -> str:
        return self.api_value.replace("-", "")


def _period(bill_date: date | str) -> _Period:
    if isinstance(bill_date, date):
        return _Period(bill_date.isoformat(), bill_date, monthly=False)
    match = _MONTH.match(bill_date)
    if not match or not 1 <= int(match.group(2)) <= 12:
        raise ValueError(f"bill_date must be a date or 'yyyy-MM', got {bill_date!r}")
    return _Period(bill_date, date(int(match.group(1)), int(match.group(2)), 1), monthly=True)


class AlipayBillClient:
    """Fetches one Alipay bill (``trade`` or ``signcustomer``; daily or monthly) as the raw zip."""

    def __init__(
        self,
        http: httpx.Client,
        gateway_url: str,
        credentials: AlipayCredentials,
        retry: RetryPolicy,
        *,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], datetime] = _utcnow,
    ) -> None:
        self._http = http
        self._gateway_url = gateway_url
        self._credentials = credentials
        self._retry = retry
        self._sleep = sleep
        self._clock = clock
        self._private_key = load_private_key(credentials.app_private_key_pem)
        if credentials.cert_mode:
            self._alipay_key = load_public_key(credentials.alipay_cert_pem)
            self._app_cert_sn = cert_sn(credentials.app_cert_pem)
            self._alipay_cert_sn = cert_sn(credentials.alipay_cert_pem)
            self._root_cert_sn = root_cert_sn(credentials.alipay_root_cert_pem)
        else:
            self._alipay_key = load_public_key(credentials.alipay_public_key_pem)
            self._app_cert_sn = self._alipay_cert_sn = self._root_cert_sn = ""

    def fetch(self, bill_type: BillType, bill_date: date | str) -> FetchedBill:
        """The bill for a day (``date``) or a month (``"yyyy-MM"``).

        Raises ``BillNotReady`` (not generated yet, or a day/month that has not ended in China),
        ``ProviderRejected`` (credentials, permissions, parameters), ``ProviderUnavailable`` (after the
        retry policy; also when the download keeps answering a page instead of a zip) or
        ``VerificationError`` (signature, certificate, a corrupt zip).
        """
        if bill_type not in BILL_TYPES:
            raise ValueError(f"bill_type must be one of {BILL_TYPES}, got {bill_type!r}")
        period = _period(bill_date)
        self._check_due(period)
        what = f"alipay {bill_type} bill {period.api_value}"
        return retrying(
            lambda: self._attempt(bill_type, period),
            policy=self._retry,
            sleep=self._sleep,
            what=what,
        )

    def _check_due(self, period: _Period) -> None:
        today = self._clock().astimezone(CHINA).date()
        if period.monthly:
            due = (period.first_day.year, period.first_day.month) < (today.year, today.month)
        else:
            due = period.first_day < today
        if not due:
            raise BillNotReady(
                f"alipay bill {period.api_value} cannot exist yet: the period has not ended in China "
                f"(today there is {today.isoformat()})",
                code="PERIOD_NOT_ENDED",
            )

    # --- one attempt: query the URL, download at once -----------------------------------------------------

    def _attempt(self, bill_type: str, period: _Period) -> FetchedBill:
        node = self._query(bill_type, period)
        url = str(node.get("bill_download_url") or "")
        if not url.startswith(("http://", "https://")):
            raise VerificationError(f"Alipay success response without a usable bill_download_url: {url!r}")
        data, members = self._download(url)
        file_code = str(node.get("bill_file_code") or "")
        details = {
            "provider": "alipay",
            "bill_type": bill_type,
            "bill_date": period.api_value,
            "granularity": "monthly" if period.monthly else "daily",
            "zip_members": str(members),
        }
        if file_code:
            details["bill_file_code"] = file_code
        if file_code == EMPTY_BILL:
            details["empty"] = "true"
        return FetchedBill(
            filename=_filename(url, bill_type, period),
            data=data,
            bill_date=period.first_day,
            content_type="application/zip",
            details=details,
        )

    def _request_params(self, bill_type: str, period: _Period) -> tuple[dict[str, str], str]:
        biz_content = json.dumps(
            {"bill_type": bill_type, "bill_date": period.api_value}, separators=(",", ":")
        )
        params = {
            "app_id": self._credentials.app_id,
            "method": METHOD,
            "format": "JSON",
            "charset": CHARSET,
            "sign_type": "RSA2",
            "timestamp": self._clock().astimezone(CHINA).strftime("%Y-%m-%d %H:%M:%S"),
            "version": "1.0",
            "app_auth_token": self._credentials.app_auth_token,
            "app_cert_sn": self._app_cert_sn,
            "alipay_root_cert_sn": self._root_cert_sn,
        }
        params = {k: v for k, v in params.items() if v}
        params["sign"] = rsa2_sign(self._private_key, sign_content({**params, "biz_content": biz_content}))
        return params, biz_content

    def _query(self, bill_type: str, period: _Period) -> dict[str, Any]:
        params, biz_content = self._request_params(bill_type, period)
        response = send(
            self._http,
            "POST",
            f"{self._gateway_url}?{urlencode(params)}",
            policy=self._retry,
            headers={
                "Content-Type": f"application/x-www-form-urlencoded;charset={CHARSET}",
                "Accept": "application/json",
            },
            content=urlencode({"biz_content": biz_content}).encode("ascii"),
        )
        if response.status_code != 200:
            raise ProviderRejected(
                f"Alipay gateway answered HTTP {response.status_code}", code=f"HTTP_{response.status_code}"
            )
        try:
            body = response.content.decode(CHARSET)
        except UnicodeDecodeError:
            raise VerificationError(f"Alipay response is not {CHARSET} text") from None
        signed = split_signed_response(body)
        node = signed.value
        if not isinstance(node, dict):
            raise VerificationError(
                f"Alipay {signed.node} is not a JSON object (encrypted responses are not supported)"
            )
        code = str(node.get("code", ""))
        if signed.sign is not None or code == SUCCESS_CODE:
            self._verify(signed)
        if code == SUCCESS_CODE:
            return node
        raise _error(node)

    def _verify(self, signed: SignedResponse) -> None:
        if signed.sign is None:
            raise VerificationError("Alipay success response carries no sign: refusing an unsigned answer")
        if self._credentials.cert_mode and signed.alipay_cert_sn not in (None, self._alipay_cert_sn):
            raise VerificationError(
                f"Alipay signed with certificate SN {signed.alipay_cert_sn}, but the configured Alipay "
                f"certificate has SN {self._alipay_cert_sn}: Alipay rotated its certificate; download the "
                "new one (alipay.open.app.alipaycert.download) into the secret",
                code="ALIPAY_CERT_SN_MISMATCH",
            )
        if not verify_response(signed, self._alipay_key):
            raise VerificationError(
                f"Alipay response signature does not verify over {signed.node} with the configured "
                f"{'Alipay certificate' if self._credentials.cert_mode else 'Alipay public key'}",
                code="BAD_SIGNATURE",
            )

    def _download(self, url: str) -> tuple[bytes, int]:
        # The URL is short-lived and carries its own token: no credentials, no Authorization header.
        response = send(self._http, "GET", url, policy=self._retry, follow_redirects=True)
        if response.status_code != 200:
            raise ProviderRejected(
                f"Alipay bill download answered HTTP {response.status_code}",
                code=f"HTTP_{response.status_code}",
            )
        data = response.content
        if not data.startswith(b"PK"):
            # An HTML/text page instead of the file, e.g. "下载超时，请重新下载" once the URL has expired: a
            # fresh URL may work, so this is worth another attempt (and ProviderUnavailable if it persists).
            raise TransientError(
                f"Alipay bill download is not a zip ({len(data)} bytes, starts {data[:60]!r})",
                code="NOT_A_ZIP",
            )
        try:
            with zipfile.ZipFile(io.BytesIO(data)) as archive:
                broken = archive.testzip()
                members = len(archive.infolist())
        except (zipfile.BadZipFile, EOFError, ValueError, zlib.error) as exc:
            raise VerificationError(
                f"Alipay bill zip is corrupt ({len(data)} bytes): {exc}", code="BAD_ZIP"
            ) from None
        if broken is not None:
            raise VerificationError(f"Alipay bill zip member {broken!r} fails its CRC check", code="BAD_ZIP")
        return data, members


def _error(node: Mapping[str, Any]) -> Exception:
    code = str(node.get("code", ""))
    sub_code = str(node.get("sub_code", ""))
    # isv.invalid-signature echoes the string the gateway verified, which holds app_auth_token if any.
    sub_msg = _AUTH_TOKEN.sub(r"\1***", str(node.get("sub_msg", "")))
    text = f"Alipay {code} {node.get('msg', '')}: {sub_code} {sub_msg}".strip()
    if sub_code in NOT_READY_SUB_CODES:
        return BillNotReady(text, code=sub_code)
    if code in TRANSIENT_CODES:
        return TransientError(text, code=sub_code or code)
    return ProviderRejected(text, code=sub_code or code)


def _filename(url: str, bill_type: str, period: _Period) -> str:
    names = parse_qs(urlsplit(url).query).get("downloadFileName", [])
    if names and _SAFE_FILENAME.match(names[0]):
        return names[0]
    return f"alipay_{bill_type}_{period.compact}.csv.zip"
