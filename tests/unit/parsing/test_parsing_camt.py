"""camt.053: the genkgo/camt samples against their expected-value JSON, plus synthetic statements."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from recon.domain import Source, TxnStatus, TxnType
from recon.money import to_decimal
from recon.parsing import ParsedStatement, StatementParseError, detect_format
from recon.pipeline.chain import balances

from ._support import assert_accounting, parse, samples
from .test_parse_fastpaths import _fast


def _find(node: Any, suffix: str) -> list[dict[str, Any]]:
    """All objects of a PHP class (by name suffix) in genkgo's JSON dump."""
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


def _parse_sample(path: Path) -> tuple[ParsedStatement, list[str]]:
    """Parse in UTC (the JSON states instants in UTC); a refused file yields its partial result."""
    try:
        return parse(path.read_bytes(), path.name, Source.BANK, currency="EUR", timezone="UTC"), []
    except StatementParseError as exc:
        assert exc.parsed is not None, str(exc)
        return exc.parsed, [e.reason for e in exc.errors]


def _camt053_samples() -> list[Path]:
    folder = samples("camt")
    return sorted(p for p in folder.glob("camt053*.xml") if p.with_suffix(".json").exists())


@pytest.mark.needs_samples
def test_samples_match_expected_json() -> None:
    paths = _camt053_samples()
    assert len(paths) >= 5
    for path in paths:
        expected = json.loads(path.with_suffix(".json").read_text())
        p, refusals = _parse_sample(path)
        assert_accounting(p)
        assert p.errors == [], path.name
        version = "08" if ".v8." in path.name else "02"
        assert p.format == f"camt.053.001.{version}"
        # Only balance control totals may refuse a sample (genkgo's test files do not all tie up).
        assert all("balance opening+booked=CLBD" in r for r in refusals), (path.name, refusals)
        entries = _find(expected, "DTO\\Entry")
        assert entries, path.name
        for entry in entries:
            money = entry["getAmount"]
            amount = int(money["getAmount"])
            currency = money["getCurrency"]["getCode"]
            booked = datetime.fromisoformat(entry["getBookingDate"]["0"])
            matches = [
                t
                for t in p.transactions
                if (t.amount_minor, t.currency, t.booked_at) == (amount, currency, booked)
            ]
            assert len(matches) == 1, (path.name, amount, booked)
            txn = matches[0]
            assert (txn.amount_minor > 0) == (entry["getCreditDebitIndicator"] == "CRDT")
            assert txn.status is (TxnStatus.SUCCESS if entry["getStatus"] == "BOOK" else TxnStatus.PENDING)
            ref = entry["getAccountServicerReference"]
            detail = entry.get("getTransactionDetail") or {}
            e2e = (detail.get("getReference") or {}).get("getEndToEndId")
            if ref:
                assert txn.txn_id == ref
            elif e2e:
                assert txn.txn_id == e2e
            value_date = datetime.fromisoformat(entry["getValueDate"]["0"]).date()
            assert txn.value_date == value_date
        for record in _find(expected, "Camt053\\DTO\\Statement"):
            balances = {b["getType"]: b["getAmount"] for b in record["getBalances"]}
            if "closing" not in balances:
                continue
            closing = balances["closing"]
            ccy = closing["getCurrency"]["getCode"]
            stated = f"{to_decimal(int(closing['getAmount']), ccy)} {ccy}"
            assert stated in {c.stated for c in p.control_totals}, (path.name, stated)


@pytest.mark.needs_samples
def test_multi_statement_sample_parses_cleanly_with_both_balances() -> None:
    path = samples("camt") / "camt053.v2.multi.statement.xml"
    p = parse(path.read_bytes(), path.name, Source.BANK, currency="EUR", timezone="UTC")
    assert [c.name for c in p.control_totals] == [
        "Stmt[1].balance opening+booked=CLBD",
        "Stmt[2].previous CLBD of the account = opening",  # the two statements chain inside the file
        "Stmt[2].balance opening+booked=CLBD",
        "opening",
        "closing",
    ]
    assert all(c.ok for c in p.control_totals)
    # One account (NL26VAYB8060476890) in both statements: the first OPBD and the last CLBD, for chaining.
    totals = {c.name: c.stated for c in p.control_totals}
    assert (totals["opening"], totals["closing"]) == ("18.15 EUR 2014-12-30", "20.00 EUR 2014-12-31")
    credit, debit = p.transactions
    assert (credit.amount_minor, credit.order_ref, credit.memo) == (
        885,
        "000000001",
        "Transaction Description 1",
    )
    assert (debit.amount_minor, debit.counterparty, debit.row_number) == (-700, "Company Name 2", 2)


@pytest.mark.needs_samples
def test_minimal_sample_is_refused_for_its_closing_balance() -> None:
    path = samples("camt") / "camt053.v2.minimal.xml"
    with pytest.raises(StatementParseError) as info:
        parse(path.read_bytes(), path.name, Source.BANK)
    (error,) = info.value.errors
    assert error.column == "Stmt[1]/Bal[CLBD]"
    assert "-27.00 SEK" in error.reason and "27.00 EUR" in error.reason


@pytest.mark.needs_samples
def test_v8_sample_maps_refs_parties_and_time() -> None:
    path = samples("camt") / "camt053.v8.xml"
    p, _ = _parse_sample(path)
    (txn,) = p.transactions
    assert txn.txn_id == "AAAASESS-FP-CN_98765/01"
    assert txn.counterparty == "NAME NAME"  # v8: RltdPties/Dbtr/Pty/Nm of a credit
    assert txn.order_ref == "4654654654654654"  # RmtInf/Strd/CdtrRefInf/Ref
    # Rows come back from the Arrow table in UTC: the same instant as the file's 13:15+01:00.
    assert txn.booked_at == datetime.fromisoformat("2014-12-31T13:15:00+01:00")
    assert txn.booked_at.utcoffset() is not None


@pytest.mark.needs_samples
def test_wrong_sample_raises_a_clear_error() -> None:
    path = samples("camt") / "camt053.v2.wrong.xml"
    with pytest.raises(StatementParseError) as info:
        parse(path.read_bytes(), path.name, Source.BANK)
    (error,) = info.value.errors
    assert error.file == "camt053.v2.wrong.xml"
    assert "no <Stmt>" in error.reason


@pytest.mark.needs_samples
def test_camt054_is_not_taken_for_a_statement() -> None:
    # camt.054 has its own reader (recon.parsing.readers.camt054): never the camt.053 one.
    path = samples("camt") / "camt054.v2.xml"
    fmt, _ = detect_format(path.read_bytes(), path.name)
    assert not fmt.startswith("camt.053")
    assert fmt == "unknown" or fmt.startswith("camt.054")


# ------------------------------------------------------------------------------------------ synthetic

NS = "urn:iso:std:iso:20022:tech:xsd:camt.053.001.08"


def _bal(code: str, amount: str, ind: str = "CRDT", day: str = "2024-05-01") -> str:
    return (
        f"<Bal><Tp><CdOrPrtry><Cd>{code}</Cd></CdOrPrtry></Tp><Amt Ccy='CNY'>{amount}</Amt>"
        f"<CdtDbtInd>{ind}</CdtDbtInd><Dt><Dt>{day}</Dt></Dt></Bal>"
    )


def _ntry(
    amount: str,
    ind: str,
    *,
    ref: str = "",
    sts: str = "BOOK",
    rvsl: bool = False,
    details: str = "",
    extra: str = "",
) -> str:
    return (
        f"<Ntry>{f'<NtryRef>{ref}</NtryRef>' if ref else ''}<Amt Ccy='CNY'>{amount}</Amt><CdtDbtInd>{ind}</CdtDbtInd>"
        f"{'<RvslInd>true</RvslInd>' if rvsl else ''}<Sts><Cd>{sts}</Cd></Sts>"
        f"<BookgDt><DtTm>2024-05-01T10:00:00</DtTm></BookgDt><ValDt><Dt>2024-05-02</Dt></ValDt>{extra}"
        f"<NtryDtls>{details}</NtryDtls></Ntry>"
    )


def _tx(amount: str | None, *, name: str = "", role: str = "Dbtr", ustrd: str = "", e2e: str = "") -> str:
    return (
        "<TxDtls>"
        + (f"<Refs><EndToEndId>{e2e}</EndToEndId></Refs>" if e2e else "")
        + (f"<Amt Ccy='CNY'>{amount}</Amt>" if amount else "")
        + (f"<RltdPties><{role}><Pty><Nm>{name}</Nm></Pty></{role}></RltdPties>" if name else "")
        + (f"<RmtInf><Ustrd>{ustrd}</Ustrd></RmtInf>" if ustrd else "")
        + "</TxDtls>"
    )


def _doc(*stmts: str, ns: str = NS) -> bytes:
    return (
        f"<?xml version='1.0' encoding='UTF-8'?><Document xmlns='{ns}'><BkToCstmrStmt><GrpHdr><MsgId>M1</MsgId>"
        f"</GrpHdr>{''.join(stmts)}</BkToCstmrStmt></Document>"
    ).encode()


def _stmt(body: str, sid: str = "S1", account: str = "<Othr><Id>6222</Id></Othr>") -> str:
    return f"<Stmt><Id>{sid}</Id><Acct><Id>{account}</Id><Ccy>CNY</Ccy></Acct>{body}</Stmt>"


def test_split_batch_reversal_pending_info_and_types() -> None:
    body = (
        _bal("OPBD", "1000.00")
        + _ntry(
            "300.00",
            "CRDT",
            ref="B1",
            details=_tx("100.00", name="支付宝（中国）网络技术有限公司", e2e="NOTPROVIDED")
            + _tx("200.00", name="ACME", ustrd="invoice 7"),
        )
        + _ntry(
            "5.00",
            "DBIT",
            ref="F1",
            extra="<BkTxCd><Domn><Cd>ACMT</Cd><Fmly><Cd>MDOP</Cd>"
            "<SubFmlyCd>CHRG</SubFmlyCd></Fmly></Domn></BkTxCd>",
        )
        + _ntry("40.00", "CRDT", ref="R1", rvsl=True)
        + _ntry("9.00", "CRDT", ref="P1", sts="PDNG")
        + _ntry("1.00", "CRDT", ref="I1", sts="INFO")
        + _bal("CLBD", "1335.00")
    )
    body = body.replace(_bal("CLBD", "1335.00"), "") + _bal("CLBD", "1335.00")
    summary = (
        "<TxsSummry><TtlNtries><NbOfNtries>5</NbOfNtries><Sum>355.00</Sum></TtlNtries>"
        "<TtlDbtNtries><NbOfNtries>1</NbOfNtries><Sum>5.00</Sum></TtlDbtNtries></TxsSummry>"
    )
    data = _doc(_stmt(summary + body))
    assert detect_format(data, "s.xml") == ("camt.053.001.08", 0.99)
    p = parse(data, "s.xml", Source.BANK)
    assert_accounting(p)
    assert p.rows_read == 6 and p.skipped_by_rule == {"info_entry": 1}  # 5 entries, one split in two
    assert all(c.ok for c in p.control_totals), p.control_totals
    assert "Stmt[1]/Ntry[1].TxDtls sum" in {c.name for c in p.control_totals}
    first, second, fee, reversal, pending = p.transactions
    assert (first.txn_id, first.amount_minor, first.txn_type) == ("B1", 10000, TxnType.SETTLEMENT)
    assert first.order_ref is None  # EndToEndId NOTPROVIDED
    assert (second.txn_id, second.amount_minor, second.txn_type, second.memo) == (
        "B1#2",
        20000,
        TxnType.TRANSFER,
        "invoice 7",
    )
    assert [t.row_number for t in p.transactions] == [1, 2, 3, 4, 5]
    assert (fee.amount_minor, fee.txn_type) == (-500, TxnType.FEE)
    assert (reversal.amount_minor, reversal.txn_type) == (
        4000,
        TxnType.ADJUSTMENT,
    )  # CdtDbtInd kept as booked
    assert pending.status is TxnStatus.PENDING
    assert str(first.value_date) == "2024-05-02" and first.booked_at.utcoffset() is not None


def test_balance_mismatch_and_summary_mismatch_raise() -> None:
    data = _doc(_stmt(_bal("OPBD", "10.00") + _ntry("1.00", "DBIT", ref="X") + _bal("CLBD", "8.00")))
    with pytest.raises(StatementParseError) as info:
        parse(data, "s.xml", Source.BANK)
    assert "states 8.00 CNY, the rows add up to 9.00 CNY" in str(info.value)


def test_entry_with_bad_amount_is_rejected_naming_the_element() -> None:
    data = _doc(
        _stmt(_ntry("1.005", "CRDT", ref="A") + _ntry("2.00", "XXXX", ref="B") + _ntry("3.00", "CRDT"))
    )
    p = parse(data, "s.xml", Source.BANK)
    assert_accounting(p)
    assert [(e.row, e.column) for e in p.errors] == [
        (1, "Stmt[1]/Ntry[1]/Amt"),
        (2, "Stmt[1]/Ntry[2]/CdtDbtInd"),
    ]
    (txn,) = p.transactions
    assert txn.txn_id == "S1:3"  # no reference at all: statement id and entry ordinal


@pytest.mark.parametrize("version", ["02", "03", "04", "05", "06", "07", "08"])
def test_versions_from_namespace(version: str) -> None:
    data = _doc(
        _stmt(_ntry("1.00", "CRDT", ref="A")), ns=f"urn:iso:std:iso:20022:tech:xsd:camt.053.001.{version}"
    )
    assert parse(data, "s.xml", Source.BANK).format == f"camt.053.001.{version}"


def test_malformed_xml_names_the_line_and_dtd_is_refused() -> None:
    with pytest.raises(StatementParseError) as info:
        parse(b"<?xml version='1.0'?>\n<Document>\n<BkToCstmrStmt>\n</Document>", "s.xml", Source.BANK)
    assert info.value.errors[0].row == 4 and "malformed XML" in info.value.errors[0].reason
    bomb = b"<?xml version='1.0'?><!DOCTYPE d [<!ENTITY a 'aaaa'>]><Document><BkToCstmrStmt/></Document>"
    with pytest.raises(StatementParseError, match="DTD"):
        parse(bomb, "s.xml", Source.BANK)


def test_balances_for_chaining_files_per_account() -> None:
    """``opening``/``closing`` as the bank readers state them: per account, the first statement's OPBD (else
    PRCD) and the last statement's CLBD, dated; suffixed with the masked account when there are several."""
    iban = "<IBAN>NL26VAYB8060476890</IBAN>"
    data = _doc(
        _stmt(
            _bal("OPBD", "100.00", day="2024-04-30") + _ntry("5.00", "DBIT", ref="A") + _bal("CLBD", "95.00")
        )
        + _stmt(
            _bal("PRCD", "7.00", "DBIT", day="2024-04-30")
            + _ntry("2.00", "CRDT", ref="B")
            + _bal("CLBD", "5.00", "DBIT"),
            sid="S2",
            account=iban,
        )
        + _stmt(
            _bal("OPBD", "95.00", day="2024-05-01")
            + _ntry("1.50", "CRDT", ref="C")
            + _bal("CLBD", "96.50", day="2024-05-02"),
            sid="S3",
        )
    )
    expected = {
        "opening[****6222]": "100.00 CNY 2024-04-30",
        "closing[****6222]": "96.50 CNY 2024-05-02",
        "opening[****6890]": "-7.00 CNY 2024-04-30",
        "closing[****6890]": "-5.00 CNY 2024-05-01",
    }
    # camt_fast reads the plain document; a comment in an entry leaves it to camt.parse: both state the same.
    careful = data.replace(b"<Ntry>", b"<Ntry><!-- x -->", 1)
    assert _fast(data) is not None and _fast(careful) is None
    for variant in (data, careful):
        p = parse(variant, "s.xml", Source.BANK)
        assert all(c.ok for c in p.control_totals)
        assert {
            c.name: c.stated for c in p.control_totals if c.name.startswith(("opening", "closing"))
        } == expected
        assert [c.name for c in p.control_totals][-4:] == list(expected)  # after the in-file checks
        assert all(c.computed == c.stated for c in p.control_totals if c.name in expected)
        assert balances(p.control_totals, "CNY") is None  # several accounts: not one account's chain

    one = parse(
        _doc(_stmt(_bal("OPBD", "10.00") + _ntry("1.00", "CRDT", ref="X") + _bal("CLBD", "11.00"))),
        "s.xml",
        Source.BANK,
    )
    totals = {c.name: c.stated for c in one.control_totals}
    assert (totals["opening"], totals["closing"]) == ("10.00 CNY 2024-05-01", "11.00 CNY 2024-05-01")
    found = balances(one.control_totals, "CNY")
    assert found is not None and (found.opening.minor, found.closing.minor) == (1000, 1100)
    # Without a closing balance a statement states nothing to chain.
    unclosed = parse(
        _doc(_stmt(_bal("OPBD", "10.00") + _ntry("1.00", "CRDT", ref="X"))), "s.xml", Source.BANK
    )
    assert not [c for c in unclosed.control_totals if c.name in ("opening", "closing")]


def test_consecutive_statements_of_one_account_must_chain_inside_the_file() -> None:
    """Statement 2's opening must be statement 1's CLBD (same account, file order), as in MT940; another
    account's statement in between does not break the chain."""

    def day(opening: str, closing: str, sid: str, on: str) -> str:
        return _stmt(
            _bal("OPBD", opening, day=on) + _ntry("1.00", "CRDT", ref=sid) + _bal("CLBD", closing, day=on),
            sid=sid,
        )

    other = _stmt(
        _bal("OPBD", "1.00") + _bal("CLBD", "1.00"), sid="X", account="<IBAN>NL26VAYB8060476890</IBAN>"
    )
    chained = _doc(
        day("10.00", "11.00", "S1", "2024-05-01") + other + day("11.00", "12.00", "S2", "2024-05-02")
    )
    p = parse(chained, "s.xml", Source.BANK)
    (link,) = [c for c in p.control_totals if "previous CLBD" in c.name]
    assert (link.name, link.stated, link.computed, link.ok) == (
        "Stmt[3].previous CLBD of the account = opening",
        "11.00 CNY",
        "11.00 CNY",
        True,
    )
    broken = _doc(day("10.00", "11.00", "S1", "2024-05-01") + day("15.00", "16.00", "S2", "2024-05-03"))
    for variant in (broken, broken.replace(b"<Ntry>", b"<Ntry><!-- x -->", 1)):  # fast and careful reader
        with pytest.raises(StatementParseError) as info:
            parse(variant, "s.xml", Source.BANK)
        assert "Stmt[2].previous CLBD of the account = opening" in str(info.value)
        assert "11.00 CNY" in str(info.value) and "15.00 CNY" in str(info.value)
