"""A statement that states another account than the one it is delivered as is quarantined, not reconciled
as the project's account (recon.pipeline.statement_account, through the parse stage)."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from recon.domain import Project, Source, StatementStatus
from recon.pipeline.services import Services
from recon.pipeline.statement_account import same_account, stated_accounts
from recon_local.demo_data import generate_day, write_day
from recon_local.local_run import assign_inputs

from .conftest import Clock, memory_services
from .test_parse_stage import NOW, _alerts, _deliver
from .test_parse_stage_camt import camt053

DAY = date(2026, 11, 20)
OURS = "75591234561080100018"
OTHER = "75591234569990000777"
STATED_IBAN = "CN0962220210001234567890"  # what camt053() states

PROJECT = f"""
project_id: acme
name: Acme
version: 1
timezone: Asia/Shanghai
currency: CNY
accounts:
  - {{account_id: bank-cmb, source: bank, name: CMB settlement account, number: "{OURS}"}}
  - {{account_id: bank-open, source: bank, name: An account without a declared number}}
  - {{account_id: wechat-main, source: wechat, name: WeChat Pay merchant, number: "1900000109"}}
"""


@pytest.fixture
def svc() -> Services:
    return memory_services("acme", PROJECT, clock=Clock(NOW))


def _camt(account: str, entries: list[tuple[str, str]] | None = None) -> bytes:
    return camt053(DAY, "1000.00", entries or [("W1", "5674.43")]).replace(
        f"<IBAN>{STATED_IBAN}</IBAN>".encode(), f"<Othr><Id>{account}</Id></Othr>".encode()
    )


def _two_statements(first: str, second: str) -> bytes:
    """One camt.053 document holding a statement of ``first`` and one of ``second``."""
    one, two = _camt(first, [("Y2", "4692.51")]), _camt(second, [("Y1", "5674.43")])
    stmt_two = two[two.index(b"<Stmt>") : two.index(b"</Stmt>") + len(b"</Stmt>")]
    return one.replace(b"</Stmt>", b"</Stmt>" + stmt_two.replace(b"<Id>S2026", b"<Id>T2026"), 1)


def test_a_bank_statement_of_another_account_is_quarantined_naming_both_numbers(svc: Services) -> None:
    statement = _deliver(svc, "bank-cmb", DAY, "camt_other.xml", _camt(OTHER))
    assert statement.status is StatementStatus.QUARANTINED and statement.rows_parsed == 0
    (error,) = statement.errors
    assert error.file.endswith("camt_other.xml")
    assert "****0777" in error.reason and "****0018" in error.reason and "bank-cmb" in error.reason
    assert OTHER not in error.reason and OURS not in error.reason  # masked, as everywhere
    (alert,) = _alerts(svc).published
    assert alert.attributes["kind"] == "statement_quarantined" and "****0777" in alert.message


def test_a_bank_statement_of_the_declared_account_is_accepted(svc: Services) -> None:
    statement = _deliver(svc, "bank-cmb", DAY, "camt_ours.xml", _camt(OURS))
    assert statement.status is StatementStatus.PARSED and statement.rows_parsed == 1
    assert not _alerts(svc).published


def test_a_file_holding_our_statement_and_another_accounts_is_quarantined_whole(svc: Services) -> None:
    data = _two_statements(OURS, OTHER)
    assert stated_accounts(data, "two.xml", Source.BANK) == [OURS, OTHER]
    statement = _deliver(svc, "bank-cmb", DAY, "camt_two.xml", data)
    assert statement.status is StatementStatus.QUARANTINED
    (error,) = statement.errors
    assert "****0777" in error.reason and "whole file is quarantined" in error.reason


def test_no_declared_number_means_nothing_to_compare(svc: Services) -> None:
    statement = _deliver(svc, "bank-open", DAY, "camt_other.xml", _camt(OTHER))
    assert statement.status is StatementStatus.PARSED


def _wechat_bill(tmp_path: Path, merchant: str | None = None) -> bytes:
    path = next(p for p in write_day(generate_day(DAY), tmp_path) if p.name.startswith("wechat"))
    data = path.read_bytes()
    return data if merchant is None else data.replace(b"`1900000109,", f"`{merchant},".encode())


def test_a_wechat_bill_of_another_merchant_is_quarantined(svc: Services, tmp_path: Path) -> None:
    statement = _deliver(svc, "wechat-main", DAY, "bill.csv", _wechat_bill(tmp_path, "1900000999"))
    assert statement.status is StatementStatus.QUARANTINED
    (error,) = statement.errors
    assert "商户号" in error.reason and "****0999" in error.reason and "****0109" in error.reason


def test_a_wechat_bill_with_one_row_of_another_merchant_is_quarantined_whole(
    svc: Services, tmp_path: Path
) -> None:
    data = _wechat_bill(tmp_path).replace(b"`1900000109,", b"`1900000999,", 1)
    statement = _deliver(svc, "wechat-main", DAY, "bill.csv", data)
    assert statement.status is StatementStatus.QUARANTINED
    (error,) = statement.errors
    assert "****0999" in error.reason and "whole file is quarantined" in error.reason


def test_a_service_providers_bill_of_the_declared_sub_merchant_is_accepted(
    svc: Services, tmp_path: Path
) -> None:
    """Under a service provider the bill's 商户号 is the provider's; 特约商户号 is the merchant's own."""
    data = _wechat_bill(tmp_path).replace(b"`1900000109,`0,", b"`1230000109,`1900000109,")
    assert stated_accounts(data, "bill.csv", Source.WECHAT) == ["1230000109"]
    statement = _deliver(svc, "wechat-main", DAY, "bill.csv", data)
    assert statement.status is StatementStatus.PARSED


def test_the_wechat_bill_of_the_declared_merchant_is_accepted(svc: Services, tmp_path: Path) -> None:
    data = _wechat_bill(tmp_path)
    assert stated_accounts(data, "bill.csv", Source.WECHAT) == ["1900000109"]
    statement = _deliver(svc, "wechat-main", DAY, "bill.csv", data)
    assert statement.status is StatementStatus.PARSED and statement.rows_parsed > 0


@pytest.mark.parametrize(
    ("stated", "declared", "source", "same"),
    [
        ("CMBCCNBS/75591234561080100018", OURS, Source.BANK, True),  # MT940 :25: BIC/account
        ("7559 1234 5610 8010 0018", OURS, Source.BANK, True),
        ("NL69INGB0123456789EUR", "NL69INGB0123456789", Source.BANK, True),  # <account><currency>
        ("NL69INGB0123456789", "0123456789", Source.BANK, True),  # IBAN of the domestic number
        ("20881011221362410156", "2088101122136241", Source.ALIPAY, True),  # partner id + account suffix
        ("20881011221362410156", "2088101122139999", Source.ALIPAY, False),
        (OURS, "****0018", Source.BANK, True),  # a number stored masked: only its tail is known
        (OTHER, "****0018", Source.BANK, False),
        (OTHER, OURS, Source.BANK, False),
        ("7559123456108010001", OURS, Source.BANK, False),  # one digit short is another account
    ],
)
def test_spellings_of_the_same_account(stated: str, declared: str, source: Source, same: bool) -> None:
    assert same_account(stated, declared, source) is same


def test_a_local_file_goes_to_the_account_whose_number_it_states(tmp_path: Path) -> None:
    """`recon run` with two bank accounts: the statement is delivered to the account it names."""
    project = Project.from_yaml(
        PROJECT.replace(
            "name: An account without a declared number}",
            f'name: The other CMB account, number: "{OTHER}"}}',
        )
    )
    ours, other = tmp_path / "ours.xml", tmp_path / "other.xml"
    ours.write_bytes(_camt(OURS))
    other.write_bytes(_camt(OTHER))
    assert assign_inputs(project, [ours, other]) == {"bank-cmb": [ours], "bank-open": [other]}
