"""WeChat Pay APIv3: ``/v3/bill/tradebill`` and ``/v3/bill/fundflowbill``, then the bill file.

Protocol (``shared/notes/formats.md`` §2, the official SDKs):

* Every request carries ``Authorization: WECHATPAY2-SHA256-RSA2048 mchid=…,nonce_str=…,signature=…,
  timestamp=…,serial_no=…``: SHA256withRSA with the merchant API key over
  ``METHOD\\nPATH?QUERY\\nTIMESTAMP\\nNONCE\\nBODY\\n``.
* Every JSON answer is verified over ``TIMESTAMP\\nNONCE\\nRAW_BODY\\n`` (the ``Wechatpay-*`` headers)
  with the key ``Wechatpay-Serial`` names: a platform certificate (downloaded from ``/v3/certificates``,
  AES-256-GCM-encrypted with the APIv3 key) or the WeChat Pay public key (``PUB_KEY_ID_…``). A timestamp
  more than five minutes off is refused.
* The bill download answer is not signed (documented); its SHA1, given in the signed apply answer, is
  checked over the decompressed bytes instead.
"""

from __future__ import annotations

import base64
import binascii
import gzip
import hashlib
import json
import secrets
import time
import zlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta, timezone
from typing import Any, Literal
from urllib.parse import urlencode

import httpx
from cryptography import x509
from cryptography.exceptions import InvalidSignature, InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from ._crypto import load_private_key, load_public_key
from ._transport import TransientError, retrying, send
from .base import BillNotReady, FetchedBill, ProviderRejected, RetryPolicy, VerificationError

__all__ = [
    "API_BASE_URL",
    "MAX_CLOCK_SKEW",
    "AccountType",
    "NoBillForDate",
    "PlatformCertificate",
    "PlatformCertificateStore",
    "SignedHeaders",
    "TradeBillType",
    "WechatPayBillClient",
    "WechatPayCredentials",
    "authorization_header",
    "decrypt_resource",
    "open_notification",
    "signing_message",
    "verification_message",
    "verify_signed_message",
]

API_BASE_URL = "https://api.mch.weixin.qq.com"
SCHEME = "WECHATPAY2-SHA256-RSA2048"
PUBLIC_KEY_ID_PREFIX = "PUB_KEY_ID_"
SIGNATURE_PROBE_PREFIX = "WECHATPAY/SIGNTEST/"
AEAD_ALGORITHM = "AEAD_AES_256_GCM"
MAX_CLOCK_SKEW = timedelta(minutes=5)
USER_AGENT = "recon-fetcher/1.0 (+python-httpx)"

TradeBillType = Literal["ALL", "SUCCESS", "REFUND"]
AccountType = Literal["BASIC", "OPERATION", "FEES"]
TarType = Literal["GZIP"] | None
TRADE_BILL_TYPES: tuple[str, ...] = ("ALL", "SUCCESS", "REFUND")
ACCOUNT_TYPES: tuple[str, ...] = ("BASIC", "OPERATION", "FEES")

CHINA = timezone(timedelta(hours=8), "Asia/Shanghai")


def _utcnow() -> datetime:
    return datetime.now(UTC)


class NoBillForDate(BillNotReady):
    """``NO_STATEMENT_EXIST``: WeChat Pay says no bill exists for the date.

    WeChat documents this as final ("stop retrying") for a day without trades or refunds (or, for a
    fund-flow bill, without movements on that account), while ``STATEMENT_CREATING`` is the "try later"
    answer. It stays a ``BillNotReady`` so the fetch stage keeps retrying and then alerts rather than
    assuming an empty day; ``code`` (and this type) let it treat the day as empty if it chooses to.
    """


@dataclass(frozen=True)
class WechatPayCredentials:
    """What Secrets Manager holds for one WeChat Pay merchant.

    ``merchant_serial_no`` is the serial of the merchant API certificate (``apiclient_cert.pem``) whose
    private key is ``merchant_private_key_pem``. ``apiv3_key`` is the 32-character APIv3 key. Merchants
    on WeChat Pay public-key mode also hold the public key and its id ``PUB_KEY_ID_…``.
    """

    mchid: str
    merchant_serial_no: str
    merchant_private_key_pem: str = field(repr=False)
    apiv3_key: str = field(repr=False)
    wechatpay_public_key_pem: str = field(default="", repr=False)
    wechatpay_public_key_id: str = ""

    def __post_init__(self) -> None:
        if not self.mchid.strip() or not self.merchant_serial_no.strip():
            raise ValueError("mchid and merchant_serial_no are required")
        if len(self.apiv3_key.encode("utf-8")) != 32:
            raise ValueError("apiv3_key must be the 32-byte APIv3 key")
        if bool(self.wechatpay_public_key_pem) != bool(self.wechatpay_public_key_id):
            raise ValueError("wechatpay_public_key_pem and wechatpay_public_key_id go together")
        if self.wechatpay_public_key_id and not self.wechatpay_public_key_id.startswith(PUBLIC_KEY_ID_PREFIX):
            raise ValueError(f"wechatpay_public_key_id must start with {PUBLIC_KEY_ID_PREFIX}")


# ------------------------------------------------------------------------ signing and verifying (pure)


def signing_message(method: str, canonical_url: str, timestamp: int, nonce: str, body: str = "") -> str:
    """What the merchant signs: five lines, each ending in ``\\n`` (``body`` is ``""`` for a GET)."""
    return f"{method}\n{canonical_url}\n{timestamp}\n{nonce}\n{body}\n"


def authorization_header(
    *,
    mchid: str,
    serial_no: str,
    private_key: rsa.RSAPrivateKey,
    method: str,
    canonical_url: str,
    timestamp: int,
    nonce: str,
    body: str = "",
) -> str:
    message = signing_message(method, canonical_url, timestamp, nonce, body)
    signature = private_key.sign(message.encode("utf-8"), padding.PKCS1v15(), hashes.SHA256())
    return (
        f'{SCHEME} mchid="{mchid}",nonce_str="{nonce}",timestamp="{timestamp}",'
        f'serial_no="{serial_no}",signature="{base64.b64encode(signature).decode("ascii")}"'
    )


def verification_message(timestamp: str, nonce: str, body: bytes) -> bytes:
    """What WeChat Pay signs in an answer or notification: ``TIMESTAMP\\nNONCE\\nRAW_BODY\\n``."""
    return f"{timestamp}\n{nonce}\n".encode() + body + b"\n"


@dataclass(frozen=True)
class SignedHeaders:
    timestamp: str
    nonce: str
    signature: str
    serial: str
    request_id: str = ""

    @classmethod
    def from_headers(cls, headers: Mapping[str, str]) -> SignedHeaders:
        lowered = {k.lower(): v.strip() for k, v in headers.items()}
        values = {}
        for name in ("timestamp", "nonce", "signature", "serial"):
            value = lowered.get(f"wechatpay-{name}", "")
            if not value:
                raise VerificationError(f"WeChat Pay answer lacks the Wechatpay-{name.title()} header")
            values[name] = value
        return cls(**values, request_id=lowered.get("request-id", ""))


def check_timestamp(signed: SignedHeaders, now: datetime, max_skew: timedelta = MAX_CLOCK_SKEW) -> None:
    try:
        stamp = int(signed.timestamp)
    except ValueError:
        raise VerificationError(f"Wechatpay-Timestamp is not a number: {signed.timestamp!r}") from None
    skew = abs(now.timestamp() - stamp)
    if skew >= max_skew.total_seconds():
        raise VerificationError(
            f"Wechatpay-Timestamp {stamp} is {skew:.0f}s away from our clock (limit "
            f"{max_skew.total_seconds():.0f}s): stale or replayed answer (request-id {signed.request_id or '-'})",
            code="STALE_TIMESTAMP",
        )


def verify_signature(signed: SignedHeaders, body: bytes, public_key: rsa.RSAPublicKey) -> None:
    if signed.signature.startswith(SIGNATURE_PROBE_PREFIX):
        raise VerificationError("WeChat Pay signature probe (WECHATPAY/SIGNTEST/): must not verify")
    try:
        signature = base64.b64decode(signed.signature, validate=True)
        public_key.verify(
            signature,
            verification_message(signed.timestamp, signed.nonce, body),
            padding.PKCS1v15(),
            hashes.SHA256(),
        )
    except (InvalidSignature, binascii.Error, ValueError):
        raise VerificationError(
            f"WeChat Pay signature does not verify with key {signed.serial} "
            f"(request-id {signed.request_id or '-'})",
            code="BAD_SIGNATURE",
        ) from None


def verify_signed_message(
    headers: Mapping[str, str],
    body: bytes,
    public_key: rsa.RSAPublicKey,
    *,
    now: datetime,
    max_skew: timedelta = MAX_CLOCK_SKEW,
) -> SignedHeaders:
    """Verify an answer or notification: timestamp within ``max_skew`` of ``now``, then the signature."""
    signed = SignedHeaders.from_headers(headers)
    check_timestamp(signed, now, max_skew)
    verify_signature(signed, body, public_key)
    return signed


def decrypt_resource(apiv3_key: str | bytes, *, nonce: str, associated_data: str, ciphertext: str) -> bytes:
    """AEAD_AES_256_GCM as WeChat Pay uses it: key = APIv3 key, IV = nonce, AAD = associated_data,
    ciphertext = base64(encrypted data ‖ 16-byte tag). A failed tag is a ``VerificationError``."""
    key = apiv3_key.encode("utf-8") if isinstance(apiv3_key, str) else apiv3_key
    try:
        data = base64.b64decode(ciphertext, validate=True)
        return AESGCM(key).decrypt(nonce.encode("utf-8"), data, associated_data.encode("utf-8"))
    except (InvalidTag, binascii.Error, ValueError) as exc:
        raise VerificationError(
            f"AES-GCM resource does not decrypt with the APIv3 key ({type(exc).__name__})", code="BAD_AEAD"
        ) from None


def open_notification(
    headers: Mapping[str, str],
    body: bytes,
    public_keys: Mapping[str, rsa.RSAPublicKey],
    apiv3_key: str | bytes,
    *,
    now: datetime,
) -> bytes:
    """Verify a notification (key chosen by ``Wechatpay-Serial``) and return its decrypted resource."""
    signed = SignedHeaders.from_headers(headers)
    key = public_keys.get(signed.serial)
    if key is None:
        raise VerificationError(
            f"notification signed with unknown key {signed.serial}", code="UNKNOWN_SERIAL"
        )
    verify_signed_message(headers, body, key, now=now)
    try:
        resource = json.loads(body)["resource"]
        if resource.get("algorithm") != AEAD_ALGORITHM:
            raise VerificationError(f"unsupported resource algorithm {resource.get('algorithm')!r}")
        return decrypt_resource(
            apiv3_key,
            nonce=str(resource["nonce"]),
            associated_data=str(resource.get("associated_data") or ""),
            ciphertext=str(resource["ciphertext"]),
        )
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise VerificationError(f"notification body has no usable resource: {exc!r}") from None


# ----------------------------------------------------------------------------------- the signed transport


class _Api:
    """Signs requests as the merchant and classifies error answers; one attempt per call."""

    def __init__(
        self,
        http: httpx.Client,
        base_url: str,
        credentials: WechatPayCredentials,
        retry: RetryPolicy,
        clock: Callable[[], datetime],
    ) -> None:
        self.http = http
        self.base_url = base_url.rstrip("/")
        self.credentials = credentials
        self.retry = retry
        self.clock = clock
        self._private_key = load_private_key(credentials.merchant_private_key_pem)

    def get(self, url: str | httpx.URL, *, accept: str = "application/json") -> httpx.Response:
        target = httpx.URL(url)
        # Sign exactly what goes on the wire: the raw path with its query.
        canonical = target.raw_path.decode("ascii")
        header = authorization_header(
            mchid=self.credentials.mchid,
            serial_no=self.credentials.merchant_serial_no,
            private_key=self._private_key,
            method="GET",
            canonical_url=canonical,
            timestamp=int(self.clock().timestamp()),
            nonce=secrets.token_hex(16).upper(),
        )
        headers = {"Authorization": header, "Accept": accept, "User-Agent": USER_AGENT}
        return send(self.http, "GET", target, policy=self.retry, headers=headers)

    @staticmethod
    def raise_error(response: httpx.Response, what: str) -> None:
        """Turn a non-2xx answer into the contract's exception (5xx/429 never get here: ``send``)."""
        try:
            payload = json.loads(response.content)
        except ValueError:
            payload = {}
        code = str(payload.get("code", "")) if isinstance(payload, dict) else ""
        message = str(payload.get("message", "")) if isinstance(payload, dict) else ""
        request_id = response.headers.get("Request-ID", "-")
        text = f"{what}: HTTP {response.status_code} {code} {message} (request-id {request_id})"
        if code == "STATEMENT_CREATING":
            raise BillNotReady(text, code=code)
        if code == "NO_STATEMENT_EXIST":
            raise NoBillForDate(text, code=code)
        if code in ("FREQUENCY_LIMITED", "SYSTEM_ERROR"):
            raise TransientError(text, code=code)
        raise ProviderRejected(text, code=code or f"HTTP_{response.status_code}")


# ----------------------------------------------------------------------------- platform certificates


@dataclass(frozen=True)
class PlatformCertificate:
    serial_no: str
    certificate: x509.Certificate = field(repr=False)
    effective_at: datetime
    expires_at: datetime

    @property
    def public_key(self) -> rsa.RSAPublicKey:
        key = self.certificate.public_key()
        if not isinstance(key, rsa.RSAPublicKey):
            raise VerificationError(f"platform certificate {self.serial_no} is not RSA")
        return key

    def valid_at(self, moment: datetime) -> bool:
        return self.effective_at <= moment < self.expires_at


class PlatformCertificateStore:
    """The WeChat Pay platform certificates, by serial, kept fresh.

    Refreshes (``GET /v3/certificates``) when empty, when older than ``max_age``, when the newest
    certificate expires within ``renew_before`` (WeChat issues the successor ahead of time: rotation), and
    once when an answer names a serial it does not know. The download is trusted because each certificate
    decrypts under our APIv3 key (AES-GCM authenticates it); the answer must then also verify with one of
    the certificates it delivered.
    """

    def __init__(
        self,
        http: httpx.Client,
        base_url: str,
        credentials: WechatPayCredentials,
        *,
        retry: RetryPolicy | None = None,
        clock: Callable[[], datetime] = _utcnow,
        sleep: Callable[[float], None] = time.sleep,
        max_age: timedelta = timedelta(hours=12),
        renew_before: timedelta = timedelta(days=1),
        min_refresh_interval: timedelta = timedelta(minutes=5),
    ) -> None:
        self._api = _Api(http, base_url, credentials, retry or RetryPolicy(), clock)
        self._credentials = credentials
        self._sleep = sleep
        self._max_age = max_age
        self._renew_before = renew_before
        self._min_interval = min_refresh_interval
        self._certificates: dict[str, PlatformCertificate] = {}
        self._fetched_at: datetime | None = None
        self.refreshes = 0

    @property
    def certificates(self) -> list[PlatformCertificate]:
        return sorted(self._certificates.values(), key=lambda c: c.expires_at)

    def public_key(self, serial: str) -> rsa.RSAPublicKey | None:
        """The key of a currently valid certificate ``serial``, refreshing at most once; None if unknown."""
        now = self._api.clock()
        refreshed = False
        if self._due(now):
            self.refresh()
            refreshed = True
        certificate = self._valid(serial, now)
        if certificate is None and not refreshed:
            self.refresh()
            certificate = self._valid(serial, now)
        return certificate.public_key if certificate else None

    def _valid(self, serial: str, now: datetime) -> PlatformCertificate | None:
        certificate = self._certificates.get(serial.upper())
        return certificate if certificate is not None and certificate.valid_at(now) else None

    def _due(self, now: datetime) -> bool:
        if self._fetched_at is None or not self._certificates:
            return True
        age = now - self._fetched_at
        if age >= self._max_age:
            return True
        newest_expiry = max(c.expires_at for c in self._certificates.values())
        return newest_expiry - now <= self._renew_before and age >= self._min_interval

    def refresh(self) -> None:
        """Download, decrypt and check the current platform certificates (replacing the cached set)."""
        url = f"{self._api.base_url}/v3/certificates"
        retrying(
            lambda: self._refresh_once(url),
            policy=self._api.retry,
            sleep=self._sleep,
            what="wechatpay certificates",
        )

    def _refresh_once(self, url: str) -> None:
        response = self._api.get(url)
        if response.status_code != 200:
            _Api.raise_error(response, "wechatpay /v3/certificates")
        now = self._api.clock()
        signed = SignedHeaders.from_headers(response.headers)
        check_timestamp(signed, now)
        try:
            items = json.loads(response.content)["data"]
            downloaded = [self._decrypt(item) for item in items]
        except (ValueError, KeyError, TypeError) as exc:
            raise VerificationError(f"/v3/certificates answer is malformed: {exc!r}") from None
        fresh = {c.serial_no: c for c in downloaded}
        signer = fresh.get(signed.serial.upper()) or self._certificates.get(signed.serial.upper())
        if signer is None:
            raise VerificationError(
                f"/v3/certificates is signed by {signed.serial}, which it does not deliver",
                code="UNKNOWN_SERIAL",
            )
        verify_signature(signed, response.content, signer.public_key)
        self._certificates = fresh
        self._fetched_at = now
        self.refreshes += 1

    def _decrypt(self, item: Mapping[str, Any]) -> PlatformCertificate:
        sealed = item["encrypt_certificate"]
        if sealed.get("algorithm") != AEAD_ALGORITHM:
            raise VerificationError(f"unsupported certificate encryption {sealed.get('algorithm')!r}")
        pem = decrypt_resource(
            self._credentials.apiv3_key,
            nonce=str(sealed["nonce"]),
            associated_data=str(sealed.get("associated_data") or ""),
            ciphertext=str(sealed["ciphertext"]),
        )
        certificate = x509.load_pem_x509_certificate(pem)
        serial_no = str(item["serial_no"]).upper()
        if int(serial_no, 16) != certificate.serial_number:
            raise VerificationError(
                f"platform certificate listed as {serial_no} has serial {certificate.serial_number:X}"
            )
        return PlatformCertificate(
            serial_no=serial_no,
            certificate=certificate,
            effective_at=certificate.not_valid_before_utc,
            expires_at=certificate.not_valid_after_utc,
        )


# ---------------------------------------------------------------------------------------------- client


@dataclass(frozen=True)
class _BillRequest:
    endpoint: str  # tradebill | fundflowbill
    kind_param: str  # bill_type | account_type
    kind: str
    bill_date: date
    tar_type: TarType

    @property
    def query(self) -> dict[str, str]:
        query = {"bill_date": self.bill_date.isoformat(), self.kind_param: self.kind}
        if self.tar_type:
            query["tar_type"] = self.tar_type
        return query

    @property
    def what(self) -> str:
        return f"wechatpay {self.endpoint} {self.kind} {self.bill_date.isoformat()}"


class WechatPayBillClient:
    """Fetches one WeChat Pay trade or fund-flow bill as delivered (gzip when ``tar_type="GZIP"``)."""

    def __init__(
        self,
        http: httpx.Client,
        base_url: str,
        credentials: WechatPayCredentials,
        cert_store: PlatformCertificateStore | None,
        retry: RetryPolicy,
        *,
        clock: Callable[[], datetime] = _utcnow,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if cert_store is None and not credentials.wechatpay_public_key_id:
            raise ValueError("without a platform certificate store the WeChat Pay public key is required")
        self._api = _Api(http, base_url, credentials, retry, clock)
        self._credentials = credentials
        self._store = cert_store
        self._sleep = sleep
        self._public_key = (
            load_public_key(credentials.wechatpay_public_key_pem)
            if credentials.wechatpay_public_key_pem
            else None
        )

    def fetch_trade_bill(
        self, bill_date: date, bill_type: TradeBillType = "ALL", tar_type: TarType = "GZIP"
    ) -> FetchedBill:
        if bill_type not in TRADE_BILL_TYPES:
            raise ValueError(f"bill_type must be one of {TRADE_BILL_TYPES}, got {bill_type!r}")
        return self._fetch(_BillRequest("tradebill", "bill_type", bill_type, bill_date, tar_type))

    def fetch_fundflow_bill(
        self, bill_date: date, account_type: AccountType = "BASIC", tar_type: TarType = "GZIP"
    ) -> FetchedBill:
        if account_type not in ACCOUNT_TYPES:
            raise ValueError(f"account_type must be one of {ACCOUNT_TYPES}, got {account_type!r}")
        return self._fetch(_BillRequest("fundflowbill", "account_type", account_type, bill_date, tar_type))

    def _fetch(self, bill: _BillRequest) -> FetchedBill:
        if bill.tar_type not in ("GZIP", None):
            raise ValueError(f"tar_type must be 'GZIP' or None, got {bill.tar_type!r}")
        today = self._api.clock().astimezone(CHINA).date()
        if bill.bill_date >= today:
            raise BillNotReady(
                f"{bill.what}: the day has not ended in China (today there is {today.isoformat()})",
                code="PERIOD_NOT_ENDED",
            )
        url = f"{self._api.base_url}/v3/bill/{bill.endpoint}?{urlencode(bill.query)}"
        return retrying(
            lambda: self._attempt(url, bill), policy=self._api.retry, sleep=self._sleep, what=bill.what
        )

    def _attempt(self, url: str, bill: _BillRequest) -> FetchedBill:
        what = bill.what
        response = self._api.get(url)
        if response.status_code != 200:
            _Api.raise_error(response, what)
        self._verify(response)
        try:
            answer = json.loads(response.content)
            hash_type = str(answer["hash_type"])
            hash_value = str(answer["hash_value"]).lower()
            download_url = str(answer["download_url"])
        except (ValueError, KeyError, TypeError) as exc:
            raise VerificationError(f"{what}: apply answer lacks {exc!r}") from None
        if hash_type.upper() != "SHA1":
            raise VerificationError(f"{what}: unsupported hash_type {hash_type!r}")
        data = self._download(download_url, what)
        gzipped = bill.tar_type == "GZIP"
        plain = _gunzip(data, what) if gzipped else data
        actual = hashlib.sha1(plain, usedforsecurity=False).hexdigest()
        if actual != hash_value:
            raise VerificationError(
                f"{what}: downloaded bill has SHA1 {actual}, the signed apply answer says {hash_value}",
                code="HASH_MISMATCH",
            )
        return FetchedBill(
            filename=(
                f"wechatpay_{bill.endpoint}_{bill.kind}_{bill.bill_date.strftime('%Y%m%d')}"
                + (".csv.gz" if gzipped else ".csv")
            ),
            data=data,
            bill_date=bill.bill_date,
            content_type="application/gzip" if gzipped else "text/csv",
            details={
                "provider": "wechatpay",
                "bill": bill.endpoint,
                "kind": bill.kind,
                "tar_type": bill.tar_type or "none",
                "sha1": hash_value,
            },
        )

    def _download(self, download_url: str, what: str) -> bytes:
        response = self._api.get(download_url, accept="*/*")
        if response.status_code != 200:
            _Api.raise_error(response, f"{what} download")
        return response.content

    def _verify(self, response: httpx.Response) -> None:
        signed = SignedHeaders.from_headers(response.headers)
        check_timestamp(signed, self._api.clock())
        verify_signature(signed, response.content, self._key_for(signed.serial))

    def _key_for(self, serial: str) -> rsa.RSAPublicKey:
        if serial.startswith(PUBLIC_KEY_ID_PREFIX):
            if self._public_key is None or serial != self._credentials.wechatpay_public_key_id:
                configured = self._credentials.wechatpay_public_key_id or "none"
                raise VerificationError(
                    f"answer signed with WeChat Pay public key {serial}; configured: {configured}",
                    code="UNKNOWN_SERIAL",
                )
            return self._public_key
        if self._store is None:
            raise VerificationError(
                f"answer signed with platform certificate {serial}, but no certificate store is configured",
                code="UNKNOWN_SERIAL",
            )
        key = self._store.public_key(serial)
        if key is None:
            known = ", ".join(c.serial_no for c in self._store.certificates) or "none"
            raise VerificationError(
                f"answer signed with platform certificate {serial}, unknown even after refreshing "
                f"/v3/certificates (valid: {known})",
                code="UNKNOWN_SERIAL",
            )
        return key


def _gunzip(data: bytes, what: str) -> bytes:
    try:
        return gzip.decompress(data)
    except (OSError, EOFError, zlib.error) as exc:
        raise VerificationError(
            f"{what}: GZIP download does not decompress: {exc}", code="BAD_GZIP"
        ) from None
