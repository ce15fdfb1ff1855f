"""A bank statement covering several days is reconciled under every day it covers, as if the bank had sent
one statement a day (recon.pipeline.statement_days): stored per booking day, listed for each day's run,
started for each day, not counted twice beside a daily statement, and chained without false breaks."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pyarrow as pa
import pytest

from recon.adapters._shared import execution_name
from recon.adapters.memory import MemoryWorkflowStarter
from recon.domain import Project, Statement
from recon.pipeline.chain import chain_break
from recon.pipeline.contracts import RunRef, StartRunInput
from recon.pipeline.match import _day_statements, _not_delivered, unavailable_accounts
from recon.pipeline.parse import _day_inputs, reparse_statement, upload_runs
from recon.pipeline.projects import upload_execution_name
from recon.pipeline.services import Services
from recon.pipeline.statement_days import covered_days, rows_by_day
from recon.tables import read_parquet

from .test_parse_stage import (
    ACME_V1,
    ACME_V2,
    PROJECT,
    _alerts,
    _deliver,
    _services,
    _upload_profile,
    acme_csv,
    mt940,
)

D = {n: date(2026, 11, n) for n in range(19, 28)}


@pytest.fixture
def svc() -> Services:
    service = _services()
    _upload_profile(service, "bank.acme.csv", "1", ACME_V1)
    return service


def _txn_ids(svc: Services, key: str | None) -> list[str]:
    assert key is not None
    return [str(t) for t in read_parquet(svc.store.get("data", key)).column("txn_id").to_pylist()]


def _ref(day: date) -> RunRef:
    return RunRef(run_id=f"acme-{day:%Y%m%d}", project_id="acme", business_date=day)


def _week(svc: Services) -> Statement:
    """An ACME export of 11-21..11-23 (nothing booked on the 22nd), filed under the 21st."""
    return _deliver(
        svc,
        "bank-acme",
        D[21],
        "week.csv",
        acme_csv(
            ("2026-11-21", "R1", "Payout", "100.00"),
            ("2026-11-23", "R3", "Payout", "80.00"),
            ("2026-11-21", "R2", "Payout", "90.00"),
        ),
    )


# --- splitting --------------------------------------------------------------------------------------------


def test_every_row_is_in_the_day_it_was_booked_in_file_order() -> None:
    booked = [
        datetime(2026, 11, 21, 3, tzinfo=UTC),  # 11:00 in Shanghai, the 21st
        datetime(2026, 11, 21, 17, tzinfo=UTC),  # 01:00 on the 22nd in Shanghai: the booking day is local
        None,  # no booking time: the day the file is filed under
        datetime(2026, 11, 20, 18, tzinfo=UTC),  # 02:00 on the 21st
    ]
    table = pa.table({"booked_at": pa.array(booked, pa.timestamp("us", tz="UTC")), "n": [0, 1, 2, 3]})

    days = rows_by_day(table, "Asia/Shanghai", (D[21], D[23]), filed_day=D[23])

    assert [(day, part.column("n").to_pylist()) for day, part in days] == [
        (D[21], [0, 3]),
        (D[22], [1]),
        (D[23], [2]),
    ]
    assert sum(part.num_rows for _, part in days) == table.num_rows
    assert covered_days((D[21], D[21])) == [D[21]]
    with pytest.raises(ValueError, match="outside the statement's period"):
        rows_by_day(table, "Asia/Shanghai", (D[22], D[23]), filed_day=D[23])


# --- storing and listing ----------------------------------------------------------------------------------


def test_a_statement_covering_several_days_is_stored_per_day_and_listed_for_each(svc: Services) -> None:
    week = _week(svc)

    assert (week.period_start, week.period_end, week.rows_parsed, week.rows_skipped) == (D[21], D[23], 3, 1)
    assert [(d.day, d.business_date, d.rows, d.rows_skipped) for d in week.days] == [
        (D[21], D[21], 2, 1),  # the header line is counted once, on the day the file is filed under
        (D[22], D[22], 0, 0),  # covered, nothing booked: no object, but the day has its statement
        (D[23], D[23], 1, 0),
    ]
    assert _txn_ids(svc, week.days[0].parquet_key) == ["R1", "R2"]
    assert week.days[1].parquet_key is None
    assert _txn_ids(svc, week.days[2].parquet_key) == ["R3"]
    assert _txn_ids(svc, week.parquet_key) == ["R1", "R3", "R2"]  # the whole file stays as read
    for day in (21, 22, 23):
        assert [s.statement_id for s in svc.repo.list_statements("acme", "bank-acme", D[day])] == [
            week.statement_id
        ]
    assert svc.repo.list_statements("acme", "bank-acme", D[24]) == []


def test_each_day_run_reads_its_day_and_the_runs_add_up_to_the_file(svc: Services) -> None:
    week = _week(svc)
    project = Project.from_yaml(PROJECT)

    read = {day: _day_statements(svc, project, _ref(D[day])) for day in (21, 22, 23)}

    assert read[21][0] == [(week.days[0].parquet_key, 2)]
    assert read[22][0] == []
    assert read[23][0] == [(week.days[2].parquet_key, 1)]
    files = [f for day in (21, 22, 23) for f in read[day][1]]
    assert [(f.day, f.rows_read, f.rows_parsed, f.rows_skipped) for f in files] == [
        (D[21], 3, 2, 1),
        (D[22], 0, 0, 0),
        (D[23], 1, 1, 0),
    ]
    assert all(f.rows_read == f.rows_parsed + f.rows_skipped + f.rows_rejected for f in files)
    assert sum(f.rows_read for f in files) == week.rows_read == files[0].file_rows_read
    # The day with nothing booked has its statement: its rows are not held as awaiting one.
    assert "bank-acme" not in unavailable_accounts(project, read[22][1])


def test_the_upload_starts_the_covered_days_one_after_the_other_once_their_inputs_are_in(
    svc: Services,
) -> None:
    """Each day's run carries over the open items of the day before: run at once, a day would read them as
    they were before the day before was run again with this file. So the upload starts the earliest day,
    and its input names the next day's run, which the state machine starts when the run ends."""
    workflow = svc.workflow
    assert isinstance(workflow, MemoryWorkflowStarter)
    _week(svc)
    assert workflow.executions == {}  # the EUR account has delivered nothing yet
    eur_week = mt940(D[21], "1000.00", [("E1", "5.00")]) + mt940(D[22], "1005.00", [("E2", "5.00")])
    _deliver(svc, "bank-eur", D[22], "week.sta", eur_week + mt940(D[23], "1010.00", [("E3", "5.00")]))

    (started,) = workflow.executions.values()  # the first day only
    project = Project.from_yaml(PROJECT)
    names = [
        upload_execution_name("acme", D[day], _day_inputs(svc, project, D[day]) or []) for day in (21, 22, 23)
    ]
    assert started.name == names[0]
    first = StartRunInput.model_validate(started.payload)
    chain = [(started.name, first)]
    while (then := chain[-1][1].then) is not None:
        chain.append((then.name, then.input))
    assert [(name, run.business_date, run.trigger, run.days_after) for name, run in chain] == [
        (names[0], D[21], "upload", [D[22], D[23]]),
        (names[1], D[22], "upload", [D[23]]),
        (names[2], D[23], "upload", []),
    ]
    assert "then" not in chain[-1][1].model_dump(mode="json", exclude_defaults=True)  # the last day ends it
    assert "then" not in started.payload["then"]["input"]["then"]["input"]

    # The same file again (another name, same bytes): the same statement and chain, nothing started again.
    _deliver(
        svc,
        "bank-acme",
        D[21],
        "week-again.csv",
        svc.store.get("raw", "raw/acme/bank-acme/2026-11-21/week.csv"),
    )
    assert list(workflow.executions.values()) == [started]


def test_an_upload_chain_is_in_date_order_and_its_names_are_valid_execution_names() -> None:
    long_project = "p" * 63
    days: list[tuple[date, list[Statement]]] = [(D[23], []), (D[21], []), (D[22], [])]
    first = upload_runs(long_project, days)
    assert first.input.days_after == [D[22], D[23]] and first.input.business_date == D[21]
    assert len(first.name) <= 80 and execution_name(first.name) == first.name
    with pytest.raises(ValueError, match="days_after"):
        StartRunInput(project_id="acme", business_date=D[21], then=first, days_after=[D[22]])


def test_a_statement_stored_whole_before_is_split_by_a_re_parse(svc: Services) -> None:
    week = _week(svc)
    project = Project.from_yaml(PROJECT)
    # As a statement parsed before statements were split by day was stored: listed for its own day only.
    svc.repo.put_statement(week.model_copy(update={"days": []}))
    assert svc.repo.list_statements("acme", "bank-acme", D[23]) == []
    said = _not_delivered(svc, project, "bank-acme", D[23])
    assert f"read whole by the run of {D[21]}" in said and "re-parse it" in said

    _upload_profile(svc, "bank.acme.csv", "2", ACME_V2)
    assert reparse_statement(week.statement_id, "2", svc).status == "reparsed"

    split = svc.repo.get_statement(week.statement_id)
    assert split is not None and [d.rows for d in split.days] == [2, 0, 1]
    assert split.days[2].parquet_key == (
        f"normalized/project=acme/source=bank/account=bank-acme/date=2026-11-23/"
        f"{week.statement_id}@bank.acme.csv@2.day.parquet"
    )
    assert [s.statement_id for s in svc.repo.list_statements("acme", "bank-acme", D[23])] == [
        week.statement_id
    ]


# --- re-delivery and overlap ------------------------------------------------------------------------------


def test_a_daily_statement_beside_the_weekly_export_counts_each_row_once(svc: Services) -> None:
    week = _week(svc)
    # The bank's daily statement of the 23rd: R3 again (corrected to 85.00) and R4, which the export lacks.
    daily = _deliver(
        svc,
        "bank-acme",
        D[23],
        "23.csv",
        acme_csv(("2026-11-23", "R3", "Payout", "85.00"), ("2026-11-23", "R4", "Payout", "10.00")),
    )
    # And the 21st again: R1 repeated.
    again = _deliver(svc, "bank-acme", D[21], "21.csv", acme_csv(("2026-11-21", "R1", "Payout", "100.00")))

    assert [s.statement_id for s in svc.repo.list_statements("acme", "bank-acme", D[23])] == sorted(
        [week.statement_id, daily.statement_id]
    )
    # R1 of the 21st repeats the export's: filtered in the daily file, counted once.
    repeated = read_parquet(svc.store.get("data", again.parquet_key or ""))
    assert repeated.column("overlap_of").to_pylist() == [week.statement_id]
    # R3 corrected by the later daily file: the export's R3 is marked in the 23rd's object the run reads.
    stored = svc.repo.get_statement(week.statement_id)
    assert stored is not None
    day_23 = read_parquet(svc.store.get("data", stored.days[2].parquet_key or ""))
    assert day_23.column("txn_id").to_pylist() == ["R3"]
    assert day_23.column("overlap_of").to_pylist() == [daily.statement_id]
    assert (
        read_parquet(svc.store.get("data", stored.days[0].parquet_key or "")).column("overlap_of").null_count
        == 2
    )
    assert stored.rows_overlapping == 1


def test_a_corrected_export_replaces_the_quarantined_one_on_every_day(svc: Services) -> None:
    bad = _deliver(
        svc,
        "bank-acme",
        D[21],
        "week.csv",
        acme_csv(("2026-11-21", "R1", "Payout", "100.00"), ("2026-11-23", "R3", "Payout", "8O.00")),
    )
    assert bad.status.value == "quarantined" and bad.days == []
    fixed = _deliver(
        svc,
        "bank-acme",
        D[21],
        "week-corrected.csv",
        acme_csv(("2026-11-21", "R1", "Payout", "100.00"), ("2026-11-23", "R3", "Payout", "80.00")),
    )

    for day in (21, 22, 23):
        listed = svc.repo.list_statements("acme", "bank-acme", D[day])
        assert [s.statement_id for s in listed] == [fixed.statement_id], day
    replaced = svc.repo.get_statement(bad.statement_id)
    assert replaced is not None and replaced.superseded_by == fixed.statement_id
    # The run of the day the bad file was filed for still lists it (it was delivered), reads the fixed one.
    project = Project.from_yaml(PROJECT)
    objects, files = _day_statements(svc, project, _ref(D[21]))
    assert objects == [(fixed.days[0].parquet_key, 1)]
    assert sorted((f.status, f.raw_key, f.superseded_by, f.rows_rejected > 0) for f in files) == [
        ("parsed", fixed.raw_key, None, False),
        ("superseded", bad.raw_key, fixed.raw_key, True),
    ]
    assert [f.status for f in _day_statements(svc, project, _ref(D[23]))[1]] == ["parsed"]


def test_an_export_overwritten_with_a_corrected_version_is_listed_superseded_on_each_day(
    svc: Services,
) -> None:
    week = _week(svc)
    fixed = _deliver(  # the same name, other content: R3 corrected
        svc,
        "bank-acme",
        D[21],
        "week.csv",
        acme_csv(
            ("2026-11-21", "R1", "Payout", "100.00"),
            ("2026-11-23", "R3", "Payout", "85.00"),
            ("2026-11-21", "R2", "Payout", "90.00"),
        ),
    )
    project = Project.from_yaml(PROJECT)
    objects, files = _day_statements(svc, project, _ref(D[23]))
    assert objects == [(fixed.days[2].parquet_key, 1)]  # only the corrected version's rows are read
    listed = {f.status: f for f in files}
    assert sorted(listed) == ["parsed", "superseded"]
    old = listed["superseded"]
    # The replaced version's figures of that day, and the file that replaced it (the same name).
    assert (old.raw_key, old.superseded_by, old.day, old.rows_parsed) == (
        week.raw_key,
        fixed.raw_key,
        D[23],
        1,
    )
    assert old.file_rows_read == week.rows_read


# --- balance chain ----------------------------------------------------------------------------------------


def test_a_statement_of_several_days_chains_from_the_day_before_its_first(svc: Services) -> None:
    # Daily statements of the 20th to 22nd, then the bank's export of the 21st to 23rd.
    _deliver(svc, "bank-eur", D[20], "20.sta", mt940(D[20], "1000.00", [("A1", "250.00"), ("A2", "-50.00")]))
    _deliver(svc, "bank-eur", D[21], "21.sta", mt940(D[21], "1200.00", [("B1", "100.00")]))
    _deliver(svc, "bank-eur", D[22], "22.sta", mt940(D[22], "1300.00", [("C1", "100.00")]))
    week = _deliver(
        svc,
        "bank-eur",
        D[23],
        "week.sta",
        mt940(D[21], "1200.00", [("B1", "100.00")])
        + mt940(D[22], "1300.00", [("C1", "100.00")])
        + mt940(D[23], "1400.00", [("D1", "-20.00")]),
    )

    # It opens with the 20th's closing (1200.00), not with that of the 22nd, which ends inside it.
    (chain,) = [t for t in week.control_totals if t.name == "chain"]
    assert (chain.stated, chain.computed) == ("1200.00 EUR", "1200.00 EUR")
    assert chain_break(week) is None and not _alerts(svc).published


def test_a_daily_statement_inside_a_weekly_export_reports_no_false_break(svc: Services) -> None:
    _deliver(svc, "bank-eur", D[20], "20.sta", mt940(D[20], "1000.00", [("A1", "200.00")]))
    week = _deliver(
        svc,
        "bank-eur",
        D[21],
        "week.sta",
        mt940(D[21], "1200.00", [("B1", "100.00")])
        + mt940(D[22], "1300.00", [("C1", "100.00")])
        + mt940(D[23], "1400.00", [("D1", "-20.00")]),
    )
    after = _deliver(svc, "bank-eur", D[24], "24.sta", mt940(D[24], "1380.00", [("E1", "5.00")]))
    # The bank re-sends the 22nd alone: it opens inside the export (1300.00), which states no balance there.
    inside = _deliver(svc, "bank-eur", D[22], "22.sta", mt940(D[22], "1300.00", [("C1", "100.00")]))

    current = [svc.repo.get_statement(s.statement_id) for s in (week, after, inside)]
    assert [chain_break(s) for s in current if s is not None] == [None, None, None]
    assert not _alerts(svc).published
    # The checks that can be made were made: the export against the 20th, the 24th against the export.
    assert [t.computed for s in current[:2] if s for t in s.control_totals if t.name == "chain"] == [
        "1200.00 EUR",
        "1380.00 EUR",
    ]

    # A real gap is still a break: the 26th opens with another balance than the 24th closed with.
    gap = _deliver(svc, "bank-eur", D[26], "26.sta", mt940(D[26], "1500.00", [("F1", "1.00")]))
    reason = chain_break(gap)
    assert reason is not None and "closed with 1385.00 EUR" in reason
