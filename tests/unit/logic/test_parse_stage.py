"""The parse stage on in-memory adapters: user profiles and their versions, re-parse, cross-statement dedupe,
balance chaining and quarantine reports (recon.pipeline.parse and its helpers)."""

from __future__ import annotations

import io
import json
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from recon.adapters.memory import (
    MemoryAlertPublisher,
    MemoryRunRepository,
)
from recon.domain import ControlTotal, Source, Statement, StatementStatus, Transaction
from recon.keys import profile_key, raw_key
from recon.pipeline.chain import balances, chain_break
from recon.pipeline.contracts import ChannelTask, MatchInput, StartRunInput
from recon.pipeline.match import match_run
from recon.pipeline.overlap import EarlierStatement, mark_overlaps
from recon.pipeline.parse import StatementNotFound, ingest_upload, parse_channel, reparse_statement
from recon.pipeline.profile_store import ProfileError, ProfileSpec, ProfileStore
from recon.pipeline.run import start_run
from recon.pipeline.services import Services
from recon.tables import read_parquet
from recon_local.demo_data import generate_day

from .conftest import Clock, memory_services

PROJECT = """
project_id: acme
name: Acme
version: 1
timezone: Asia/Shanghai
currency: CNY
accounts:
  - {account_id: bank-acme, source: bank, name: ACME settlement account, profile: bank.acme.csv}
  - {account_id: bank-eur, source: bank, name: EUR account (MT940), currency: EUR, format: mt940}
"""

ACME_V1 = """
name: bank.acme.csv
version: "1"
description: ACME Bank export, a layout recon does not ship
source: bank
match:
  header: [Date, Reference, Description, Amount, Currency]
fields:
  txn_id: {column: Reference}
  amount: {column: Amount}
  currency: {column: Currency}
  booked_at: {column: Date, formats: ["yyyy-MM-dd"]}
  txn_type: {const: transfer}
  memo: {column: Description}
dedupe_key: [txn_id]
"""
ACME_V2 = ACME_V1.replace('version: "1"', 'version: "2"').replace(
    "memo: {column: Description}", 'memo: {join: [Description, Reference], sep: " / "}'
)
HEADER = "Date,Reference,Description,Amount,Currency\n"
NOW = datetime(2026, 11, 22, 1, 30, tzinfo=UTC)


def _services() -> Services:
    return memory_services("acme", PROJECT, clock=Clock(NOW))


@pytest.fixture
def svc() -> Services:
    return _services()


def _alerts(svc: Services) -> MemoryAlertPublisher:
    assert isinstance(svc.alerts, MemoryAlertPublisher)
    return svc.alerts


def _upload_profile(svc: Services, name: str, version: str, text: str) -> None:
    svc.store.put("data", profile_key(name, version), text.encode())


def _deliver(svc: Services, account: str, day: date, name: str, data: bytes) -> Statement:
    key = raw_key("acme", account, day, name)
    svc.store.put("raw", key, data)
    out = ingest_upload("raw", key, svc)
    assert out is not None and len(out.statements) == 1
    found = svc.repo.get_statement(out.statements[0].statement_id)
    assert found is not None
    return found


def _rows(svc: Services, statement: Statement, *columns: str) -> list[dict[str, Any]]:
    assert statement.parquet_key is not None
    table = read_parquet(svc.store.get("data", statement.parquet_key))
    rows: list[dict[str, Any]] = table.select(list(columns)).to_pylist()
    return rows


def acme_csv(*rows: tuple[str, str, str, str]) -> bytes:
    """ACME export rows: (date, reference, description, amount)."""
    return (HEADER + "".join(f"{d},{ref},{text},{amount},CNY\n" for d, ref, text, amount in rows)).encode()


def mt940(day: date, opening: str, entries: list[tuple[str, str]], *, closing: str | None = None) -> bytes:
    """One MT940 message of the EUR account: balances and entries as signed decimal strings."""

    def amount(value: Decimal) -> str:
        return f"{abs(value):.2f}".replace(".", ",")

    def balance(tag: str, when: date, value: Decimal) -> str:
        return f":{tag}:{'C' if value >= 0 else 'D'}{when:%y%m%d}EUR{amount(value)}"

    start = Decimal(opening)
    total = start + sum((Decimal(v) for _, v in entries), Decimal(0))
    end = Decimal(closing) if closing is not None else total
    lines = [f":20:STMT{day:%Y%m%d}", ":25:NL91ABNA0417164300", f":28C:{day:%j}/1"]
    lines.append(balance("60F", day - timedelta(days=1), start))
    for ref, value in entries:
        v = Decimal(value)
        lines.append(f":61:{day:%y%m%d}{day:%m%d}{'C' if v >= 0 else 'D'}{amount(v)}NTRF{ref}//{ref}")
        lines.append(f":86:/REMI/{ref}")
    lines += [balance("62F", day, end), "-", ""]
    return "\n".join(lines).encode()


# --- profiles -----------------------------------------------------------------------------------------------


def test_latest_uploaded_version_reads_the_account_and_is_recorded(svc: Services) -> None:
    _upload_profile(svc, "bank.acme.csv", "1", ACME_V1)
    _upload_profile(svc, "bank.acme.csv", "2", ACME_V2)
    statement = _deliver(
        svc, "bank-acme", date(2026, 11, 20), "acme.csv", acme_csv(("2026-11-20", "R1", "Payout", "100.00"))
    )
    assert statement.status is StatementStatus.PARSED
    assert (statement.format, statement.profile, statement.profile_version) == ("bank.acme.csv",) * 2 + ("2",)
    assert statement.parquet_key is not None and statement.parquet_key.endswith("@bank.acme.csv@2.parquet")
    assert _rows(svc, statement, "memo", "profile", "profile_version", "raw_key", "row_number") == [
        {
            "memo": "Payout / R1",
            "profile": "bank.acme.csv",
            "profile_version": "2",
            "raw_key": "raw/acme/bank-acme/2026-11-20/acme.csv",
            "row_number": 2,
        }
    ]


def test_profile_resolution_pins_versions_and_falls_back_to_built_in(svc: Services) -> None:
    profiles = ProfileStore(svc.store, "data")
    for version, text in (("1", ACME_V1), ("2", ACME_V2), ("10", ACME_V2.replace('"2"', '"10"'))):
        _upload_profile(svc, "bank.acme.csv", version, text)
    assert profiles.resolve(ProfileSpec.parse("bank.acme.csv")).version == "10"  # natural order: 10 > 2
    assert profiles.resolve(ProfileSpec.parse("bank.acme.csv@1")).version == "1"
    builtin = profiles.resolve(ProfileSpec.parse("wechat.tradebill.all"))
    assert builtin.name == "wechat.tradebill.all" and builtin.version
    with pytest.raises(ProfileError, match=r"no version '7'; there are: 1, 2, 10"):
        profiles.resolve(ProfileSpec.parse("bank.acme.csv@7"))
    with pytest.raises(ProfileError, match=r"no such profile: nothing under config/profiles/bank\.other/"):
        profiles.resolve(ProfileSpec.parse("bank.other"))
    with pytest.raises(ProfileError, match="invalid profile name"):
        ProfileSpec.parse("../etc@1")


def test_uploaded_profile_must_match_its_key_and_may_extend_another(svc: Services) -> None:
    profiles = ProfileStore(svc.store, "data")
    _upload_profile(svc, "bank.mislabelled", "3", ACME_V1)  # declares bank.acme.csv version 1
    with pytest.raises(ProfileError, match=r"declares bank.acme.csv@1, its key says bank.mislabelled@3"):
        profiles.resolve(ProfileSpec.parse("bank.mislabelled"))
    _upload_profile(svc, "bank.acme.csv", "1", ACME_V1)
    child = 'name: bank.acme.tsv\nversion: "1"\nextends: bank.acme.csv\ndelimiter: "\\t"\n'
    _upload_profile(svc, "bank.acme.tsv", "1", child)
    resolved = profiles.resolve(ProfileSpec.parse("bank.acme.tsv"))
    assert (resolved.delimiter, resolved.fields["txn_id"].column) == ("\t", ["Reference"])
    _upload_profile(svc, "bank.loop", "1", 'name: bank.loop\nversion: "1"\nextends: bank.loop\n')
    with pytest.raises(ProfileError, match="cycle"):
        profiles.resolve(ProfileSpec.parse("bank.loop"))


def test_invalid_uploaded_profile_quarantines_alerts_and_a_fixed_version_reads_the_file_again(
    svc: Services,
) -> None:
    _upload_profile(
        svc,
        "bank.acme.csv",
        "1",
        ACME_V1.replace("txn_id: {column: Reference}", "txn_idd: {column: Reference}"),
    )
    data = acme_csv(("2026-11-20", "R1", "Payout", "100.00"))
    bad = _deliver(svc, "bank-acme", date(2026, 11, 20), "acme.csv", data)
    assert bad.status is StatementStatus.QUARANTINED
    assert (bad.profile, bad.profile_version) == ("bank.acme.csv", "1")
    (error,) = bad.errors
    assert (
        error.file == "config/profiles/bank.acme.csv/1.yaml"
        and "unknown standard field 'txn_idd'" in error.reason
    )
    (alert,) = _alerts(svc).published
    assert alert.attributes["kind"] == "profile_invalid" and "bank.acme.csv" in alert.subject
    assert "txn_idd" in alert.message
    # The other account is not affected.
    eur = parse_channel(_task("bank-eur", date(2026, 11, 20)), _with_raw(svc, "bank-eur", date(2026, 11, 20)))
    assert [s.status for s in eur.statements] == ["parsed"]
    # Delivering the same bytes again changes nothing while the profile is still broken ...
    assert _deliver(svc, "bank-acme", date(2026, 11, 20), "acme.csv", data) == bad
    assert len(_alerts(svc).published) == 1
    # ... and reads them with the fixed version once it is uploaded.
    _upload_profile(svc, "bank.acme.csv", "2", ACME_V2)
    fixed = _deliver(svc, "bank-acme", date(2026, 11, 20), "acme-again.csv", data)
    assert fixed.statement_id == bad.statement_id
    assert (fixed.status, fixed.profile_version, fixed.rows_parsed) == (StatementStatus.PARSED, "2", 1)
    assert fixed.parsed_at == bad.parsed_at and fixed.reparsed_at is not None


def _task(account: str, day: date) -> ChannelTask:
    return ChannelTask(
        run_id=f"acme-{day:%Y%m%d}",
        project_id="acme",
        business_date=day,
        statement_date=day,
        account_id=account,
        source=Source.BANK,
        delivery="upload",
    )


def _with_raw(svc: Services, account: str, day: date) -> Services:
    svc.store.put("raw", raw_key("acme", account, day, "day.sta"), mt940(day, "1000.00", [("B1", "5.00")]))
    return svc


# --- re-parse -----------------------------------------------------------------------------------------------


def test_reparse_with_an_earlier_version_writes_beside_the_old_object(svc: Services) -> None:
    _upload_profile(svc, "bank.acme.csv", "1", ACME_V1)
    _upload_profile(svc, "bank.acme.csv", "2", ACME_V2)
    first = _deliver(
        svc, "bank-acme", date(2026, 11, 20), "acme.csv", acme_csv(("2026-11-20", "R1", "Payout", "100.00"))
    )
    assert first.parquet_key is not None
    old_bytes = svc.store.get("data", first.parquet_key)

    out = reparse_statement(first.statement_id, "1", svc)

    assert (out.status, out.previous_profile_version, out.previous_parquet_key) == (
        "reparsed",
        "2",
        first.parquet_key,
    )
    current = svc.repo.get_statement(first.statement_id)
    assert current is not None and current.parquet_key == out.parquet_key != first.parquet_key
    assert (current.profile_version, current.parsed_at) == ("1", first.parsed_at)
    assert current.reparsed_at is not None
    assert svc.store.get("data", first.parquet_key) == old_bytes  # the old object stays
    assert _rows(svc, current, "memo", "profile_version") == [{"memo": "Payout", "profile_version": "1"}]
    assert [e.action for e in svc.repo.list_audit(first.statement_id)] == [
        "statement.parsed",
        "statement.reparse.parsed",
    ]
    # Same version again: nothing to do. A version that does not exist: the current parse stays.
    assert reparse_statement(first.statement_id, "1", svc).status == "unchanged"
    missing = reparse_statement(first.statement_id, "9", svc)
    assert missing.status == "rejected" and "no version '9'" in missing.errors[0]
    assert svc.repo.get_statement(first.statement_id) == current
    with pytest.raises(StatementNotFound):
        reparse_statement("st_nope", "1", svc)


def test_reparse_that_fails_keeps_the_accepted_statement(svc: Services) -> None:
    _upload_profile(
        svc, "bank.acme.csv", "1", ACME_V1.replace('formats: ["yyyy-MM-dd"]', 'formats: ["yyyyMMdd"]')
    )
    _upload_profile(svc, "bank.acme.csv", "2", ACME_V2)
    first = _deliver(
        svc, "bank-acme", date(2026, 11, 20), "acme.csv", acme_csv(("2026-11-20", "R1", "Payout", "100.00"))
    )
    out = reparse_statement(first.statement_id, "1", svc)
    assert out.status == "rejected" and "'Date'" in out.errors[0]
    assert svc.repo.get_statement(first.statement_id) == first
    assert svc.repo.list_audit(first.statement_id)[-1].action == "statement.reparse_rejected"


# --- cross-statement dedupe ---------------------------------------------------------------------------------


def test_overlapping_statement_marks_repeated_rows_and_drops_none(svc: Services) -> None:
    _upload_profile(svc, "bank.acme.csv", "1", ACME_V1)
    day1 = _deliver(
        svc,
        "bank-acme",
        date(2026, 11, 20),
        "day.csv",
        acme_csv(("2026-11-20", "R1", "Payout", "100.00"), ("2026-11-20", "R2", "Fee", "-1.50")),
    )
    # A re-issued statement for 20-21 November repeats both rows and adds one.
    both = _deliver(
        svc,
        "bank-acme",
        date(2026, 11, 21),
        "two-days.csv",
        acme_csv(
            ("2026-11-20", "R1", "Payout", "100.00"),
            ("2026-11-20", "R2", "Fee", "-1.50"),
            ("2026-11-21", "R3", "Payout", "80.00"),
        ),
    )
    assert (both.rows_read, both.rows_parsed, both.rows_skipped, both.rows_overlapping) == (4, 3, 1, 2)
    assert both.balanced
    assert _rows(svc, both, "txn_id", "overlap_of", "overlap_row") == [
        {"txn_id": "R1", "overlap_of": day1.statement_id, "overlap_row": 2},
        {"txn_id": "R2", "overlap_of": day1.statement_id, "overlap_row": 3},
        {"txn_id": "R3", "overlap_of": None, "overlap_row": None},
    ]
    assert _rows(svc, day1, "overlap_of") == [{"overlap_of": None}] * 2  # the first delivery owns them
    # A third statement over the same days points at the statement that delivered each row first. (Filed
    # for a day it covers: a statement filed for a day outside its own dates is quarantined.)
    third = _deliver(
        svc,
        "bank-acme",
        date(2026, 11, 20),
        "three.csv",
        acme_csv(("2026-11-20", "R2", "Fee", "-1.50"), ("2026-11-21", "R3", "Payout", "80.00")),
    )
    assert _rows(svc, third, "overlap_of", "overlap_row") == [
        {"overlap_of": day1.statement_id, "overlap_row": 3},
        {"overlap_of": both.statement_id, "overlap_row": 4},
    ]


def test_in_file_duplicates_are_counted_and_kept(svc: Services) -> None:
    _upload_profile(svc, "bank.acme.csv", "1", ACME_V1)
    row = ("2026-11-20", "R2", "Fee", "-1.50")
    statement = _deliver(svc, "bank-acme", date(2026, 11, 20), "dup.csv", acme_csv(row, row, row))
    assert (statement.rows_parsed, statement.rows_in_file_duplicate, statement.rows_overlapping) == (3, 2, 0)
    assert [r["in_file_duplicate"] for r in _rows(svc, statement, "in_file_duplicate")] == [False, True, True]
    out = parse_channel(_task("bank-acme", date(2026, 11, 20)), svc)
    assert out.statements[0].rows_in_file_duplicate == 2


def _keys_table(
    keys: list[str | None], days: list[int], *, overlap_of: list[str | None] | None = None
) -> pa.Table:
    columns: dict[str, Any] = {
        "dedupe_key": pa.array(keys, pa.string()),
        "booked_at": pa.array(
            [datetime(2026, 11, d, 4, tzinfo=UTC) for d in days], pa.timestamp("us", tz="UTC")
        ),
        "row_number": pa.array(range(2, 2 + len(keys)), pa.int32()),
    }
    if overlap_of is not None:
        columns["overlap_of"] = pa.array(overlap_of, pa.string())
    return pa.table(columns)


def test_overlap_pairs_occurrences_and_respects_the_earlier_period() -> None:
    earlier = [
        EarlierStatement(
            "st-a", date(2026, 11, 19), date(2026, 11, 20), _keys_table(["a", "b", "c"], [19, 20, 20])
        ),
        # st-b's own copy of "a" is a repeat (owned by st-a); its second "c" is original.
        EarlierStatement(
            "st-b",
            date(2026, 11, 20),
            date(2026, 11, 21),
            _keys_table(["a", "c", "c"], [19, 20, 21], overlap_of=["st-a", "st-a", None]),
        ),
    ]
    new = _keys_table(["b", "c", "c", "c", "d", "a", None], [20, 20, 21, 21, 21, 23, 20])
    out = mark_overlaps(new, earlier, "Asia/Shanghai")
    assert out.column("overlap_of").to_pylist() == ["st-a", "st-a", "st-b", None, None, None, None]
    assert out.column("overlap_row").to_pylist() == [3, 4, 4, None, None, None, None]
    assert out.num_rows == new.num_rows


# --- balance chaining ---------------------------------------------------------------------------------------


def test_balance_chain_break_is_flagged_alerted_and_restored_by_the_missing_statement(svc: Services) -> None:
    d20, d21, d22, d23 = (date(2026, 11, d) for d in (20, 21, 22, 23))
    first = _deliver(
        svc, "bank-eur", d20, "20.sta", mt940(d20, "1000.00", [("A1", "250.00"), ("A2", "-50.00")])
    )
    second = _deliver(svc, "bank-eur", d21, "21.sta", mt940(d21, "1200.00", [("B1", "100.00")]))
    assert [t for t in second.control_totals if t.name == "chain"] == [
        ControlTotal(name="chain", stated="1200.00 EUR", computed="1200.00 EUR")
    ]
    assert chain_break(first) is None and chain_break(second) is None
    assert not _alerts(svc).published

    # The 22nd is missing: the 23rd opens with 1400.00 where the 21st closed with 1300.00.
    fourth = _deliver(svc, "bank-eur", d23, "23.sta", mt940(d23, "1400.00", [("D1", "-20.00")]))
    assert fourth.status is StatementStatus.PARSED and fourth.rows_parsed == 1  # kept, rows stored
    reason = chain_break(fourth)
    assert reason is not None and "opens with 1400.00 EUR" in reason and "closed with 1300.00 EUR" in reason
    (alert,) = _alerts(svc).published
    assert alert.attributes["kind"] == "balance_chain_break" and second.statement_id in alert.message
    out = parse_channel(_task("bank-eur", d23), svc)
    assert out.blocked == [reason] and out.statements[0].blocked == reason

    # The missing statement arrives: it chains to the 21st, and the 23rd chains to it again.
    third = _deliver(svc, "bank-eur", d22, "22.sta", mt940(d22, "1300.00", [("C1", "100.00")]))
    assert chain_break(third) is None
    restored = svc.repo.get_statement(fourth.statement_id)
    assert restored is not None and chain_break(restored) is None
    assert parse_channel(_task("bank-eur", d23), svc).blocked == []
    assert "statement.chain_restored" in [e.action for e in svc.repo.list_audit(fourth.statement_id)]
    assert len(_alerts(svc).published) == 1


def test_balances_read_from_reader_totals() -> None:
    def totals(**named: str) -> list[ControlTotal]:
        return [ControlTotal(name=n, stated=v, computed=v) for n, v in named.items()]

    found = balances(totals(opening="1000.00 EUR 2026-11-19", closing="-12.50 EUR 2026-11-20"), "CNY")
    assert found is not None and (found.opening.minor, found.closing.minor) == (100000, -1250)
    assert str(found.closing) == "-12.50 EUR"
    assert balances(totals(closing="1.00 EUR"), "EUR") is None  # no opening balance stated
    assert balances(totals(opening="5 JPY ?", closing="7 JPY ?"), "CNY") is not None
    several = [*totals(opening="1.00 EUR"), *totals(closing="2.00 EUR"), *totals(closing="3.00 EUR")]
    assert balances(several, "EUR") is None  # several accounts in one file: not one account's chain


# --- quarantine -----------------------------------------------------------------------------------------------


def test_quarantine_report_names_every_error_with_accounting_and_alerts(svc: Services) -> None:
    _upload_profile(svc, "bank.acme.csv", "1", ACME_V1)
    rows = [("2026-11-20", f"R{i}", "Payout", "12.3x" if i % 2 else "1.00") for i in range(1, 501)]
    data = acme_csv(*rows)
    statement = _deliver(svc, "bank-acme", date(2026, 11, 20), "bad.csv", data)

    assert statement.status is StatementStatus.QUARANTINED and statement.balanced
    assert (statement.rows_read, statement.rows_skipped, statement.rows_rejected) == (501, 1, 500)
    assert statement.quarantine_key == "quarantine/acme/bank-acme/2026-11-20/bad.csv"
    assert svc.store.get("data", statement.quarantine_key) == data
    assert svc.store.get("raw", statement.raw_key) == data  # the raw object is untouched
    report = json.loads(svc.store.get("data", statement.quarantine_key + ".error.json"))
    assert report["file"] == "raw/acme/bank-acme/2026-11-20/bad.csv"
    assert (report["format"], report["profile"], report["profile_version"]) == (
        "bank.acme.csv",
        "bank.acme.csv",
        "1",
    )
    assert (report["error_count"], len(report["errors"]), report["errors_not_listed"]) == (250, 200, 50)
    assert report["errors"][0] == {
        "file": "raw/acme/bank-acme/2026-11-20/bad.csv",
        "row": 2,
        "column": "Amount",
        "reason": report["errors"][0]["reason"],
    }
    assert "12.3x" in report["errors"][0]["reason"]
    accounting = report["accounting"]
    assert accounting == {
        "rows_read": 501,
        "rows_parsed": 0,
        "rows_skipped": 1,
        "skipped_by_rule": {"header": 1},
        "rows_rejected": 500,
        "rows_valid_but_held": 250,
        "rows_with_errors": 250,
    }
    (alert,) = _alerts(svc).published
    assert alert.attributes["kind"] == "statement_quarantined"
    assert "250 error(s)" in alert.message and "... and 240 more" in alert.message
    assert statement.quarantine_key + ".error.json" in alert.message


def test_unknown_format_and_wrong_format_are_quarantined_naming_what_was_tried(svc: Services) -> None:
    garbage = _deliver(svc, "bank-eur", date(2026, 11, 20), "notes.txt", b"hello, this is not a statement\n")
    assert garbage.status is StatementStatus.QUARANTINED and garbage.format == "unknown"
    assert "unknown statement format" in garbage.errors[0].reason
    # A WeChat Pay bill delivered to the MT940 bank account: wrong source and wrong format.
    name, bill = generate_day(date(2026, 11, 21)).files["wechat-main"]
    wrong = _deliver(svc, "bank-eur", date(2026, 11, 21), name, bill)
    assert wrong.status is StatementStatus.QUARANTINED and wrong.rows_parsed == 0
    report = json.loads(svc.store.get("data", (wrong.quarantine_key or "") + ".error.json"))
    assert report["format"] == "wechat.tradebill.all" and report["profile"] == "wechat.tradebill.all"
    reasons = [e["reason"] for e in report["errors"]]
    assert reasons == [
        "file is a wechat.tradebill.all statement but account bank-eur expects bank",
        "file is a wechat.tradebill.all statement but account bank-eur expects format mt940",
    ]
    assert report["accounting"]["rows_valid_but_held"] == report["accounting"]["rows_rejected"]


# --- scale, determinism, idempotence --------------------------------------------------------------------------


def test_large_statement_never_becomes_pydantic_rows(svc: Services, monkeypatch: pytest.MonkeyPatch) -> None:
    _upload_profile(svc, "bank.acme.csv", "1", ACME_V1)
    n = 50_000
    data = (
        HEADER + "".join(f"2026-11-20,R{i},Payout {i},{i % 997}.{i % 100:02d},CNY\n" for i in range(n))
    ).encode()

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("a Transaction model was built in the parse stage")

    monkeypatch.setattr(Transaction, "__init__", refuse)
    monkeypatch.setattr(Transaction, "model_validate", refuse)
    statement = _deliver(svc, "bank-acme", date(2026, 11, 20), "big.csv", data)
    assert (statement.status, statement.rows_parsed) == (StatementStatus.PARSED, n)
    assert statement.parquet_key is not None
    meta = pq.ParquetFile(io.BytesIO(svc.store.get("data", statement.parquet_key))).metadata
    assert meta.num_rows == n and meta.row_group(0).column(0).compression == "ZSTD"


def test_same_inputs_give_byte_identical_parquet_and_redeliveries_parse_once() -> None:
    outputs = []
    for _ in range(2):
        svc = _services()
        _upload_profile(svc, "bank.acme.csv", "1", ACME_V1)
        data = acme_csv(("2026-11-20", "R1", "Payout", "100.00"), ("2026-11-20", "R2", "Fee", "-1.50"))
        statement = _deliver(svc, "bank-acme", date(2026, 11, 20), "a.csv", data)
        again = _deliver(svc, "bank-acme", date(2026, 11, 20), "a-copy.csv", data)
        assert again == statement  # same checksum: recognised, not parsed twice
        assert len(svc.store.list("data", "normalized/")) == 1
        assert statement.parquet_key is not None
        outputs.append(svc.store.get("data", statement.parquet_key))
    assert outputs[0] == outputs[1]


# --- repository: the account's sequence ---------------------------------------------------------------------


def _stored(ident: str, day: int, **extra: Any) -> Statement:
    return Statement(
        statement_id=ident,
        project_id="acme",
        source=Source.BANK,
        account_id="bank-eur",
        business_date=date(2026, 11, day),
        raw_key=f"raw/acme/bank-eur/2026-11-{day:02d}/{ident}",
        checksum=ident * 8,
        size=1,
        **({"status": StatementStatus.PARSED} | extra),
    )


@pytest.mark.parametrize("make_repo", [MemoryRunRepository], ids=["memory"])
def test_repository_lists_an_account_in_sequence_and_finds_by_id(
    make_repo: Callable[[], MemoryRunRepository],
) -> None:
    check_account_sequence(make_repo())


def check_account_sequence(repo: Any) -> None:
    """Shared with the DynamoDB test (tests/integration/handlers/test_parse_stage_moto.py)."""
    a = _stored("st_a", 20)
    b = _stored("st_b", 18, period_start=date(2026, 11, 21), period_end=date(2026, 11, 22))
    c = _stored("st_c", 21)
    dup = _stored("st_d", 21, status=StatementStatus.DUPLICATE)
    other = _stored("st_e", 21).model_copy(update={"account_id": "bank-acme"})
    for statement in (c, b, a, dup, other):
        repo.put_statement(statement)

    def ids(found: list[Statement]) -> list[str]:
        return [s.statement_id for s in found]

    assert ids(repo.list_account_statements("acme", "bank-eur")) == ["st_a", "st_c", "st_b"]
    assert ids(repo.list_account_statements("acme", "bank-eur", ending_from=date(2026, 11, 21))) == [
        "st_c",
        "st_b",
    ]
    assert ids(repo.list_account_statements("acme", "bank-eur", ending_to=date(2026, 11, 21))) == [
        "st_a",
        "st_c",
    ]
    assert ids(repo.list_account_statements("acme", "bank-eur", newest_first=True, limit=2)) == [
        "st_b",
        "st_c",
    ]
    assert repo.list_account_statements("acme", "bank-eur", limit=0) == []
    assert repo.get_statement("st_b") == b and repo.get_statement("st_d") == dup
    assert repo.get_statement("st_zz") is None


def test_a_chain_break_makes_the_day_need_attention_even_on_an_upload_run(svc: Services) -> None:
    d21, d23 = date(2026, 11, 21), date(2026, 11, 23)
    _deliver(svc, "bank-eur", d21, "21.sta", mt940(d21, "1200.00", [("B1", "100.00")]))
    broken = _deliver(svc, "bank-eur", d23, "23.sta", mt940(d23, "1400.00", [("D1", "-20.00")]))
    reason = chain_break(broken)
    assert reason is not None
    started = start_run(StartRunInput(project_id="acme", business_date=d23), svc)
    # No channel payloads (an upload-triggered run): the match stage finds the break on the statement.
    match_run(MatchInput(run_id=started.run_id, project_id="acme", business_date=d23), svc)
    run = svc.repo.get_run(started.run_id)
    assert run is not None and run.error is not None and reason in run.error
