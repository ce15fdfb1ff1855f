"""The very ASL file the template deploys, executed by moto's Step Functions interpreter, with our real
handlers running in-process (local/recon_local/runtime.py), on a generated day in the real formats."""

from __future__ import annotations

import csv
import json
from datetime import date
from pathlib import Path

import pytest
import yaml

from recon_local.demo_data import generate_day, write_day
from recon_local.local_run import run_local
from tests.export_contract import APPENDED_MATCH, FOUNDATION_CASE, FOUNDATION_MATCH

REPO = Path(__file__).resolve().parents[2]
PROJECT_TEXT = (REPO / "local/recon_local/projects/demo.yaml").read_text("utf-8")
DAY = date(2026, 11, 20)


def test_template_points_at_the_asl_this_suite_executes() -> None:
    from cfnlint.decode import decode_str

    template, _ = decode_str((REPO / "infra/template.yaml").read_text("utf-8"))
    machine = template["Resources"]["ReconcileStateMachine"]["Properties"]
    assert (REPO / "infra" / machine["DefinitionUri"]).resolve() == (REPO / "statemachine/reconcile.asl.json")


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory: pytest.TempPathFactory):
    tmp = tmp_path_factory.mktemp("demo")
    day = generate_day(DAY)
    files = write_day(day, tmp / "input")
    return day, run_local(PROJECT_TEXT, DAY, files, tmp / "out")


def test_full_day_runs_every_stage(demo_run) -> None:
    _, result = demo_run
    assert result.execution_status == "SUCCEEDED", result.execution_error
    states = result.history_states
    for state in [
        "StartRun",
        "FetchAndParse",
        "ChooseFetcher",
        "FetchBank",
        "FetchAlipay",
        "FetchWechat",
        "Parse",
        "Match",
        "Resolve",
        "Report",
        "NeedsAttention",
        "NotifyAlert",
        "Done",
    ]:
        assert state in states, (state, states)
    assert "RecordFailure" not in states and "ChannelFailed" not in states


def test_stored_results_are_exactly_the_planted_differences(demo_run) -> None:
    day, result = demo_run
    found = {(c.type.value, m.source.value, m.txn_id) for c in result.cases for m in c.members}
    for planted in day.planted:
        assert (planted.case_type, planted.source, planted.txn_id) in found, planted
    assert len(result.cases) == len(day.planted)
    assert result.run.balanced and result.run.status.value == "succeeded"
    assert result.run.match_groups == len(result.groups) > 100
    by_source = {s.source.value: s for s in result.run.sources}
    assert by_source["bank"].filtered_by_rule == {"bank-fees-and-interest": 2}


def test_outputs_report_email_and_alert(demo_run) -> None:
    day, result = demo_run
    assert set(result.outputs) == {
        "report.html",
        "matches.csv",
        "cases.csv",
        "filtered.csv",
        "open_items.csv",
        "summary.json",
    }
    matches = list(csv.DictReader(result.outputs["matches.csv"].open(encoding="utf-8-sig")))
    # The foundation's columns come first, in order; new columns are appended.
    assert list(matches[0])[:6] == FOUNDATION_MATCH
    cases = list(csv.DictReader(result.outputs["cases.csv"].open(encoding="utf-8-sig")))
    assert list(cases[0])[:9] == FOUNDATION_CASE
    summary = json.loads(result.outputs["summary.json"].read_text("utf-8"))
    assert summary["cases"] == len(day.planted) and summary["quarantined_files"] == 0
    for source, counts in summary["sources"].items():
        assert counts["rows_in"] == counts["rows_out"], source
    assert len(result.emails) == 1 and result.emails[0]["to"] == ["finance@example.com"]
    assert any("open case" in str(a.get("subject")) for a in result.alerts)


def test_exports_carry_every_groups_evidence_and_unnetted_amounts_at_stake(demo_run) -> None:
    _, result = demo_run
    matches = list(csv.DictReader(result.outputs["matches.csv"].open(encoding="utf-8-sig")))
    assert list(matches[0]) == FOUNDATION_MATCH + APPENDED_MATCH
    assert len({r["group_id"] for r in matches}) == result.run.match_groups  # every group, not a sample
    assert all(r["evidence"] and r["explanation"] for r in matches)
    settled = {r["settles"] for r in matches if r["pass"] == "settlement"}
    assert settled == {"wechat-main@2026-11-20"}  # alipay's credit is 10.00 short: a case, not a match
    html = result.outputs["report.html"].read_text("utf-8")
    assert "is in <code>matches.csv</code> beside this report" in html
    summary = json.loads(result.outputs["summary.json"].read_text("utf-8"))
    missing = summary["case_stakes"]["MISSING_IN_CHANNEL"]["CNY"]  # 29.90 短款 + 30.16 长款, not −0.26
    assert missing == {
        "cases": 2,
        "at_stake": "60.06",
        "surplus": "30.16",
        "shortage": "29.90",
        "not_at_stake": "0.00",
    }
    # Every money case is 长款 or 短款 (the two AMOUNT_MISMATCH are short 10.00 each); the repeated ERP row
    # moved no money: not at stake.
    totals = summary["stake_totals"]["CNY"]
    assert (totals["shortage"], totals["surplus"], totals["not_at_stake"]) == ("49.90", "90.06", "199.71")
    for name in ("matches.csv", "cases.csv", "filtered.csv", "open_items.csv"):  # Excel reads them as UTF-8
        assert result.outputs[name].read_bytes().startswith(b"\xef\xbb\xbf"), name
    assert summary["case_amount_by_type"]["MISSING_IN_CHANNEL"] == "60.06"
    assert "at stake 60.06 CNY (长款 30.16, 短款 29.90)" in result.emails[0]["text"]


def test_a_failing_channel_is_recorded_and_the_others_go_on(tmp_path: Path) -> None:
    project = yaml.safe_load(PROJECT_TEXT)
    next(a for a in project["accounts"] if a["account_id"] == "wechat-main")["delivery"] = "api"
    day = generate_day(DAY)
    files = [p for p in write_day(day, tmp_path / "input") if "wechat" not in p.name]
    result = run_local(yaml.safe_dump(project, allow_unicode=True), DAY, files, tmp_path / "out")
    assert result.execution_status == "SUCCEEDED", result.execution_error
    assert "ChannelFailed" in result.history_states
    assert (
        result.run.error
        and "wechat-main" in result.run.error
        and "ConnectorNotConfigured" in result.run.error
    )
    # Nothing came from WeChat Pay: that is a gap in the input, not in the money. Its ERP orders and the
    # bank's WeChat settlement credit wait for the bill (open, held by awaiting-statement), not lost and not
    # reported as MISSING cases.
    assert not [c for c in result.cases if c.type.value == "MISSING_IN_CHANNEL"]
    held = [
        r
        for r in csv.DictReader(result.outputs["open_items.csv"].open(encoding="utf-8-sig"))
        if r["held_by"] == "awaiting-statement:wechat-main"
    ]
    assert {r["source"] for r in held} == {"erp", "bank"}
    bank_held = [r["amount"] for r in held if r["source"] == "bank"]
    credit = day.expected["bank_wechat_credit_minor"]
    assert bank_held == [f"{credit // 100}.{credit % 100:02d}"]
    assert "held open" in result.run.error
    assert result.run.balanced  # every row placed: matched, a case, filtered or open


def test_a_missing_bank_statement_keeps_the_settlement_batches_open_in_every_output(tmp_path: Path) -> None:
    """Without the bank statement each channel day's batch waits for it: an open item in open_items.csv (its
    net, held by awaiting-statement:<bank>), in the counts of summary.json, the run and the e-mail, and in
    the report — not only in the report, as before."""
    day = generate_day(DAY)
    files = [p for p in write_day(day, tmp_path / "input") if not p.name.startswith("camt053")]
    result = run_local(PROJECT_TEXT, DAY, files, tmp_path / "out")
    assert result.execution_status == "SUCCEEDED", result.execution_error
    assert not [c for c in result.cases if c.type.value == "MISSING_IN_BANK"]
    items = list(csv.DictReader(result.outputs["open_items.csv"].open(encoding="utf-8-sig")))
    net = {k: day.expected[f"{k}_settlement_minor"] for k in ("wechat", "alipay")}
    assert items == [
        {
            "source": source,
            "account_id": f"{source}-main",
            "txn_id": f"{source}-main@2026-11-20",
            "amount": f"{net[source] // 100}.{net[source] % 100:02d}",
            "currency": "CNY",
            "first_seen": "2026-11-20",
            "age_days": "0",
            "held_by": "awaiting-statement:bank-cmb",
        }
        for source in ("alipay", "wechat")
    ]
    summary = json.loads(result.outputs["summary.json"].read_text("utf-8"))
    assert summary["open_items"] == result.run.open_items == 2
    assert "Open items (in flight or awaiting a statement): 2" in result.emails[0]["text"]
    html = result.outputs["report.html"].read_text("utf-8")
    assert html.count("<td>awaiting-statement:bank-cmb</td>") == 2


def test_a_failed_run_is_recorded_and_notified(tmp_path: Path) -> None:
    from recon_local.runtime import LocalCloud

    with LocalCloud() as cloud:
        arn = cloud.start_execution({"project_id": "no-such-project", "business_date": "2026-11-20"})
        execution = cloud.wait(arn)
        assert execution.status == "FAILED"
        assert execution.error == "ReconciliationFailed"
        states = execution.entered_states()
        assert states[-5:] == [
            "RecordFailure",
            "NotifyFailure",
            "LookForNextDayAfterFailure",
            "NextDayAfterFailure",  # no next day: the input names none
            "RunFailed",
        ]
        alerts = cloud.published_alerts()
        assert any(
            "FAILED" in str(a.get("subject")) and "ProjectNotFound" in str(a.get("message")) for a in alerts
        )


def test_a_day_run_three_times_mails_and_alerts_once_and_masks_account_numbers(tmp_path: Path) -> None:
    """The schedule, an upload and a person each start the same day: one e-mail, one alert."""
    from recon.adapters.s3 import S3ObjectStore
    from recon.domain import Project
    from recon.keys import project_config_key, raw_key, report_prefix
    from recon.pipeline.projects import statement_date_for
    from recon_local.runtime import LocalCloud

    project = Project.from_yaml(PROJECT_TEXT)
    day = generate_day(DAY)
    with LocalCloud() as cloud:
        store = S3ObjectStore()
        store.put(cloud.data_bucket, project_config_key("demo"), PROJECT_TEXT.encode("utf-8"))
        for account_id, (name, data) in day.files.items():
            when = statement_date_for(project, project.account(account_id), DAY)
            store.put(cloud.raw_bucket, raw_key("demo", account_id, when, name), data)
        for trigger in ("schedule", "upload", "manual"):
            arn = cloud.start_execution(
                {"project_id": "demo", "business_date": DAY.isoformat(), "trigger": trigger},
                name=f"demo-20261120-{trigger}",
            )
            execution = cloud.wait(arn)
            assert execution.status == "SUCCEEDED", (execution.error, execution.cause)
        emails, alerts = cloud.sent_emails(), cloud.published_alerts()
        assert len(emails) == 1, [str(m)[:200] for m in emails]
        assert len([a for a in alerts if "open case" in str(a.get("subject"))]) == 1, alerts
        texts = [str(emails[0]), *(str(a) for a in alerts)]
        outputs = store.list(cloud.data_bucket, report_prefix("demo", DAY, "demo-20261120"))
        assert len(outputs) == 6
        texts += [store.get(cloud.data_bucket, o.key).decode("utf-8") for o in outputs]
        for number in ("2088101122136241", "1900000109", "75591234561080100018"):
            assert not [t for t in texts if number in t], number
