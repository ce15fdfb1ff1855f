"""The real state machine retries a bank statement that is not on the bank's SFTP server yet, then the run
succeeds with it: the ASL the template deploys (retries shortened by the local runtime), the real fetch and
parse handlers in-process, a real SFTP server on 127.0.0.1 and the credentials in moto's Secrets Manager."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import yaml

from recon.adapters.dynamodb import DynamoRunRepository
from recon.adapters.s3 import S3ObjectStore
from recon.keys import project_config_key, raw_key
from recon.pipeline.projects import run_id_for
from recon_local.demo_data import generate_day
from recon_local.runtime import LocalCloud
from tests.integration.fetchers._sftp_server import SftpTestServer, SftpUsers

REPO = Path(__file__).resolve().parents[2]
PASSWORD = "workflow-sftp-password-5d1e"


def test_not_ready_bank_statement_is_retried_by_the_state_machine_then_fetched(tmp_path: Path) -> None:
    # Yesterday's bank statement (T+1 of the business date) is inside its fetch window now, in Shanghai.
    business_date = (datetime.now(UTC) + timedelta(hours=8)).date() - timedelta(days=2)
    bank_date = business_date + timedelta(days=1)
    day = generate_day(business_date)
    camt_name, camt = day.files["bank-cmb"]
    (tmp_path / "outbox").mkdir()
    secret_id = f"recon/bank/workflow-{uuid.uuid4().hex}"  # warm-Lambda secret caches never see it before

    with SftpTestServer(tmp_path, SftpUsers(passwords={"recon": PASSWORD})) as sftp, LocalCloud() as cloud:
        # The bank publishes the file between the first attempt and the state machine's retry.
        sftp.on_connect = lambda n: n >= 2 and (tmp_path / "outbox" / camt_name).write_bytes(camt)
        cloud.client("secretsmanager").create_secret(
            Name=secret_id, SecretString=json.dumps({"username": "recon", "password": PASSWORD})
        )
        project = yaml.safe_load((REPO / "local/recon_local/projects/demo.yaml").read_text("utf-8"))
        bank = next(a for a in project["accounts"] if a["account_id"] == "bank-cmb")
        bank.update(
            delivery="sftp",
            secret_id=secret_id,
            fetch={
                "kind": "sftp",
                "host": "127.0.0.1",
                "port": sftp.port,
                "host_key_fingerprints": [sftp.fingerprint],
                "remote_dir": "outbox",
                "filename_pattern": "camt053_bank-cmb_{date:%Y%m%d}.xml",
                "window": {"opens_after_hours": 0, "closes_after_hours": 72},
            },
        )
        store = S3ObjectStore()
        store.put(
            cloud.data_bucket,
            project_config_key("demo"),
            yaml.safe_dump(project, allow_unicode=True).encode("utf-8"),
        )
        for account_id in ("erp", "wechat-main", "alipay-main"):
            name, content = day.files[account_id]
            store.put(cloud.raw_bucket, raw_key("demo", account_id, business_date, name), content)

        execution = cloud.run({"project_id": "demo", "business_date": business_date.isoformat()})

        assert execution.status == "SUCCEEDED", execution.summary()
        states = execution.entered_states()
        assert "ChannelFailed" not in states and "RecordFailure" not in states
        failures = execution.task_failures()
        assert [error for error, _ in failures] == ["BillNotReady"]
        assert "no file matching" in json.loads(failures[0][1])["errorMessage"]
        assert sftp.connections == 2

        repo = DynamoRunRepository(cloud.table_name)
        log = repo.list_fetch_log("demo", "bank-cmb", bank_date)
        assert [(e.attempt, e.status) for e in log] == [(1, "not_ready"), (2, "stored")]
        key = raw_key("demo", "bank-cmb", bank_date, camt_name)
        assert log[1].raw_key == key and store.get(cloud.raw_bucket, key) == camt

        run = repo.get_run(run_id_for("demo", business_date))
        assert run is not None and run.status.value == "succeeded" and run.balanced, run
        cases = repo.list_cases(run.run_id)
        found = {(c.type.value, m.source.value, m.txn_id) for c in cases for m in c.members}
        assert {(p.case_type, p.source, p.txn_id) for p in day.planted} <= found
        assert len(cases) == len(day.planted)
