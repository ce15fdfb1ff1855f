"""Rules shared by the adapters and the fakes (no AWS)."""

from __future__ import annotations

import base64
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from recon.adapters._shared import (
    ITEM_LIMIT,
    alert_attributes,
    alert_message,
    alert_subject,
    decode_metadata,
    decode_payload,
    encode_item,
    encode_metadata,
    execution_arn,
    execution_name,
    merge_case_status,
    sortable_instant,
)
from recon.adapters.errors import ItemTooLargeError, ObjectNotFoundError
from recon.adapters.memory import MemoryObjectStore, MemoryWorkflowStarter
from recon.domain import CaseStatus


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


@pytest.mark.parametrize(
    ("stored", "computed", "expected"),
    [
        (None, CaseStatus.OPEN, CaseStatus.OPEN),
        (CaseStatus.IN_REVIEW, CaseStatus.OPEN, CaseStatus.IN_REVIEW),
        ("resolved", CaseStatus.AUTO_RESOLVED, CaseStatus.RESOLVED),
        (CaseStatus.OPEN, CaseStatus.AUTO_RESOLVED, CaseStatus.AUTO_RESOLVED),
        (CaseStatus.AUTO_RESOLVED, CaseStatus.OPEN, CaseStatus.OPEN),
    ],
)
def test_merge_case_status_keeps_only_review_states(
    stored: CaseStatus | str | None, computed: CaseStatus, expected: CaseStatus
) -> None:
    assert merge_case_status(stored, computed) == expected


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
