"""A fake WeChat Pay APIv3: ``/v3/certificates``, ``/v3/bill/tradebill``, ``/v3/bill/fundflowbill`` and
the bill download.

Like the real one where our client can tell: it checks our ``WECHATPAY2-SHA256-RSA2048`` Authorization
(merchant id, certificate serial, timestamp within 5 minutes, an unused nonce, the signature over
``METHOD\\nPATH?QUERY\\nTIMESTAMP\\nNONCE\\nBODY\\n`` with the merchant's public key) and rejects a bad one
with ``401 SIGN_ERROR``. It signs every JSON answer with the current platform certificate (or the WeChat
Pay public key, ``sign_with="public_key"``), serves the platform certificates AES-256-GCM-encrypted with
the APIv3 key, answers the bill endpoints with ``hash_type/hash_value/download_url`` and serves the file
(gzip on request) unsigned, as documented.

Knobs (plain attributes):

* ``not_ready``: {(kind, "yyyy-MM-dd")} answered ``400 STATEMENT_CREATING``; a bill the ``BillBook``
  does not have is ``400 NO_STATEMENT_EXIST``. ``kind`` is ``tradebill.ALL``, ``fundflowbill.BASIC``, …
* ``faults``: consumed one per API call: ``"slow"``, ``"rate_limited"`` (429 FREQUENCY_LIMITED),
  ``"system_error"`` (500 SYSTEM_ERROR), ``"http_502"``.
* ``download_faults``: consumed one per download: ``"slow"``, ``"http_502"``.
* ``tamper``: ``"signature"``, ``"body"`` (altered after signing), ``"stale_timestamp"`` (10 minutes
  old), ``"unknown_serial"`` (signed by a certificate ``/v3/certificates`` does not list), ``"hash"``
  (a wrong ``hash_value``, correctly signed), ``"file"`` (the served file differs from the hashed one).
* ``rotate_platform_certificate()``: a new platform certificate signs from now on (the old one stays
  listed until ``retire=True``), as WeChat Pay rotates them.
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import json
import re
import secrets
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from urllib.parse import urlencode

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from recon.fetching.wechatpay import WechatPayCredentials, signing_message, verification_message

from ._server import FakeServer, Request, Response
from .bills import BillBook
from .keys import PlatformKey, WechatPayKeyMaterial, certificate_pem

__all__ = ["WechatPayApi"]

CERTIFICATES_PATH = "/v3/certificates"
DOWNLOAD_PATH = "/v3/billdownload/file"
BILL_PATHS = {"/v3/bill/tradebill": "tradebill", "/v3/bill/fundflowbill": "fundflowbill"}
TRADE_BILL_TYPES = ("ALL", "SUCCESS", "REFUND")
ACCOUNT_TYPES = ("BASIC", "OPERATION", "FEES")
_AUTH = re.compile(r'(\w+)="([^"]*)"')
_SKEW = timedelta(minutes=5)
_HISTORY = timedelta(days=92)  # bills "only within the last 3 months"


def _utcnow() -> datetime:
    return datetime.now(UTC)


def _json(payload: object) -> bytes:
    return json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


class WechatPayApi(FakeServer):
    def __init__(
        self,
        keys: WechatPayKeyMaterial,
        bills: BillBook | None = None,
        *,
        clock: Callable[[], datetime] = _utcnow,
        sign_with: str = "platform",
        url_ttl: timedelta = timedelta(minutes=5),
    ) -> None:
        super().__init__()
        if sign_with not in ("platform", "public_key"):
            raise ValueError("sign_with is 'platform' or 'public_key'")
        self.keys = keys
        self.bills = bills or BillBook()
        self.clock = clock
        self.sign_with = sign_with
        self.url_ttl = url_ttl
        self.listed: list[PlatformKey] = [keys.platform]
        self.signing: PlatformKey = keys.platform
        self.not_ready: set[tuple[str, str]] = set()
        self.faults: list[str] = []
        self.download_faults: list[str] = []
        self.tamper: str | None = None
        self.slow_seconds = 2.0
        self._stray: PlatformKey | None = None  # a certificate nobody lists: "unknown serial"
        self._nonces: set[str] = set()
        self._downloads: dict[str, tuple[bytes, datetime]] = {}

    def client_credentials(self, *, public_key_mode: bool = False) -> WechatPayCredentials:
        return self.keys.client_credentials(public_key_mode=public_key_mode)

    def rotate_platform_certificate(self, *, retire: bool = False) -> PlatformKey:
        new = PlatformKey.generate()
        self.listed = [new] if retire else [*self.listed, new]
        self.signing = new
        return new

    def handle(self, request: Request) -> Response:
        if request.method != "GET":
            return self._error(405, "INVALID_REQUEST", "只支持 GET")
        if request.path == DOWNLOAD_PATH:
            return self._download(request)
        fault = self.faults.pop(0) if self.faults else None
        if fault == "rate_limited":
            return self._error(429, "FREQUENCY_LIMITED", "请求频率超限", {"Retry-After": "1"})
        if fault == "system_error":
            return self._error(500, "SYSTEM_ERROR", "系统异常，请稍后重试")
        if fault == "http_502":
            return Response(502, b"<html>502 Bad Gateway</html>", {"Content-Type": "text/html"})
        problem = self._check_authorization(request)
        if problem is not None:
            response = problem
        elif request.path == CERTIFICATES_PATH:
            response = self._certificates()
        elif request.path in BILL_PATHS:
            response = self._apply(request, BILL_PATHS[request.path])
        else:
            response = self._error(404, "NOT_FOUND", "接口不存在")
        if fault == "slow":
            response.delay = self.slow_seconds
        return response

    # --- checking our request ---------------------------------------------------------------------------

    def _check_authorization(self, request: Request) -> Response | None:
        if not request.header("User-Agent"):
            return self._error(400, "INVALID_REQUEST", "HTTP 头缺少 User-Agent")
        header = request.header("Authorization")
        scheme, _, rest = header.partition(" ")
        fields = dict(_AUTH.findall(rest))
        if (
            scheme != "WECHATPAY2-SHA256-RSA2048"
            or not {
                "mchid",
                "nonce_str",
                "timestamp",
                "serial_no",
                "signature",
            }
            <= fields.keys()
        ):
            return self._error(401, "SIGN_ERROR", "Authorization 格式错误")
        if fields["mchid"] != self.keys.mchid:
            return self._error(401, "SIGN_ERROR", "商户号与 Authorization 不匹配")
        if fields["serial_no"].upper() != self.keys.merchant_serial_no.upper():
            return self._error(401, "SIGN_ERROR", "商户证书序列号有误")
        try:
            stamp = int(fields["timestamp"])
        except ValueError:
            return self._error(401, "SIGN_ERROR", "时间戳格式错误")
        if abs(self.clock().timestamp() - stamp) > _SKEW.total_seconds():
            return self._error(401, "SIGN_ERROR", "请求时间戳已过期")
        if fields["nonce_str"] in self._nonces:
            return self._error(401, "SIGN_ERROR", "重复的请求随机串")
        message = signing_message(request.method, request.target, stamp, fields["nonce_str"], "")
        try:
            self.keys.merchant_key.public_key().verify(
                base64.b64decode(fields["signature"], validate=True),
                message.encode("utf-8"),
                padding.PKCS1v15(),
                hashes.SHA256(),
            )
        except (InvalidSignature, ValueError):
            return self._error(401, "SIGN_ERROR", "签名错误，请检查后再试")
        self._nonces.add(fields["nonce_str"])
        return None

    # --- the endpoints ------------------------------------------------------------------------------------

    def _certificates(self) -> Response:
        data = []
        for platform in self.listed:
            nonce = secrets.token_hex(6)
            sealed = AESGCM(self.keys.apiv3_key.encode("utf-8")).encrypt(
                nonce.encode("ascii"), certificate_pem(platform.certificate).encode("ascii"), b"certificate"
            )
            data.append(
                {
                    "serial_no": platform.serial_no,
                    "effective_time": platform.certificate.not_valid_before_utc.isoformat(),
                    "expire_time": platform.certificate.not_valid_after_utc.isoformat(),
                    "encrypt_certificate": {
                        "algorithm": "AEAD_AES_256_GCM",
                        "nonce": nonce,
                        "associated_data": "certificate",
                        "ciphertext": base64.b64encode(sealed).decode("ascii"),
                    },
                }
            )
        # /v3/certificates is always signed with a platform certificate.
        return self._signed(200, _json({"data": data}), key=self.signing.key, serial=self.signing.serial_no)

    def _apply(self, request: Request, endpoint: str) -> Response:
        query = request.query
        kind_param = "bill_type" if endpoint == "tradebill" else "account_type"
        kind = query.get(kind_param, "ALL" if endpoint == "tradebill" else "BASIC")
        tar_type = query.get("tar_type", "")
        try:
            bill_date = date.fromisoformat(query.get("bill_date", ""))
        except ValueError:
            return self._error(400, "PARAM_ERROR", "bill_date 格式错误，应为 yyyy-MM-dd")
        allowed = TRADE_BILL_TYPES if endpoint == "tradebill" else ACCOUNT_TYPES
        if kind not in allowed or tar_type not in ("", "GZIP"):
            return self._error(400, "PARAM_ERROR", f"{kind_param} 或 tar_type 参数错误")
        today = (self.clock() + timedelta(hours=8)).date()
        if bill_date >= today or bill_date < today - _HISTORY:
            return self._error(400, "INVALID_REQUEST", "参数错误，请检查bill_date，并重新调用")
        key = (f"{endpoint}.{kind}", bill_date.isoformat())
        if key in self.not_ready:
            return self._error(400, "STATEMENT_CREATING", "账单生成中")
        plain = self.bills.get(f"wechat.{endpoint}.{kind}", bill_date.isoformat())
        if plain is None:
            return self._error(400, "NO_STATEMENT_EXIST", "账单文件不存在")
        served = plain + b"tampered\r\n" if self.tamper == "file" else plain
        token = secrets.token_urlsafe(24)
        self._downloads[token] = (
            gzip.compress(served, mtime=0) if tar_type else served,
            self.clock() + self.url_ttl,
        )
        digest = hashlib.sha1(plain, usedforsecurity=False).hexdigest()
        if self.tamper == "hash":
            digest = hashlib.sha1(b"another bill", usedforsecurity=False).hexdigest()
        answer = {
            "hash_type": "SHA1",
            "hash_value": digest,
            "download_url": f"{self.base_url}{DOWNLOAD_PATH}?{urlencode({'token': token})}",
        }
        return self._signed(200, _json(answer))

    def _download(self, request: Request) -> Response:
        fault = self.download_faults.pop(0) if self.download_faults else None
        if fault == "http_502":
            return Response(502, b"<html>502 Bad Gateway</html>", {"Content-Type": "text/html"})
        problem = self._check_authorization(request)
        if problem is not None:
            return problem
        entry = self._downloads.get(request.query.get("token", ""))
        if entry is None or entry[1] < self.clock():
            return self._error(400, "INVALID_REQUEST", "下载链接已失效，请重新申请账单")
        # Documented: the download answer carries no Wechatpay signature headers.
        return Response(
            200,
            entry[0],
            {"Content-Type": "application/octet-stream", "Request-ID": secrets.token_hex(16)},
            delay=self.slow_seconds if fault == "slow" else 0.0,
        )

    # --- signing our answers ----------------------------------------------------------------------------

    def _error(self, status: int, code: str, message: str, extra: dict[str, str] | None = None) -> Response:
        response = self._signed(status, _json({"code": code, "message": message}))
        response.headers.update(extra or {})
        return response

    def _signed(
        self, status: int, body: bytes, *, key: rsa.RSAPrivateKey | None = None, serial: str = ""
    ) -> Response:
        if key is None:
            if self.tamper == "unknown_serial":
                self._stray = self._stray or PlatformKey.generate()
                key, serial = self._stray.key, self._stray.serial_no
            elif self.sign_with == "public_key":
                key, serial = self.keys.public_key, self.keys.public_key_id
            else:
                key, serial = self.signing.key, self.signing.serial_no
        now = self.clock()
        stamp = int(
            (now - timedelta(minutes=10)).timestamp() if self.tamper == "stale_timestamp" else now.timestamp()
        )
        nonce = secrets.token_hex(16)
        signature = key.sign(
            verification_message(str(stamp), nonce, body), padding.PKCS1v15(), hashes.SHA256()
        )
        encoded = base64.b64encode(signature).decode("ascii")
        if self.tamper == "signature":
            encoded = ("A" if encoded[0] != "A" else "B") + encoded[1:]
        if self.tamper == "body" and status == 200:
            body = body.replace(b'"hash_type"', b'"hash_type" ')
        headers = {
            "Content-Type": "application/json; charset=utf-8",
            "Wechatpay-Timestamp": str(stamp),
            "Wechatpay-Nonce": nonce,
            "Wechatpay-Serial": serial,
            "Wechatpay-Signature": encoded,
            "Request-ID": secrets.token_hex(16),
        }
        return Response(status, body, headers)
