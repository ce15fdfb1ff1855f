"""Balance chaining of camt.053 statements through the parse stage: each file states its account's first
opening and last closing balance, so consecutive statements chain and a missing one is reported, as for
MT940 (test_parse_stage.py)."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

import pytest

from recon.domain import ControlTotal
from recon.pipeline.chain import chain_break
from recon.pipeline.parse import parse_channel
from recon.pipeline.services import Services

from .conftest import Clock, memory_services
from .test_parse_stage import NOW, PROJECT, _alerts, _deliver, _task

CAMT_PROJECT = (
    PROJECT + "  - {account_id: bank-camt, source: bank, name: CNY account (camt.053), format: camt.053}\n"
)


@pytest.fixture
def svc() -> Services:
    return memory_services("acme", CAMT_PROJECT, clock=Clock(NOW))


def camt053(day: date, opening: str, entries: list[tuple[str, str]]) -> bytes:
    """One day's camt.053 statement of the CNY account: balances and entries as signed decimal strings."""

    def signed(tag: str, value: Decimal) -> str:
        return f"<{tag} Ccy='CNY'>{abs(value):.2f}</{tag}><CdtDbtInd>{'CRDT' if value >= 0 else 'DBIT'}</CdtDbtInd>"

    def balance(code: str, when: date, value: Decimal) -> str:
        return f"<Bal><Tp><CdOrPrtry><Cd>{code}</Cd></CdOrPrtry></Tp>{signed('Amt', value)}<Dt><Dt>{when}</Dt></Dt></Bal>"

    start = Decimal(opening)
    end = start + sum((Decimal(v) for _, v in entries), Decimal(0))
    body = "".join(
        f"<Ntry><NtryRef>{ref}</NtryRef>{signed('Amt', Decimal(value))}<Sts><Cd>BOOK</Cd></Sts>"
        f"<BookgDt><Dt>{day}</Dt></BookgDt></Ntry>"
        for ref, value in entries
    )
    return (
        "<?xml version='1.0' encoding='UTF-8'?>"
        "<Document xmlns='urn:iso:std:iso:20022:tech:xsd:camt.053.001.08'><BkToCstmrStmt>"
        f"<GrpHdr><MsgId>M{day:%Y%m%d}</MsgId></GrpHdr><Stmt><Id>S{day:%Y%m%d}</Id>"
        "<Acct><Id><IBAN>CN0962220210001234567890</IBAN></Id><Ccy>CNY</Ccy></Acct>"
        f"{balance('OPBD', day - timedelta(days=1), start)}{balance('CLBD', day, end)}{body}"
        "</Stmt></BkToCstmrStmt></Document>"
    ).encode()


def test_consecutive_camt_statements_chain_and_a_missing_one_is_reported(svc: Services) -> None:
    d20, d21, d23 = (date(2026, 11, d) for d in (20, 21, 23))
    first = _deliver(
        svc, "bank-camt", d20, "20.xml", camt053(d20, "1000.00", [("A1", "250.00"), ("A2", "-50.00")])
    )
    assert first.format == "camt.053.001.08" and first.rows_parsed == 2
    second = _deliver(svc, "bank-camt", d21, "21.xml", camt053(d21, "1200.00", [("B1", "100.00")]))
    assert [t for t in second.control_totals if t.name == "chain"] == [
        ControlTotal(name="chain", stated="1200.00 CNY", computed="1200.00 CNY")
    ]
    assert chain_break(first) is None and chain_break(second) is None
    assert not _alerts(svc).published

    # The 22nd is missing: the 23rd opens with 1400.00 where the 21st closed with 1300.00.
    broken = _deliver(svc, "bank-camt", d23, "23.xml", camt053(d23, "1400.00", [("D1", "-20.00")]))
    reason = chain_break(broken)
    assert reason is not None and "opens with 1400.00 CNY" in reason and "closed with 1300.00 CNY" in reason
    (alert,) = _alerts(svc).published
    assert alert.attributes["kind"] == "balance_chain_break" and second.statement_id in alert.message
    assert parse_channel(_task("bank-camt", d23), svc).blocked == [reason]
