"""camt.054: the genkgo sample against its expected-value JSON, and synthetic notifications (TxsSummry,
split batches, reversal, INFO entries, several notifications)."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

import pytest

from recon.domain import TxnStatus, TxnType
from recon.parsing import detect_format
from recon.parsing.readers import camt054 as reader

from ._bank_support import parse_bank, parse_bank_or_partial, refusal, totals
from ._support import samples


def _find(node: Any, suffix: str) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    if isinstance(node, dict):
        if str(node.get("__CLASS__", "")).endswith(suffix):
            out.append(node)
        for value in node.values():
            out += _find(value, suffix)
    elif isinstance(node, list):
        for value in node:
            out += _find(value, suffix)
    return out


@pytest.mark.needs_samples
def test_sample_matches_expected_json() -> None:
    path = samples("camt") / "camt054.v2.xml"
    expected = json.loads(path.with_suffix(".json").read_text())
    p = parse_bank(path.read_bytes(), path.name)
    assert p.format == "camt.054.001.02" and p.errors == []
    assert detect_format(path.read_bytes(), path.name) == ("camt.054.001.02", 0.99)
    entries = _find(expected, "DTO\\Entry")
    assert len(p.transactions) == len(entries) == 1
    for txn, entry in zip(p.transactions, entries, strict=True):
        money = entry["getAmount"]
        assert (txn.amount_minor, txn.currency) == (int(money["getAmount"]), money["getCurrency"]["getCode"])
        assert txn.booked_at == datetime.fromisoformat(entry["getBookingDate"]["0"])
        assert txn.value_date == datetime.fromisoformat(entry["getValueDate"]["0"]).date()
        assert txn.txn_id == entry["getAccountServicerReference"]
        assert txn.status is TxnStatus.SUCCESS and entry["getStatus"] == "BOOK"
        assert (txn.amount_minor < 0) == (entry["getCreditDebitIndicator"] == "DBIT")
        e2e = entry["getTransactionDetail"]["getReference"]["getEndToEndId"]
        assert txn.order_ref in (e2e, "ISR ref number V1")  # structured creditor reference wins
    assert p.statement_date is not None and p.statement_date.isoformat() == "2007-10-18"


# ------------------------------------------------------------------------------------------- synthetic

_NS = "urn:iso:std:iso:20022:tech:xsd:camt.054.001.04"


def _ntry(amount: str, ind: str, ref: str, *, status: str = "BOOK", details: str = "", rvsl: str = "") -> str:
    return (
        f'<Ntry><Amt Ccy="CNY">{amount}</Amt><CdtDbtInd>{ind}</CdtDbtInd>{rvsl}<Sts>{status}</Sts>'
        f"<BookgDt><Dt>2024-05-02</Dt></BookgDt><ValDt><Dt>2024-05-02</Dt></ValDt>"
        f"<AcctSvcrRef>{ref}</AcctSvcrRef>{details}</Ntry>"
    )


def _doc(*notifications: str) -> bytes:
    body = "".join(notifications)
    return (
        f'<?xml version="1.0" encoding="UTF-8"?><Document xmlns="{_NS}"><BkToCstmrDbtCdtNtfctn>'
        f"<GrpHdr><MsgId>M1</MsgId><CreDtTm>2024-05-02T08:00:00</CreDtTm></GrpHdr>{body}"
        "</BkToCstmrDbtCdtNtfctn></Document>"
    ).encode()


def _ntfctn(entries: str, summary: str = "", nid: str = "N1") -> str:
    return (
        f"<Ntfctn><Id>{nid}</Id><CreDtTm>2024-05-02T08:00:00</CreDtTm><Acct><Ccy>CNY</Ccy></Acct>"
        f"{summary}{entries}</Ntfctn>"
    )


_BATCH = (
    "<NtryDtls><Btch><NbOfTxs>2</NbOfTxs></Btch>"
    '<TxDtls><Refs><EndToEndId>ORDER-1</EndToEndId></Refs><Amt Ccy="CNY">60.00</Amt><CdtDbtInd>CRDT</CdtDbtInd>'
    "<RltdPties><Dbtr><Nm>Alipay</Nm></Dbtr></RltdPties></TxDtls>"
    '<TxDtls><Refs><EndToEndId>ORDER-2</EndToEndId></Refs><Amt Ccy="CNY">40.00</Amt><CdtDbtInd>CRDT</CdtDbtInd>'
    "</TxDtls></NtryDtls>"
)


def test_batch_split_reversal_info_and_summary() -> None:
    entries = (
        _ntry("100.00", "CRDT", "R1", details=_BATCH)
        + _ntry("5.00", "CRDT", "R2", rvsl="<RvslInd>true</RvslInd>")
        + _ntry("9.99", "DBIT", "R3", status="INFO")
    )
    summary = (
        "<TxsSummry><TtlNtries><NbOfNtries>3</NbOfNtries><Sum>114.99</Sum></TtlNtries>"
        "<TtlCdtNtries><NbOfNtries>2</NbOfNtries><Sum>105.00</Sum></TtlCdtNtries></TxsSummry>"
    )
    p = parse_bank(_doc(_ntfctn(entries, summary)), "n.xml", currency="CNY")
    got = [(t.txn_id, t.amount_minor, t.order_ref, t.txn_type, t.row_number) for t in p.transactions]
    assert got == [
        ("R1", 6000, "ORDER-1", TxnType.SETTLEMENT, 1),
        ("R1#2", 4000, "ORDER-2", TxnType.TRANSFER, 2),
        ("R2", 500, None, TxnType.ADJUSTMENT, 3),
    ]
    assert p.skipped_by_rule == {"info_entry": 1} and p.rows_read == 4
    t = totals(p)
    assert t["Stmt[1].TxsSummry.TtlNtries.Sum"] == ("114.99", "114.99")
    assert t["Stmt[1].TxsSummry.TtlCdtNtries.NbOfNtries"] == ("2", "2")
    assert "opening" not in t and "closing" not in t  # a notification has no balances


def test_summary_disagreeing_is_refused() -> None:
    summary = "<TxsSummry><TtlNtries><NbOfNtries>2</NbOfNtries><Sum>1.00</Sum></TtlNtries></TxsSummry>"
    error = refusal(_doc(_ntfctn(_ntry("1.00", "CRDT", "R1"), summary)), "n.xml", currency="CNY")
    assert [e.reason for e in error.errors] == [
        "control total Stmt[1].TxsSummry.TtlNtries.NbOfNtries disagrees: the file states 2, the rows add up to 1"
    ]


def test_several_notifications_number_rows_through_the_file() -> None:
    data = _doc(_ntfctn(_ntry("1.00", "CRDT", "A")), _ntfctn(_ntry("2.00", "DBIT", "B"), nid="N2"))
    p = parse_bank(data, "n.xml", currency="CNY")
    assert [(t.txn_id, t.amount_minor, t.row_number) for t in p.transactions] == [
        ("A", 100, 1),
        ("B", -200, 2),
    ]


def test_bad_entry_is_a_rejected_row() -> None:
    p, _ = parse_bank_or_partial(
        _doc(_ntfctn(_ntry("1.005", "CRDT", "A") + _ntry("1.00", "XX", "B"))), "n.xml"
    )
    assert [(e.row, e.column) for e in p.errors] == [
        (1, "Stmt[1]/Ntry[1]/Amt"),
        (2, "Stmt[1]/Ntry[2]/CdtDbtInd"),
    ]


def test_empty_and_foreign_documents_are_refused() -> None:
    empty = _doc()
    assert "has no <Ntfctn>" in refusal(empty, "n.xml").errors[0].reason
    assert reader.detect(b"<Document><BkToCstmrStmt/></Document>", "x") is None
    assert reader.detect(_doc(), "x") == ("camt.054.001.04", 0.99)
