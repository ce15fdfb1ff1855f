"""Fake Alipay and WeChat Pay bill APIs: real HTTP servers on 127.0.0.1 for tests and local runs.

They verify our request signatures, sign their answers with their own (generated) keys, serve bills in
the real layouts (``bills.BillBook``) and can be told to be slow, rate-limit, tamper or rotate keys.

    from recon_local.fakes import AlipayGateway, AlipayKeyMaterial

    with AlipayGateway(AlipayKeyMaterial.generate()) as gateway:
        client = AlipayBillClient(httpx.Client(), gateway.gateway_url, gateway.client_credentials(), RetryPolicy())
"""

from .alipay_gateway import AlipayGateway
from .bills import BillBook
from .keys import AlipayKeyMaterial, PlatformKey, WechatPayKeyMaterial
from .wechatpay_api import WechatPayApi

__all__ = [
    "AlipayGateway",
    "AlipayKeyMaterial",
    "BillBook",
    "PlatformKey",
    "WechatPayApi",
    "WechatPayKeyMaterial",
]
