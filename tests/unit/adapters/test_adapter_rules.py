"""Rules shared by the adapters and the fakes (no AWS)."""

from __future__ import annotations

import base64
import os
import subprocess
import sys
from datetime import UTC, date, datetime, timedelta, timezone
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from recon.adapters._shared import (
    ITEM_LIMIT,
    REOPENED,
    RETIRED,
    alert_attributes,
    alert_message,
    alert_subject,
    decode_metadata,
    decode_payload,
    encode_item,
    encode_metadata,
    execution_arn,
    execution_name,
    merge_case,
    retire_case,
    sortable_instant,
)
from recon.adapters.errors import ItemTooLargeError, ObjectNotFoundError
from recon.adapters.memory import MemoryObjectStore, MemoryWorkflowStarter
from recon.domain import (
    Case,
    CaseLink,
    CaseStatus,
    CaseType,
    MemberRef,
    ReviewedDifference,
    Severity,
    Source,
)


def test_memory_fakes_and_shared_rules_do_not_import_boto3() -> None:
    code = (
        "import sys, recon.adapters.memory, recon.adapters.errors; "
        "heavy = ('boto3', 'botocore', 'pyarrow', 'pandas'); "
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in heavy); "
        "print(','.join(bad)); sys.exit(1 if bad else 0)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout + result.stderr


# --- execution names ---------------------------------------------------------------------------------------


def test_valid_execution_names_are_kept() -> None:
    assert execution_name("shop-2024-05-01_schedule") == "shop-2024-05-01_schedule"


def test_execution_names_are_sanitised_without_collisions() -> None:
    a = execution_name("shop:2024-05-01/upload a.csv")
    b = execution_name("shop:2024-05-01/upload-a.csv")
    assert a != b
    assert a.startswith("shop-2024-05-01-upload-a-csv-")
    assert execution_name("shop:2024-05-01/upload a.csv") == a  # deterministic: re-delivery finds it


@given(st.text(min_size=1, max_size=300))
def test_any_text_gives_a_legal_execution_name(name: str) -> None:
    result = execution_name(name)
    assert 1 <= len(result) <= 80
    assert all(c.isascii() and (c.isalnum() or c in "-_") for c in result)


def test_execution_arn_from_state_machine_arn() -> None:
    machine = "arn:aws:states:us-east-1:123456789012:stateMachine:recon-reconcile"
    assert execution_arn(machine, "x") == "arn:aws:states:us-east-1:123456789012:execution:recon-reconcile:x"
    with pytest.raises(ValueError, match="state machine ARN"):
        execution_arn("arn:aws:sns:us-east-1:123456789012:topic", "x")


def test_memory_workflow_starter_keeps_the_first_execution() -> None:
    starter = MemoryWorkflowStarter()
    first = starter.start(name="shop/2024-05-01", payload={"a": 1})
    assert starter.start(name="shop/2024-05-01", payload={"a": 2}) == first
    assert len(starter.executions) == 1
    assert next(iter(starter.executions.values())).payload == {"a": 1}


# --- alerts ------------------------------------------------------------------------------------------------


def test_alert_subject_is_one_line_of_at_most_100_characters() -> None:
    assert alert_subject("  Run\tfailed:\r\nshop  ") == "Run failed: shop"
    long = alert_subject("差" * 150)
    assert len(long) == 100 and long.endswith("…")
    assert alert_subject("x" * 100) == "x" * 100


@given(st.text(max_size=400))
def test_alert_subject_never_exceeds_the_limit_or_has_control_characters(subject: str) -> None:
    result = alert_subject(subject)
    assert len(result) <= 100
    assert all(c.isprintable() for c in result)


def test_alert_message_is_cut_at_a_character_boundary() -> None:
    message = "对" * 100_000  # 300 KB of UTF-8
    cut = alert_message(message)
    assert len(cut.encode()) <= 256 * 1024
    assert cut.endswith("[truncated]") and cut.startswith("对对")
    assert alert_message("short") == "short"


def test_alert_attributes_are_validated() -> None:
    assert alert_attributes({"project": "shop", "blank": ""}) == {"project": "shop"}
    with pytest.raises(ValueError, match="at most 10"):
        alert_attributes({f"a{i}": "v" for i in range(11)})
    with pytest.raises(ValueError, match="invalid message attribute name"):
        alert_attributes({"AWS.reserved": "v"})


# --- object metadata and missing objects -------------------------------------------------------------------


@given(st.dictionaries(st.from_regex(r"[a-z0-9][a-z0-9_-]{0,10}", fullmatch=True), st.text(max_size=30)))
def test_metadata_round_trips_through_the_ascii_wire_form(metadata: dict[str, str]) -> None:
    wire = encode_metadata(metadata)
    assert all(v.isascii() for v in wire.values())
    assert decode_metadata(wire) == metadata


def test_metadata_keys_are_lower_cased_and_checked() -> None:
    assert encode_metadata({"Source-File": "a.csv"}) == {"source-file": "a.csv"}
    with pytest.raises(ValueError, match="metadata key"):
        encode_metadata({"文件": "x"})


def test_memory_store_missing_object_error_names_the_object() -> None:
    store = MemoryObjectStore()
    with pytest.raises(ObjectNotFoundError, match=r"s3://b/k \(version v1\)"):
        store.get("b", "k", version_id="v1")
    put = store.put("b", "k", b"x", content_type="text/csv")
    assert store.versions("b", "k") == [put.version_id]
    assert store.content_type("b", "k") == "text/csv"


# --- ordering and case status ------------------------------------------------------------------------------


def test_sortable_instant_orders_by_real_time_across_offsets() -> None:
    cst = timezone(timedelta(hours=8))
    instants = [
        datetime(2024, 5, 2, 9, 0, tzinfo=cst),  # 01:00 UTC
        datetime(2024, 5, 2, 1, 0, 0, 500, tzinfo=UTC),
        datetime(2024, 5, 2, 2, 0),  # naive: UTC
        datetime(2024, 5, 2, 10, 30, tzinfo=cst),  # 02:30 UTC
    ]
    keys = [sortable_instant(i) for i in instants]
    assert keys == sorted(keys)
    assert keys[0] == "2024-05-02T01:00:00.000000Z"
    assert len({len(k) for k in keys}) == 1


def _case(status: CaseStatus = CaseStatus.OPEN, **kw: Any) -> Case:
    values: dict[str, object] = {
        "case_id": "case_1",
        "run_id": "demo-20261120",
        "type": CaseType.AMOUNT_MISMATCH,
        "members": [_ref("erp:erp:SO1", Source.ERP, "SO1", 19900)],
        "counterpart": [_ref("wechat:wx:4200", Source.WECHAT, "4200", 18900)],
        "delta_minor": -1000,
        "currency": "CNY",
        "severity": Severity.LOW,
        "status": status,
        "reason": "the channel collected 10.00 less",
    }
    return Case.model_validate(values | kw)


def _ref(uid: str, source: Source, txn_id: str, amount: int) -> MemberRef:
    return MemberRef(
        txn_uid=uid, source=source, account_id="a", txn_id=txn_id, amount_minor=amount, currency="CNY"
    )


@pytest.mark.parametrize("status", [CaseStatus.OPEN, CaseStatus.AUTO_RESOLVED])
def test_merge_case_recomputes_system_states(status: CaseStatus) -> None:
    assert merge_case(None, _case()) == (_case(), None)
    computed = _case(reason="new words")
    assert merge_case(_case(status), computed) == (computed, None)


@pytest.mark.parametrize("status", [CaseStatus.IN_REVIEW, CaseStatus.RESOLVED])
def test_merge_case_keeps_a_review_status_while_the_difference_is_the_same(status: CaseStatus) -> None:
    kept, change = merge_case(_case(status), _case(reason="new words"))
    assert (kept.status, kept.reason, kept.changed_since_review, change) == (status, "new words", None, None)


@pytest.mark.parametrize(
    "changed",
    [
        {"delta_minor": -2000, "counterpart": [_ref("wechat:wx:4200", Source.WECHAT, "4200", 17900)]},
        {"type": CaseType.FEE_MISMATCH},
        {"members": [_ref("erp:erp:SO2", Source.ERP, "SO2", 19900)]},
    ],
    ids=["delta", "type", "members"],
)
def test_merge_case_reopens_a_reviewed_case_whose_difference_changed(changed: dict[str, Any]) -> None:
    """D01: a reviewer signed off Δ −10.00; the re-run finds Δ −20.00 (or another type, other rows)."""
    stored = _case(CaseStatus.RESOLVED)
    kept, change = merge_case(stored, _case(**changed))
    assert kept.status is CaseStatus.OPEN
    assert kept.changed_since_review == ReviewedDifference(
        status=CaseStatus.RESOLVED,
        type=CaseType.AMOUNT_MISMATCH,
        delta_minor=-1000,
        currency="CNY",
        members=["SO1"],
        changed_by="demo-20261120",
    )
    assert kept.system_note.startswith(
        "Changed since review: a reviewer had set it resolved for AMOUNT_MISMATCH Δ -10.00 CNY; run "
        "demo-20261120 finds "
    )
    assert (
        change is not None and change.action == REOPENED and change.before == stored and change.after == kept
    )
    # Stored so, the next attempt keeps it open and flagged, and reports nothing new.
    assert merge_case(kept, _case(**changed)) == (kept, None)
    # A reviewer who signs it off again answers the flag.
    again, _ = merge_case(kept.model_copy(update={"status": CaseStatus.RESOLVED}), _case(**changed))
    assert (again.status, again.changed_since_review, again.system_note) == (CaseStatus.RESOLVED, None, "")


def test_merge_case_keeps_a_closing_by_a_later_run_while_the_difference_is_the_same() -> None:
    link = CaseLink(case_id="case_2", business_date=date(2026, 11, 21))
    closed = _case(CaseStatus.AUTO_RESOLVED, explained_by=link, system_note="Closed automatically by run X")
    assert merge_case(closed, _case(reason="again")) == (closed.model_copy(update={"reason": "again"}), None)
    reopened, change = merge_case(closed, _case(delta_minor=-5))
    assert (reopened.status, reopened.explained_by) == (CaseStatus.OPEN, None)
    assert reopened.system_note == (
        "Reopened by run demo-20261120: it was closed because case case_2 (run of 2026-11-21) explained "
        "AMOUNT_MISMATCH Δ -10.00 CNY; this run finds AMOUNT_MISMATCH Δ -0.05 CNY. Check whether that case "
        "still explains it."
    )
    assert change is not None and (change.action, change.before, change.after) == (REOPENED, closed, reopened)


def test_retire_case_keeps_only_reviewed_cases() -> None:
    assert retire_case(_case(), "demo-20261120") is None
    assert retire_case(_case(CaseStatus.AUTO_RESOLVED), "demo-20261120") is None
    stored = _case(CaseStatus.IN_REVIEW)
    retired = retire_case(stored, "demo-20261120")
    assert retired is not None
    case, change = retired
    assert case.status is CaseStatus.AUTO_RESOLVED and case.changed_since_review is not None
    assert case.system_note.startswith(
        "Not found again by run demo-20261120: a reviewer had set it in_review"
    )
    assert (change.action, change.before, change.after) == (RETIRED, stored, case)


# --- item encoding -----------------------------------------------------------------------------------------


def test_small_items_are_plain_and_large_ones_compressed() -> None:
    keys = {"pk": "RUN#r", "sk": "GROUP#g", "type": "group"}
    small = encode_item(keys, '{"a": "对账"}')
    assert small["data"] == '{"a": "对账"}' and "data_z" not in small

    payload = '{"members": [' + ",".join(f'{{"txn_id": "ORD{i:08d}"}}' for i in range(30_000)) + "]}"
    large = encode_item(keys, payload)
    assert "data" not in large and len(large["data_z"]) < ITEM_LIMIT
    assert decode_payload(large) == payload


def test_incompressible_oversized_item_is_refused() -> None:
    payload = base64.b64encode(os.urandom(400 * 1024)).decode()
    with pytest.raises(ItemTooLargeError, match="400 KB"):
        encode_item({"pk": "RUN#r", "sk": "GROUP#g", "type": "group"}, payload)
