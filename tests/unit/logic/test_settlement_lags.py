"""Settlement lags [1, 2] on one bank account: which bank statement each run reads, and batches whose
credit may be in a statement a later run reads.

A run of day D reads the bank statement of D + the smallest lag crediting the account, so a single day (or
the first of a sequence) reads the T+1 statement, every statement is read by exactly one run, and a batch
that may still be paid T+2 waits, open, for the next run instead of becoming MISSING_IN_BANK."""

from __future__ import annotations

import csv
import io
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pyarrow as pa
import pytest
import yaml

from recon.domain import CaseType, Project, Transaction
from recon.keys import INPUTS_FILE, raw_key, report_prefix, result_key
from recon.matching import match_table
from recon.pipeline.contracts import MatchInput, RunRef, StartRunInput
from recon.pipeline.fetch import fetch_statements
from recon.pipeline.match import Inputs, match_run, open_batches
from recon.pipeline.parse import parse_channel
from recon.pipeline.projects import business_dates_needing, run_id_for, statement_date_for
from recon.pipeline.resolve import resolve_run
from recon.pipeline.run import start_run
from recon.pipeline.services import Services
from recon_local.demo_data import generate_day

from .conftest import DAY, REPO, memory_services, txn
from .matching_support import Outcome, run, table_of
from .test_carry_over import _deliver as deliver

DEMO_TEXT = (REPO / "local/recon_local/projects/demo.yaml").read_text("utf-8")
DEMO = yaml.safe_load(DEMO_TEXT)
D1, D2, D3, D4 = (DAY + timedelta(days=k) for k in range(4))
WECHAT_MEMO = "微信支付结算"
ALIPAY_MEMO = "支付宝结算"


def lagged(wechat: list[int], alipay: list[int] | None = None) -> dict[str, Any]:
    """The demo project (as a dict) with the WeChat (and Alipay) settlement rule's lags replaced."""
    data = yaml.safe_load(DEMO_TEXT)
    for rule in data["rules"]:
        if rule.get("name") == "wechat-settlement":
            rule["lag_days"] = wechat
        if rule.get("name") == "alipay-settlement" and alipay is not None:
            rule["lag_days"] = alipay
    return dict(data)


def settlement_project(**extra: object) -> Project:
    """ERP, WeChat Pay, Alipay and the bank; orders by key, WeChat T+1 or T+2, Alipay T+1."""
    return Project.model_validate(
        {
            **DEMO,
            "carry_over_days": 2,
            "rules": [
                {
                    "kind": "filter",
                    "name": "bank-fees-and-interest",
                    "sources": ["bank"],
                    "when": [{"field": "memo", "op": "regex", "value": "账户管理费|结息|利息"}],
                },
                {
                    "kind": "key_match",
                    "name": "erp-channel-order",
                    "left": ["erp"],
                    "right": ["wechat", "alipay"],
                    "time_tolerance_hours": 24,
                },
                {
                    "kind": "settlement",
                    "name": "wechat-settlement",
                    "channel_account": "wechat-main",
                    "bank_account": "bank-cmb",
                    "lag_days": [1, 2],
                    "memo_pattern": "财付通|微信支付",
                },
                {
                    "kind": "settlement",
                    "name": "alipay-settlement",
                    "channel_account": "alipay-main",
                    "bank_account": "bank-cmb",
                    "lag_days": [1],
                    "memo_pattern": "支付宝",
                },
            ],
            **extra,
        }
    )


# --- which statement a run reads ------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("wechat", "alipay", "lag"),
    [([1], [1], 1), ([1, 2], [1], 1), ([2], [1], 1), ([2, 3], [2], 2), ([0, 1], [1], 0)],
)
def test_a_run_reads_the_bank_statement_of_the_smallest_lag_and_each_statement_serves_one_run(
    wechat: list[int], alipay: list[int], lag: int
) -> None:
    project = Project.model_validate(lagged(wechat, alipay))
    bank, erp = project.account("bank-cmb"), project.account("erp")
    assert statement_date_for(project, bank, D1) == D1 + timedelta(days=lag)
    assert statement_date_for(project, erp, D1) == D1
    # Consecutive runs read consecutive statements: none twice, none skipped.
    days = [D1 + timedelta(days=k) for k in range(10)]
    read = [statement_date_for(project, bank, d) for d in days]
    assert read == [d + timedelta(days=lag) for d in days]
    for d, s in zip(days, read, strict=True):
        assert business_dates_needing(project, bank, s) == [d]


# --- the engine: a batch that may be paid T+2 waits for the statement that would hold the credit ----------
def _statement_d2() -> list[Transaction]:
    """Day D1's channels, and the bank statement of D1 + 1 (the run of D1 reads it): Alipay's credit only,
    WeChat pays D1 and D2 together T+2 (in the statement of D3, read by the run of D2)."""
    return [
        txn("erp", "SO1", 1000, order_ref="SO1"),
        txn("wechat", "WX1", 1000, order_ref="SO1"),
        txn("erp", "SO2", 500, order_ref="SO2"),
        txn("alipay", "AP1", 500, order_ref="SO2"),
        txn("bank", "B-AP1", 500, value_date=D2, memo=ALIPAY_MEMO),
        txn("bank", "B-FEE1", -5, value_date=D2, memo="账户管理费"),
    ]


def test_a_single_day_with_lags_1_and_2_settles_t1_and_leaves_the_t2_batch_open() -> None:
    project = settlement_project()
    day1 = run(project, _statement_d2(), D1)
    assert day1.group_of("B-AP1").settles == ["alipay-main@2026-11-20"]
    assert not [c for c in day1.cases if c.type is CaseType.MISSING_IN_BANK]
    waiting = day1.result.open_batches["wechat-settlement"]
    assert [(b.ref, b.net) for b in waiting] == [("wechat-main@2026-11-20", 1000)]


def test_a_waiting_batch_keeps_its_candidate_credits_for_the_run_that_decides_it() -> None:
    """A WeChat credit of D1 + 1 that is not the batch's net stays open with the waiting batch: once the
    T+2 statement is read without a better credit, the pair is an AMOUNT_MISMATCH, not a missing batch and
    an unexplained credit."""
    project = settlement_project()
    short = txn("bank", "B-WX1", 990, value_date=D2, memo=WECHAT_MEMO)
    day1 = run(project, [*_statement_d2(), short], D1)
    assert day1.where("B-WX1")["disposition"] == "open" and day1.where("B-WX1")["rule"] == "wechat-settlement"
    carried = day1.rows.take([int(i) for i in day1.result.open_rows])
    carried = carried.append_column("first_seen", pa.array([D1] * carried.num_rows, pa.date32()))
    at = datetime(2026, 11, 21, 2, 0, tzinfo=UTC)
    today = table_of(
        [
            txn("erp", "SO3", 700, order_ref="SO3", at=at),
            txn("alipay", "AP3", 700, order_ref="SO3", at=at),
            txn("bank", "B-AP2", 700, value_date=D3, memo=ALIPAY_MEMO),
        ]
    )
    rows = pa.concat_tables([today, carried], promote_options="permissive")
    day2 = Outcome(match_table(project, rows, D2, carried_batches=day1.result.open_batches), rows)
    case = day2.case_of("B-WX1")
    assert case.type is CaseType.AMOUNT_MISMATCH and "wechat-main@2026-11-20" in case.reason
    assert day2.result.open_batches == {} and len(day2.result.open_rows) == 0


# --- through the stages: a single day on real files, and two days each reading one statement -------------
def test_a_single_day_on_real_files_reads_the_t1_statement_and_finds_only_the_planted_differences() -> None:
    """The review's defect: with lags [1, 2] the run read only the T+2 statement, so Alipay's T+1 credit
    (delivered) was never read and its batch became MISSING_IN_BANK."""
    text = yaml.safe_dump(lagged([1, 2]), allow_unicode=True, sort_keys=False)
    svc = memory_services("demo", text, clock=lambda: datetime(2026, 11, 22, 1, 30, tzinfo=UTC))
    day = generate_day(D1)
    for account_id, (name, data) in day.files.items():
        svc.store.put("raw", raw_key("demo", account_id, day.statement_dates[account_id], name), data)
    started = start_run(StartRunInput(project_id="demo", business_date=D1), svc)
    assert {c.account_id: c.statement_date for c in started.channels}["bank-cmb"] == D2
    parsed = []
    for task in started.channels:
        fetch_statements(task, svc)
        parsed.append(parse_channel(task, svc))
    ref = RunRef(run_id=started.run_id, project_id="demo", business_date=D1)
    match_run(MatchInput(**ref.model_dump(), channels=parsed), svc)
    resolve_run(ref, svc)
    run_ = svc.repo.get_run(started.run_id)
    assert run_ is not None and run_.error is None and run_.balanced
    cases = svc.repo.list_cases(started.run_id)
    found = {(c.type.value, m.source.value, m.txn_id) for c in cases for m in c.members}
    assert all((p.case_type, p.source, p.txn_id) in found for p in day.planted)
    assert len(cases) == len(day.planted)
    assert not [c for c in cases if c.type is CaseType.MISSING_IN_BANK]


def _deliver(
    svc: Services, project: Project, account: str, statement_date: date, rows: list[Transaction]
) -> None:
    """A parsed statement, filed under the business date whose run reads it."""
    business_date = business_dates_needing(project, project.account(account), statement_date)[0]
    deliver(svc, business_date, account, rows, statement_date=statement_date)


def _run_day(svc: Services, day: date) -> dict[str, Any]:
    start_run(StartRunInput(project_id="demo", business_date=day), svc)
    ref = RunRef(run_id=run_id_for("demo", day), project_id="demo", business_date=day)
    match_run(MatchInput(**ref.model_dump()), svc)
    resolve_run(ref, svc)
    prefix = report_prefix("demo", day, ref.run_id)
    names = ("matches.csv", "cases.csv", "filtered.csv", "open_items.csv")
    inputs = Inputs.model_validate_json(
        svc.store.get("data", result_key("demo", day, ref.run_id, INPUTS_FILE))
    )
    return {
        "run": svc.repo.get_run(ref.run_id),
        "inputs": [key for key, _ in inputs.objects],
        "batches": open_batches(svc, ref),
        **{
            n: list(csv.DictReader(io.StringIO(svc.store.get("data", prefix + n).decode("utf-8-sig"))))
            for n in names
        },
    }


def test_two_days_read_each_bank_statement_once_and_place_every_bank_row_once() -> None:
    """The review's sequence: the statement of D2 holds Alipay's D1 credit, the statement of D3 one WeChat
    credit for D1 + D2 and Alipay's D2 credit. The run of D1 reads D2's statement (the batch of WeChat D1
    waits), the run of D2 reads D3's and settles both WeChat days with the one credit."""
    project = settlement_project()
    svc = memory_services("demo", project, clock=lambda: datetime(2026, 11, 25, 1, 30, tzinfo=UTC))
    at = datetime(2026, 11, 21, 2, 0, tzinfo=UTC)
    day1 = {r.txn_id: r for r in _statement_d2()}
    _deliver(svc, project, "erp", D1, [day1["SO1"], day1["SO2"]])
    _deliver(svc, project, "wechat-main", D1, [day1["WX1"]])
    _deliver(svc, project, "alipay-main", D1, [day1["AP1"]])
    _deliver(svc, project, "bank-cmb", D2, [day1["B-AP1"], day1["B-FEE1"]])
    _deliver(
        svc,
        project,
        "erp",
        D2,
        [txn("erp", "SO3", 2000, order_ref="SO3", at=at), txn("erp", "SO4", 700, order_ref="SO4", at=at)],
    )
    _deliver(svc, project, "wechat-main", D2, [txn("wechat", "WX3", 2000, order_ref="SO3", at=at)])
    _deliver(svc, project, "alipay-main", D2, [txn("alipay", "AP4", 700, order_ref="SO4", at=at)])
    _deliver(
        svc,
        project,
        "bank-cmb",
        D3,
        [
            txn("bank", "B-WX12", 3000, value_date=D3, memo=WECHAT_MEMO),
            txn("bank", "B-AP2", 700, value_date=D3, memo=ALIPAY_MEMO),
        ],
    )

    first = _run_day(svc, D1)
    assert first["run"].error is None and first["run"].balanced
    assert not [r for r in first["open_items.csv"] if r["source"] == "bank"]
    assert [(rule, b.ref, b.net) for rule, bs in first["batches"].items() for b in bs] == [
        ("wechat-settlement", "wechat-main@2026-11-20", 1000)
    ]
    assert not [r for r in first["cases.csv"] if r["type"] == "MISSING_IN_BANK"]
    second = _run_day(svc, D2)
    assert second["run"].error is None and second["run"].balanced
    assert second["open_items.csv"] == [] and second["batches"] == {} and second["cases.csv"] == []
    settled = {r["txn_id"]: r["settles"] for r in second["matches.csv"] if r["source"] == "bank"}
    assert settled == {
        "B-WX12": "wechat-main@2026-11-20,wechat-main@2026-11-21",
        "B-AP2": "alipay-main@2026-11-21",
    }

    # Each statement is read by one run, and every bank row ends in exactly one place over the two runs.
    assert not set(first["inputs"]) & set(second["inputs"])
    assert sum("account=bank-cmb" in key for key in first["inputs"] + second["inputs"]) == 2
    placed = [
        r["txn_id"]
        for out in (first, second)
        for name in ("matches.csv", "cases.csv", "filtered.csv")
        for r in out[name]
        if r["source"] == "bank"
    ]
    assert sorted(placed) == ["B-AP1", "B-AP2", "B-FEE1", "B-WX12"]
