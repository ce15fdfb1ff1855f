"""BAI2: the bai2 package's sample files with their totals, and synthetic files whose 49/98/99 trailers,
record counts, balances and summaries are each made to disagree."""

from __future__ import annotations

from datetime import date

import pytest

from recon.domain import TxnType
from recon.parsing import detect_format
from recon.parsing.readers import bai2 as reader

from ._bank_support import parse_bank, parse_bank_or_partial, refusal, totals
from ._support import samples


@pytest.mark.needs_samples
def test_svb_sample_parses_with_every_total_and_the_day_chain() -> None:
    path = samples("bai2") / "svb_us_example.bai2"
    p = parse_bank(path.read_bytes(), path.name, currency="USD")
    assert p.format == "bai2" and p.statement_date == date(2022, 2, 2)
    got = [(t.txn_id, t.amount_minor, t.currency, t.value_date, t.row_number, t.memo) for t in p.transactions]
    assert got == [
        ("172629", 490196, "USD", date(2022, 2, 1), 7, "SOME PAYMENT ACH OFFSET"),
        ("150675", 905800, "USD", date(2022, 2, 2), 16, "SOME PAYMENT ACH OFFSET"),
    ]
    assert all(c.ok for c in p.control_totals)
    t = totals(p)
    assert t["99 file control total"] == ("282030196", "282030196")
    assert t["99 number of records"] == ("20", "20")
    assert t["98[1] number of records"] == ("9", "9")
    assert t["02[1]/03[1] ****7890 49 account control total"] == ("138884258", "138884258")
    assert t["02[1]/03[1] ****7890 100 total credits item count"] == ("1", "1")
    assert t["02[1]/03[1] ****7890 closing = 02[2]/03[1] ****7890 opening"] == ("352171.75 USD",) * 2
    assert t["opening"] == ("347269.79 USD 2022-02-01",) * 2
    assert t["closing"] == ("361229.75 USD 2022-02-02",) * 2


@pytest.mark.needs_samples
def test_citi_sample_is_refused_for_its_balance_with_trailers_agreeing() -> None:
    path = samples("bai2") / "citi_example.bai2"
    p, refusals = parse_bank_or_partial(path.read_bytes(), path.name)
    assert refusals == [
        "control total 02[1]/03[1] ****7777.balance opening+entries=closing disagrees: the file states "
        "100.00 GBP, the rows add up to 100.01 GBP"
    ]
    (txn,) = p.transactions
    assert (txn.txn_id, txn.order_ref, txn.amount_minor, txn.currency) == (
        "1234567890",
        "RP12312312312312",
        1,
        "GBP",
    )
    assert txn.value_date == date(2015, 7, 15) and txn.row_number == 4
    assert (txn.memo or "").startswith("FR:FP SIP INCOMING ENDT:20150715")
    assert all(c.ok for c in p.control_totals if "opening+entries" not in c.name)


@pytest.mark.needs_samples
def test_samples_are_detected() -> None:
    for path in sorted(samples("bai2").glob("*.bai2")):
        assert detect_format(path.read_bytes(), path.name) == ("bai2", 0.95)


# ------------------------------------------------------------------------------------------- synthetic


def _bai2(details: list[str], *, opening: int = 10000, closing: int | None = None, ccy: str = "USD") -> str:
    """A one-account file whose trailers agree with its content (unless edited afterwards)."""
    amounts = [int(d.split(",")[2]) for d in details if d.startswith("16,")]
    credits = sum(int(d.split(",")[2]) for d in details if d.startswith("16,") and d.split(",")[1] < "400")
    debits = sum(amounts) - credits
    if closing is None:
        closing = opening + credits - debits
    account = f"03,ACC123456,{ccy},010,{opening},,,015,{closing},,/"
    account_total = opening + closing + sum(amounts)
    account_records = 2 + len(details)
    lines = [
        "01,SENDER,RECEIVER,240502,0600,FILE7,,,2/",
        f"02,RECEIVER,SENDER,1,240501,,{ccy},2/",
        account,
        *details,
        f"49,{account_total},{account_records}/",
        f"98,{account_total},1,{account_records + 2}/",
        f"99,{account_total},1,{account_records + 4}/",
    ]
    return "\n".join(lines) + "\n"


def test_signs_from_type_codes_references_and_fallback_ids() -> None:
    text = _bai2(
        [
            "16,165,12345,0,BREF1,ORDER-9,ALIPAY SETTLEMENT/",
            "16,475,250,0,,,CHECK PAID",
            "88,SECOND LINE",
            "16,698,100,0,BREF3,,SERVICE CHARGE/",
        ]
    )
    p = parse_bank(text.encode(), "a.bai2", currency="USD")
    got = [(t.txn_id, t.amount_minor, t.order_ref, t.txn_type) for t in p.transactions]
    assert got == [
        ("BREF1", 12345, "ORDER-9", TxnType.SETTLEMENT),
        ("FILE7:1.1.2", -250, None, TxnType.TRANSFER),
        ("BREF3", -100, None, TxnType.FEE),
    ]
    assert p.transactions[1].memo == "CHECK PAID SECOND LINE"
    assert [t.row_number for t in p.transactions] == [4, 5, 7]
    assert all(c.ok for c in p.control_totals)


def test_non_monetary_detail_is_skipped_by_rule() -> None:
    text = _bai2(["16,890,0,0,,,INFORMATION ONLY/", "16,165,100,0,B1,,/"])
    p = parse_bank(text.encode(), "a.bai2")
    assert p.skipped_by_rule == {"bai2_non_monetary": 1} and len(p.transactions) == 1


def test_account_trailer_total_disagreeing_names_line_and_values() -> None:
    text = _bai2(["16,165,100,0,B1,,/"]).replace("49,20200,3/", "49,20201,3/")
    error = refusal(text.encode(), "a.bai2")
    problem = next(e for e in error.errors if "49 account control total" in e.reason)
    assert problem.row == 5 and "states 20201, the rows add up to 20200" in problem.reason


@pytest.mark.parametrize(
    ("old", "new", "name"),
    [
        ("49,20200,3/", "49,20200,4/", "49 number of records"),
        ("98,20200,1,5/", "98,20200,2,5/", "98[1] number of accounts"),
        ("98,20200,1,5/", "98,20200,1,6/", "98[1] number of records"),
        ("98,20200,1,5/", "98,20300,1,5/", "98[1] group control total"),
        ("99,20200,1,7/", "99,20200,2,7/", "99 number of groups"),
        ("99,20200,1,7/", "99,20200,1,8/", "99 number of records"),
        ("99,20200,1,7/", "99,1,1,7/", "99 file control total"),
    ],
)
def test_every_trailer_field_is_checked(old: str, new: str, name: str) -> None:
    text = _bai2(["16,165,100,0,B1,,/"])
    assert old in text
    error = refusal(text.replace(old, new).encode(), "a.bai2")
    assert any(name in e.reason for e in error.errors), error.errors


def test_balance_and_summary_totals_disagreeing_are_refused() -> None:
    text = _bai2(["16,165,100,0,B1,,/"], closing=10200)
    reasons = [e.reason for e in refusal(text.encode(), "a.bai2").errors]
    assert any("states 102.00 USD, the rows add up to 101.00 USD" in r for r in reasons)
    summary = _bai2(["16,165,100,0,B1,,/"]).replace(
        "03,ACC123456,USD,010,10000,,,015,10100,,/", "03,ACC123456,USD,010,10000,,,015,10100,,,100,300,2,/"
    )
    summary = summary.replace("49,20200,3/", "49,20500,3/").replace("98,20200", "98,20500")
    summary = summary.replace("99,20200", "99,20500")
    reasons = [e.reason for e in refusal(summary.encode(), "a.bai2").errors]
    assert any("100 total credits disagrees" in r and "3.00 USD" in r for r in reasons), reasons
    assert any("100 total credits item count disagrees" in r for r in reasons), reasons


def test_signed_detail_amount_is_a_rejected_row() -> None:
    text = _bai2(["16,165,100,0,B1,,/"]).replace("16,165,100", "16,165,-100")
    p, _ = parse_bank_or_partial(text.encode(), "a.bai2")
    (error,) = p.errors
    assert error.row == 4 and "unsigned" in error.reason


def test_currency_exponent_comes_from_the_account() -> None:
    text = _bai2(["16,165,1500,0,J1,,/"], ccy="JPY")
    (txn,) = parse_bank(text.encode(), "a.bai2", currency="JPY").transactions
    assert (txn.amount_minor, txn.currency) == (1500, "JPY")


def test_broken_structure_is_refused_naming_the_line() -> None:
    text = _bai2(["16,165,100,0,B1,,/"])
    truncated = "\n".join(text.splitlines()[:4]) + "\n"
    error = refusal(truncated.encode(), "a.bai2")
    assert (error.errors[0].row, error.errors[0].reason) == (
        4,
        "BAI2 file does not end with a 99 file trailer (truncated?)",
    )
    no_trailers = "\n".join([*text.splitlines()[:4], text.splitlines()[-1]])
    (problem,) = refusal(no_trailers.encode(), "a.bai2").errors
    assert problem.row == 5 and "Expected RecordCode.account_trailer" in problem.reason
    unknown = text.replace("16,165,", "16,999,")
    assert "BAI2 structure cannot be read" in refusal(unknown.encode(), "a.bai2").errors[0].reason


def test_detect() -> None:
    assert reader.detect(_bai2([]).encode(), "x") == ("bai2", 0.95)
    assert reader.detect(b"01,not,a,bai2\n", "x") is None
    assert reader.detect(b"\xff\xfe01,", "x") is None
