"""``SftpBankConnector`` against a real SFTP server started on 127.0.0.1 (paramiko server side, in threads)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any

import paramiko
import pytest

from recon.domain.account import SftpFetch
from recon.fetching.bank import SftpBankConnector, SftpCredentials
from recon.fetching.base import (
    BillNotReady,
    CredentialsInvalid,
    ProviderRejected,
    ProviderUnavailable,
    RetryPolicy,
    VerificationError,
    load_credentials,
)

from ._sftp_server import SftpTestServer, SftpUsers, closed_port, openssh_ed25519_key

DAY = date(2026, 11, 21)
PASSWORD = "s3cret-Sftp-Pa55"
# Bytes a text-mode transfer would damage: CRLF, GBK text, a NUL, a lone CR, no final newline.
CAMT = "<Document>\r\n<Ntry>招商银行 账户管理费</Ntry>\r\n</Document>".encode("gbk") + b"\x00\r"
MT940 = b":20:STMT\r\n:25:NL77INGB0574908765EUR\r\n:61:2611211121C100,00NTRFNONREF\r\n-"
FAST = RetryPolicy(attempts=3, base_seconds=0.5, max_seconds=2.0, timeout_seconds=10.0)


@pytest.fixture
def statements(tmp_path: Path) -> Path:
    root = tmp_path / "sftp"
    (root / "out").mkdir(parents=True)
    (root / "out" / "CMB_20261121_01.xml").write_bytes(CAMT)
    (root / "out" / "CMB_20261121_02.xml").write_bytes(os.urandom(300_000))  # several SFTP reads
    (root / "out" / "CMB_20261120_01.xml").write_bytes(b"yesterday")  # another day: never taken
    (root / "out" / "CMB_20261121.mt940").write_bytes(MT940)  # another pattern
    (root / "out" / "CMB_20261121.done").write_bytes(b"")
    (root / "daily" / "20261121").mkdir(parents=True)
    (root / "daily" / "20261121" / "statement.mt940").write_bytes(MT940)
    return root


@pytest.fixture
def user_key() -> tuple[str, paramiko.PKey]:
    return openssh_ed25519_key(passphrase=b"key-passphrase")


@pytest.fixture
def server(statements: Path, user_key: tuple[str, paramiko.PKey]) -> Iterator[SftpTestServer]:
    users = SftpUsers(passwords={"recon": PASSWORD}, keys={"recon-key": user_key[1]})
    with SftpTestServer(statements, users) as running:
        yield running


def config(server: SftpTestServer, **overrides: Any) -> SftpFetch:
    values: dict[str, Any] = {
        "host": "127.0.0.1",
        "port": server.port,
        "host_key_fingerprints": [server.fingerprint],
        "remote_dir": "out",
        "filename_pattern": "CMB_{date:%Y%m%d}_*.xml",
    }
    values.update(overrides)
    return SftpFetch.model_validate(values)


def password_login() -> SftpCredentials:
    return SftpCredentials.model_validate({"username": "recon", "password": PASSWORD})


def connector(
    server: SftpTestServer,
    creds: SftpCredentials | None = None,
    sleeps: list[float] | None = None,
    **cfg: Any,
) -> SftpBankConnector:
    waits = sleeps if sleeps is not None else []
    return SftpBankConnector(config(server, **cfg), creds or password_login(), retry=FAST, sleep=waits.append)


def test_pulls_the_days_files_byte_for_byte(server: SftpTestServer, statements: Path) -> None:
    bills = connector(server).fetch(DAY)
    assert [b.filename for b in bills] == ["CMB_20261121_01.xml", "CMB_20261121_02.xml"]
    for bill in bills:
        assert bill.data == (statements / "out" / bill.filename).read_bytes()
        assert bill.bill_date == DAY
        assert bill.details == {"remote_path": f"out/{bill.filename}"}
    assert server.auth_attempts == [("password", "recon")]


def test_private_key_login_with_passphrase(
    server: SftpTestServer, user_key: tuple[str, paramiko.PKey]
) -> None:
    creds = SftpCredentials.model_validate(
        {"username": "recon-key", "private_key": user_key[0], "passphrase": "key-passphrase"}
    )
    bills = connector(server, creds, filename_pattern="CMB_{date:%Y%m%d}.mt940").fetch(DAY)
    assert [(b.filename, b.data) for b in bills] == [("CMB_20261121.mt940", MT940)]
    assert server.auth_attempts == [("publickey", "recon-key")]


def test_per_day_folder_and_completion_marker(server: SftpTestServer) -> None:
    daily = connector(server, remote_dir="daily/{date:%Y%m%d}", filename_pattern="*.mt940")
    assert [b.data for b in daily.fetch(DAY)] == [MT940]
    with pytest.raises(BillNotReady, match="does not exist yet"):
        daily.fetch(date(2026, 11, 22))
    marked = connector(server, complete_marker="CMB_{date:%Y%m%d}.done")
    assert len(marked.fetch(DAY)) == 2
    with pytest.raises(BillNotReady, match="completion marker"):
        connector(server, complete_marker="CMB_{date:%Y%m%d}.ok").fetch(DAY)


def test_unknown_or_changed_host_key_is_refused_before_any_credential_is_sent(server: SftpTestServer) -> None:
    other = paramiko.ECDSAKey.generate()  # the key a man in the middle (or a re-keyed server) would show
    with pytest.raises(VerificationError, match="not pinned") as refused:
        connector(server, host_key_fingerprints=[other.fingerprint]).fetch(DAY)
    assert refused.value.code == "host_key"
    assert server.fingerprint in str(refused.value)
    assert server.auth_attempts == []  # the password never left
    # During a bank-side key rotation both keys are pinned: either one is accepted.
    assert connector(server, host_key_fingerprints=[other.fingerprint, server.fingerprint]).fetch(DAY)


def test_missing_file_means_not_ready(server: SftpTestServer) -> None:
    with pytest.raises(BillNotReady, match=r"no file matching 'CMB_20261122_\*\.xml'"):
        connector(server).fetch(date(2026, 11, 22))


def test_missing_fixed_folder_is_a_configuration_error(server: SftpTestServer) -> None:
    with pytest.raises(ProviderRejected, match="does not exist") as rejected:
        connector(server, remote_dir="outbox").fetch(DAY)
    assert rejected.value.code == "config"


def test_wrong_password_is_rejected_not_retried(server: SftpTestServer) -> None:
    sleeps: list[float] = []
    wrong = SftpCredentials.model_validate({"username": "recon", "password": "not-it"})
    with pytest.raises(ProviderRejected, match="rejected the credentials") as rejected:
        connector(server, wrong, sleeps=sleeps).fetch(DAY)
    assert rejected.value.code == "auth"
    assert "not-it" not in str(rejected.value)
    assert sleeps == [] and server.connections == 1


def test_unknown_key_is_rejected(server: SftpTestServer) -> None:
    stranger, _ = openssh_ed25519_key()
    creds = SftpCredentials.model_validate({"username": "recon-key", "private_key": stranger})
    with pytest.raises(ProviderRejected) as rejected:
        connector(server, creds).fetch(DAY)
    assert rejected.value.code == "auth"


def test_unreachable_server_is_retried_with_backoff_then_unavailable(server: SftpTestServer) -> None:
    sleeps: list[float] = []
    with pytest.raises(ProviderUnavailable, match="gave up after 3 attempts"):
        connector(server, sleeps=sleeps, port=closed_port()).fetch(DAY)
    assert len(sleeps) == 2 and all(0 <= s <= FAST.max_seconds for s in sleeps)


def test_secret_shapes_are_validated_without_echoing_values() -> None:
    with pytest.raises(CredentialsInvalid) as both:
        load_credentials(
            SftpCredentials, {"username": "u", "password": "pw-1", "private_key": "k-2"}, "recon/x"
        )
    with pytest.raises(CredentialsInvalid) as neither:
        load_credentials(SftpCredentials, {"username": "u", "pasword": "pw-3"}, "recon/x")
    for error in (both.value, neither.value):
        assert "recon/x" in str(error)
        assert not any(v in str(error) for v in ("pw-1", "k-2", "pw-3"))
    assert "pasword" in str(neither.value)  # names the offending field


def test_config_rejects_bad_pins_and_patterns() -> None:
    base = {
        "host": "h",
        "filename_pattern": "S_{date:%Y%m%d}.xml",
        "host_key_fingerprints": ["SHA256:" + "a" * 43],
    }
    assert SftpFetch.model_validate(base).port == 22
    bad: dict[str, Any]
    for bad in (
        {"host_key_fingerprints": []},
        {"host_key_fingerprints": ["MD5:aa:bb"]},
        {"filename_pattern": "statement.xml"},  # no date: would take the same file every day
        {"filename_pattern": "{account}_{date:%Y%m%d}.xml"},
        {"filename_pattern": "x/{date:%Y%m%d}.xml"},
        {"remote_dir": "in/{day}"},
    ):
        with pytest.raises(ValueError):
            SftpFetch.model_validate({**base, **bad})
