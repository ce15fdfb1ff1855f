from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from recon.domain import Account, Project, project_json_schema
from recon.money import MoneyError, format_amount, to_decimal, to_minor

REPO = Path(__file__).resolve().parents[3]


@pytest.mark.parametrize(
    ("text", "currency", "minor"),
    [
        ("199.00", "CNY", 19900),
        ("1,234,567.89", "CNY", 123456789),
        ("¥ 12.30", "CNY", 1230),
        ("-0.01", "CNY", -1),
        ("+10000.00", "CNY", 1000000),
        ("1.19000", "CNY", 119),  # WeChat's five-decimal fees
        ("12.30-", "CNY", -1230),  # trailing minus of some bank exports
        ("`0.60", "CNY", 60),
        ("1500", "JPY", 1500),
        ("1.234", "KWD", 1234),
    ],
)
def test_to_minor_exact(text: str, currency: str, minor: int) -> None:
    assert to_minor(text, currency) == minor


@pytest.mark.parametrize("text", ["0.001", "1.005", "abc", "", "-", "NaN", "Infinity"])
def test_to_minor_rejects_inexact_or_garbage(text: str) -> None:
    with pytest.raises(MoneyError):
        to_minor(text, "CNY")


@given(st.integers(min_value=-(10**15), max_value=10**15))
def test_round_trip_minor_decimal_text(minor: int) -> None:
    assert to_minor(to_decimal(minor, "CNY"), "CNY") == minor
    assert to_minor(format_amount(minor, "CNY"), "CNY") == minor
    assert isinstance(to_decimal(minor, "CNY"), Decimal)


def test_account_number_is_masked_when_serialised() -> None:
    account = Account(account_id="bank-cmb", source="bank", name="CMB", number="75591234561080100018")
    dumped = account.model_dump_json()
    assert "75591234561080100018" not in dumped
    assert "****0018" in dumped
    assert account.masked_number == "****0018"
    assert "75591234561080100018" not in repr(account)


def test_demo_project_is_valid_and_schema_is_current() -> None:
    project = Project.from_yaml((REPO / "local/recon_local/projects/demo.yaml").read_text("utf-8"))
    assert [r.name for r in project.settlement_rules] == ["wechat-settlement", "alipay-settlement"]
    checked_in = (REPO / "docs/project.schema.json").read_text("utf-8")
    assert checked_in == project_json_schema(), "run `recon schema --out docs/project.schema.json`"
    assert json.loads(checked_in)["title"] == "Reconciliation project"


def test_project_rejects_unknown_account_in_rule() -> None:
    text = (
        (REPO / "local/recon_local/projects/demo.yaml")
        .read_text("utf-8")
        .replace("bank_account: bank-cmb", "bank_account: bank-icbc", 1)
    )
    with pytest.raises(ValidationError, match="unknown account 'bank-icbc'"):
        Project.from_yaml(text)
