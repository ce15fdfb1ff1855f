"""Profiles as data: validation, YAML/JSON, versions, extends, the JSON Schema, user profile folders,
ERP in three containers, detection of encoding / delimiter / header row, in-file duplicates."""

from __future__ import annotations

import io
import json
from pathlib import Path

import openpyxl
import pyarrow as pa
import pytest
from pydantic import ValidationError

from recon.domain import Source, TxnType
from recon.parsing import (
    Profile,
    StatementParseError,
    builtin_profiles,
    detect,
    detect_format,
    load_profiles,
    parse_statement,
    profile_json_schema,
)
from recon.parsing.profiles import strptime_format
from recon.tables import TRANSACTION_SCHEMA, read_parquet, table_to_parquet

from ._support import REPO, assert_accounting, at, parse

ERP_HEADER = "order_no,refund_no,type,channel,amount,currency,created_at,paid_at,status,customer,memo"
ERP_ROWS = [
    "SO-1,,payment,wechat,199.00,CNY,2024-05-01 09:00:00,2024-05-01 09:01:00,paid,张三,咖啡",
    "SO-1,,payment,wechat,199.00,CNY,2024-05-01 09:00:00,2024-05-01 09:01:00,paid,张三,咖啡",
    "SO-2,RF-1,refund,alipay,-50.00,CNY,2024-05-01 10:00:00,,refunded,李四,",
]
MINIMAL = """
name: test.minimal
version: "1"
match: {header: [id, amount, when]}
fields:
  txn_id: {column: id}
  amount: {column: amount}
  booked_at: {column: when, formats: ["yyyy-MM-dd"]}
"""


def test_builtins_load_and_validate() -> None:
    names = {p.name for p in builtin_profiles().latest()}
    assert {
        "wechat.tradebill.all",
        "wechat.tradebill.all_legacy",
        "wechat.tradebill.success",
        "wechat.tradebill.refund",
        "wechat.fundflow",
        "alipay.trade.zip",
        "alipay.trade.csv",
        "alipay.signcustomer.zip",
        "erp.orders.csv",
        "erp.orders.xlsx",
        "erp.orders.json",
        "bank.icbc.debit_v1",
        "bank.icbc.debit_v2",
        "bank.ccb.debit_xls",
        "bank.ccb.debit_csv",
        "bank.abc.debit",
        "bank.cmb.debit",
        "bank.cmb.credit",
    } <= names


def test_yaml_and_json_are_the_same_profile() -> None:
    from_yaml = Profile.from_yaml(MINIMAL)
    as_json = json.dumps(from_yaml.model_dump(mode="json", by_alias=True, exclude_defaults=True))
    assert Profile.from_json(as_json) == from_yaml
    assert from_yaml.fields["txn_id"].column == ["id"]  # a single alias becomes a list


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"fields": {"txn_id": {"column": "id"}}}, "field 'amount' is required"),
        ({"fields": {"txn_id": {"column": "id", "const": "x"}}}, "exactly one source"),
        ({"fields": {"colour": {"column": "c"}}}, "unknown standard field"),
        ({"fields": {"status": {"const": "great"}}}, "not among"),
        ({"fields": {"booked_at": {"column": "when", "formats": ["MM/DD"]}}}, "needs year_from"),
        ({"fields": {"booked_at": {"column": "when", "formats": ["yyyy-QQ"]}}}, "unknown letter"),
        ({"delimiter": ";;"}, "delimiter"),
        ({"kinds": [{"name": "a"}, {"name": "a"}]}, "unique"),
        (
            {
                "control_totals": [
                    {"name": "t", "section": "nope", "values": [{"column": "n", "count": "all"}]}
                ]
            },
            "no section",
        ),
        ({"lines": [{"name": "x", "regex": "("}]}, "bad regex"),
        ({"extra": 1}, "Extra inputs are not permitted"),
    ],
)
def test_invalid_profiles_are_refused_with_the_reason(change: dict, message: str) -> None:  # type: ignore[type-arg]
    import yaml

    doc = yaml.safe_load(MINIMAL)
    for key, value in change.items():
        if key == "fields":
            doc["fields"] = {**doc["fields"], **value} if "txn_id" not in value or len(value) > 1 else value
        else:
            doc[key] = value
    if change.get("fields") == {"txn_id": {"column": "id"}}:
        doc["fields"] = {"txn_id": {"column": "id"}}
    with pytest.raises((ValidationError, ValueError), match=message):
        Profile.from_data(doc)


def test_date_patterns_in_the_issue_notation() -> None:
    assert strptime_format("yyyyMMdd") == "%Y%m%d"
    assert strptime_format("yyyy/MM/dd  HH:mm:ss") == "%Y/%m/%d  %H:%M:%S"
    assert strptime_format("MM/DD") == "%m/%d"
    assert strptime_format("yyyy-MM-dd'T'HH:mm:ss") == "%Y-%m-%dT%H:%M:%S"


def test_json_schema_is_checked_in_and_current() -> None:
    schema = profile_json_schema()
    assert schema["title"] == "recon parsing profile"
    assert {"name", "version", "fields"} <= set(schema["required"])
    stored = json.loads((REPO / "docs" / "profile.schema.json").read_text("utf-8"))
    assert stored == schema, "docs/profile.schema.json is stale: python -m recon.parsing.profiles > it"


def test_user_folder_versions_extends_and_reparse_with_an_earlier_version(tmp_path: Path) -> None:
    (tmp_path / "minimal_v1.yaml").write_text(MINIMAL, "utf-8")
    (tmp_path / "minimal_v2.yaml").write_text(
        MINIMAL.replace('version: "1"', 'version: "2"').replace(
            "txn_id: {column: id}", 'txn_id: {template: "M-{id}"}'
        ),
        "utf-8",
    )
    (tmp_path / "erp_semicolon.json").write_text(
        json.dumps(
            {"name": "erp.orders.semicolon", "extends": "erp.orders.csv", "version": "1", "delimiter": ";"}
        ),
        "utf-8",
    )
    (tmp_path / "notes.txt").write_text("not a profile", "utf-8")
    found = load_profiles(tmp_path)
    assert sorted(p.key for p in found) == [
        ("erp.orders.semicolon", "1"),
        ("test.minimal", "1"),
        ("test.minimal", "2"),
    ]
    assert found.get("test.minimal").version == "2"  # the latest
    assert found.versions("test.minimal") == ["1", "2"]
    data = b"id,amount,when\nA1,1.50,2024-05-01\n"
    latest = parse_statement(
        data,
        filename="m.csv",
        raw_key="m.csv",
        statement_id="s",
        source=Source.BANK,
        account_id="a",
        profile=found.get("test.minimal"),
    )
    earlier = parse_statement(
        data,
        filename="m.csv",
        raw_key="m.csv",
        statement_id="s",
        source=Source.BANK,
        account_id="a",
        profile=found.get("test.minimal", "1"),
    )
    assert (latest.profile_version, latest.transactions[0].txn_id) == ("2", "M-A1")
    assert (earlier.profile_version, earlier.transactions[0].txn_id) == ("1", "A1")
    assert earlier.table.column("profile_version").to_pylist() == ["1"]
    semi = found.get("erp.orders.semicolon")
    assert semi.fields == builtin_profiles().get("erp.orders.csv").fields and semi.delimiter == ";"
    text = "\n".join([ERP_HEADER.replace(",", ";"), *(r.replace(",", ";") for r in ERP_ROWS)])
    p = parse_statement(
        text.encode(),
        filename="o.csv",
        raw_key="o.csv",
        statement_id="s",
        source=Source.ERP,
        account_id="a",
        profile=semi,
    )
    assert len(p.transactions) == 3


def test_a_broken_user_profile_names_its_file(tmp_path: Path) -> None:
    (tmp_path / "bad.yaml").write_text("name: x.y\nversion: '1'\nfields: {}\n", "utf-8")
    with pytest.raises(ValueError, match=r"bad\.yaml"):
        load_profiles(tmp_path)
    (tmp_path / "bad.yaml").write_text("name: x.y\nextends: x.y\nversion: '1'\nfields: {}\n", "utf-8")
    with pytest.raises(ValueError, match=r"cycle|extends"):
        load_profiles(tmp_path)


# --------------------------------------------------------------------------------- ERP containers


def test_erp_xlsx_and_json_read_like_the_csv() -> None:
    book = openpyxl.Workbook()
    ws = book.active
    ws.append(ERP_HEADER.split(","))
    from datetime import datetime

    ws.append(
        [
            "SO-7",
            None,
            "payment",
            "wechat",
            12.5,
            "CNY",
            datetime(2024, 5, 1, 9),
            datetime(2024, 5, 1, 9, 1),
            "paid",
            "王五",
            None,
        ]
    )
    ws.append(
        [
            "SO-7",
            "R-1",
            "refund",
            "wechat",
            -2,
            "CNY",
            datetime(2024, 5, 1, 10),
            None,
            "refunded",
            "王五",
            "退",
        ]
    )
    buf = io.BytesIO()
    book.save(buf)
    data = buf.getvalue()
    assert detect_format(data, "orders.zip") == ("erp.orders.xlsx", 0.99)
    p = parse(data, "orders.xlsx", Source.ERP)
    assert_accounting(p)
    assert (p.format, p.encoding, p.skipped_by_rule) == ("erp.orders.xlsx", "binary", {"header": 1})
    pay, refund = p.transactions
    assert (pay.amount_minor, pay.booked_at, pay.row_number) == (1250, at("2024-05-01 09:01:00"), 2)
    assert (refund.txn_id, refund.amount_minor, refund.txn_type) == ("SO-7#R-1", -200, TxnType.REFUND)

    records = [
        {
            "order_no": "SO-8",
            "refund_no": "",
            "type": "payment",
            "channel": "alipay",
            "amount": 0.1,
            "currency": "CNY",
            "created_at": "2024-05-01 09:00:00",
            "paid_at": None,
            "status": "paid",
            "customer": "赵六",
            "memo": "x",
        },
        ["not", "an", "object"],
        {
            "order_no": "SO-9",
            "type": "payment",
            "amount": "3.333",
            "created_at": "2024-05-01 09:00:00",
            "status": "paid",
        },
    ]
    data = json.dumps({"orders": records}, ensure_ascii=False).encode()
    assert detect_format(data, "x.txt") == ("erp.orders.json", 0.99)
    p = parse(data, "orders.json", Source.ERP)
    assert_accounting(p)
    assert p.rows_read == 3 and p.skipped_by_rule == {}
    (only,) = p.transactions
    assert only.amount_minor == 10  # the JSON number 0.1 read as its literal text, exactly
    assert [(e.row, e.column) for e in p.errors] == [(2, None), (3, "amount")]
    assert "precision" in p.errors[1].reason


# ---------------------------------------------------------------------------------------- detection


@pytest.mark.parametrize("encoding", ["utf-8", "utf-8-sig", "gbk", "gb18030"])
@pytest.mark.parametrize("delimiter", [",", "\t", ";", "|"])
def test_detection_by_decoding_sniffing_and_header_search(encoding: str, delimiter: str) -> None:
    lines = ["订单导出", "导出时间: 2024-05-02", "", ERP_HEADER, *ERP_ROWS]
    text = "\r\n".join(line.replace(",", delimiter) for line in lines) + "\r\n"
    if encoding == "gb18030":
        text = text.replace("咖啡", "咖啡\u20ac")  # € exists in GB18030, not in GBK
    data = text.encode(encoding)
    profile = Profile.from_data(
        {"name": "erp.orders.any", "extends": "erp.orders.csv", "version": "1", "delimiter": "auto"}
    )
    found = detect(data, "orders", profiles=[profile])
    assert (found.format, found.delimiter, found.header_line) == ("erp.orders.any", delimiter, 4)
    assert found.encoding == encoding
    p = parse_statement(
        data,
        filename="o",
        raw_key="o",
        statement_id="stmt-1",
        source=Source.ERP,
        account_id="acct-1",
        profile=profile,
    )
    assert_accounting(p)
    assert p.encoding == encoding and p.skipped_by_rule == {"preamble": 2, "blank": 1, "header": 1}
    assert [t.row_number for t in p.transactions] == [5, 6, 7]
    memo = p.transactions[0].memo
    assert memo is not None and memo.startswith("咖啡")


def test_in_file_duplicates_are_flagged_never_dropped() -> None:
    data = ("\n".join([ERP_HEADER, *ERP_ROWS]) + "\n").encode()
    p = parse(data, "o.csv", Source.ERP)
    assert [t.in_file_duplicate for t in p.transactions] == [False, True, False]
    assert [t.dedupe_key for t in p.transactions] == ["SO-1", "SO-1", "SO-2#RF-1"]
    assert p.in_file_duplicates == 1 and p.rows_parsed == 3
    assert p.table.schema == TRANSACTION_SCHEMA
    assert p.table.schema.metadata[b"recon.schema_version"] == b"3"


def test_parquet_round_trip_and_version_1_files() -> None:
    data = ("\n".join([ERP_HEADER, *ERP_ROWS]) + "\n").encode()
    p = parse(data, "o.csv", Source.ERP)
    stored = table_to_parquet(p.table)
    again = read_parquet(stored).select(TRANSACTION_SCHEMA.names)  # without the parse stage's columns
    assert again.to_pylist() == p.table.to_pylist()
    assert table_to_parquet(parse(data, "o.csv", Source.ERP).table) == stored  # deterministic bytes
    v1 = p.table.drop_columns(["dedupe_key", "in_file_duplicate"])
    import pyarrow.parquet as pq

    sink = io.BytesIO()
    pq.write_table(v1, sink)
    upgraded = read_parquet(sink.getvalue()).select(TRANSACTION_SCHEMA.names)
    assert upgraded.column("dedupe_key").to_pylist() == p.table.column("txn_id").to_pylist()
    assert upgraded.column("in_file_duplicate").to_pylist() == [False, True, False]
    assert isinstance(upgraded, pa.Table)
    assert upgraded.column("gross_minor").to_pylist() == [None] * 3


def test_version_2_files_are_read_without_amounts_before_discounts() -> None:
    """Schema version 3 adds ``gross_minor`` (nullable): objects written before it read with it null."""
    import pyarrow.parquet as pq

    data = ("\n".join([ERP_HEADER, *ERP_ROWS]) + "\n").encode()
    p = parse(data, "o.csv", Source.ERP)
    sink = io.BytesIO()
    pq.write_table(p.table.drop_columns(["gross_minor"]), sink)
    again = read_parquet(sink.getvalue())
    assert again.column("gross_minor").to_pylist() == [None] * 3
    assert again.select(TRANSACTION_SCHEMA.names).to_pylist() == p.table.to_pylist()


def test_unreadable_excel_is_a_parse_error() -> None:
    profile = builtin_profiles().get("bank.ccb.debit_xls")
    with pytest.raises(StatementParseError, match="xls"):
        parse_statement(
            b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 100,
            filename="x.xls",
            raw_key="x",
            statement_id="s",
            source=Source.BANK,
            account_id="a",
            profile=profile,
        )
