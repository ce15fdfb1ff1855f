"""A real SFTP server on 127.0.0.1 for tests: paramiko's server side over a temporary folder, in threads.

Read-only, one root folder, password and public-key users. It records every authentication attempt so a
test can prove that no credentials were sent to a server whose host key was refused.
"""

from __future__ import annotations

import contextlib
import errno
import os
import socket
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any

import paramiko
from paramiko import SFTPAttributes, SFTPHandle, SFTPServer, SFTPServerInterface
from paramiko.common import (
    AUTH_FAILED,
    AUTH_SUCCESSFUL,
    OPEN_FAILED_ADMINISTRATIVELY_PROHIBITED,
    OPEN_SUCCEEDED,
)
from paramiko.sftp import SFTP_PERMISSION_DENIED


@dataclass
class SftpUsers:
    passwords: dict[str, str] = field(default_factory=dict)
    keys: dict[str, paramiko.PKey] = field(default_factory=dict)  # username -> public key


class _Auth(paramiko.ServerInterface):
    def __init__(self, users: SftpUsers, attempts: list[tuple[str, str]]) -> None:
        self._users = users
        self._attempts = attempts

    def get_allowed_auths(self, username: str) -> str:
        return "password,publickey"

    def check_auth_password(self, username: str, password: str) -> int:
        self._attempts.append(("password", username))
        if self._users.passwords.get(username) == password:
            return AUTH_SUCCESSFUL
        return AUTH_FAILED

    def check_auth_publickey(self, username: str, key: paramiko.PKey) -> int:
        self._attempts.append(("publickey", username))
        known = self._users.keys.get(username)
        if known is not None and known.asbytes() == key.asbytes():
            return AUTH_SUCCESSFUL
        return AUTH_FAILED

    def check_channel_request(self, kind: str, chanid: int) -> int:
        if kind == "session":
            return OPEN_SUCCEEDED
        return OPEN_FAILED_ADMINISTRATIVELY_PROHIBITED


class _ReadHandle(SFTPHandle):
    def stat(self) -> SFTPAttributes | int:
        try:
            return SFTPAttributes.from_stat(os.fstat(self.readfile.fileno()))  # type: ignore[attr-defined]
        except OSError as exc:
            return SFTPServer.convert_errno(exc.errno or errno.EIO)


class _RootedFolder(SFTPServerInterface):
    """SFTP view of one local folder; paths cannot leave it."""

    def __init__(self, server: paramiko.ServerInterface, *, root: Path) -> None:
        super().__init__(server)
        self._root = root.resolve()

    def _local(self, path: str) -> Path:
        relative = os.path.normpath("/" + path).lstrip("/")
        return self._root / relative

    def canonicalize(self, path: str) -> str:
        relative = self._local(path).relative_to(self._root).as_posix()
        return "/" if relative == "." else "/" + relative

    def list_folder(self, path: str) -> list[SFTPAttributes] | int:
        folder = self._local(path)
        try:
            return [
                SFTPAttributes.from_stat(os.stat(folder / name), filename=name)
                for name in sorted(os.listdir(folder))
            ]
        except OSError as exc:
            return SFTPServer.convert_errno(exc.errno or errno.EIO)

    def stat(self, path: str) -> SFTPAttributes | int:
        try:
            return SFTPAttributes.from_stat(os.stat(self._local(path)))
        except OSError as exc:
            return SFTPServer.convert_errno(exc.errno or errno.EIO)

    lstat = stat

    def open(self, path: str, flags: int, attr: SFTPAttributes) -> SFTPHandle | int:
        if flags & (os.O_WRONLY | os.O_RDWR):
            return SFTP_PERMISSION_DENIED
        try:
            handle = _ReadHandle(flags)
            handle.readfile = open(self._local(path), "rb")  # type: ignore[attr-defined]  # noqa: SIM115
            handle.filename = str(self._local(path))  # type: ignore[attr-defined]
        except OSError as exc:
            return SFTPServer.convert_errno(exc.errno or errno.EIO)
        return handle


class SftpTestServer:
    """``with SftpTestServer(root, users) as server:`` serves ``root`` on ``server.port`` until the block ends."""

    def __init__(self, root: Path, users: SftpUsers, host_key: paramiko.PKey | None = None) -> None:
        self.root = root
        self.users = users
        self.host_key = host_key or paramiko.ECDSAKey.generate()
        self.auth_attempts: list[tuple[str, str]] = []
        self.connections = 0
        # Called with the connection's number (1, 2, ...) before it is served: lets a test make files appear.
        self.on_connect: Callable[[int], object] | None = None
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(0.1)  # accept() wakes up to notice the end of the block
        self.port: int = self._listener.getsockname()[1]
        self._transports: list[paramiko.Transport] = []
        self._thread = threading.Thread(target=self._serve, name="sftp-test-server", daemon=True)
        self._closed = threading.Event()

    @property
    def fingerprint(self) -> str:
        return str(self.host_key.fingerprint)

    def __enter__(self) -> SftpTestServer:
        self._thread.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._closed.set()
        self._listener.close()
        for transport in self._transports:
            transport.close()
        self._thread.join(timeout=10)

    def _serve(self) -> None:
        while not self._closed.is_set():
            try:
                sock, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            sock.settimeout(None)
            self.connections += 1
            if self.on_connect is not None:
                self.on_connect(self.connections)
            transport = paramiko.Transport(sock)
            transport.add_server_key(self.host_key)
            transport.set_subsystem_handler("sftp", SFTPServer, _RootedFolder, root=self.root)
            self._transports.append(transport)
            with contextlib.suppress(paramiko.SSHException, EOFError, OSError):
                transport.start_server(server=_Auth(self.users, self.auth_attempts))


def closed_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    with socket.create_server(("127.0.0.1", 0)) as sock:
        port: int = sock.getsockname()[1]
    return port


def openssh_ed25519_key(passphrase: bytes | None = None) -> tuple[str, paramiko.PKey]:
    """A new Ed25519 private key in OpenSSH format (as `ssh-keygen` writes it) and its paramiko public key."""
    import io

    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    key = Ed25519PrivateKey.generate()
    encryption: Any = (
        serialization.BestAvailableEncryption(passphrase) if passphrase else serialization.NoEncryption()
    )
    text = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH, encryption
    ).decode()
    loaded = paramiko.Ed25519Key.from_private_key(
        io.StringIO(text), password=passphrase.decode() if passphrase else None
    )
    return text, loaded
