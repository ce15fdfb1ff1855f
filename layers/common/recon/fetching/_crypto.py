"""Loading the RSA keys providers hand out, in the shapes they hand them out."""

from __future__ import annotations

import base64
import binascii
from functools import lru_cache

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa


@lru_cache(maxsize=32)  # loading validates the key (~60 ms); a warm Lambda reuses it per secret
def load_private_key(text: str) -> rsa.RSAPrivateKey:
    """An RSA private key from PEM (PKCS#1 or PKCS#8) or the bare base64 the Alipay console shows."""
    data = text.strip()
    try:
        if data.startswith("-----BEGIN"):
            key = serialization.load_pem_private_key(data.encode("ascii"), password=None)
        else:
            key = serialization.load_der_private_key(base64.b64decode(data), password=None)
    except (ValueError, TypeError, binascii.Error) as exc:
        raise ValueError(f"not an unencrypted RSA private key: {type(exc).__name__}") from None
    if not isinstance(key, rsa.RSAPrivateKey):
        raise ValueError("the private key is not RSA")
    return key


def load_public_key(text: str) -> rsa.RSAPublicKey:
    """An RSA public key from PEM (SubjectPublicKeyInfo), bare base64 DER, or a PEM certificate."""
    data = text.strip()
    key: object
    try:
        if "BEGIN CERTIFICATE" in data:
            key = x509.load_pem_x509_certificate(data.encode("ascii")).public_key()
        elif data.startswith("-----BEGIN"):
            key = serialization.load_pem_public_key(data.encode("ascii"))
        else:
            key = serialization.load_der_public_key(base64.b64decode(data))
    except (ValueError, TypeError, binascii.Error) as exc:
        raise ValueError(f"not an RSA public key or certificate: {type(exc).__name__}") from None
    if not isinstance(key, rsa.RSAPublicKey):
        raise ValueError("the public key is not RSA")
    return key
