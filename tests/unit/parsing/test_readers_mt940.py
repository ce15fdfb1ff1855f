"""MT940/MT942: every sample with a .yml of expected values (mt-940's own test data) value by value, the
real-world deviations (ASN, hard-wrapped ING), and synthetic statements for signs, exactness, control
totals, chaining and row rejection."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import yaml

from recon.domain import TxnType
from recon.money import to_minor
from recon.parsing import detect_format
from recon.parsing.readers import mt940 as reader

from ._bank_support import parse_bank, parse_bank_or_partial, refusal, totals
from ._support import samples

# Refusals the jejik/mBank test files earn: their balances were made up and do not tie.
_BALANCE_REFUSALS = ("opening+entries=closing", "closing = Stmt[")


def _sample_files() -> list[Path]:
    folder = samples("mt940")
    return sorted(p for p in folder.rglob("*.sta") if p.with_suffix(".yml").exists())


def _expected(path: Path) -> Any:
    with path.with_suffix(".yml").open(encoding="utf-8") as fh:
        # mt-940's own fixtures pickle its model objects: UnsafeLoader (trusted test data only).
        return yaml.load(fh, Loader=yaml.UnsafeLoader)


@pytest.mark.needs_samples
def test_every_sample_with_yml_gives_the_expected_transactions() -> None:
    paths = _sample_files()
    assert len(paths) >= 13
    for path in paths:
        expected = _expected(path)
        p, refusals = parse_bank_or_partial(path.read_bytes(), path.name)
        assert p.errors == [], (path.name, p.errors[:3])
        assert all(any(k in r for k in _BALANCE_REFUSALS) for r in refusals), (path.name, refusals)
        assert p.format in ("mt940", "mt940.942")
        want = expected.transactions
        assert len(p.transactions) == len(want), path.name
        for got, exp in zip(p.transactions, want, strict=True):
            amount = exp.data["amount"]
            assert got.currency == amount.currency, path.name
            assert got.amount_minor == to_minor(Decimal(amount.amount), amount.currency), path.name
            value_day = exp.data["date"]
            assert got.value_date == date(value_day.year, value_day.month, value_day.day), path.name
            entry_day = exp.data.get("entry_date") or value_day
            assert got.booked_at.date() == date(entry_day.year, entry_day.month, entry_day.day), path.name
        ids = [t.txn_id for t in p.transactions]
        assert len(set(ids)) == len(ids), path.name


@pytest.mark.needs_samples
def test_samples_whose_balances_tie_parse_cleanly_and_expose_balances() -> None:
    folder = samples("mt940")
    clean = {
        "mBank/mt940.sta": ("0.40 PLN 2017-01-19", "0.43 PLN 2017-01-19"),
        "sberbank/171011_01234945.sta": ("627311.30 HUF 2017-10-11", "617874.30 HUF 2017-10-11"),
        "jejik/sns.sta": ("1234.56 EUR 2012-06-08", "1209.56 EUR 2012-06-09"),
        "jejik/rabobank-iban.sta": ("1000.00 EUR 2013-01-01", "930.00 EUR 2013-01-15"),
    }
    for name, (opening, closing) in clean.items():
        p = parse_bank((folder / name).read_bytes(), name)
        assert all(c.ok for c in p.control_totals), name
        t = totals(p)
        assert t["opening"] == (opening, opening), name
        assert t["closing"] == (closing, closing), name


@pytest.mark.needs_samples
def test_mt942_sample_checks_its_90d_90c_entry_totals() -> None:
    path = samples("mt940") / "mBank" / "mt942.sta"
    p = parse_bank(path.read_bytes(), path.name)
    assert p.format == "mt940.942"
    t = totals(p)
    assert t["Stmt[1] 1/1.:90C: number"] == ("3", "3")
    assert t["Stmt[1] 1/1.:90C: sum"] == ("0.03 PLN", "0.03 PLN")
    assert t["Stmt[1] 1/1.:90D: sum"] == ("0.00 PLN", "0.00 PLN")
    assert [t.txn_id for t in p.transactions] == ["MB170119012058", "MB170119012085", "MB170119012121"]


@pytest.mark.needs_samples
def test_mismatching_sample_is_refused_with_the_difference() -> None:
    path = samples("mt940") / "jejik" / "ing.sta"
    error = refusal(path.read_bytes(), path.name)
    (first,) = [e for e in error.errors if "opening+entries=closing" in e.reason]
    assert "the file states 3.47 EUR" in first.reason and "-45.59 EUR" in first.reason
    assert first.row == 26  # the :62F: line
    assert error.parsed is not None and len(error.parsed.transactions) == 7


@pytest.mark.needs_samples
def test_asn_bank_sample_reads_iban_customer_references_and_chains_31_statements() -> None:
    path = samples("mt940") / "ASNB" / "0708271685_09022020_164516.940.txt"
    p = parse_bank(path.read_bytes(), path.name)
    assert len(p.transactions) == 8 and p.errors == []
    chains = [c for c in p.control_totals if " closing = " in c.name]
    assert len(chains) == 30 and all(c.ok for c in chains)
    first = p.transactions[0]
    assert (first.txn_id, first.amount_minor, first.row_number) == ("0000000000/1/1:1", -6500, 6)
    assert first.counterparty == "hr gjlm paulissen"
    assert first.order_ref is None  # ASN's customer reference is the counterparty IBAN
    assert "Betaling sieraden" in (first.memo or "")
    assert totals(p)["closing"] == ("501.23 EUR 2020-01-31", "501.23 EUR 2020-01-31")


@pytest.mark.needs_samples
def test_hard_wrapped_ing_sample_is_unwrapped() -> None:
    path = samples("OCA-bank-statement-import") / "mt940" / "test-ing.940"
    p = parse_bank(path.read_bytes(), path.name)
    assert all(c.ok for c in p.control_totals)
    got = [(t.txn_id, t.amount_minor, t.order_ref, t.counterparty) for t in p.transactions]
    assert got == [
        ("00000000001005", 156, "EV12341REP1231456T1234", "ING BANK NV INZAKE WEB"),
        ("00000000001006", -157, None, None),
        ("00000000001007", 157, "20120123456789", "J.Janssen"),
        ("00000000001009", -114, "EV123REP123412T1234", "ING Bank N.V. inzake WeB"),
        ("00000000001008", 145, None, None),
        ("00000000001010", -1275, "20120501P0123478", "J.Janssen"),
        ("00000000001011", 3200, "15814016000676480", "J.Janssen"),
        ("00000000001012", -11900, "15614016000384600", "INGBANK NV"),
    ]
    # The "-" line inside the wrapped :86: is content (MND-EV01), not a message end.
    memos = [t.memo for t in p.transactions]
    assert memos[0] == "EV10001REP1000000T1000" and memos[5] == "CONTRIBUTIE FEB 2014"
    assert [t.row_number for t in p.transactions] == [9, 14, 17, 21, 31, 39, 47, 51]
    assert totals(p)["closing"] == ("564.35 EUR 2014-02-20", "564.35 EUR 2014-02-20")


@pytest.mark.needs_samples
def test_every_sample_is_detected_as_mt940() -> None:
    for folder in (samples("mt940"), samples("OCA-bank-statement-import") / "mt940"):
        for path in sorted(folder.rglob("*")):
            if path.suffix in (".sta", ".940", ".txt"):
                fmt, confidence = detect_format(path.read_bytes(), path.name)
                assert fmt.startswith("mt940") and confidence >= 0.9, path.name


# ------------------------------------------------------------------------------------------- synthetic


def _message(
    lines: list[str],
    *,
    ref: str = "STMT1",
    number: str = "1/1",
    opening: str = "C240501EUR100,00",
    closing: str = "C240501EUR100,00",
    account: str = "NL91ABNA0417164300",
) -> str:
    body = [f":20:{ref}", f":25:{account}", f":28C:{number}", f":60F:{opening}", *lines, f":62F:{closing}"]
    return "{1:F01ABNANL2AXXXX0000000000}{2:O940ABNANL2AXXXXN}{4:\n" + "\n".join(body) + "\n-}\n"


def test_decimal_comma_signs_and_references() -> None:
    text = _message(
        [
            ":61:2405010501C1234,5NTRFORDER-42//BANKREF1",
            ":86:/EREF/E2E-7//CNTP/NL12INGB0001234567/INGBNL2A/ALIPAY SETTLEMENT///REMI/USTD//Payout 1/",
            ":61:2405010501D0,05NCHGNONREF//BANKREF2",
            ":86:Bank charges May",
            ":61:240501RD10,NTRFNONREF//BANKREF3",
            ":61:240501RC1,NTRFNONREF//BANKREF4",
        ],
        closing="C240501EUR1343,45",
    )
    p = parse_bank(text.encode(), "a.sta")
    assert [(t.txn_id, t.amount_minor) for t in p.transactions] == [
        ("BANKREF1", 123450),
        ("BANKREF2", -5),
        ("BANKREF3", 1000),  # reversal of a debit: money back in
        ("BANKREF4", -100),  # reversal of a credit: money out
    ]
    first, fee, rd, rc = p.transactions
    assert (first.order_ref, first.counterparty, first.memo) == ("E2E-7", "ALIPAY SETTLEMENT", "Payout 1")
    assert first.txn_type is TxnType.SETTLEMENT
    assert fee.txn_type is TxnType.FEE and fee.memo == "Bank charges May"
    assert rd.txn_type is TxnType.ADJUSTMENT and rc.txn_type is TxnType.ADJUSTMENT
    assert totals(p)["Stmt[1] 1/1.balance opening+entries=closing"] == ("1343.45 EUR", "1343.45 EUR")


def test_customer_reference_is_the_order_ref_unless_a_codeword() -> None:
    text = _message(
        [":61:2405010501C1,00NTRFORDER-42//B1", ":61:2405010501C1,00NTRFEREF//B2"],
        closing="C240501EUR102,00",
    )
    p = parse_bank(text.encode(), "a.sta")
    assert [t.order_ref for t in p.transactions] == ["ORDER-42", None]


def test_zero_and_three_decimal_currencies_are_exact() -> None:
    jpy = _message(
        [":61:2405010501C1500,NTRFNONREF//J1"], opening="C240501JPY100,", closing="C240501JPY1600,"
    )
    p = parse_bank(jpy.encode(), "jpy.sta", currency="JPY")
    assert p.transactions[0].amount_minor == 1500 and p.transactions[0].currency == "JPY"
    kwd = _message(
        [":61:2405010501D0,125NTRFNONREF//K1"], opening="C240501KWD1,000", closing="C240501KWD0,875"
    )
    assert parse_bank(kwd.encode(), "kwd.sta").transactions[0].amount_minor == -125


def test_too_many_decimals_rejects_the_row_and_names_its_line() -> None:
    text = _message([":61:2405010501C1,005NTRFNONREF//X1", ":61:2405010501C1,00NTRFNONREF//X2"])
    p, _refusals = parse_bank_or_partial(text.encode(), "a.sta")
    (error,) = p.errors
    assert (error.row, error.column) == (6, "amount") and "precision" in error.reason
    assert [t.txn_id for t in p.transactions] == ["X2"]


def test_malformed_statement_line_is_a_rejected_row_not_a_crash() -> None:
    text = _message(
        [":61:NOT A STATEMENT LINE", ":86:details of the bad line", ":61:2405010501C0,00NTRFNONREF//X2"]
    )
    p, _ = parse_bank_or_partial(text.encode(), "a.sta")
    (error,) = p.errors
    assert error.row == 6 and error.column == ":61:" and "cannot be read" in error.reason
    assert len(p.transactions) == 1 and p.transactions[0].memo is None


def test_balance_disagreement_is_refused_with_both_values() -> None:
    text = _message([":61:2405010501C5,00NTRFNONREF//X1"], closing="C240501EUR106,00")
    error = refusal(text.encode(), "a.sta")
    (problem,) = error.errors
    assert "the file states 106.00 EUR, the rows add up to 105.00 EUR" in problem.reason
    assert problem.row == 7


def test_statements_chain_and_a_break_names_both() -> None:
    one = _message([":61:2405010501C5,00NTRFNONREF//X1"], number="1/1", closing="C240501EUR105,00")
    two = _message(
        [":61:2405020502D5,00NTRFNONREF//X2"],
        number="2/1",
        opening="C240502EUR105,00",
        closing="C240502EUR100,00",
    )
    p = parse_bank((one + two).encode(), "a.sta")
    t = totals(p)
    assert t["Stmt[1] 1/1 closing = Stmt[2] 2/1 opening"] == ("105.00 EUR", "105.00 EUR")
    assert t["opening"] == ("100.00 EUR 2024-05-01", "100.00 EUR 2024-05-01")
    assert t["closing"] == ("100.00 EUR 2024-05-02", "100.00 EUR 2024-05-02")
    assert p.statement_date == date(2024, 5, 2)
    broken = two.replace(":60F:C240502EUR105,00", ":60F:C240502EUR104,00").replace(
        ":62F:C240502EUR100,00", ":62F:C240502EUR99,00"
    )
    error = refusal((one + broken).encode(), "a.sta")
    (problem,) = error.errors
    assert "Stmt[1] 1/1 closing = Stmt[2] 2/1 opening" in problem.reason
    assert "states 105.00 EUR, the rows add up to 104.00 EUR" in problem.reason


def test_several_accounts_expose_masked_balances() -> None:
    one = _message([], account="NL91ABNA0417164300")
    two = _message([], account="NL02RABO0123456789", opening="C240501EUR7,00", closing="C240501EUR7,00")
    names = set(totals(parse_bank((one + two).encode(), "a.sta")))
    assert {"opening[****4300]", "closing[****4300]", "opening[****6789]", "closing[****6789]"} <= names
    assert not any("NL91ABNA0417164300" in n for n in names)


def test_mt942_totals_disagreeing_are_refused() -> None:
    text = (
        ":20:INTERIM\n:25:NL91ABNA0417164300\n:28C:1/1\n:34F:EUR0,\n:13D:2405011200+0200\n"
        ":61:2405010501C1,00NTRFNONREF//X1\n:90D:0EUR0,\n:90C:2EUR1,00\n-\n"
    )
    error = refusal(text.encode(), "a.sta")
    assert any(":90C: number disagrees" in e.reason for e in error.errors)
    assert error.parsed is not None and error.parsed.format == "mt940.942"


def test_reference_repeated_in_file_is_kept_for_duplicate_detection_fallbacks_are_unique() -> None:
    text = _message(
        [
            ":61:2405010501C1,00NTRFNONREF//SAME",
            ":61:2405010501C1,00NTRFNONREF//SAME",
            ":61:2405010501C1,00NTRFNONREF",
            ":61:2405010501C1,00NTRFNONREF",
        ],
        closing="C240501EUR104,00",
    )
    ids = [t.txn_id for t in parse_bank(text.encode(), "a.sta").transactions]
    assert ids == ["SAME", "SAME", "STMT1/1/1:3", "STMT1/1/1:4"]


def test_latin1_text_and_crlf_and_reparse_is_identical() -> None:
    text = _message([":61:2405010501C1,00NTRFNONREF//X1", ":86:Zahlung Müller"], closing="C240501EUR101,00")
    data = text.replace("\n", "\r\n").encode("latin-1")
    p = parse_bank(data, "a.sta")
    assert p.encoding == "cp1252" and p.transactions[0].memo == "Zahlung Müller"
    assert parse_bank(data, "a.sta") == p


def test_detect_is_cheap_and_specific() -> None:
    assert reader.detect(b"date,amount\n2024-05-01,1.00\n", "x.csv") is None
    assert reader.detect(b":20:X\n:61:bad\n", "x") is None  # no :25: account: not a statement
    assert reader.detect(_message([]).encode(), "x") == ("mt940", 0.95)
    assert reader.detect(b"\x00\xff" * 100, "x") is None


def test_german_gv_code_details() -> None:
    text = _message(
        [
            ":61:2405010501C12,00NTRFNONREF//G1",
            ":86:166?00GUTSCHRIFT?20EREF+ORDER-9?21SVWZ+Rechnung 1?32ALIPAY EUROPE",
        ],
        closing="C240501EUR112,00",
    )
    (txn,) = parse_bank(text.encode(), "de.sta").transactions
    assert (txn.order_ref, txn.counterparty) == ("ORDER-9", "ALIPAY EUROPE")
    assert txn.memo is not None and "Rechnung 1" in txn.memo
