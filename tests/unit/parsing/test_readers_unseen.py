"""Regressions from files the readers had never seen (docs/formats-bank.md, "Checked on unseen files").

Each fixture is small and written here; it reproduces the structure of a public file that was misread or
refused, not its content.
"""

from __future__ import annotations

import pytest

from recon.parsing import detect_format
from recon.parsing.model import StatementParseError

from ._bank_support import parse_bank, parse_bank_or_partial, refusal, totals
from ._support import parse
from .test_parse_fastpaths import _compare

# ------------------------------------------------------------------------------------------- BAI2

# One account whose 03 record is continued by an 88 *between two fields of one summary*: "100/" ends the
# type code of the total-credits summary, "88,2500,1,," carries its amount and item count. This is the
# layout of the BAI2 specification's own sample file (moov-io/bai2 test/testdata/sample2.txt).
_SPLIT_SUMMARY = [
    "01,SENDER,RECEIVER,240502,0600,FILE7,,,2/",
    "02,RECEIVER,SENDER,1,240502,,USD,2/",
    "03,ACC123456,USD,010,10000,,,100/",
    "88,2500,1,,015,12500,,/",
    "16,165,2500,0,REF1,,PAYMENT/",
    "49,27500,4/",
    "98,27500,1,6/",
    "99,27500,1,8/",
]


def _bai2(lines: list[str]) -> bytes:
    return ("\n".join(lines) + "\n").encode()


def test_bai2_continuation_between_two_fields_of_a_summary() -> None:
    # The bai2 package glued "100" and "2500" into type code 1002500 and refused the file.
    p = parse_bank(_bai2(_SPLIT_SUMMARY), "split.bai2", currency="USD")
    assert [(t.txn_id, t.amount_minor, t.row_number) for t in p.transactions] == [("REF1", 2500, 5)]
    t = totals(p)
    assert t["02[1]/03[1] ****3456 100 total credits"] == ("25.00 USD", "25.00 USD")
    assert t["02[1]/03[1] ****3456 100 total credits item count"] == ("1", "1")
    assert t["02[1]/03[1] ****3456 49 number of records"] == ("4", "4")
    assert t["closing"] == ("125.00 USD 2024-05-02",) * 2
    assert all(c.ok for c in p.control_totals)


def test_bai2_trailing_comma_before_a_continuation_is_not_a_field() -> None:
    # "...,,/" then 88: the writer's trailing comma must not shift the next summary by one field.
    lines = list(_SPLIT_SUMMARY)
    lines[2:4] = ["03,ACC123456,USD,010,10000,,,/", "88,100,2500,1,,015,12500,,/"]
    p = parse_bank(_bai2(lines), "comma.bai2", currency="USD")
    assert all(c.ok for c in p.control_totals) and len(p.transactions) == 1


def test_bai2_empty_distributed_availability_is_zero() -> None:
    # Funds type S with its first availability amount left empty (the specification's sample: "S,,2000,...").
    lines = list(_SPLIT_SUMMARY)
    lines[4] = "16,165,2500,S,,1000,1500,REF1,,PAYMENT/"
    p = parse_bank(_bai2(lines), "avail.bai2", currency="USD")
    assert [t.amount_minor for t in p.transactions] == [2500]


def test_bai2_records_packed_on_one_line_are_split_at_the_slash() -> None:
    # Several records on one physical line, each ended by "/" (moov-io/bai2 sample3.txt).
    lines = [
        f"{_SPLIT_SUMMARY[0]}   {_SPLIT_SUMMARY[1]}",
        _SPLIT_SUMMARY[2],
        f"{_SPLIT_SUMMARY[3]} {_SPLIT_SUMMARY[4]}",
        "  ".join(_SPLIT_SUMMARY[5:]),
    ]
    data = _bai2(lines)
    assert detect_format(data, "packed.bai2") == ("bai2", 0.95)
    p = parse_bank(data, "packed.bai2", currency="USD")
    assert [(t.txn_id, t.amount_minor, t.row_number) for t in p.transactions] == [("REF1", 2500, 3)]
    assert all(c.ok for c in p.control_totals)


def test_bai2_record_wrapped_onto_the_next_line_is_joined() -> None:
    # A 16 not ended by "/" whose text goes on, on a line with no record code (moov-io sample3.txt).
    lines = list(_SPLIT_SUMMARY)
    lines[4:5] = ["16,165,2500,0,REF1,,PAYMENT FOR", "INVOICE 42/"]
    p = parse_bank(_bai2(lines), "wrapped.bai2", currency="USD")
    assert [(t.memo, t.row_number) for t in p.transactions] == [("PAYMENT FOR INVOICE 42", 5)]
    assert all(c.ok for c in p.control_totals)


def test_bai2_line_without_a_record_code_after_an_ended_record_is_refused() -> None:
    lines = list(_SPLIT_SUMMARY)
    lines.insert(5, "INVOICE 42/")
    (error,) = refusal(_bai2(lines), "stray.bai2", currency="USD").errors
    assert error.row == 6
    assert error.reason.startswith("line 6 is not a BAI2 record")


# ------------------------------------------------------------------------------------------- OFX

_HEADER = (
    "OFXHEADER:100\nDATA:OFXSGML\nVERSION:102\nSECURITY:NONE\nENCODING:USASCII\nCHARSET:1252\n"
    "COMPRESSION:NONE\nOLDFILEUID:NONE\nNEWFILEUID:NONE\n\n"
)


def _card(*, list_end: str = "</BANKTRANLIST>\n", balance: str = "-10.50") -> bytes:
    """A credit card statement with two transactions, in SGML with one tag a line."""
    return (
        _HEADER
        + "<OFX>\n<CREDITCARDMSGSRSV1>\n<CCSTMTTRNRS>\n<TRNUID>1\n<CCSTMTRS>\n<CURDEF>BRL\n"
        + "<CCACCTFROM>\n<ACCTID>CARD-1\n</CCACCTFROM>\n"
        + "<BANKTRANLIST>\n<DTSTART>20240224\n<DTEND>20240326\n"
        + "<STMTTRN>\n<TRNTYPE>DEBIT\n<DTPOSTED>20240323\n<TRNAMT>-13.00\n<FITID>A\n</STMTTRN>\n"
        + "<STMTTRN>\n<TRNTYPE>CREDIT\n<DTPOSTED>20240324\n<TRNAMT>2.50\n<FITID>B\n</STMTTRN>\n"
        + list_end
        + f"<LEDGERBAL>\n<BALAMT>{balance}</BALAMT>\n<DTASOF>20240325\n</LEDGERBAL>\n"
        + "</CCSTMTRS>\n</CCSTMTTRNRS>\n</CREDITCARDMSGSRSV1>\n</OFX>\n"
    ).encode()


def test_ofx_transaction_list_left_open_ends_at_the_next_tag() -> None:
    # Nubank's credit card export never writes </BANKTRANLIST> (ofxtools tests/data/br_nubank_cc.ofx).
    p = parse_bank(_card(list_end=""), "nubank.ofx", currency="BRL")
    assert [(t.txn_id, t.amount_minor) for t in p.transactions] == [("A", -1300), ("B", 250)]
    t = totals(p)
    assert t["closing"] == ("-10.50 BRL 2024-03-25",) * 2
    assert t["opening"] == ("0.00 BRL 2024-02-24",) * 2


def test_ofx_other_unclosed_aggregates_are_still_refused() -> None:
    data = _card().replace(b"<FITID>B\n</STMTTRN>\n", b"<FITID>B\n")
    (error,) = refusal(data, "open.ofx", currency="BRL").errors
    assert error.reason == "malformed OFX markup: ValueError: </BANKTRANLIST> while <STMTTRN> is still open"


def test_ofx_empty_ledger_balance_states_no_balance() -> None:
    # ofxparse's fail_nice/empty_balance.ofx and ofx-v102-empty-tags.ofx: <BALAMT> with nothing in it.
    p = parse_bank(_card(balance=" "), "empty.ofx", currency="BRL")
    assert len(p.transactions) == 2
    assert "closing" not in totals(p) and "opening" not in totals(p)


def test_ofx_unreadable_ledger_balance_names_its_line() -> None:
    (error,) = refusal(_card(balance="n/a"), "bad.ofx", currency="BRL").errors
    assert (error.row, error.column, error.reason) == (
        36,
        "CCSTMTRS[1]/LEDGERBAL/BALAMT",
        "not an exact BRL amount: 'n/a'",
    )


# ------------------------------------------------------------------------------------------- camt


def test_camt052_report_is_refused_by_name() -> None:
    data = (
        b'<?xml version="1.0"?><Document xmlns="urn:iso:std:iso:20022:tech:xsd:camt.052.001.02">'
        b"<BkToCstmrAcctRpt><GrpHdr><MsgId>1</MsgId></GrpHdr></BkToCstmrAcctRpt></Document>"
    )
    assert detect_format(data, "r.xml") == ("unknown", 0.0)
    with pytest.raises(StatementParseError) as caught:
        parse(data, "r.xml")
    (error,) = caught.value.errors
    assert "camt.052" in error.reason and "not read" in error.reason


def test_partial_result_of_a_split_summary_file_is_complete() -> None:
    # The specification's sample states 100/400 totals that its details do not reach: refused, but every
    # 16 detail is read (nothing lost), so the quarantine report shows them all.
    lines = list(_SPLIT_SUMMARY)
    lines[3] = "88,9999,1,,015,12500,,/"
    lines[5:] = ["49,35000,4/", "98,35000,1,6/", "99,35000,1,8/"]
    p, refusals = parse_bank_or_partial(_bai2(lines), "short.bai2", currency="USD")
    assert len(p.transactions) == 1
    assert any("100 total credits disagrees" in r for r in refusals)


def _camt053(entry_details: str, *, opening: str = "500.00", closing: str = "400.00") -> bytes:
    """One statement, one CHF entry of 100.00 DBIT whose NtryDtls are ``entry_details``."""
    bal = (
        '<Bal><Tp><CdOrPrtry><Cd>{code}</Cd></CdOrPrtry></Tp><Amt Ccy="CHF">{amount}</Amt>'
        "<CdtDbtInd>CRDT</CdtDbtInd><Dt><Dt>2021-09-14</Dt></Dt></Bal>"
    )
    return (
        '<?xml version="1.0" encoding="UTF-8"?>'
        '<Document xmlns="urn:iso:std:iso:20022:tech:xsd:camt.053.001.04"><BkToCstmrStmt>'
        "<GrpHdr><MsgId>M1</MsgId><CreDtTm>2021-09-15T00:00:00</CreDtTm></GrpHdr>"
        "<Stmt><Id>S1</Id><Acct><Id><IBAN>CH1904835028789771000</IBAN></Id><Ccy>CHF</Ccy></Acct>"
        + bal.format(code="OPBD", amount=opening)
        + bal.format(code="CLBD", amount=closing)
        + '<Ntry><Amt Ccy="CHF">100.00</Amt><CdtDbtInd>DBIT</CdtDbtInd><Sts>BOOK</Sts>'
        "<BookgDt><Dt>2021-09-14</Dt></BookgDt><AcctSvcrRef>E1</AcctSvcrRef>"
        f"<NtryDtls><Btch><NbOfTxs>2</NbOfTxs></Btch>{entry_details}</NtryDtls></Ntry>"
        "</Stmt></BkToCstmrStmt></Document>"
    ).encode()


def _foreign_tx(eur: str, chf: str | None) -> str:
    counter = f'<CntrValAmt><Amt Ccy="CHF">{chf}</Amt></CntrValAmt>' if chf else ""
    return (
        f'<TxDtls><Amt Ccy="EUR">{eur}</Amt><CdtDbtInd>DBIT</CdtDbtInd>'
        f'<AmtDtls><TxAmt><Amt Ccy="EUR">{eur}</Amt></TxAmt>{counter}</AmtDtls></TxDtls>'
    )


def test_camt_batch_of_foreign_payments_splits_on_the_counter_value() -> None:
    # Credit Suisse states a EUR payment's own amount in TxDtls/Amt and the CHF booked in CntrValAmt
    # (OCA test-camt053-multi-currency). Splitting on the EUR amounts added EUR to CHF and refused the file.
    data = _camt053(_foreign_tx("40.00", "44.00") + _foreign_tx("50.00", "56.00"))
    p = parse_bank(data, "cs.xml", currency="CHF")
    assert [(t.txn_id, t.amount_minor, t.currency) for t in p.transactions] == [
        ("E1", -4400, "CHF"),
        ("E1#2", -5600, "CHF"),
    ]
    assert totals(p)["Stmt[1]/Ntry[1].TxDtls sum"] == ("-100.00", "-100.00")


def test_camt_batch_without_amounts_in_the_entry_currency_stays_one_row() -> None:
    data = _camt053(_foreign_tx("40.00", None) + _foreign_tx("50.00", None))
    p = parse_bank(data, "cs.xml", currency="CHF")
    assert [(t.txn_id, t.amount_minor, t.currency) for t in p.transactions] == [("E1", -10000, "CHF")]
    assert all(c.ok for c in p.control_totals)


def test_bai2_slash_in_a_detail_text_of_an_unpacked_file_stays_text() -> None:
    # Only a file whose 01 header line is packed is split at "/ NN,": a 16 text may hold "/ 16,".
    lines = list(_SPLIT_SUMMARY)
    lines[4] = "16,165,2500,0,REF1,,INVOICE 7/ 16,50 EUR"
    p = parse_bank(_bai2(lines), "text.bai2", currency="USD")
    assert [t.memo for t in p.transactions] == ["INVOICE 7/ 16,50 EUR"]
    assert all(c.ok for c in p.control_totals)


@pytest.mark.parametrize("counter", ["44.00", None])
def test_camt_fast_reader_leaves_foreign_batches_to_the_careful_reader(counter: str | None) -> None:
    data = _camt053(_foreign_tx("40.00", counter) + _foreign_tx("50.00", "56.00" if counter else None))
    assert not _compare(data, tz="UTC", currency="CHF", must_read=False)
