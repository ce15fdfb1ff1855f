"""One contract, two implementations: each test runs against the in-memory fake and the moto adapter."""

from __future__ import annotations

import base64
import os
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, timezone
from typing import Any

import boto3
import pytest
from pydantic import SecretStr

from recon.adapters.dynamodb import DynamoRunRepository, table_spec
from recon.adapters.errors import ItemTooLargeError, ObjectNotFoundError
from recon.adapters.memory import MemoryObjectStore, MemoryRunRepository
from recon.adapters.s3 import S3ObjectStore
from recon.domain import (
    Account,
    AuditEvent,
    Case,
    CaseLink,
    CaseStatus,
    CaseType,
    MatchGroup,
    MemberRef,
    Run,
    RunStatus,
    Severity,
    Source,
    Statement,
    StatementDay,
    StatementStatus,
)
from recon.ports import CaseUpdate, FetchLogEntry, NotificationClaim, ObjectStore

BUCKET = "recon-raw"
PLAIN_BUCKET = "recon-data"  # not versioned
TABLE = "recon"
IMPLS = ["memory", "aws"]


# --- fixtures ----------------------------------------------------------------------------------------------


@dataclass
class Stores:
    store: ObjectStore
    plain: ObjectStore  # the same store kind on an unversioned bucket
    kind: str


@pytest.fixture(params=IMPLS)
def stores(request: pytest.FixtureRequest) -> Iterator[Stores]:
    if request.param == "memory":
        yield Stores(MemoryObjectStore(), MemoryObjectStore(versioned=False), "memory")
        return
    request.getfixturevalue("moto")
    s3 = boto3.client("s3")
    s3.create_bucket(Bucket=BUCKET)
    s3.put_bucket_versioning(Bucket=BUCKET, VersioningConfiguration={"Status": "Enabled"})
    s3.create_bucket(Bucket=PLAIN_BUCKET)
    store = S3ObjectStore(page_size=2)  # small pages: listing must follow continuation tokens
    yield Stores(store, store, "aws")


@dataclass
class Repo:
    repo: Any  # RunRepository + get_case
    kind: str

    def raw_texts(self) -> list[str]:
        """Everything the repository stored, as text (compressed payloads decompressed)."""
        if isinstance(self.repo, MemoryRunRepository):
            return self.repo.stored_texts()
        items = boto3.resource("dynamodb").Table(TABLE).scan()["Items"]
        texts = []
        for item in items:
            texts.append(repr(item))
            if "data_z" in item:
                texts.append(zlib.decompress(base64.b64decode(str(item["data_z"]))).decode())
        return texts

    def set_case_status(self, run_id: str, case_id: str, status: CaseStatus) -> None:
        """What a reviewer does: change the case's status attribute only."""
        if isinstance(self.repo, MemoryRunRepository):
            self.repo.set_case_status(case_id, status.value)
            return
        boto3.resource("dynamodb").Table(TABLE).update_item(
            Key={"pk": f"RUN#{run_id}", "sk": f"CASE#{case_id}"},
            UpdateExpression="SET #s = :s",
            ExpressionAttributeNames={"#s": "status"},
            ExpressionAttributeValues={":s": status.value},
        )


@pytest.fixture(params=IMPLS)
def repo(request: pytest.FixtureRequest) -> Iterator[Repo]:
    if request.param == "memory":
        yield Repo(MemoryRunRepository(), "memory")
        return
    request.getfixturevalue("moto")
    boto3.client("dynamodb").create_table(**table_spec(TABLE))
    yield Repo(DynamoRunRepository(TABLE, page_size=2), "aws")  # small pages: queries must follow pages


# --- builders ----------------------------------------------------------------------------------------------

T0 = datetime(2024, 5, 2, 2, 30, tzinfo=UTC)
FULL_NUMBER = "6222021234567890123"


def make_run(run_id: str, project_id: str = "shop", day: int = 1, **kw: Any) -> Run:
    return Run(
        run_id=run_id,
        project_id=project_id,
        project_version=1,
        business_date=date(2024, 5, day),
        started_at=T0 + timedelta(days=day),
        **kw,
    )


def member(i: int, source: Source = Source.ERP, txn_id: str | None = None) -> MemberRef:
    tid = txn_id or f"ORD{i:08d}"
    return MemberRef(
        txn_uid=f"{source.value}:acct:{tid}",
        source=source,
        account_id="acct",
        txn_id=tid,
        amount_minor=100 + i,
        currency="CNY",
    )


def make_group(group_id: str, run_id: str = "run1", members: list[MemberRef] | None = None) -> MatchGroup:
    return MatchGroup(
        group_id=group_id,
        run_id=run_id,
        rule="order-key",
        members=members or [member(1), member(1, Source.ALIPAY)],
        explanation="订单号一致",
    )


def make_case(
    case_id: str, run_id: str = "run1", status: CaseStatus = CaseStatus.OPEN, reason: str = ""
) -> Case:
    return Case(
        case_id=case_id,
        run_id=run_id,
        type=CaseType.MISSING_IN_ERP,
        members=[member(7, Source.ALIPAY)],
        delta_minor=107,
        currency="CNY",
        severity=Severity.LOW,
        status=status,
        reason=reason or "长款: 支付宝收款无对应订单",
    )


def make_statement(statement_id: str, checksum: str, day: int = 1, **kw: Any) -> Statement:
    values: dict[str, Any] = {
        "statement_id": statement_id,
        "project_id": "shop",
        "source": Source.ALIPAY,
        "account_id": "alipay-main",
        "business_date": date(2024, 5, day),
        "raw_key": f"raw/shop/alipay-main/2024-05-0{day}/{statement_id}.csv",
        "checksum": checksum,
        "size": 1234,
        "status": StatementStatus.PARSED,
        "rows_read": 3,
        "rows_parsed": 3,
    }
    values.update(kw)
    return Statement(**values)


# --- object store ------------------------------------------------------------------------------------------


def test_put_returns_a_new_version_each_time_and_get_reads_any_version(stores: Stores) -> None:
    first = stores.store.put(BUCKET, "raw/shop/a/2024-05-01/bill.csv", b"v1", content_type="text/csv")
    second = stores.store.put(BUCKET, "raw/shop/a/2024-05-01/bill.csv", b"v2-longer")

    assert first.version_id and second.version_id
    assert first.version_id != second.version_id
    assert (first.size, second.size) == (2, 9)
    assert stores.store.get(BUCKET, "raw/shop/a/2024-05-01/bill.csv") == b"v2-longer"
    assert stores.store.get(BUCKET, "raw/shop/a/2024-05-01/bill.csv", version_id=first.version_id) == b"v1"
    assert (
        stores.store.get(BUCKET, "raw/shop/a/2024-05-01/bill.csv", version_id=second.version_id)
        == b"v2-longer"
    )


def test_head_is_none_when_missing_and_describes_the_latest_version(stores: Stores) -> None:
    assert stores.store.head(BUCKET, "raw/missing.csv") is None
    stores.store.put(BUCKET, "k.csv", b"old")
    put = stores.store.put(
        BUCKET, "k.csv", b"12345", metadata={"Source-File": "支付宝账单 2024.csv", "checksum": "abc"}
    )

    head = stores.store.head(BUCKET, "k.csv")

    assert head is not None
    assert head.size == 5
    assert head.version_id == put.version_id
    # keys are lower-cased (as S3 does); non-ASCII values survive the round trip
    assert head.metadata == {"source-file": "支付宝账单 2024.csv", "checksum": "abc"}
    assert put.metadata == head.metadata


def test_get_of_a_missing_key_or_version_raises_object_not_found(stores: Stores) -> None:
    with pytest.raises(ObjectNotFoundError) as missing:
        stores.store.get(BUCKET, "nope.csv")
    assert missing.value.key == "nope.csv"
    assert isinstance(missing.value, KeyError)

    other = stores.store.put(BUCKET, "other.csv", b"x")
    stores.store.put(BUCKET, "mine.csv", b"y")
    with pytest.raises(ObjectNotFoundError):
        stores.store.get(BUCKET, "mine.csv", version_id=other.version_id)


def test_list_returns_latest_objects_under_the_prefix_in_key_order_across_pages(stores: Stores) -> None:
    keys = [f"normalized/project=shop/date=2024-05-01/{name}.parquet" for name in "edcba"]
    for i, key in enumerate(keys):
        stores.store.put(BUCKET, key, b"x" * (i + 1))
    stores.store.put(BUCKET, keys[0], b"much longer now")  # a new version: still one entry
    stores.store.put(BUCKET, "normalized/project=shop/date=2024-05-02/z.parquet", b"other day")
    stores.store.put(BUCKET, "normalized/project=shopx/date=2024-05-01/a.parquet", b"other project")

    listed = stores.store.list(BUCKET, "normalized/project=shop/date=2024-05-01/")

    assert [o.key for o in listed] == sorted(keys)
    sizes = {o.key: o.size for o in listed}
    assert sizes[keys[0]] == len(b"much longer now")
    assert sizes[keys[4]] == 5
    assert stores.store.list(BUCKET, "nothing/") == []


def test_unversioned_bucket_reports_no_version(stores: Stores) -> None:
    stored = stores.plain.put(PLAIN_BUCKET, "reports/r.html", b"<html>")
    stores.plain.put(PLAIN_BUCKET, "reports/r.html", b"<html>2")

    assert stored.version_id is None
    head = stores.plain.head(PLAIN_BUCKET, "reports/r.html")
    assert head is not None and head.version_id is None
    assert stores.plain.get(PLAIN_BUCKET, "reports/r.html") == b"<html>2"


def test_put_stream_stores_the_concatenated_chunks_as_one_object(stores: Stores) -> None:
    # Larger than S3's 5 MiB smallest part: the S3 adapter uploads it in parts (part size 5 MiB here).
    if isinstance(stores.plain, S3ObjectStore):
        stores.plain._part_size = 5 * 1024 * 1024
    chunks = [b"header\n", *(bytes([65 + i % 26]) * 1_000_003 for i in range(12)), b"", b"end\n"]
    stored = stores.plain.put_stream(
        PLAIN_BUCKET, "reports/matches.csv", iter(chunks), content_type="text/csv"
    )
    assert stores.plain.get(PLAIN_BUCKET, "reports/matches.csv") == b"".join(chunks)
    assert stored.size == len(b"".join(chunks))
    small = stores.plain.put_stream(PLAIN_BUCKET, "reports/small.csv", [b"a,b\n", b"1,2\n"])
    assert stores.plain.get(PLAIN_BUCKET, "reports/small.csv") == b"a,b\n1,2\n" and small.size == 8
    stores.plain.put_stream(PLAIN_BUCKET, "reports/empty.csv", [])
    assert stores.plain.get(PLAIN_BUCKET, "reports/empty.csv") == b""


def test_put_stream_stores_nothing_when_the_chunks_fail(stores: Stores) -> None:
    def failing() -> Iterator[bytes]:
        yield b"x" * (6 * 1024 * 1024)  # one whole part uploaded before the failure
        raise RuntimeError("export failed")

    if isinstance(stores.plain, S3ObjectStore):
        stores.plain._part_size = 5 * 1024 * 1024
    with pytest.raises(RuntimeError, match="export failed"):
        stores.plain.put_stream(PLAIN_BUCKET, "reports/broken.csv", failing())
    assert stores.plain.head(PLAIN_BUCKET, "reports/broken.csv") is None
    if stores.kind == "aws":  # the multipart upload was aborted
        assert "Uploads" not in boto3.client("s3").list_multipart_uploads(Bucket=PLAIN_BUCKET)


# --- repository: runs --------------------------------------------------------------------------------------


def test_run_round_trip_and_update(repo: Repo) -> None:
    run = make_run("run1", cases_by_type={"MISSING_IN_ERP": 2}, case_minor_by_type={"MISSING_IN_ERP": 214})
    repo.repo.put_run(run)
    assert repo.repo.get_run("run1") == run
    assert repo.repo.get_run("nope") is None

    finished = run.model_copy(update={"status": RunStatus.SUCCEEDED, "finished_at": T0 + timedelta(days=2)})
    repo.repo.put_run(finished)

    stored = repo.repo.get_run("run1")
    assert stored is not None and stored.status == RunStatus.SUCCEEDED
    assert stored.finished_at == T0 + timedelta(days=2)
    assert [r.run_id for r in repo.repo.list_runs("shop")] == ["run1"]  # updated, not duplicated


def test_list_runs_newest_business_date_first_with_limit(repo: Repo) -> None:
    for run_id, day in [("r-b", 3), ("r-a", 1), ("r-c", 5), ("r-d", 2), ("r-e", 5)]:
        repo.repo.put_run(make_run(run_id, day=day))
    repo.repo.put_run(make_run("other", project_id="warehouse", day=9))

    assert [r.run_id for r in repo.repo.list_runs("shop")] == ["r-e", "r-c", "r-b", "r-d", "r-a"]
    assert [r.run_id for r in repo.repo.list_runs("shop", limit=3)] == ["r-e", "r-c", "r-b"]
    assert [r.run_id for r in repo.repo.list_runs("warehouse")] == ["other"]
    assert repo.repo.list_runs("nobody") == []


# --- repository: statements --------------------------------------------------------------------------------


def test_statement_found_by_checksum_and_listed_by_business_date(repo: Repo) -> None:
    s1 = make_statement("stmt-1", "a" * 64, day=1)
    s2 = make_statement("stmt-2", "b" * 64, day=1)
    s3 = make_statement("stmt-3", "c" * 64, day=2)
    for statement in (s2, s1, s3):
        repo.repo.put_statement(statement)

    assert repo.repo.find_statement_by_checksum("shop", "alipay-main", "a" * 64) == s1
    assert repo.repo.find_statement_by_checksum("shop", "alipay-main", "c" * 64) == s3
    assert repo.repo.find_statement_by_checksum("shop", "alipay-main", "f" * 64) is None
    assert repo.repo.find_statement_by_checksum("shop", "wechat-main", "a" * 64) is None  # per account
    assert repo.repo.list_statements("shop", "alipay-main", date(2024, 5, 1)) == [s1, s2]
    assert repo.repo.list_statements("shop", "alipay-main", date(2024, 5, 2)) == [s3]
    assert repo.repo.list_statements("shop", "alipay-main", date(2024, 5, 3)) == []


def test_duplicate_statement_does_not_move_the_checksum_marker(repo: Repo) -> None:
    original = make_statement("stmt-1", "d" * 64, day=1)
    duplicate = make_statement("stmt-9", "d" * 64, day=2, status=StatementStatus.DUPLICATE, rows_read=0)
    repo.repo.put_statement(original)
    repo.repo.put_statement(duplicate)

    found = repo.repo.find_statement_by_checksum("shop", "alipay-main", "d" * 64)
    assert found is not None and found.statement_id == "stmt-1"
    assert repo.repo.list_statements("shop", "alipay-main", date(2024, 5, 2)) == [duplicate]


def test_superseded_versions_stay_stored_but_do_not_count_for_the_day(repo: Repo) -> None:
    key = "raw/shop/alipay-main/2024-05-01/bill.csv"
    old = make_statement("stmt-old", "1" * 64, raw_key=key, parsed_at=T0, status=StatementStatus.QUARANTINED)
    new = make_statement("stmt-new", "2" * 64, raw_key=key, parsed_at=T0 + timedelta(minutes=5))
    other = make_statement("stmt-other", "3" * 64, parsed_at=T0 + timedelta(minutes=1))
    for statement in (new, old, other):
        repo.repo.put_statement(statement)
    day = date(2024, 5, 1)
    # The rule applies before the parse stage marks the older version: the same key, uploaded later, wins.
    assert repo.repo.list_statements("shop", "alipay-main", day) == [new, other]
    assert repo.repo.list_statements("shop", "alipay-main", day, include_superseded=True) == [new, old, other]

    marked = old.model_copy(update={"superseded_by": "stmt-new"})
    repo.repo.put_statement(marked)
    assert repo.repo.list_statements("shop", "alipay-main", day) == [new, other]
    assert repo.repo.get_statement("stmt-old") == marked  # kept for the audit trail
    assert repo.repo.find_statement_by_checksum("shop", "alipay-main", "1" * 64) == marked
    sequence = repo.repo.list_account_statements("shop", "alipay-main")
    assert [s.statement_id for s in sequence] == ["stmt-new", "stmt-other"]  # not in the account's sequence


def test_a_statement_covering_several_days_is_listed_for_each_day_it_covers(repo: Repo) -> None:
    def covering(*days: int, **kw: Any) -> Statement:
        return make_statement(
            "stmt-week",
            "7" * 64,
            day=2,
            source=Source.BANK,
            account_id="bank-cmb",
            raw_key="raw/shop/bank-cmb/2024-05-03/week.xml",
            period_start=date(2024, 5, 1 + days[0]),
            period_end=date(2024, 5, 1 + days[-1]),
            days=[
                StatementDay(day=date(2024, 5, 1 + d), business_date=date(2024, 5, d), rows=1) for d in days
            ],
            **kw,
        )

    week = covering(1, 2, 3)
    repo.repo.put_statement(week)
    for day in (1, 2, 3):
        assert repo.repo.list_statements("shop", "bank-cmb", date(2024, 5, day)) == [week]
    assert repo.repo.list_statements("shop", "bank-cmb", date(2024, 5, 4)) == []
    assert [s.statement_id for s in repo.repo.list_account_statements("shop", "bank-cmb")] == ["stmt-week"]
    assert repo.repo.get_statement("stmt-week") == week
    assert repo.repo.find_statement_by_checksum("shop", "bank-cmb", "7" * 64) == week

    # Every write reaches every day it is listed for: a later mark counts on each day.
    marked = week.model_copy(update={"superseded_by": "stmt-newer"})
    repo.repo.put_statement(marked)
    assert repo.repo.list_statements("shop", "bank-cmb", date(2024, 5, 3), include_superseded=True) == [
        marked
    ]
    assert repo.repo.list_statements("shop", "bank-cmb", date(2024, 5, 3)) == []

    # Read again covering fewer days (a re-parse): no longer listed for the days it left.
    fewer = covering(1, 2)
    repo.repo.put_statement(fewer)
    assert repo.repo.list_statements("shop", "bank-cmb", date(2024, 5, 1)) == [fewer]
    assert repo.repo.list_statements("shop", "bank-cmb", date(2024, 5, 3), include_superseded=True) == []


# --- repository: results -----------------------------------------------------------------------------------


def test_replace_results_removes_stale_items_and_keeps_review_status(repo: Repo) -> None:
    repo.repo.replace_results(
        "run1", [make_group("g1"), make_group("g2")], [make_case("c1"), make_case("c2"), make_case("c4")]
    )
    repo.repo.replace_results("run2", [make_group("g1", run_id="run2")], [make_case("c9", run_id="run2")])
    repo.set_case_status("run1", "c1", CaseStatus.IN_REVIEW)
    repo.set_case_status("run1", "c4", CaseStatus.RESOLVED)
    reviewed = repo.repo.get_case("c1")
    assert reviewed.status is CaseStatus.IN_REVIEW  # an enum, not the raw attribute string
    assert {c.case_id: c.status for c in repo.repo.list_cases("run1")}["c4"] == CaseStatus.RESOLVED

    new_groups = [make_group("g3"), make_group("g2", members=[member(2), member(2, Source.WECHAT)])]
    new_cases = [make_case("c1", reason="new reason"), make_case("c3"), make_case("c4")]
    for _ in range(2):  # idempotent: the second call changes nothing
        repo.repo.replace_results("run1", new_groups, new_cases)

        groups = repo.repo.list_match_groups("run1")
        assert [g.group_id for g in groups] == ["g2", "g3"]
        assert groups[0].members[1].source == Source.WECHAT
        cases = {c.case_id: c for c in repo.repo.list_cases("run1")}
        assert sorted(cases) == ["c1", "c3", "c4"]
        assert cases["c1"].status == CaseStatus.IN_REVIEW  # the reviewer's state survives the re-run
        assert cases["c1"].reason == "new reason"  # everything else is the new result
        assert cases["c4"].status == CaseStatus.RESOLVED
        assert cases["c3"].status == CaseStatus.OPEN

    assert repo.repo.get_case("c2") is None  # removed with its index entry
    case1 = repo.repo.get_case("c1")
    assert case1 is not None and case1.status == CaseStatus.IN_REVIEW and case1.run_id == "run1"
    # other runs are untouched
    assert [g.group_id for g in repo.repo.list_match_groups("run2")] == ["g1"]
    assert [c.case_id for c in repo.repo.list_cases("run2")] == ["c9"]


def test_replace_results_recomputes_system_statuses(repo: Repo) -> None:
    repo.repo.replace_results("run1", [], [make_case("c1", status=CaseStatus.AUTO_RESOLVED), make_case("c2")])
    repo.repo.replace_results("run1", [], [make_case("c1"), make_case("c2", status=CaseStatus.AUTO_RESOLVED)])

    statuses = {c.case_id: c.status for c in repo.repo.list_cases("run1")}
    assert statuses == {"c1": CaseStatus.OPEN, "c2": CaseStatus.AUTO_RESOLVED}


def test_replace_results_reopens_a_reviewed_case_whose_difference_changed(repo: Repo) -> None:
    """D01: a reviewer resolved c1 (Δ 1.07); a corrected bill makes it Δ 2.07 under the same id."""
    repo.repo.replace_results("run1", [], [make_case("c1"), make_case("c2")])
    repo.set_case_status("run1", "c1", CaseStatus.RESOLVED)
    repo.set_case_status("run1", "c2", CaseStatus.IN_REVIEW)
    changed = make_case("c1").model_copy(update={"delta_minor": 207})

    changes = repo.repo.replace_results("run1", [], [changed, make_case("c2")])

    assert [(t.action, t.case_id, t.before.status, t.after.status) for t in changes] == [
        ("case.reopened", "c1", CaseStatus.RESOLVED, CaseStatus.OPEN)
    ]
    for case in (repo.repo.get_case("c1"), {c.case_id: c for c in repo.repo.list_cases("run1")}["c1"]):
        assert case is not None and case.status is CaseStatus.OPEN and case.delta_minor == 207
        assert case.changed_since_review is not None
        assert (case.changed_since_review.status, case.changed_since_review.delta_minor) == (
            CaseStatus.RESOLVED,
            107,
        )
    assert repo.repo.get_case("c2").status is CaseStatus.IN_REVIEW  # unchanged difference: review holds
    # Idempotent: repeating the attempt reports nothing and keeps the flag.
    assert repo.repo.replace_results("run1", [], [changed, make_case("c2")]) == []
    assert repo.repo.get_case("c1").changed_since_review is not None


def test_replace_results_keeps_a_reviewed_case_the_rerun_no_longer_finds(repo: Repo) -> None:
    repo.repo.replace_results("run1", [], [make_case("c1"), make_case("c2")])
    repo.set_case_status("run1", "c1", CaseStatus.RESOLVED)

    changes = repo.repo.replace_results("run1", [], [make_case("c3")])

    assert [(t.action, t.case_id, t.after.status) for t in changes] == [
        ("case.not_found", "c1", CaseStatus.AUTO_RESOLVED)
    ]
    assert [c.case_id for c in repo.repo.list_cases("run1")] == ["c3"]  # its rows are elsewhere now
    kept = repo.repo.get_case("c1")
    assert kept is not None and kept.status is CaseStatus.AUTO_RESOLVED and kept.run_id == "run1"
    assert kept.system_note.startswith("Not found again by run run1: a reviewer had set it resolved")
    assert repo.repo.get_case("c2") is None  # never reviewed: dropped with the earlier attempt
    assert repo.repo.replace_results("run1", [], [make_case("c3")]) == []
    assert repo.repo.get_case("c1") == kept

    # Found again: back in the run's list, open, saying what had been reviewed.
    changes = repo.repo.replace_results("run1", [], [make_case("c1"), make_case("c3")])
    assert [(t.action, t.case_id, t.before.status, t.after.status) for t in changes] == [
        ("case.found_again", "c1", CaseStatus.AUTO_RESOLVED, CaseStatus.OPEN)
    ]
    assert repo.repo.replace_results("run1", [], [make_case("c1"), make_case("c3")]) == []
    back = {c.case_id: c for c in repo.repo.list_cases("run1")}["c1"]
    assert back.status is CaseStatus.OPEN and back.changed_since_review is not None
    assert repo.repo.get_case("c1") == back


def test_update_case_changes_another_runs_case_only_in_the_expected_status(repo: Repo) -> None:
    repo.repo.replace_results("run1", [], [make_case("c1"), make_case("c2")])
    repo.repo.replace_results("run2", [], [make_case("c9", run_id="run2")])
    repo.set_case_status("run1", "c2", CaseStatus.IN_REVIEW)
    link = CaseLink(case_id="c9", business_date=date(2024, 5, 2))
    close = CaseUpdate(status=CaseStatus.AUTO_RESOLVED, explained_by=link, system_note="explained by c9")

    updated = repo.repo.update_case("run1", "c1", if_status=CaseStatus.OPEN, changes=close)

    assert updated is not None and updated.status is CaseStatus.AUTO_RESOLVED
    assert repo.repo.get_case("c1") == updated
    assert repo.repo.list_cases("run1")[0] == updated
    assert (updated.explained_by, updated.system_note, updated.delta_minor) == (link, "explained by c9", 107)
    # A person's decision is not overridden, and an unknown case changes nothing.
    assert repo.repo.update_case("run1", "c2", if_status=CaseStatus.OPEN, changes=close) is None
    assert repo.repo.get_case("c2").status is CaseStatus.IN_REVIEW
    assert repo.repo.update_case("run1", "c7", if_status=CaseStatus.OPEN, changes=close) is None
    assert repo.repo.update_case("run3", "c1", if_status=CaseStatus.AUTO_RESOLVED, changes=close) is None


def test_replace_results_with_nothing_empties_the_run(repo: Repo) -> None:
    repo.repo.replace_results("run1", [make_group("g1")], [make_case("c1")])
    repo.repo.put_run(make_run("run1"))

    repo.repo.replace_results("run1", [], [])

    assert repo.repo.list_match_groups("run1") == []
    assert repo.repo.list_cases("run1") == []
    assert repo.repo.get_run("run1") is not None  # the run item itself is not a result


def test_replace_results_rejects_foreign_or_duplicate_ids(repo: Repo) -> None:
    with pytest.raises(ValueError, match="runs"):
        repo.repo.replace_results("run1", [make_group("g1", run_id="run2")], [])
    with pytest.raises(ValueError, match="duplicate case"):
        repo.repo.replace_results("run1", [], [make_case("c1"), make_case("c1")])
    assert repo.repo.list_cases("run1") == []


def test_large_match_group_round_trips_and_oversized_one_is_refused(repo: Repo) -> None:
    big = make_group("big", members=[member(i) for i in range(6000)])  # ~1 MB of JSON
    assert len(big.model_dump_json()) > 400 * 1024
    repo.repo.replace_results("run1", [big], [])
    assert repo.repo.list_match_groups("run1") == [big]
    if repo.kind == "aws":
        item = (
            boto3.resource("dynamodb")
            .Table(TABLE)
            .get_item(Key={"pk": "RUN#run1", "sk": "GROUP#big"})["Item"]
        )
        assert "data_z" in item and "data" not in item

    noise = [member(i, txn_id=base64.b64encode(os.urandom(300)).decode()) for i in range(1500)]
    with pytest.raises(ItemTooLargeError, match="400 KB"):
        repo.repo.replace_results("run1", [make_group("huge", members=noise)], [])
    assert repo.repo.list_match_groups("run1") == [big]  # nothing written


# --- repository: audit and fetch log -----------------------------------------------------------------------


def test_audit_is_chronological_across_time_zones_and_append_only(repo: Repo) -> None:
    cst = timezone(timedelta(hours=8))
    late = AuditEvent(
        event_id="e3", at=datetime(2024, 5, 2, 11, 0, tzinfo=cst), actor="alice", action="x", subject="c1"
    )
    early = AuditEvent(
        event_id="e1", at=datetime(2024, 5, 2, 2, 0, 0, 1, tzinfo=UTC), actor="s", action="y", subject="c1"
    )
    middle = AuditEvent(
        event_id="e2", at=datetime(2024, 5, 2, 10, 30, tzinfo=cst), actor="s", action="z", subject="c1"
    )
    for event in (late, early, middle, late):
        repo.repo.append_audit(event)
    repo.repo.append_audit(late.model_copy(update={"action": "rewritten"}))  # same key: ignored
    repo.repo.append_audit(AuditEvent(event_id="e9", at=T0, actor="s", action="a", subject="run1"))

    events = repo.repo.list_audit("c1")
    assert [e.event_id for e in events] == ["e1", "e2", "e3"]
    assert events[2] == late
    assert [e.event_id for e in repo.repo.list_audit("run1")] == ["e9"]
    assert repo.repo.list_audit("nobody") == []


def test_fetch_log_in_attempt_order(repo: Repo) -> None:
    def entry(attempt: int, at: str, status: str) -> FetchLogEntry:
        return FetchLogEntry(
            project_id="shop",
            account_id="alipay-main",
            channel="alipay",
            bill_date=date(2024, 5, 1),
            attempt=attempt,
            status=status,
            at=at,
            raw_key=None if status != "stored" else "raw/x.csv",
            checksum="e" * 64 if status == "stored" else None,
            size=10,
            duration_ms=120,
            detail="账单未生成",
        )

    entries = [
        entry(10, "2024-05-02T03:00:00+00:00", "stored"),
        entry(2, "2024-05-02T10:30:00+08:00", "not_ready"),
        entry(1, "2024-05-02T02:00:00+00:00", "not_ready"),
    ]
    for e in entries:
        repo.repo.put_fetch_log(e)
    repo.repo.put_fetch_log(entry(1, "2024-05-02T02:00:00+00:00", "not_ready"))  # re-put: same entry

    listed = repo.repo.list_fetch_log("shop", "alipay-main", date(2024, 5, 1))
    assert [e.attempt for e in listed] == [1, 2, 10]
    assert listed[2] == entries[0]
    assert repo.repo.list_fetch_log("shop", "alipay-main", date(2024, 5, 2)) == []


# --- repository: notification claims -----------------------------------------------------------------------

DAY_SUBJECT = "notify:shop:2024-05-01"
LEASE = timedelta(minutes=15)


def claim(
    execution: str | None, at: datetime, key: str = "f1#first", run_id: str = "run1"
) -> NotificationClaim:
    return NotificationClaim(DAY_SUBJECT, key, execution, run_id, at)


def test_the_first_claim_wins_and_a_rival_gets_the_holder(repo: Repo) -> None:
    first = claim("arn:exec:schedule", T0)
    assert repo.repo.claim_notification(first, stale_before=T0 - LEASE) is None
    rival = claim("arn:exec:upload", T0 + timedelta(seconds=1), run_id="run2")
    assert repo.repo.claim_notification(rival, stale_before=rival.at - LEASE) == first
    # Another content, or the same content after another notification, is another claim.
    for other in (claim("arn:exec:upload", T0, key="f2#first"), claim("arn:exec:upload", T0, key="f1#ev-7")):
        assert repo.repo.claim_notification(other, stale_before=T0 - LEASE) is None
    elsewhere = NotificationClaim("notify:shop:2024-05-02", "f1#first", "arn:exec:upload", "run2", T0)
    assert repo.repo.claim_notification(elsewhere, stale_before=T0 - LEASE) is None
    assert repo.repo.list_audit(DAY_SUBJECT) == []  # claims are not audit events


def test_a_retry_of_the_claiming_execution_renews_its_claim(repo: Repo) -> None:
    assert repo.repo.claim_notification(claim("arn:exec:one", T0), stale_before=T0 - LEASE) is None
    retry = claim("arn:exec:one", T0 + timedelta(minutes=10))
    assert repo.repo.claim_notification(retry, stale_before=retry.at - LEASE) is None
    # Past the first claim's lease but within the renewed one: still held, by the retry.
    later = claim("arn:exec:two", T0 + timedelta(minutes=20))
    assert repo.repo.claim_notification(later, stale_before=later.at - LEASE) == retry


def test_an_expired_claim_is_taken_over_and_an_unknown_execution_never_renews(repo: Repo) -> None:
    assert repo.repo.claim_notification(claim(None, T0), stale_before=T0 - LEASE) is None
    again = claim(None, T0 + timedelta(minutes=1), run_id="run2")
    assert repo.repo.claim_notification(again, stale_before=again.at - LEASE) == claim(None, T0)
    cst = timezone(timedelta(hours=8))  # the lease is compared as instants, whatever the offset
    late = claim("arn:exec:two", (T0 + LEASE + timedelta(microseconds=1)).astimezone(cst), run_id="run2")
    assert repo.repo.claim_notification(late, stale_before=late.at - LEASE) is None
    held = repo.repo.claim_notification(claim("arn:exec:three", late.at), stale_before=late.at - LEASE)
    assert held is not None and (held.execution, held.run_id, held.at) == ("arn:exec:two", "run2", late.at)


# --- repository: nothing sensitive is stored ---------------------------------------------------------------


def test_unmasked_account_numbers_are_never_stored(repo: Repo) -> None:
    account = Account(account_id="icbc-basic", source=Source.BANK, name="ICBC", number=SecretStr(FULL_NUMBER))
    repo.repo.append_audit(
        AuditEvent(
            event_id="e1",
            at=T0,
            actor="system:start",
            action="project.loaded",
            subject="run1",
            details={"account": account, "accounts": [account], "token": SecretStr(FULL_NUMBER)},
        )
    )
    repo.repo.put_run(make_run("run1", error=f"bank said: account {account.masked_number} closed"))
    repo.repo.put_statement(make_statement("stmt-1", "a" * 64, account_id="icbc-basic", source=Source.BANK))
    repo.repo.replace_results("run1", [make_group("g1")], [make_case("c1")])

    texts = repo.raw_texts()
    assert texts
    joined = "\n".join(texts)
    assert FULL_NUMBER not in joined
    assert FULL_NUMBER[-4:] in joined  # the masked form was stored: the account did get serialised
    assert "****0123" in joined
    stored = repo.repo.list_audit("run1")[0]
    assert stored.details["account"]["number"] == "****0123"
