"""The fetch stage end to end under moto (Secrets Manager, S3, DynamoDB) against real local providers:
an SFTP server, a mutual-TLS file API, and the fake Alipay gateway and WeChat Pay API, all on 127.0.0.1.

What it proves: verified files are stored once per checksum at the raw key layout and parsed once; every
attempt writes one fetch-log row; not-ready, out-of-window, refused and tampered responses store nothing;
a rotated secret is picked up; no secret material reaches logs, DynamoDB items or S3 objects/metadata.
"""

from __future__ import annotations

import dataclasses
import json
import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import paramiko
import pytest
import yaml
from moto import mock_aws

from recon.adapters import aws
from recon.adapters.dynamodb import DynamoRunRepository, table_spec
from recon.adapters.memory import (
    MemoryAlertPublisher,
    MemoryMailer,
    MemoryScheduleManager,
    MemoryWorkflowStarter,
)
from recon.adapters.s3 import S3ObjectStore
from recon.adapters.secrets import SecretsManagerSecrets
from recon.domain import Delivery, Source
from recon.fetching.base import BillNotReady, BillOverdue, ProviderRejected, VerificationError
from recon.keys import raw_key
from recon.pipeline.contracts import ChannelTask
from recon.pipeline.fetch import ConnectorNotConfigured, fetch_statements
from recon.pipeline.parse import parse_channel
from recon.pipeline.services import Services
from recon.ports import SecretUnavailable
from recon.settings import Settings
from recon_local.demo_data import generate_day
from recon_local.fakes import AlipayGateway, AlipayKeyMaterial, BillBook, WechatPayApi, WechatPayKeyMaterial
from tests.aws_env import _fake_aws_env

from ._sftp_server import SftpTestServer, SftpUsers
from ._tls_server import HttpsTestServer, Reply, Route, TestCA

__all__ = ["_fake_aws_env"]

REPO = Path(__file__).resolve().parents[3]
RAW, DATA, TABLE = "recon-raw", "recon-data", "recon"
BUSINESS_DATE = date(2026, 11, 20)
BANK_DATE = date(2026, 11, 21)  # T+1 settlement statement
IN_WINDOW = datetime(2026, 11, 22, 3, 0, tzinfo=UTC)  # 11:00 in Shanghai the day after the bank date
PASSWORD = "Sftp-Password-7f3a9c"
ROTATED_PASSWORD = "Sftp-Password-rotated-88e1"
DEMO = generate_day(BUSINESS_DATE)
CAMT_NAME, CAMT = DEMO.files["bank-cmb"]


@dataclass
class Stage:
    svc: Services
    sftp: SftpTestServer
    https: HttpsTestServer
    ca: TestCA
    client_cert: Any
    sleeps: list[float] = field(default_factory=list)
    now: list[datetime] = field(default_factory=lambda: [IN_WINDOW])

    def task(self, account_id: str = "bank-cmb", delivery: Delivery = Delivery.SFTP) -> ChannelTask:
        return ChannelTask(
            run_id="demo-20261120",
            project_id="demo",
            business_date=BUSINESS_DATE,
            statement_date=BANK_DATE,
            account_id=account_id,
            source=Source.BANK,
            delivery=delivery,
        )

    def fetch(self, account_id: str = "bank-cmb", delivery: Delivery = Delivery.SFTP) -> Any:
        return fetch_statements(self.task(account_id, delivery), self.svc)

    def log(self, account_id: str = "bank-cmb") -> list[Any]:
        return self.svc.repo.list_fetch_log("demo", account_id, BANK_DATE)

    def raw_versions(self) -> list[dict[str, Any]]:
        return _raw_versions()

    def put_project(self, **bank_fetch: Any) -> None:
        project = yaml.safe_load((REPO / "local/recon_local/projects/demo.yaml").read_text("utf-8"))
        bank = next(a for a in project["accounts"] if a["account_id"] == "bank-cmb")
        bank.update(
            delivery="sftp",
            secret_id="recon/bank/demo-cmb-sftp",
            fetch={
                "kind": "sftp",
                "host": "127.0.0.1",
                "port": self.sftp.port,
                "host_key_fingerprints": [self.sftp.fingerprint],
                "remote_dir": "outbox",
                "filename_pattern": "camt053_bank-cmb_{date:%Y%m%d}.xml",
                **bank_fetch,
            },
        )
        project["accounts"].append(
            {
                "account_id": "bank-api",
                "source": "bank",
                "name": "Bank file API (mutual TLS)",
                "delivery": "api",
                "secret_id": "recon/bank/demo-api",
                "fetch": {
                    "kind": "https",
                    "url_template": self.https.url("/statements/{date:%Y-%m-%d}"),
                    "filename_template": "camt053_{date:%Y%m%d}.xml",
                    "checksum_header": "X-SHA256",
                },
            }
        )
        text = yaml.safe_dump(project, allow_unicode=True, sort_keys=False)
        boto3.client("s3").put_object(Bucket=DATA, Key="config/projects/demo.yaml", Body=text.encode())


def _create_storage() -> None:
    aws.reset()
    s3 = boto3.client("s3")
    s3.create_bucket(Bucket=RAW)
    s3.put_bucket_versioning(Bucket=RAW, VersioningConfiguration={"Status": "Enabled"})
    s3.create_bucket(Bucket=DATA)
    boto3.client("dynamodb").create_table(**table_spec(TABLE))


def _services(clock: Callable[[], datetime], sleeps: list[float]) -> Services:
    return Services(
        settings=Settings(raw_bucket=RAW, data_bucket=DATA, table_name=TABLE),
        store=S3ObjectStore(),
        repo=DynamoRunRepository(TABLE),
        mailer=MemoryMailer(),
        alerts=MemoryAlertPublisher(),
        workflow=MemoryWorkflowStarter(),
        schedules=MemoryScheduleManager(),
        clock=clock,
        secrets=SecretsManagerSecrets(max_age=300),
        sleep=sleeps.append,
    )


def _raw_versions() -> list[dict[str, Any]]:
    listed = boto3.client("s3").list_object_versions(Bucket=RAW)
    return [dict(v) for v in listed.get("Versions", [])]


def _camt_reply(_: Any) -> Reply:
    import hashlib

    return Reply(200, CAMT, {"Content-Type": "application/xml", "X-SHA256": hashlib.sha256(CAMT).hexdigest()})


@pytest.fixture
def stage(tmp_path: Path) -> Iterator[Stage]:
    (tmp_path / "outbox").mkdir()
    (tmp_path / "outbox" / CAMT_NAME).write_bytes(CAMT)
    ca = TestCA()
    client_cert = ca.issue("recon-fetcher", server=False)
    users = SftpUsers(passwords={"recon": PASSWORD})
    routes: dict[str, Route] = {"/statements/2026-11-21": _camt_reply}
    with (
        mock_aws(),
        SftpTestServer(tmp_path, users) as sftp,
        HttpsTestServer(ca, routes, require_client_cert=True) as https,
    ):
        _create_storage()
        secrets = boto3.client("secretsmanager")
        secrets.create_secret(
            Name="recon/bank/demo-cmb-sftp",
            SecretString=json.dumps({"username": "recon", "password": PASSWORD}),
        )
        secrets.create_secret(
            Name="recon/bank/demo-api",
            SecretString=json.dumps(
                {
                    "client_cert": client_cert.cert_pem,
                    "client_key": client_cert.key_pem,
                    "ca_bundle": ca.cert_pem,
                }
            ),
        )
        now = [IN_WINDOW]
        sleeps: list[float] = []
        svc = _services(lambda: now[0], sleeps)
        built = Stage(svc, sftp, https, ca, client_cert, sleeps, now)
        built.put_project()
        yield built
    aws.reset()


def test_sftp_statement_is_stored_once_and_parsed_once(stage: Stage) -> None:
    first = stage.fetch()
    key = raw_key("demo", "bank-cmb", BANK_DATE, CAMT_NAME)
    assert (first.status, first.raw_keys) == ("stored", [key])
    assert stage.svc.store.get(RAW, key) == CAMT  # byte for byte
    head = stage.svc.store.head(RAW, key)
    assert head is not None and head.metadata["sha256"] == stage.log()[0].checksum
    parsed = parse_channel(stage.task(), stage.svc)
    assert [s.status for s in parsed.statements] == ["parsed"]

    again = stage.fetch()  # the same day fetched a second time
    assert (again.status, again.raw_keys) == ("unchanged", [key])
    assert len(stage.raw_versions()) == 1  # no second object, not even a second version
    reparsed = parse_channel(stage.task(), stage.svc)
    assert [s.statement_id for s in reparsed.statements] == [s.statement_id for s in parsed.statements]
    assert len(stage.svc.repo.list_statements("demo", "bank-cmb", BUSINESS_DATE)) == 1

    entries = stage.log()
    assert [(e.attempt, e.status) for e in entries] == [(1, "stored"), (2, "unchanged")]
    for entry in entries:
        assert (entry.channel, entry.account_id, entry.bill_date) == ("bank", "bank-cmb", BANK_DATE)
        assert entry.size == len(CAMT) and entry.raw_key == key
        assert entry.duration_ms is not None and entry.duration_ms >= 0
        assert entry.checksum == head.metadata["sha256"]


def test_https_statement_with_mutual_tls(stage: Stage) -> None:
    out = stage.fetch("bank-api", Delivery.API)
    assert out.status == "stored"
    assert stage.svc.store.get(RAW, out.raw_keys[0]) == CAMT
    assert [r.client_cert_subject for r in stage.https.requests] == ["commonName=recon-fetcher"]
    assert [e.status for e in stage.log("bank-api")] == ["stored"]


def test_not_ready_is_raised_for_the_state_machine_and_logged(stage: Stage) -> None:
    (stage.sftp.root / "outbox" / CAMT_NAME).unlink()
    with pytest.raises(BillNotReady, match="no file matching"):
        stage.fetch()
    with pytest.raises(BillNotReady):
        stage.fetch()
    assert [(e.attempt, e.status) for e in stage.log()] == [(1, "not_ready"), (2, "not_ready")]
    assert "no file matching" in stage.log()[0].detail
    assert stage.raw_versions() == []


def test_before_the_window_the_provider_is_not_asked(stage: Stage) -> None:
    stage.now[0] = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)  # 20:00 on the bank date itself, in Shanghai
    with pytest.raises(BillNotReady, match="published from 2026-11-22T00:00:00\\+08:00"):
        stage.fetch()
    assert stage.sftp.connections == 0
    assert [e.status for e in stage.log()] == ["not_ready"]


def test_still_missing_after_the_window_is_overdue_not_retried(stage: Stage) -> None:
    (stage.sftp.root / "outbox" / CAMT_NAME).unlink()
    stage.now[0] = datetime(2026, 11, 22, 5, 0, tzinfo=UTC)  # 13:00 in Shanghai, window closed at 12:00
    with pytest.raises(BillOverdue, match="window closed at 2026-11-22T12:00:00\\+08:00") as overdue:
        stage.fetch()
    assert not overdue.value.retryable
    assert [e.status for e in stage.log()] == ["overdue"]


def test_changed_host_key_stores_nothing(stage: Stage) -> None:
    stage.put_project(host_key_fingerprints=[paramiko.ECDSAKey.generate().fingerprint])
    with pytest.raises(VerificationError, match="not pinned"):
        stage.fetch()
    assert stage.raw_versions() == []
    assert stage.sftp.auth_attempts == []
    [entry] = stage.log()
    assert entry.status == "failed" and "VerificationError [host_key]" in entry.detail


def test_tampered_https_file_stores_nothing(stage: Stage) -> None:
    stage.https.routes["/statements/2026-11-21"] = lambda r: Reply(
        200, CAMT.replace(b"<Amt", b"<Amt "), {"X-SHA256": _camt_reply(r).headers["X-SHA256"]}
    )
    with pytest.raises(VerificationError, match="different digest"):
        stage.fetch("bank-api", Delivery.API)
    assert stage.raw_versions() == []
    assert [e.status for e in stage.log("bank-api")] == ["failed"]


def test_rotated_secret_is_picked_up_after_an_auth_failure(stage: Stage) -> None:
    assert stage.fetch().status == "stored"  # caches the secret (password 1)
    # The bank and Secrets Manager rotate the password; this warm Lambda still caches the old one.
    stage.sftp.users.passwords["recon"] = ROTATED_PASSWORD
    boto3.client("secretsmanager").put_secret_value(
        SecretId="recon/bank/demo-cmb-sftp",
        SecretString=json.dumps({"username": "recon", "password": ROTATED_PASSWORD}),
    )
    assert stage.fetch().status == "unchanged"
    assert stage.sftp.auth_attempts == [("password", "recon")] * 3  # ok, refused (stale), ok (fresh)
    assert [e.status for e in stage.log()] == ["stored", "unchanged"]


class _CountingSecrets:
    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.reads: list[tuple[str, bool]] = []

    def get_secret(self, secret_id: str, *, force_fetch: bool = False) -> dict[str, str]:
        self.reads.append((secret_id, force_fetch))
        value: dict[str, str] = self.inner.get_secret(secret_id, force_fetch=force_fetch)
        return value


def test_wrong_credentials_fail_after_one_fresh_read(stage: Stage) -> None:
    counting = _CountingSecrets(stage.svc.secrets)
    stage.svc.secrets = counting
    stage.sftp.users.passwords["recon"] = "something-else"
    with pytest.raises(ProviderRejected, match="rejected the credentials"):
        stage.fetch()
    # The cached secret was refused; a fresh read found the same secret, so no second login is tried.
    assert counting.reads == [("recon/bank/demo-cmb-sftp", False), ("recon/bank/demo-cmb-sftp", True)]
    assert len(stage.sftp.auth_attempts) == 1
    assert [e.status for e in stage.log()] == ["failed"]


def test_missing_secret_or_connector(stage: Stage) -> None:
    stage.put_project()
    boto3.client("secretsmanager").delete_secret(
        SecretId="recon/bank/demo-cmb-sftp", ForceDeleteWithoutRecovery=True
    )
    with pytest.raises(SecretUnavailable, match="recon/bank/demo-cmb-sftp"):
        stage.fetch()
    assert [e.status for e in stage.log()] == ["failed"]
    with pytest.raises(ConnectorNotConfigured):
        fetch_statements(
            stage.task("alipay-main", Delivery.API).model_copy(update={"source": Source.ALIPAY}), stage.svc
        )


def test_no_secret_material_in_logs_items_or_objects(stage: Stage, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    stage.fetch()
    stage.fetch("bank-api", Delivery.API)
    stage.sftp.users.passwords["recon"] = "changed"
    with pytest.raises(ProviderRejected):
        stage.fetch()
    secrets = [PASSWORD, stage.client_cert.key_pem]
    fragments = [
        *secrets,
        *[line for line in stage.client_cert.key_pem.splitlines() if "PRIVATE KEY" not in line],
    ]

    texts = [record.getMessage() for record in caplog.records]
    texts += [repr(record.__dict__) for record in caplog.records]
    texts += [repr(item) for item in boto3.resource("dynamodb").Table(TABLE).scan()["Items"]]
    s3 = boto3.client("s3")
    for bucket in (RAW, DATA):
        for obj in s3.list_objects_v2(Bucket=bucket).get("Contents", []):
            got = s3.get_object(Bucket=bucket, Key=obj["Key"])
            texts += [got["Body"].read().decode("utf-8", "replace"), repr(got["Metadata"])]
    assert len(texts) > 10
    for text in texts:
        for fragment in fragments:
            assert fragment not in text


# --- Alipay and WeChat Pay against the fake providers ------------------------------------------------------


@dataclass
class Channels:
    svc: Services
    alipay: AlipayGateway
    wechat: WechatPayApi
    bill_date: date

    def fetch(self, account_id: str) -> Any:
        return fetch_statements(self.task(account_id), self.svc)

    def log(self, account_id: str) -> list[Any]:
        return self.svc.repo.list_fetch_log("demo", account_id, self.bill_date)

    def change_fetch(self, account_id: str, **changes: Any) -> None:
        key = "config/projects/demo.yaml"
        project = yaml.safe_load(self.svc.store.get(DATA, key))
        next(a for a in project["accounts"] if a["account_id"] == account_id)["fetch"].update(changes)
        self.svc.store.put(DATA, key, yaml.safe_dump(project, allow_unicode=True).encode())

    def task(self, account_id: str) -> ChannelTask:
        source = Source.ALIPAY if account_id.startswith("alipay") else Source.WECHAT
        return ChannelTask(
            run_id="demo-x",
            project_id="demo",
            business_date=self.bill_date,
            statement_date=self.bill_date,
            account_id=account_id,
            source=source,
            delivery=Delivery.API,
        )


@pytest.fixture
def channels(
    alipay_keys: AlipayKeyMaterial, wechat_keys: WechatPayKeyMaterial, bills: BillBook
) -> Iterator[Channels]:
    # The fakes check signatures and timestamps against the real clock, so the day is yesterday in China
    # and the accounts' windows span all of today there (the real windows are tested above).
    bill_date = (datetime.now(UTC) + timedelta(hours=8)).date() - timedelta(days=1)
    window = {"opens_after_hours": 0, "closes_after_hours": 48}
    with mock_aws(), AlipayGateway(alipay_keys, bills) as alipay, WechatPayApi(wechat_keys, bills) as wechat:
        _create_storage()
        secrets = boto3.client("secretsmanager")
        secrets.create_secret(
            Name="recon/alipay/demo", SecretString=json.dumps(dataclasses.asdict(alipay.client_credentials()))
        )
        secrets.create_secret(
            Name="recon/wechat/demo", SecretString=json.dumps(dataclasses.asdict(wechat.client_credentials()))
        )
        project = yaml.safe_load((REPO / "local/recon_local/projects/demo.yaml").read_text("utf-8"))
        accounts = {a["account_id"]: a for a in project["accounts"]}
        accounts["alipay-main"].update(
            delivery="api",
            secret_id="recon/alipay/demo",
            fetch={
                "kind": "alipay",
                "environment": "custom",
                "endpoint": alipay.gateway_url,
                "bill_types": ["trade"],  # one view of the money: the tests change it (recon.bill_views)
                "window": window,
            },
        )
        accounts["wechat-main"].update(
            delivery="api",
            secret_id="recon/wechat/demo",
            fetch={
                "kind": "wechat",
                "environment": "custom",
                "endpoint": wechat.base_url,
                "bill_types": ["ALL"],
                "window": window,
            },
        )
        text = yaml.safe_dump(project, allow_unicode=True, sort_keys=False)
        boto3.client("s3").put_object(Bucket=DATA, Key="config/projects/demo.yaml", Body=text.encode())
        yield Channels(_services(lambda: datetime.now(UTC), []), alipay, wechat, bill_date)
    aws.reset()


@pytest.mark.parametrize("bill_type", ["trade", "signcustomer"])
def test_alipay_bills_are_stored_once_and_parsed_once(
    channels: Channels, bills: BillBook, bill_type: str
) -> None:
    # An account fetches one view of its Alipay bills (recon.bill_views): the 业务明细 or the 账务明细.
    channels.change_fetch("alipay-main", bill_types=[bill_type])
    first = channels.fetch("alipay-main")
    assert first.status == "stored" and len(first.raw_keys) == 1
    [key] = first.raw_keys
    assert key.rsplit("/", 1)[-1].startswith(f"{bill_type}_")
    data = channels.svc.store.get(RAW, key)
    assert data == bills.get(f"alipay.{bill_type}", channels.bill_date.isoformat())
    parsed = parse_channel(channels.task("alipay-main"), channels.svc)
    assert [(s.raw_key, s.status) for s in parsed.statements] == [(key, "parsed")]

    again = channels.fetch("alipay-main")
    assert (again.status, again.raw_keys) == ("unchanged", first.raw_keys)
    assert len(_raw_versions()) == 1
    reparsed = parse_channel(channels.task("alipay-main"), channels.svc)
    assert [s.statement_id for s in reparsed.statements] == [s.statement_id for s in parsed.statements]
    assert [(e.attempt, e.status, e.size) for e in channels.log("alipay-main")] == [
        (1, "stored", len(data)),
        (2, "unchanged", len(data)),
    ]
    assert f"bill_type={bill_type}" in channels.log("alipay-main")[0].detail


def test_alipay_tampered_answer_stores_nothing(channels: Channels) -> None:
    channels.alipay.tamper = "signature"
    with pytest.raises(VerificationError):
        channels.fetch("alipay-main")
    assert _raw_versions() == []
    [entry] = channels.log("alipay-main")
    assert entry.status == "failed" and "VerificationError" in entry.detail


def test_alipay_not_ready(channels: Channels) -> None:
    channels.alipay.not_ready.add(("trade", channels.bill_date.isoformat()))
    with pytest.raises(BillNotReady):
        channels.fetch("alipay-main")
    assert _raw_versions() == []
    assert [e.status for e in channels.log("alipay-main")] == ["not_ready"]


@pytest.mark.parametrize(
    ("bills_fetched", "names"),
    [
        ({"bill_types": ["ALL", "REFUND"]}, ["tradebill_ALL", "tradebill_REFUND"]),
        # A fund-flow account fetches no trade bill (one view of the money, recon.bill_views).
        ({"bill_types": [], "fundflow_accounts": ["BASIC"]}, ["fundflowbill_BASIC"]),
    ],
    ids=["trade-bills", "fund-flow-only"],
)
def test_wechat_bills_are_stored_once_and_parsed_once(
    channels: Channels, bills_fetched: dict[str, list[str]], names: list[str]
) -> None:
    channels.change_fetch("wechat-main", **bills_fetched)
    first = channels.fetch("wechat-main")
    assert first.status == "stored"
    assert [key.rsplit("/", 1)[-1].split("_", 1)[1].rsplit("_", 1)[0] for key in first.raw_keys] == names
    parsed = parse_channel(channels.task("wechat-main"), channels.svc)
    assert {s.status for s in parsed.statements} == {"parsed"} and len(parsed.statements) == len(names)
    again = channels.fetch("wechat-main")
    assert (again.status, again.raw_keys) == ("unchanged", first.raw_keys)
    assert len(_raw_versions()) == len(names)
    assert [e.status for e in channels.log("wechat-main")] == ["stored", "unchanged"]


@pytest.mark.parametrize("tamper", ["hash", "file", "signature"])
def test_wechat_tampered_answer_or_file_stores_nothing(channels: Channels, tamper: str) -> None:
    channels.wechat.tamper = tamper
    with pytest.raises(VerificationError):
        channels.fetch("wechat-main")
    assert _raw_versions() == []
    assert [e.status for e in channels.log("wechat-main")] == ["failed"]


def test_wechat_not_ready(channels: Channels) -> None:
    channels.wechat.not_ready.add(("tradebill.ALL", channels.bill_date.isoformat()))
    with pytest.raises(BillNotReady):
        channels.fetch("wechat-main")
    assert _raw_versions() == []
    assert [e.status for e in channels.log("wechat-main")] == ["not_ready"]


# --- the Secrets Manager adapter ---------------------------------------------------------------------------


def test_secrets_manager_adapter_caches_refreshes_and_never_echoes_values() -> None:
    with mock_aws():
        aws.reset()
        client = boto3.client("secretsmanager")
        client.create_secret(Name="recon/a", SecretString=json.dumps({"password": "first-value"}))
        client.create_secret(Name="recon/not-json", SecretString="plain-secret-text")
        client.create_secret(
            Name="recon/nested", SecretString=json.dumps({"password": {"v": "nested-value"}})
        )
        secrets = SecretsManagerSecrets(max_age=300)
        assert secrets.get_secret("recon/a") == {"password": "first-value"}
        client.put_secret_value(SecretId="recon/a", SecretString=json.dumps({"password": "second-value"}))
        assert secrets.get_secret("recon/a") == {"password": "first-value"}  # cached for max_age
        assert secrets.get_secret("recon/a", force_fetch=True) == {"password": "second-value"}
        assert SecretsManagerSecrets(max_age=0).get_secret("recon/a") == {"password": "second-value"}
        for secret_id, value, reason in (
            ("recon/not-json", "plain-secret-text", "not JSON"),
            ("recon/nested", "nested-value", "JSON object of strings"),
            ("recon/missing", "", "ResourceNotFoundException"),
        ):
            with pytest.raises(SecretUnavailable, match=reason) as failed:
                secrets.get_secret(secret_id)
            assert secret_id in str(failed.value)
            assert not value or value not in str(failed.value)
            assert failed.value.__cause__ is None and failed.value.__suppress_context__
    aws.reset()


def test_wechat_no_statement_exist_is_retried_as_not_ready(channels: Channels) -> None:
    # The fund-flow bill of an account without movements that day.
    channels.change_fetch("wechat-main", bill_types=[], fundflow_accounts=["OPERATION"])
    with pytest.raises(BillNotReady) as raised:
        channels.fetch("wechat-main")
    # The state machine retries by the exact error name: WeChat's NoBillForDate goes out as BillNotReady.
    assert type(raised.value) is BillNotReady and raised.value.code == "NO_STATEMENT_EXIST"
    assert _raw_versions() == []
    assert [e.status for e in channels.log("wechat-main")] == ["not_ready"]
