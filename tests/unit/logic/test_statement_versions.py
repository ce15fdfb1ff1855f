"""Which statements count for a day (``recon.statement_versions``), re-uploads through the upload trigger, and
statements filed for a day they do not cover. In-memory adapters, the demo project, a generated day."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta

import pytest

from recon.domain import Source, Statement, StatementStatus
from recon.keys import raw_key, report_prefix
from recon.pipeline.contracts import MatchInput, RunRef, StartRunInput
from recon.pipeline.match import match_run
from recon.pipeline.parse import ingest_upload, parse_channel
from recon.pipeline.projects import upload_execution_name
from recon.pipeline.report import report_run
from recon.pipeline.resolve import resolve_run
from recon.pipeline.run import start_run
from recon.pipeline.services import Services
from recon.statement_versions import current_statements, superseded, supersedes
from recon.tables import read_parquet
from recon_local.demo_data import DemoDay, generate_day

from .conftest import DAY, REPO, Clock, memory_services

PROJECT_TEXT = (REPO / "local/recon_local/projects/demo.yaml").read_text("utf-8")
T0 = datetime(2026, 11, 21, 2, 0, tzinfo=UTC)


# --- the rule ------------------------------------------------------------------------------------------------


def _st(
    statement_id: str,
    *,
    key: str = "raw/p/a/2026-11-20/a.csv",
    minute: int = 0,
    period: tuple[int, int] | None = (20, 20),
    status: StatementStatus = StatementStatus.PARSED,
    source: Source = Source.ERP,
    profile: str = "erp.orders",
) -> Statement:
    return Statement(
        statement_id=statement_id,
        project_id="p",
        source=source,
        profile=profile,
        account_id="a",
        business_date=DAY,
        raw_key=key,
        checksum=statement_id * 8,
        size=1,
        status=status,
        parsed_at=T0 + timedelta(minutes=minute),
        period_start=date(2026, 11, period[0]) if period else None,
        period_end=date(2026, 11, period[1]) if period else None,
    )


def test_a_newer_upload_of_the_same_key_replaces_the_older_whatever_it_covers() -> None:
    old = _st("old", status=StatementStatus.QUARANTINED, period=None)
    new = _st("new", minute=1, period=(19, 20))
    assert supersedes(new, old) and not supersedes(old, new)  # only the later upload replaces
    assert current_statements([old, new]) == [new]
    assert superseded([new, old]) == {"old": "new"}


def test_another_file_name_replaces_only_a_quarantined_statement_of_the_same_period() -> None:
    old = _st("old", key="raw/p/a/2026-11-20/bill.csv", status=StatementStatus.QUARANTINED)
    fixed = _st("fixed", key="raw/p/a/2026-11-20/bill-fixed.csv", minute=1)
    other_days = _st("week", key="raw/p/a/2026-11-20/week.csv", minute=2, period=(14, 20))
    assert supersedes(fixed, old)
    assert not supersedes(other_days, fixed)  # a longer statement is an overlap (rows marked), not a version
    assert current_statements([old, fixed, other_days]) == [fixed, other_days]


def test_two_parsed_files_of_one_day_under_different_names_both_count() -> None:
    """An ERP export in two parts: replacing one by the other would hide its rows."""
    part1 = _st("part1", key="raw/p/a/2026-11-20/orders-1.csv")
    part2 = _st("part2", key="raw/p/a/2026-11-20/orders-2.csv", minute=1)
    assert not supersedes(part2, part1)
    assert current_statements([part1, part2]) == [part1, part2]


def test_a_second_channel_bill_of_the_same_kind_and_period_is_a_corrected_version() -> None:
    """WeChat Pay and Alipay issue one bill of a kind per account and day: a second one under another name
    replaces the first (whichever rows changed), while another kind of bill or another period counts too."""

    def bill(statement_id: str, name: str, minute: int, **other: object) -> Statement:
        return _st(
            statement_id, key=f"raw/p/a/2026-11-20/{name}", minute=minute, source=Source.WECHAT
        ).model_copy(update={"profile": "wechat.tradebill.all", **other})

    first, fixed = bill("first", "bill.csv", 0), bill("fixed", "bill_v2.csv", 1)
    # The REFUND bill is another kind of the same (trade) view; a fund-flow bill is another view of the
    # same money, which the account does not reconcile beside it (test_bill_views).
    refunds = bill("refunds", "refunds.csv", 2, profile="wechat.tradebill.refund")
    week = bill("week", "week.csv", 3, period_start=date(2026, 11, 14))
    assert supersedes(fixed, first) and not supersedes(first, fixed)
    assert not supersedes(refunds, fixed) and not supersedes(week, fixed)
    assert current_statements([first, fixed, refunds, week]) == [fixed, refunds, week]


def test_duplicates_other_days_and_stored_marks() -> None:
    old = _st("old")
    duplicate = _st("dup", minute=1, status=StatementStatus.DUPLICATE)
    assert not supersedes(duplicate, old)
    elsewhere = _st("else", minute=1).model_copy(update={"business_date": date(2026, 11, 21)})
    assert not supersedes(elsewhere, old)
    marked = old.model_copy(update={"superseded_by": "someone"})
    assert current_statements([marked, duplicate]) == [duplicate]


# --- through the upload trigger ------------------------------------------------------------------------------


@pytest.fixture
def svc() -> Services:
    return memory_services("demo", PROJECT_TEXT, clock=Clock(T0))


@pytest.fixture(scope="module")
def day() -> DemoDay:
    return generate_day(DAY)


def _bad_wechat(data: bytes) -> bytes:
    """The bill with a wrong stated count: the file is quarantined (control total)."""
    lines = data.decode("utf-8").splitlines(keepends=True)
    lines[-1] = lines[-1].replace("`", "`9", 1)
    return "".join(lines).encode("utf-8")


def _put(
    svc: Services, day: DemoDay, account_id: str, data: bytes | None = None, name: str | None = None
) -> str:
    file_name, content = day.files[account_id]
    key = raw_key("demo", account_id, day.statement_dates[account_id], name or file_name)
    svc.store.put("raw", key, content if data is None else data)
    out = ingest_upload("raw", key, svc)
    assert out is not None
    return out.statements[0].status


def _executions(svc: Services) -> list[str]:
    return sorted(svc.workflow.executions)  # type: ignore[attr-defined]


def _day_with_bad_wechat(svc: Services, day: DemoDay) -> None:
    for account_id in sorted(day.files):
        data = _bad_wechat(day.files[account_id][1]) if account_id == "wechat-main" else None
        expected = "quarantined" if account_id == "wechat-main" else "parsed"
        assert _put(svc, day, account_id, data) == expected
    assert len(_executions(svc)) == 1


def _match(svc: Services):  # the stages a run goes through, up to the match stage's record
    started = start_run(StartRunInput(project_id="demo", business_date=DAY), svc)
    parsed = [parse_channel(task, svc) for task in started.channels]
    ref = RunRef(run_id=started.run_id, project_id="demo", business_date=DAY)
    match_run(MatchInput(**ref.model_dump(), channels=parsed), svc)
    run = svc.repo.get_run(started.run_id)
    assert run is not None
    return run


def test_corrected_upload_to_the_same_key_starts_the_day_again_and_replaces_the_bad_version(
    svc: Services, day: DemoDay
) -> None:
    _day_with_bad_wechat(svc, day)
    first = _executions(svc)
    _put(svc, day, "wechat-main", _bad_wechat(day.files["wechat-main"][1]))  # the same bad bytes again
    assert _executions(svc) == first
    bad = svc.repo.list_statements("demo", "wechat-main", DAY)
    assert [s.status for s in bad] == [StatementStatus.QUARANTINED]

    assert _put(svc, day, "wechat-main") == "parsed"  # the corrected file, same key
    assert len(_executions(svc)) == 2  # a new version of the day's inputs: the day runs again
    payloads = [e.payload for e in svc.workflow.executions.values()]  # type: ignore[attr-defined]
    assert all(
        p == {"project_id": "demo", "business_date": "2026-11-20", "trigger": "upload"} for p in payloads
    )
    _put(svc, day, "wechat-main")  # the event delivered again
    _put(svc, day, "wechat-main", name="copy_of_the_bill.csv")  # the same bytes under another name
    assert len(_executions(svc)) == 2

    (current,) = svc.repo.list_statements("demo", "wechat-main", DAY)
    assert current.status is StatementStatus.PARSED
    every = svc.repo.list_statements("demo", "wechat-main", DAY, include_superseded=True)
    old = next(s for s in every if s.statement_id == bad[0].statement_id)
    assert old.status is StatementStatus.QUARANTINED and old.superseded_by == current.statement_id
    assert [e.action for e in svc.repo.list_audit(old.statement_id)] == [
        "statement.quarantined",
        "statement.superseded",
    ]
    run = _match(svc)
    assert run.quarantined_files == 0
    wechat = {f.status: f for f in run.files if f.account_id == "wechat-main"}
    assert sorted(wechat) == ["parsed", "superseded"]  # the bad version is listed: it was delivered
    replaced = wechat["superseded"]
    assert replaced.superseded_by == current.raw_key == replaced.raw_key  # the object was overwritten
    assert replaced.errors  # why it was quarantined
    assert len(run.files) == 5


def test_corrected_file_under_another_name_replaces_the_quarantined_one(svc: Services, day: DemoDay) -> None:
    _day_with_bad_wechat(svc, day)
    assert _put(svc, day, "wechat-main", name="wechat_corrected.csv") == "parsed"
    assert len(_executions(svc)) == 2
    (current,) = svc.repo.list_statements("demo", "wechat-main", DAY)
    assert current.raw_key.endswith("/wechat_corrected.csv")
    assert _match(svc).quarantined_files == 0


def test_new_parsed_version_counts_its_own_rows_not_overlaps_of_the_old_one(
    svc: Services, day: DemoDay
) -> None:
    for account_id in sorted(day.files):
        _put(svc, day, account_id)
    (old,) = svc.repo.list_statements("demo", "wechat-main", DAY)
    # A new version with the same rows (one more space at the end of the header: other bytes).
    newer = day.files["wechat-main"][1].replace(b"\r\n", b" \r\n", 1)
    assert _put(svc, day, "wechat-main", newer) == "parsed"
    (latest,) = svc.repo.list_statements("demo", "wechat-main", DAY)
    assert latest.statement_id != old.statement_id
    assert latest.rows_overlapping == 0  # not marked as repeats of the version it replaces
    rows = read_parquet(svc.store.get("data", latest.parquet_key or ""))
    assert rows.column("overlap_of").null_count == rows.num_rows == old.rows_parsed
    assert len(_executions(svc)) == 2
    run = _match(svc)
    wechat = [f for f in run.files if f.account_id == "wechat-main" and f.status == "parsed"]
    assert [(f.raw_key, f.rows_parsed) for f in wechat] == [(latest.raw_key, old.rows_parsed)]  # counted once


def test_a_second_wechat_bill_under_another_name_replaces_the_first(svc: Services, day: DemoDay) -> None:
    """The corrected bill replaces the first one (its rows are not filtered as repeats of the old rows)."""
    for account_id in sorted(day.files):
        _put(svc, day, account_id)
    (old,) = svc.repo.list_statements("demo", "wechat-main", DAY)
    newer = day.files["wechat-main"][1].replace(b"\r\n", b" \r\n", 1)  # other bytes, the same rows
    assert _put(svc, day, "wechat-main", newer, name="wechat_bill_v2_corrected.csv") == "parsed"
    (latest,) = svc.repo.list_statements("demo", "wechat-main", DAY)
    assert latest.raw_key.endswith("/wechat_bill_v2_corrected.csv") and latest.rows_overlapping == 0
    every = svc.repo.list_statements("demo", "wechat-main", DAY, include_superseded=True)
    assert next(s for s in every if s.statement_id == old.statement_id).superseded_by == latest.statement_id
    ref = RunRef(run_id=_match(svc).run_id, project_id="demo", business_date=DAY)
    resolve_run(ref, svc)
    report_run(ref, svc)
    run = svc.repo.get_run(ref.run_id)
    assert run is not None
    wechat = [
        (f.raw_key, f.status, f.rows_parsed, f.superseded_by)
        for f in run.files
        if f.account_id == "wechat-main"
    ]
    # Both delivered files are listed; the first says which file replaced it. Only the new one is read.
    assert sorted(wechat) == sorted(
        [
            (old.raw_key, "superseded", old.rows_parsed, latest.raw_key),
            (latest.raw_key, "parsed", old.rows_parsed, None),
        ]
    )
    (rows,) = [s for s in run.sources if s.source is Source.WECHAT]
    assert rows.rows_in == old.rows_parsed  # its rows are in no figure of the run: counted once
    assert run.quarantined_files == 0 and "wechat-main" not in (run.error or "")
    prefix = report_prefix("demo", DAY, run.run_id)
    summary = json.loads(svc.store.get("data", prefix + "summary.json"))
    (listed,) = [f for f in summary["files"] if f["status"] == "superseded"]
    assert (listed["raw_key"], listed["superseded_by"]) == (old.raw_key, latest.raw_key)
    assert summary["sources"]["wechat"]["rows_in"] == old.rows_parsed
    html = svc.store.get("data", prefix + "report.html").decode("utf-8")
    files_table = html[html.index('<table id="files">') :]
    files_table = files_table[: files_table.index("</table>")]
    assert f"<code>{old.raw_key}</code>" in files_table
    assert f"superseded by\n <code>{latest.raw_key}</code>" in files_table


def test_upload_execution_name_is_deterministic_per_set_of_versions() -> None:
    a, b = _st("a"), _st("b", key="raw/p/a/2026-11-20/b.csv", minute=1)
    name = upload_execution_name("demo", DAY, [a, b])
    assert name == upload_execution_name("demo", DAY, [b, a]) and name.startswith("demo-20261120-upload-")
    assert name != upload_execution_name("demo", DAY, [a])
    fixed = b.model_copy(update={"status": StatementStatus.QUARANTINED})
    assert name != upload_execution_name("demo", DAY, [a, fixed])
    assert len(name) <= 80


# --- a statement filed for a day it does not cover ----------------------------------------------------------


def test_bank_statement_of_another_day_is_quarantined_with_its_rows_rejected(svc: Services) -> None:
    later = generate_day(DAY + timedelta(days=1))  # its bank statement is dated 2026-11-22
    name, data = later.files["bank-cmb"]
    key = raw_key("demo", "bank-cmb", date(2026, 11, 21), name)  # filed for the run of 2026-11-20
    svc.store.put("raw", key, data)
    out = ingest_upload("raw", key, svc)
    assert out is not None and out.quarantined == 1
    (statement,) = svc.repo.list_statements("demo", "bank-cmb", DAY)
    assert statement.status is StatementStatus.QUARANTINED and statement.balanced
    assert (
        statement.rows_parsed == 0
        and statement.rows_rejected == statement.rows_read - statement.rows_skipped > 0
    )
    error = str(statement.errors[0])
    assert key in error and "2026-11-22" in error and "filed for 2026-11-21" in error
    assert any("quarantined" in a.subject for a in svc.alerts.published)  # type: ignore[attr-defined]


def test_bill_whose_rows_are_of_another_day_is_quarantined(svc: Services, day: DemoDay) -> None:
    name, data = day.files["wechat-main"]
    key = raw_key("demo", "wechat-main", DAY + timedelta(days=1), name)
    svc.store.put("raw", key, data)
    out = ingest_upload("raw", key, svc)
    assert out is not None and out.quarantined == 1
    assert "statement is for 2026-11-20" in (out.statements[0].error or "")


def test_statement_filed_for_a_day_it_covers_is_accepted(svc: Services, day: DemoDay) -> None:
    assert _put(svc, day, "bank-cmb") == "parsed"
