"""Test RSA keys and X.509 certificates for the fake providers (generated, never real credentials).

Each ``*KeyMaterial`` holds both sides of one provider relationship: what the merchant keeps (its
private key, given to our client as credentials) and what the provider keeps (its own private key, used
by the fake to sign answers). ``client_credentials`` builds what Secrets Manager would hold.
"""

from __future__ import annotations

import secrets
import string
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

from recon.fetching.alipay import AlipayCredentials, cert_sn, root_cert_sn
from recon.fetching.wechatpay import WechatPayCredentials

__all__ = [
    "AlipayKeyMaterial",
    "PlatformKey",
    "WechatPayKeyMaterial",
    "certificate_pem",
    "issue_certificate",
    "new_rsa_key",
    "private_key_pem",
    "public_key_pem",
]


def new_rsa_key(bits: int = 2048) -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=bits)


def private_key_pem(key: rsa.RSAPrivateKey, *, pkcs1: bool = False) -> str:
    """PKCS#8 (``BEGIN PRIVATE KEY``, WeChat's apiclient_key.pem and Alipay's Java SDK) or PKCS#1."""
    fmt = serialization.PrivateFormat.TraditionalOpenSSL if pkcs1 else serialization.PrivateFormat.PKCS8
    return key.private_bytes(serialization.Encoding.PEM, fmt, serialization.NoEncryption()).decode("ascii")


def public_key_pem(key: rsa.RSAPrivateKey | rsa.RSAPublicKey) -> str:
    public = key.public_key() if isinstance(key, rsa.RSAPrivateKey) else key
    return public.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    ).decode("ascii")


def certificate_pem(certificate: x509.Certificate) -> str:
    return certificate.public_bytes(serialization.Encoding.PEM).decode("ascii")


def _name(common_name: str, organization: str, unit: str = "") -> x509.Name:
    attributes = [
        x509.NameAttribute(NameOID.COUNTRY_NAME, "CN"),
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, organization),
    ]
    if unit:
        attributes.append(x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, unit))
    attributes.append(x509.NameAttribute(NameOID.COMMON_NAME, common_name))
    return x509.Name(attributes)


def issue_certificate(
    subject: x509.Name,
    public_key: rsa.RSAPublicKey | ec.EllipticCurvePublicKey,
    *,
    issuer: x509.Name | None = None,
    issuer_key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey,
    serial: int | None = None,
    not_before: datetime | None = None,
    valid_for: timedelta = timedelta(days=365 * 5),
    ca: bool = False,
) -> x509.Certificate:
    start = not_before or datetime.now(UTC) - timedelta(days=1)
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer or subject)
        .public_key(public_key)
        .serial_number(serial if serial is not None else x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(start + valid_for)
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    return builder.sign(issuer_key, hashes.SHA256())


# ----------------------------------------------------------------------------------------------- Alipay


@dataclass
class AlipayKeyMaterial:
    """An Alipay app's key pair and Alipay's own, plus (certificate mode) the three certificates.

    The root bundle holds an RSA root (whose SN counts) and an EC root (skipped by the SN rule), as the
    real ``alipayRootCert.crt`` mixes algorithms.
    """

    app_id: str
    app_key: rsa.RSAPrivateKey = field(repr=False)
    alipay_key: rsa.RSAPrivateKey = field(repr=False)
    cert_mode: bool = False
    app_cert: x509.Certificate | None = field(default=None, repr=False)
    alipay_cert: x509.Certificate | None = field(default=None, repr=False)
    root_bundle_pem: str = field(default="", repr=False)

    @classmethod
    def generate(cls, app_id: str = "2021000000000001", *, cert_mode: bool = False) -> AlipayKeyMaterial:
        app_key, alipay_key = new_rsa_key(), new_rsa_key()
        material = cls(app_id=app_id, app_key=app_key, alipay_key=alipay_key, cert_mode=cert_mode)
        if cert_mode:
            root_key = new_rsa_key()
            root_name = _name("Fake Ant Financial Root CA", "Fake Ant Financial", "Certification Authority")
            root = issue_certificate(root_name, root_key.public_key(), issuer_key=root_key, ca=True)
            ec_key = ec.generate_private_key(ec.SECP256R1())
            ec_name = _name("Fake Ant Financial Root CA E1", "Fake Ant Financial", "Certification Authority")
            ec_root = issue_certificate(ec_name, ec_key.public_key(), issuer_key=ec_key, ca=True)
            material.root_bundle_pem = certificate_pem(root) + certificate_pem(ec_root)
            ca_name = _name("Fake Ant Financial Class 2 R1", "Fake Ant Financial", "Certification Authority")
            material.app_cert = issue_certificate(
                _name(app_id, "Fake Merchant"), app_key.public_key(), issuer=ca_name, issuer_key=root_key
            )
            material.alipay_cert = issue_certificate(
                _name("支付宝(中国)网络技术有限公司", "Fake Ant Financial"),
                alipay_key.public_key(),
                issuer=ca_name,
                issuer_key=root_key,
            )
        return material

    @property
    def app_cert_sn(self) -> str:
        return cert_sn(certificate_pem(self.app_cert)) if self.app_cert else ""

    @property
    def alipay_cert_sn(self) -> str:
        return cert_sn(certificate_pem(self.alipay_cert)) if self.alipay_cert else ""

    @property
    def root_cert_sn(self) -> str:
        return root_cert_sn(self.root_bundle_pem) if self.root_bundle_pem else ""

    def client_credentials(self) -> AlipayCredentials:
        if self.cert_mode and self.app_cert is not None and self.alipay_cert is not None:
            return AlipayCredentials(
                app_id=self.app_id,
                app_private_key_pem=private_key_pem(self.app_key, pkcs1=True),
                app_cert_pem=certificate_pem(self.app_cert),
                alipay_cert_pem=certificate_pem(self.alipay_cert),
                alipay_root_cert_pem=self.root_bundle_pem,
            )
        return AlipayCredentials(
            app_id=self.app_id,
            app_private_key_pem=private_key_pem(self.app_key, pkcs1=True),
            alipay_public_key_pem=public_key_pem(self.alipay_key),
        )


# -------------------------------------------------------------------------------------------- WeChat Pay


@dataclass(frozen=True)
class PlatformKey:
    """One WeChat Pay platform certificate with its private key (only the fake has the key)."""

    key: rsa.RSAPrivateKey = field(repr=False)
    certificate: x509.Certificate = field(repr=False)

    @property
    def serial_no(self) -> str:
        return f"{self.certificate.serial_number:X}"

    @classmethod
    def generate(
        cls, *, not_before: datetime | None = None, valid_for: timedelta = timedelta(days=365 * 5)
    ) -> PlatformKey:
        key = new_rsa_key()
        certificate = issue_certificate(
            _name("Tenpay.com Root CA fake platform", "Tenpay.com", "Tenpay.com CA Center"),
            key.public_key(),
            issuer_key=key,
            not_before=not_before,
            valid_for=valid_for,
        )
        return cls(key=key, certificate=certificate)


def _apiv3_key() -> str:
    alphabet = string.ascii_letters + string.digits
    return "".join(secrets.choice(alphabet) for _ in range(32))


@dataclass
class WechatPayKeyMaterial:
    """A merchant's API key and certificate serial, its APIv3 key, and WeChat Pay's signing keys."""

    mchid: str
    merchant_key: rsa.RSAPrivateKey = field(repr=False)
    merchant_serial_no: str
    apiv3_key: str = field(repr=False)
    platform: PlatformKey = field(repr=False)
    public_key: rsa.RSAPrivateKey = field(repr=False)
    public_key_id: str

    @classmethod
    def generate(cls, mchid: str = "1900000109") -> WechatPayKeyMaterial:
        return cls(
            mchid=mchid,
            merchant_key=new_rsa_key(),
            merchant_serial_no=secrets.token_hex(20).upper(),
            apiv3_key=_apiv3_key(),
            platform=PlatformKey.generate(),
            public_key=new_rsa_key(),
            public_key_id=f"PUB_KEY_ID_{secrets.randbelow(10**22):022d}",
        )

    def client_credentials(self, *, public_key_mode: bool = False) -> WechatPayCredentials:
        return WechatPayCredentials(
            mchid=self.mchid,
            merchant_serial_no=self.merchant_serial_no,
            merchant_private_key_pem=private_key_pem(self.merchant_key),
            apiv3_key=self.apiv3_key,
            wechatpay_public_key_pem=public_key_pem(self.public_key) if public_key_mode else "",
            wechatpay_public_key_id=self.public_key_id if public_key_mode else "",
        )
