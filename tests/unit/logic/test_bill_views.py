"""An account reconciles one view of a channel's bills (``recon.bill_views``): an Alipay 业务明细 and 账务明细,
or a WeChat Pay 交易账单 and 资金账单, of the same account and days are not both counted. The rule, then the
parse stage and the day's matching on in-memory adapters with the demo merchant's real bill layouts."""

from __future__ import annotations

import io
import json
import zipfile
from collections import Counter
from datetime import UTC, date, datetime, timedelta

import pytest

from recon.adapters.memory import MemoryAlertPublisher
from recon.bill_views import refused_for_view, view_conflict, view_conflict_settled, view_of
from recon.domain import Case, Project, RowError, Run, Source, Statement, StatementStatus
from recon.keys import project_config_key, raw_key
from recon.pipeline.contracts import MatchInput, RunRef, StartRunInput
from recon.pipeline.match import match_run
from recon.pipeline.parse import ingest_upload, parse_channel
from recon.pipeline.resolve import resolve_run
from recon.pipeline.run import start_run
from recon.pipeline.services import Services
from recon.reporting.notices import missing_statements
from recon.statement_versions import current_statements, supersedes
from recon_local.demo_data import generate_day
from recon_local.fakes.bills import BillBook

from .conftest import DAY, REPO, Clock, memory_services

PROJECT_TEXT = (REPO / "local/recon_local/projects/demo.yaml").read_text("utf-8")
T0 = datetime(2026, 11, 21, 2, 0, tzinfo=UTC)
FUND_FLOW_NAME = "20881011221362410156_20261120_账务明细.zip"


# --- the rule ------------------------------------------------------------------------------------------------


def _bill(
    statement_id: str,
    profile: str,
    *,
    minute: int = 0,
    days: tuple[int, int] = (20, 20),
    status: StatementStatus = StatementStatus.PARSED,
    source: Source = Source.ALIPAY,
) -> Statement:
    return Statement(
        statement_id=statement_id,
        project_id="p",
        source=source,
        account_id="a",
        business_date=DAY,
        raw_key=f"raw/p/a/2026-11-20/{statement_id}.zip",
        checksum=statement_id * 8,
        size=1,
        status=status,
        format=profile,
        profile=profile,
        parsed_at=T0 + timedelta(minutes=minute),
        period_start=date(2026, 11, days[0]),
        period_end=date(2026, 11, days[1]),
    )


def _kind(profile: str) -> str | None:
    view = view_of(profile)
    return view.kind if view else None


def test_the_view_of_a_bill_is_known_from_its_profile_family() -> None:
    assert view_of("alipay.trade.zip") == view_of("alipay.trade.csv") == view_of("alipay.trade.mine")
    assert _kind("alipay.signcustomer.zip") == _kind("alipay.signcustomer.csv") == "fund-flow"
    assert _kind("wechat.tradebill.success") == _kind("wechat.tradebill.all_legacy") == "trade"
    assert _kind("wechat.fundflow") == "fund-flow" and "资金账单" in str(view_of("wechat.fundflow"))
    assert view_of("alipay.tradex") is None and view_of("erp.orders.csv") is None and view_of("mt940") is None


def test_a_bill_of_the_other_view_for_overlapping_days_conflicts_with_the_first_accepted() -> None:
    trade = _bill("trade", "alipay.trade.zip")
    period = (DAY, DAY)
    assert view_conflict("alipay.signcustomer.zip", period, [trade], account_format=None) == trade
    # A monthly 账务明细 overlaps the day's 业务明细 too.
    month = (date(2026, 11, 1), date(2026, 11, 30))
    assert view_conflict("alipay.signcustomer.zip", month, [trade], account_format="alipay") == trade
    # The same view in another layout, another day, another channel: no conflict.
    assert view_conflict("alipay.trade.csv", period, [trade], account_format=None) is None
    assert (
        view_conflict("alipay.signcustomer.zip", (DAY + timedelta(1),) * 2, [trade], account_format=None)
        is None
    )
    assert view_conflict("wechat.fundflow", period, [trade], account_format=None) is None
    # WeChat SUCCESS and REFUND beside ALL are one view (overlap marks handle them).
    all_bill = _bill("all", "wechat.tradebill.all", source=Source.WECHAT)
    assert view_conflict("wechat.tradebill.success", period, [all_bill], account_format=None) is None
    assert view_conflict("wechat.fundflow", period, [all_bill], account_format=None) == all_bill


def test_only_an_accepted_current_statement_admitted_by_the_account_format_holds_the_days() -> None:
    period = (DAY, DAY)
    quarantined = _bill("bad", "alipay.trade.zip", status=StatementStatus.QUARANTINED)
    replaced = _bill("old", "alipay.trade.zip").model_copy(update={"superseded_by": "newer"})
    assert (
        view_conflict("alipay.signcustomer.zip", period, [quarantined, replaced], account_format=None) is None
    )
    trade = _bill("trade", "alipay.trade.zip")
    # The account's format chose the 账务明细: the 业务明细 read before it no longer holds the days.
    assert (
        view_conflict("alipay.signcustomer.zip", period, [trade], account_format="alipay.signcustomer")
        is None
    )
    # The first accepted one is named.
    later = _bill("trade2", "alipay.trade.csv", minute=1)
    assert view_conflict("alipay.signcustomer.csv", period, [trade, later], account_format=None) == trade


def test_an_accepted_bill_of_the_other_view_replaces_the_first_one() -> None:
    """Accepted after the first view only when the account's format chose it: then it is the one that counts."""
    trade = _bill("trade", "alipay.trade.zip")
    flow = _bill("flow", "alipay.signcustomer.zip", minute=1)
    assert supersedes(flow, trade) and not supersedes(trade, flow)
    assert current_statements([trade, flow]) == [flow]
    held = flow.model_copy(update={"status": StatementStatus.QUARANTINED})
    assert not supersedes(held, trade) and current_statements([trade, held]) == [trade, held]
    wechat_all = _bill("all", "wechat.tradebill.all", source=Source.WECHAT)
    success = _bill("success", "wechat.tradebill.success", minute=1, source=Source.WECHAT)
    assert not supersedes(success, wechat_all)  # one view
    other_days = _bill("next", "alipay.signcustomer.zip", minute=1, days=(21, 21))
    assert not supersedes(other_days, trade)


def test_a_view_conflict_is_settled_by_the_account_format_naming_the_file_view() -> None:
    error = RowError(file="f", row=0, reason="two views of the same Alipay bills: ...")
    held = _bill("flow", "alipay.signcustomer.zip", status=StatementStatus.QUARANTINED).model_copy(
        update={"errors": [error]}
    )
    assert refused_for_view(held.errors) and refused_for_view([str(error)])
    assert not view_conflict_settled(held, None) and not view_conflict_settled(held, "alipay.trade")
    assert view_conflict_settled(held, "alipay.signcustomer") and view_conflict_settled(
        held, "alipay.signcustomer.zip"
    )
    assert not view_conflict_settled(held, "alipay")  # admits both views: the file would be refused again
    other = held.model_copy(update={"errors": [error, RowError(file="f", row=3, reason="not an amount")]})
    assert not refused_for_view(other.errors) and not view_conflict_settled(other, "alipay.signcustomer")


# --- the parse stage and the day ----------------------------------------------------------------------------


@pytest.fixture
def svc() -> Services:
    return memory_services("demo", PROJECT_TEXT, clock=Clock(T0))


def _alerts(svc: Services) -> MemoryAlertPublisher:
    assert isinstance(svc.alerts, MemoryAlertPublisher)
    return svc.alerts


def _deliver(svc: Services, account_id: str, name: str, data: bytes) -> Statement:
    key = raw_key("demo", account_id, DAY, name)
    svc.store.put("raw", key, data)
    out = ingest_upload("raw", key, svc)
    assert out is not None
    found = svc.repo.get_statement(out.statements[0].statement_id)
    assert found is not None
    return found


def _deliver_day(svc: Services) -> None:
    day = generate_day(DAY)
    for account_id in sorted(day.files):
        name, data = day.files[account_id]
        key = raw_key("demo", account_id, day.statement_dates[account_id], name)
        svc.store.put("raw", key, data)
        ingest_upload("raw", key, svc)


def _reconcile(svc: Services) -> tuple[Run, list[Case]]:
    started = start_run(StartRunInput(project_id="demo", business_date=DAY), svc)
    parsed = [parse_channel(task, svc) for task in started.channels]
    ref = RunRef(run_id=started.run_id, project_id="demo", business_date=DAY)
    match_run(MatchInput(**ref.model_dump(), channels=parsed), svc)
    resolve_run(ref, svc)
    run = svc.repo.get_run(started.run_id)
    assert run is not None
    return run, svc.repo.list_cases(started.run_id)


def _set_format(svc: Services, account_id: str, fmt: str, *, profile: str | None = None) -> None:
    named = f"    format: {fmt}\n" + (f"    profile: {profile}\n" if profile else "")
    text = PROJECT_TEXT.replace(f"  - account_id: {account_id}\n", f"  - account_id: {account_id}\n{named}")
    assert text != PROJECT_TEXT
    svc.store.put("data", project_config_key("demo"), text.encode())


def _kinds(cases: list[Case]) -> Counter[str]:
    return Counter(c.type.value for c in cases)


@pytest.fixture(scope="module")
def single_view() -> tuple[Counter[str], int]:
    """The demo day reconciled from the 业务明细 alone: its cases and the Alipay rows in."""
    svc = memory_services("demo", PROJECT_TEXT, clock=Clock(T0))
    _deliver_day(svc)
    run, cases = _reconcile(svc)
    alipay = next(s for s in run.sources if s.source is Source.ALIPAY)
    return _kinds(cases), alipay.rows_in


def test_alipay_fund_flow_bill_beside_the_trade_bill_is_quarantined_and_nothing_counts_twice(
    svc: Services, single_view: tuple[Counter[str], int]
) -> None:
    _deliver_day(svc)
    (trade,) = svc.repo.list_statements("demo", "alipay-main", DAY)
    flow_bytes = BillBook().get("alipay.signcustomer", DAY.isoformat())
    assert flow_bytes is not None
    flow = _deliver(svc, "alipay-main", FUND_FLOW_NAME, flow_bytes)

    assert flow.status is StatementStatus.QUARANTINED and flow.rows_parsed == 0
    (error,) = flow.errors
    reason = error.reason
    assert error.file == flow.raw_key and trade.raw_key in reason
    assert "账务明细 (fund-flow bill) for 2026-11-20" in reason and "业务明细 (trade bill)" in reason
    assert "every order would count twice" in reason
    assert "An account reconciles one view of its Alipay bills" in reason
    assert "to keep the 业务明细 (trade bill), nothing needs to change" in reason
    assert "setting the account's format to alipay.trade refuses such files up front" in reason
    assert "set the account's format to alipay.signcustomer and upload this file again" in reason
    # Nothing is lost: the file is kept beside its report, and the alert is the usual quarantine alert.
    assert svc.store.get("raw", flow.raw_key) == flow_bytes
    report = json.loads(svc.store.get("data", (flow.quarantine_key or "") + ".error.json"))
    assert report["errors"][0]["reason"] == reason and report["format"] == "alipay.signcustomer.zip"
    (alert,) = [a for a in _alerts(svc).published if a.attributes["kind"] == "statement_quarantined"]
    assert flow.raw_key in alert.message and trade.raw_key in alert.message

    # The same bytes again (a re-delivered event, a second "download all"): recognised, not read again.
    again = _deliver(svc, "alipay-main", "copy.zip", flow_bytes)
    assert again == flow and len(_alerts(svc).published) == 1

    run, cases = _reconcile(svc)
    alipay_files = [(f.raw_key, f.status) for f in run.files if f.account_id == "alipay-main"]
    assert sorted(alipay_files) == sorted([(trade.raw_key, "parsed"), (flow.raw_key, "quarantined")])
    assert run.quarantined_files == 1
    # The day reconciles as from the trade bill alone: no false 长款, no doubled settlement net, and the
    # account is not held as incomplete (its view of the day is whole).
    kinds, rows_in = single_view
    alipay = next(s for s in run.sources if s.source is Source.ALIPAY)
    assert alipay.rows_in == rows_in
    assert _kinds(cases) == kinds
    # Nor is the day INCOMPLETE: the refused file is no missing statement (the engine's rule, one place).
    assert missing_statements(Project.from_yaml(PROJECT_TEXT), run) == []


@pytest.mark.parametrize("profile", [None, "alipay.signcustomer.zip"], ids=["detected", "profile-named"])
def test_setting_the_account_format_to_the_fund_flow_view_and_uploading_again_switches_the_view(
    svc: Services, profile: str | None
) -> None:
    _deliver_day(svc)
    (trade,) = svc.repo.list_statements("demo", "alipay-main", DAY)
    flow_bytes = BillBook().get("alipay.signcustomer", DAY.isoformat())
    assert flow_bytes is not None
    held = _deliver(svc, "alipay-main", FUND_FLOW_NAME, flow_bytes)
    assert held.status is StatementStatus.QUARANTINED

    _set_format(svc, "alipay-main", "alipay.signcustomer", profile=profile)
    flow = _deliver(svc, "alipay-main", FUND_FLOW_NAME, flow_bytes)  # the same bytes, read again now
    assert flow.statement_id == held.statement_id and flow.status is StatementStatus.PARSED
    assert svc.repo.list_statements("demo", "alipay-main", DAY) == [flow]
    replaced = svc.repo.get_statement(trade.statement_id)
    assert replaced is not None and replaced.superseded_by == flow.statement_id
    run, _ = _reconcile(svc)
    # The trade bill is still listed (it was delivered), replaced by the fund-flow bill; only that one is read.
    assert sorted(
        (f.raw_key, f.status, f.superseded_by) for f in run.files if f.account_id == "alipay-main"
    ) == sorted([(flow.raw_key, "parsed", None), (trade.raw_key, "superseded", flow.raw_key)])
    alipay = next(s for s in run.sources if s.source is Source.ALIPAY)
    assert alipay.rows_in == flow.rows_parsed

    # Delivered again: idempotent from now on.
    assert _deliver(svc, "alipay-main", FUND_FLOW_NAME, flow_bytes) == flow


def test_account_format_decides_alone_when_it_names_one_view(svc: Services) -> None:
    _set_format(svc, "alipay-main", "alipay.trade")
    _deliver_day(svc)
    flow_bytes = BillBook().get("alipay.signcustomer", DAY.isoformat())
    assert flow_bytes is not None
    flow = _deliver(svc, "alipay-main", FUND_FLOW_NAME, flow_bytes)
    assert [e.reason for e in flow.errors] == [
        "file is a alipay.signcustomer.zip statement but account alipay-main expects format alipay.trade"
    ]


def test_wechat_fund_flow_bill_beside_the_trade_bill_is_quarantined_and_success_beside_all_is_not(
    svc: Services,
) -> None:
    _deliver_day(svc)
    book = BillBook()
    success = book.get("wechat.tradebill.SUCCESS", DAY.isoformat())
    basic = book.get("wechat.fundflowbill.BASIC", DAY.isoformat())
    assert success is not None and basic is not None
    assert _deliver(svc, "wechat-main", "success.csv", success).status is StatementStatus.PARSED
    flow = _deliver(svc, "wechat-main", "fundflow_basic.csv", basic)
    assert flow.status is StatementStatus.QUARANTINED
    (error,) = flow.errors
    assert error.reason.startswith(
        "two views of the same WeChat Pay bills: this file is the 资金账单 (fund-flow bill) for 2026-11-20, "
        "and the 交易账单 (trade bill) raw/demo/wechat-main/2026-11-20/"
    )
    assert "set the account's format to wechat.fundflow" in error.reason


def test_an_account_format_admitting_both_views_leaves_the_first_view_in_place(svc: Services) -> None:
    _set_format(svc, "alipay-main", "alipay")
    _deliver_day(svc)
    flow_bytes = BillBook().get("alipay.signcustomer", DAY.isoformat())
    assert flow_bytes is not None
    flow = _deliver(svc, "alipay-main", FUND_FLOW_NAME, flow_bytes)
    assert flow.status is StatementStatus.QUARANTINED and refused_for_view(flow.errors)
    alerts = len(_alerts(svc).published)
    assert _deliver(svc, "alipay-main", FUND_FLOW_NAME, flow_bytes) == flow  # not read again
    assert len(_alerts(svc).published) == alerts


def _with_comment(zipped: bytes) -> bytes:
    """The same bill zip with an archive comment: other bytes, the same rows (a corrected re-issue)."""
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(zipped)) as source, zipfile.ZipFile(out, "w") as target:
        for info in source.infolist():
            target.writestr(info, source.read(info))
        target.comment = b"re-issued"
    return out.getvalue()


def test_a_corrected_bill_of_the_view_that_counts_still_replaces_the_first(svc: Services) -> None:
    _deliver_day(svc)
    (trade,) = svc.repo.list_statements("demo", "alipay-main", DAY)
    flow_bytes = BillBook().get("alipay.signcustomer", DAY.isoformat())
    assert flow_bytes is not None
    held = _deliver(svc, "alipay-main", FUND_FLOW_NAME, flow_bytes)
    name, trade_bytes = generate_day(DAY).files["alipay-main"]
    corrected = _deliver(svc, "alipay-main", "corrected_" + name, _with_comment(trade_bytes))
    assert corrected.status is StatementStatus.PARSED and corrected.profile == trade.profile
    # It replaces the first 业务明细, and (a newer upload of the day replaces a quarantined file of the same
    # days) the held 账务明细 too: one file of the account counts for the day.
    assert svc.repo.list_statements("demo", "alipay-main", DAY) == [corrected]
    for older in (trade, held):
        replaced = svc.repo.get_statement(older.statement_id)
        assert replaced is not None and replaced.superseded_by == corrected.statement_id
