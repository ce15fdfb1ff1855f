"""Bank statement connectors: SFTP pull (host key pinned) and an HTTPS file API (mutual TLS and/or token).

Both return the files' bytes exactly as the bank delivered them (MT940, camt, BAI2, CSV: parsing detects
the format later). Manual upload needs no connector: files dropped under ``raw/`` are picked up as they are.

Credentials arrive as the account's Secrets Manager secret (shapes in docs/fetching.md) and are validated
into the models below; their secret fields are ``SecretStr`` and no message ever contains them.
"""

from __future__ import annotations

import base64
import binascii
import fnmatch
import hashlib
import io
import os
import posixpath
import socket
import ssl
import stat
import tempfile
import time
from collections.abc import Callable
from datetime import date
from typing import TYPE_CHECKING, Generic, Protocol, TypeVar

import httpx
from pydantic import BaseModel, ConfigDict, Field, SecretStr, model_validator

from recon.domain.account import HttpsFetch, SftpFetch

from ._transport import TransientError, retrying, send
from .base import BillNotReady, FetchedBill, ProviderRejected, RetryPolicy, VerificationError

if TYPE_CHECKING:
    import paramiko


class BankConnector(Protocol):
    """Lists and downloads one bank account's statement files for a date (a ``Connector``)."""

    def fetch(self, bill_date: date) -> list[FetchedBill]: ...


# --- SFTP ----------------------------------------------------------------------------------------------------


class SftpCredentials(BaseModel):
    """Secret of an SFTP account: ``username`` plus either ``password`` or ``private_key`` (OpenSSH/PEM)."""

    model_config = ConfigDict(extra="forbid", frozen=True, hide_input_in_errors=True)

    username: str = Field(min_length=1)
    password: SecretStr | None = None
    private_key: SecretStr | None = None
    passphrase: SecretStr | None = None

    @model_validator(mode="after")
    def _one_method(self) -> SftpCredentials:
        if (self.password is None) == (self.private_key is None):
            raise ValueError("give exactly one of password and private_key")
        if self.passphrase is not None and self.private_key is None:
            raise ValueError("passphrase only goes with private_key")
        return self


def _load_private_key(text: str, passphrase: str | None) -> paramiko.PKey:
    import paramiko

    for key_class in (paramiko.Ed25519Key, paramiko.ECDSAKey, paramiko.RSAKey):
        try:
            return key_class.from_private_key(io.StringIO(text), password=passphrase)
        except paramiko.PasswordRequiredException:
            raise ProviderRejected("the SFTP private key needs a passphrase", code="credentials") from None
        except (paramiko.SSHException, ValueError):
            continue
    raise ProviderRejected(
        "the SFTP private key is not an Ed25519, ECDSA or RSA key (or the passphrase is wrong)",
        code="credentials",
    )


_ConfigT = TypeVar("_ConfigT")
_CredentialsT = TypeVar("_CredentialsT")


class _Connector(Generic[_ConfigT, _CredentialsT]):
    """A bank connector's settings: where and how to fetch, the secret's credentials, the retry policy."""

    def __init__(
        self,
        config: _ConfigT,
        credentials: _CredentialsT,
        *,
        retry: RetryPolicy,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._config = config
        self._credentials = credentials
        self._retry = retry
        self._sleep = sleep


class SftpBankConnector(_Connector[SftpFetch, SftpCredentials]):
    """Pull statement files from the bank's SFTP server.

    The server's host key must match one of the pinned SHA256 fingerprints before anything is sent: an
    unknown or changed key raises ``VerificationError`` and no credentials leave. Files not there yet (or a
    completion marker missing) raise ``BillNotReady``. Connection failures are retried with backoff.
    """

    @property
    def _where(self) -> str:
        return f"sftp://{self._config.host}:{self._config.port}"

    def fetch(self, bill_date: date) -> list[FetchedBill]:
        return retrying(
            lambda: self._fetch_once(bill_date), policy=self._retry, sleep=self._sleep, what=self._where
        )

    def _fetch_once(self, bill_date: date) -> list[FetchedBill]:
        import paramiko

        timeout = self._retry.timeout_seconds
        try:
            sock = socket.create_connection((self._config.host, self._config.port), timeout=timeout)
        except OSError as exc:
            raise TransientError(f"cannot connect: {exc.strerror or exc}") from None
        transport = paramiko.Transport(sock)
        transport.banner_timeout = timeout
        transport.handshake_timeout = timeout
        transport.auth_timeout = timeout
        try:
            try:
                transport.start_client(timeout=timeout)
            except (paramiko.SSHException, OSError, EOFError) as exc:
                raise TransientError(f"SSH handshake failed: {exc}") from None
            self._verify_host_key(transport.get_remote_server_key())
            self._authenticate(transport)
            try:
                sftp = paramiko.SFTPClient.from_transport(transport)
                if sftp is None:
                    raise TransientError("the server opened no SFTP session")
                channel = sftp.get_channel()
                if channel is not None:
                    channel.settimeout(timeout)
                with sftp:
                    return self._download(sftp, bill_date)
            except PermissionError:
                raise ProviderRejected(
                    f"{self._where}: user {self._credentials.username!r} may not read the statement folder",
                    code="permission",
                ) from None
            except (paramiko.SSHException, EOFError, OSError) as exc:
                raise TransientError(f"SFTP session failed: {type(exc).__name__}: {exc}") from None
        finally:
            transport.close()

    def _verify_host_key(self, key: paramiko.PKey) -> None:
        if key.fingerprint not in self._config.host_key_fingerprints:
            raise VerificationError(
                f"{self._where} presented {key.get_name()} host key {key.fingerprint}, which is not pinned "
                "for this account (unknown or changed host key); nothing was sent",
                code="host_key",
            )

    def _authenticate(self, transport: paramiko.Transport) -> None:
        import paramiko

        creds = self._credentials
        try:
            if creds.private_key is not None:
                passphrase = creds.passphrase.get_secret_value() if creds.passphrase else None
                pkey = _load_private_key(creds.private_key.get_secret_value(), passphrase)
                transport.auth_publickey(creds.username, pkey)
            elif creds.password is not None:
                transport.auth_password(creds.username, creds.password.get_secret_value())
        except paramiko.AuthenticationException:
            raise ProviderRejected(
                f"{self._where} rejected the credentials of user {creds.username!r}", code="auth"
            ) from None
        except (paramiko.SSHException, EOFError, OSError) as exc:
            raise TransientError(f"authentication did not complete: {exc}") from None
        if not transport.is_authenticated():
            raise ProviderRejected(f"{self._where} did not accept user {creds.username!r}", code="auth")

    def _download(self, sftp: paramiko.SFTPClient, bill_date: date) -> list[FetchedBill]:
        remote_dir = self._config.remote_dir.format(date=bill_date)
        try:
            entries = sftp.listdir_attr(remote_dir)
        except FileNotFoundError:
            if remote_dir != self._config.remote_dir:  # a per-day folder: not created yet
                raise BillNotReady(f"{self._where}: folder {remote_dir!r} does not exist yet") from None
            raise ProviderRejected(
                f"{self._where}: folder {remote_dir!r} does not exist", code="config"
            ) from None
        files = {e.filename: e for e in entries if e.st_mode is not None and stat.S_ISREG(e.st_mode)}
        if self._config.complete_marker:
            marker = self._config.complete_marker.format(date=bill_date)
            if marker not in files:
                raise BillNotReady(
                    f"{self._where}: completion marker {marker!r} is not in {remote_dir!r} yet"
                )
            files.pop(marker)
        pattern = self._config.filename_pattern.format(date=bill_date)
        wanted = sorted(name for name in files if fnmatch.fnmatchcase(name, pattern))
        if not wanted:
            raise BillNotReady(f"{self._where}: no file matching {pattern!r} in {remote_dir!r} yet")
        bills = []
        for name in wanted:
            path = posixpath.join(remote_dir, name)
            with sftp.open(path, "rb") as handle:
                handle.prefetch()
                data = handle.read()
            expected = files[name].st_size
            if expected is not None and len(data) != expected:
                raise TransientError(f"{path}: read {len(data)} bytes of {expected} (still being written?)")
            bills.append(
                FetchedBill(filename=name, data=data, bill_date=bill_date, details={"remote_path": path})
            )
        return bills


# --- HTTPS file API ----------------------------------------------------------------------------------------


class HttpsCredentials(BaseModel):
    """Secret of a bank file API: a client certificate + key (mutual TLS), a bearer token, or both.

    ``ca_bundle`` (PEM) pins the CA(s) of the bank's server certificate when it is not publicly trusted.
    """

    model_config = ConfigDict(extra="forbid", frozen=True, hide_input_in_errors=True)

    client_cert: str | None = Field(default=None, description="PEM certificate chain (leaf first)")
    client_key: SecretStr | None = Field(default=None, description="PEM private key of client_cert")
    client_key_password: SecretStr | None = None
    token: SecretStr | None = Field(default=None, description="Bearer token")
    ca_bundle: str | None = Field(default=None, description="PEM CA certificates trusted for the server")

    @model_validator(mode="after")
    def _some_auth(self) -> HttpsCredentials:
        if (self.client_cert is None) != (self.client_key is None):
            raise ValueError("client_cert and client_key go together")
        if self.client_cert is None and self.token is None:
            raise ValueError("give client_cert + client_key (mutual TLS), token, or both")
        return self


def _tls_context(credentials: HttpsCredentials) -> ssl.SSLContext:
    import certifi

    if credentials.ca_bundle:
        context = ssl.create_default_context(cadata=credentials.ca_bundle)
    else:
        context = ssl.create_default_context(cafile=certifi.where())
    if credentials.client_cert and credentials.client_key:
        # ssl loads a certificate chain only from files: write them to a private temporary folder (0700,
        # files 0600) that is deleted as soon as the context holds the key.
        with tempfile.TemporaryDirectory(prefix="recon-mtls-") as folder:
            cert_path = os.path.join(folder, "client.pem")
            key_path = os.path.join(folder, "client.key")
            for path, text in (
                (cert_path, credentials.client_cert),
                (key_path, credentials.client_key.get_secret_value()),
            ):
                descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
                with os.fdopen(descriptor, "w", encoding="ascii") as handle:
                    handle.write(text)
            password = credentials.client_key_password
            try:
                context.load_cert_chain(
                    cert_path, key_path, password=password.get_secret_value() if password else None
                )
            except ssl.SSLError:
                raise ProviderRejected(
                    "client_cert / client_key could not be loaded (not PEM, not a pair, or wrong password)",
                    code="credentials",
                ) from None
    return context


def _ssl_failure(exc: BaseException) -> ssl.SSLError | None:
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, ssl.SSLError):
            return seen
        seen = seen.__cause__ or seen.__context__
    return None


def _digest_matches(header: str, data: bytes) -> bool:
    value = header.strip()
    if value.lower().startswith("sha-256="):  # RFC 3230 / RFC 9530 (":base64:") digest forms
        encoded = value.split("=", 1)[1].strip(":")
        try:
            return base64.b64decode(encoded, validate=True) == hashlib.sha256(data).digest()
        except (binascii.Error, ValueError):
            return False
    return value.lower() == hashlib.sha256(data).hexdigest()


class HttpsBankConnector(_Connector[HttpsFetch, HttpsCredentials]):
    """GET a statement file from the bank's HTTPS API.

    Mutual TLS with the client certificate from the secret and/or ``Authorization: Bearer``; the server
    certificate is verified (against ``ca_bundle`` when given). A configured not-ready status (404, 425 by
    default) raises ``BillNotReady``; 401/403 raise ``ProviderRejected``; 429, 5xx and timeouts are retried
    with backoff and jitter, honouring ``Retry-After``. Redirects are not followed.
    """

    def fetch(self, bill_date: date) -> list[FetchedBill]:
        url = self._config.url_template.format(date=bill_date)
        where = httpx.URL(url).host
        headers = {"Accept": "*/*", "User-Agent": "recon-fetcher"}
        if self._credentials.token is not None:
            headers["Authorization"] = f"Bearer {self._credentials.token.get_secret_value()}"
        with httpx.Client(
            verify=_tls_context(self._credentials),
            timeout=httpx.Timeout(self._retry.timeout_seconds),
            follow_redirects=False,
        ) as client:
            response = retrying(
                lambda: self._get(client, url, headers),
                policy=self._retry,
                sleep=self._sleep,
                what=f"https://{where}",
            )
        data = response.content
        if self._config.checksum_header:
            digest = response.headers.get(self._config.checksum_header)
            if digest is None or not _digest_matches(digest, data):
                raise VerificationError(
                    f"https://{where}: the file does not match its {self._config.checksum_header} header "
                    f"({'missing' if digest is None else 'different digest'}); nothing stored",
                    code="checksum",
                )
        return [
            FetchedBill(
                filename=self._config.filename_template.format(date=bill_date),
                data=data,
                bill_date=bill_date,
                content_type=response.headers.get("content-type", "application/octet-stream"),
                details={"http_status": str(response.status_code)},
            )
        ]

    def _get(self, client: httpx.Client, url: str, headers: dict[str, str]) -> httpx.Response:
        host = httpx.URL(url).host
        try:
            # Timeouts, connection errors, 429 and 5xx come back as TransientError (Retry-After kept).
            response = send(client, "GET", url, policy=self._retry, headers=headers)
        except TransientError as exc:
            failure = _ssl_failure(exc)
            if isinstance(failure, ssl.SSLCertVerificationError):
                raise VerificationError(
                    f"https://{host}: server certificate failed verification ({failure.verify_message})",
                    code="server_certificate",
                ) from None
            if failure is not None and "alert" in str(failure).lower():
                raise ProviderRejected(
                    f"https://{host}: the server refused the TLS session ({failure.reason})", code="auth"
                ) from None
            raise
        status = response.status_code
        if status == 200:
            return response
        if status in self._config.not_ready_statuses:
            raise BillNotReady(f"https://{host}: HTTP {status}, statement not published yet")
        if status in (401, 403):
            raise ProviderRejected(f"https://{host}: HTTP {status}, credentials refused", code="auth")
        raise ProviderRejected(f"https://{host}: unexpected HTTP {status}", code=f"http_{status}")
