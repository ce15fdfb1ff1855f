"""A fake Alipay open-platform gateway: ``alipay.data.dataservice.bill.downloadurl.query`` plus downloads.

It behaves like the real one where our client can tell: it verifies our RSA2 request signature with the
app's public key (and, in certificate mode, ``app_cert_sn``/``alipay_root_cert_sn``), answers in the
documented JSON shape signed with Alipay's private key over the node's exact text, issues a download URL
valid for 30 s that serves the bill zip without credentials, and reports a bill not generated yet as
``40004 isp.bill_not_exist``.

Knobs (plain attributes, safe to set between requests):

* ``not_ready``: {(bill_type, period)} answered with ``isp.bill_not_exist``.
* ``empty``: {(bill_type, period)} answered with ``bill_file_code=EMPTY_DATA_WITH_BILL_FILE`` and an
  empty bill.
* ``faults``: consumed one per gateway call: ``"slow"`` (answer after ``slow_seconds``),
  ``"call_limited"`` (40005), ``"unavailable"`` (20000), ``"http_429"``, ``"http_503"``.
* ``download_faults``: consumed one per download: ``"slow"``, ``"http_503"``, ``"expired"``.
* ``tamper``: ``"signature"`` (sign bytes altered), ``"content"`` (URL changed after signing),
  ``"unsigned"``, ``"wrong_key"`` (signed by another key), ``"cert_sn"`` (another alipay_cert_sn),
  ``"not_zip"`` / ``"corrupt_zip"`` (the download).
* ``escape_slashes``: send ``\\/`` in the text while signing ``/`` (a quirk the official SDK tolerates).

Usable outside pytest: ``with AlipayGateway(AlipayKeyMaterial.generate()) as gw: gw.gateway_url``.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from urllib.parse import parse_qs, urlencode

from recon.fetching.alipay import (
    METHOD,
    RESPONSE_NODE,
    AlipayCredentials,
    rsa2_sign,
    rsa2_verify,
    sign_content,
)

from ._server import FakeServer, Request, Response
from .bills import BillBook, period_days
from .keys import AlipayKeyMaterial, new_rsa_key

__all__ = ["AlipayGateway"]

GATEWAY_PATH = "/gateway.do"
DOWNLOAD_PATH = "/downloadBillFile.resource"
_CHINA_OFFSET = timedelta(hours=8)
_TIMESTAMP_TOLERANCE = timedelta(minutes=15)
_EXPIRED_PAGE = "<html><body>下载超时，请重新下载</body></html>".encode()


def _utcnow() -> datetime:
    return datetime.now(UTC)


class AlipayGateway(FakeServer):
    def __init__(
        self,
        keys: AlipayKeyMaterial,
        bills: BillBook | None = None,
        *,
        clock: Callable[[], datetime] = _utcnow,
        url_ttl: timedelta = timedelta(seconds=30),
    ) -> None:
        super().__init__()
        self.keys = keys
        self.bills = bills or BillBook()
        self.clock = clock
        self.url_ttl = url_ttl
        self.not_ready: set[tuple[str, str]] = set()
        self.empty: set[tuple[str, str]] = set()
        self.faults: list[str] = []
        self.download_faults: list[str] = []
        self.tamper: str | None = None
        self.escape_slashes = False
        self.slow_seconds = 2.0
        self._downloads: dict[str, tuple[bytes, datetime, str]] = {}

    @property
    def gateway_url(self) -> str:
        return self.base_url + GATEWAY_PATH

    def client_credentials(self) -> AlipayCredentials:
        """What the client needs (as Secrets Manager would hold it) to talk to this gateway."""
        return self.keys.client_credentials()

    def handle(self, request: Request) -> Response:
        if request.path == GATEWAY_PATH and request.method == "POST":
            return self._gateway(request)
        if request.path == DOWNLOAD_PATH and request.method == "GET":
            return self._download(request)
        return Response(404, b"not found")

    # --- the API ------------------------------------------------------------------------------------------

    def _gateway(self, request: Request) -> Response:
        fault = self.faults.pop(0) if self.faults else None
        if fault == "http_429":
            return Response(429, b"Too Many Requests", {"Retry-After": "1"})
        if fault == "http_503":
            return Response(503, b"Service Unavailable")
        if fault == "call_limited":
            return self._answer(_error("40005", "Call Limited", "isv.app-call-limited", "应用调用次数超限"))
        if fault == "unavailable":
            return self._answer(
                _error("20000", "Service Currently Unavailable", "isp.unknow-error", "系统繁忙")
            )
        delay = self.slow_seconds if fault == "slow" else 0.0

        params = request.query
        if request.body:
            params.update(
                {k: v[0] for k, v in parse_qs(request.body.decode("utf-8"), keep_blank_values=True).items()}
            )
        problem = self._check_request(params)
        response = self._answer(problem) if problem is not None else self._bill_url(params)
        response.delay = delay
        return response

    def _check_request(self, params: dict[str, str]) -> dict[str, str] | None:
        if params.get("app_id") != self.keys.app_id:
            return _error("40002", "Invalid Arguments", "isv.invalid-app-id", "无效的AppID参数")
        if params.get("method") != METHOD:
            return _error("40002", "Invalid Arguments", "isv.invalid-method", "不存在的方法名")
        if params.get("sign_type") != "RSA2":
            return _error("40002", "Invalid Arguments", "isv.invalid-signature-type", "无效的签名类型")
        try:
            sent_at = datetime.strptime(params.get("timestamp", ""), "%Y-%m-%d %H:%M:%S")
        except ValueError:
            return _error("40002", "Invalid Arguments", "isv.invalid-timestamp", "非法的时间戳参数")
        now_cn = (self.clock() + _CHINA_OFFSET).replace(tzinfo=None)
        if abs(now_cn - sent_at) > _TIMESTAMP_TOLERANCE:
            return _error("40002", "Invalid Arguments", "isv.invalid-timestamp", "非法的时间戳参数")
        if self.keys.cert_mode and (
            params.get("app_cert_sn") != self.keys.app_cert_sn
            or params.get("alipay_root_cert_sn") != self.keys.root_cert_sn
        ):
            return _error(
                "40002", "Invalid Arguments", "isv.invalid-cert-sn", "应用公钥证书序列号或根证书序列号不匹配"
            )
        content = sign_content(params)
        if not rsa2_verify(self.keys.app_key.public_key(), content.encode("utf-8"), params.get("sign", "")):
            return _error(
                "40002",
                "Invalid Arguments",
                "isv.invalid-signature",
                f"验签出错，建议检查签名字符串或签名私钥与应用公钥是否匹配，网关生成的验签字符串为：{content}",
            )
        return None

    def _bill_url(self, params: dict[str, str]) -> Response:
        try:
            biz = json.loads(params.get("biz_content", ""))
            bill_type, period = str(biz["bill_type"]), str(biz["bill_date"])
            first, _last = period_days(period)
        except (ValueError, KeyError, TypeError):
            return self._answer(_error("40004", "Business Failed", "isv.invalid_arguments", "参数不合法"))
        today = (self.clock() + _CHINA_OFFSET).date()
        monthly = len(period) == 7
        ended = (first.year, first.month) < (today.year, today.month) if monthly else first < today
        if bill_type not in ("trade", "signcustomer") or not ended or first < date(2016, 1, 1):
            return self._answer(_error("40004", "Business Failed", "isv.invalid_arguments", "参数不合法"))
        key = (bill_type, period)
        kind = f"alipay.{bill_type}"
        empty = key in self.empty
        data = (
            None
            if key in self.not_ready
            else self.bills.empty(kind, period)
            if empty
            else self.bills.get(kind, period)
        )
        if data is None:
            return self._answer(_error("40004", "Business Failed", "isp.bill_not_exist", "账单不存在"))
        if self.tamper == "not_zip":
            data = b"<html>not a zip</html>"
        elif self.tamper == "corrupt_zip":
            data = _corrupt(data)
        token = secrets.token_hex(16)
        compact = period.replace("-", "")
        user = self.keys.app_id + "0156"
        filename = f"{user}_{compact}.csv.zip"
        self._downloads[token] = (data, self.clock() + self.url_ttl, filename)
        query = {
            "bizType": "trade" if bill_type == "trade" else "fnd",
            "userId": user,
            "fileType": "csv.zip",
            "bizDates": compact,
            "downloadFileName": filename,
            "fileId": f"/{bill_type}/{user}/{compact}.csv.zip",
            "timestamp": str(int(self.clock().timestamp() * 1000)),
            "token": token,
        }
        node = {
            "code": "10000",
            "msg": "Success",
            "bill_download_url": f"{self.base_url}{DOWNLOAD_PATH}?{urlencode(query)}",
        }
        if empty:
            node["bill_file_code"] = "EMPTY_DATA_WITH_BILL_FILE"
        return self._answer(node)

    def _answer(self, node: dict[str, str]) -> Response:
        """The documented envelope, signed over the node's exact text with Alipay's key."""
        text = json.dumps(node, ensure_ascii=False, separators=(",", ":"))
        signer = new_rsa_key() if self.tamper == "wrong_key" else self.keys.alipay_key
        sign = rsa2_sign(signer, text)
        if self.tamper == "signature":
            sign = ("A" if sign[0] != "A" else "B") + sign[1:]
        if self.tamper == "content" and "bill_download_url" in node:
            text = text.replace("/downloadBillFile.resource", "/elsewhere.resource")
        if self.escape_slashes:
            text = text.replace("/", "\\/")
        members = [f'"{RESPONSE_NODE}":{text}']
        if self.keys.cert_mode:
            cert = "0" * 32 if self.tamper == "cert_sn" else self.keys.alipay_cert_sn
            members.append(f'"alipay_cert_sn":"{cert}"')
        if not (self.tamper == "unsigned" and node.get("code") == "10000"):
            members.append(f'"sign":"{sign}"')
        body = "{" + ",".join(members) + "}"
        return Response(200, body.encode("utf-8"), {"Content-Type": "text/html;charset=utf-8"})

    # --- the download -----------------------------------------------------------------------------------

    def _download(self, request: Request) -> Response:
        fault = self.download_faults.pop(0) if self.download_faults else None
        if fault == "http_503":
            return Response(503, b"Service Unavailable")
        entry = self._downloads.get(request.query.get("token", ""))
        if fault == "expired" or entry is None or entry[1] < self.clock():
            return Response(200, _EXPIRED_PAGE, {"Content-Type": "text/html;charset=utf-8"})
        data, _expires, filename = entry
        headers = {
            "Content-Type": "application/oct-stream",
            "Content-Disposition": f"attachment; filename={filename}",
        }
        return Response(200, data, headers, delay=self.slow_seconds if fault == "slow" else 0.0)


def _error(code: str, msg: str, sub_code: str, sub_msg: str) -> dict[str, str]:
    return {"code": code, "msg": msg, "sub_code": sub_code, "sub_msg": sub_msg}


def _corrupt(zip_bytes: bytes) -> bytes:
    """Flip a byte inside the first member's compressed data (the CRC check must catch it)."""
    data = bytearray(zip_bytes)
    name_len = int.from_bytes(data[26:28], "little")
    extra_len = int.from_bytes(data[28:30], "little")
    at = 30 + name_len + extra_len + 2
    data[at] ^= 0xFF
    return bytes(data)
