"""The fast paths of parsing give exactly what the careful paths give.

* camt.053: the column-at-a-time reader (``camt_fast``) against the element-by-element reader (``camt.parse``)
  on every camt.053 sample, the demo statement and generated documents (plain ones, which it must read, and
  unusual ones, which it must either read identically or leave to the careful reader).
* The profile engine: converting a file in slices of rows gives what converting it at once gives.
* The vectorised helpers: amounts, trimming, duplicates, time zones and line scanning against plain Python.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from recon.domain import Source
from recon.parsing import (
    ParsedStatement,
    Profile,
    StatementParseError,
    camt,
    camt_fast,
    engine,
    lines,
    vector,
)
from recon.parsing._common import Builder, Context
from recon.parsing.profiles import AmountFormat
from recon.tables import bucket_of, mark_duplicates

from ._support import parse as parse_bill
from ._support import samples, wx_bill, wx_payment
from .test_profile_engine_properties import bills

_SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# ----------------------------------------------------------------------------------------------- camt.053

Outcome = tuple[ParsedStatement | None, list[str] | None]


def _context(tz: str, currency: str) -> Context:
    return Context(
        filename="stmt.xml",
        raw_key="raw/stmt.xml",
        statement_id="stmt-1",
        source=Source.BANK,
        account_id="bank-1",
        currency=currency,
        tz=ZoneInfo(tz),
    )


def _careful(data: bytes, tz: str = "Asia/Shanghai", currency: str = "CNY") -> Outcome:
    b = Builder(_context(tz, currency), profile=camt.sniff_camt053(data) or "camt.053")
    try:
        fmt, encoding, day = camt.parse(data, b, file="stmt.xml", raw_key="raw/stmt.xml")
        return b.result(format=fmt, encoding=encoding, statement_date=day), None
    except StatementParseError as exc:
        return exc.parsed, [str(e) for e in exc.errors]


def _fast(data: bytes, tz: str = "Asia/Shanghai", currency: str = "CNY") -> Outcome | None:
    """The fast reader's outcome, or None when it leaves the document to the careful reader."""
    ctx = _context(tz, currency)
    try:
        found = camt_fast.read(
            data, ctx, profile=camt.sniff_camt053(data) or "camt.053", file="stmt.xml", raw_key="raw/stmt.xml"
        )
    except StatementParseError as exc:
        return exc.parsed, [str(e) for e in exc.errors]
    return None if found is None else (found, None)


def _assert_same(careful: Outcome, fast: Outcome) -> None:
    (c, c_errors), (f, f_errors) = careful, fast
    assert f_errors == c_errors
    assert (c is None) == (f is None)
    if c is None or f is None:
        return
    for name in (
        "format",
        "encoding",
        "profile",
        "profile_version",
        "statement_date",
        "rows_read",
        "rows_skipped",
        "skipped_by_rule",
        "errors",
        "control_totals",
    ):
        assert getattr(f, name) == getattr(c, name), name
    assert f.table.schema.equals(c.table.schema, check_metadata=True)
    for name in c.table.column_names:
        assert f.table.column(name).to_pylist() == c.table.column(name).to_pylist(), name
    assert f.table.equals(c.table, check_metadata=True)


def _compare(data: bytes, *, tz: str = "Asia/Shanghai", currency: str = "CNY", must_read: bool) -> bool:
    """Careful and fast give the same; returns whether the fast reader read the document."""
    fast = _fast(data, tz, currency)
    if fast is None:
        assert not must_read, "the fast reader left a plain document to the careful one"
        return False
    _assert_same(_careful(data, tz, currency), fast)
    return True


@pytest.mark.needs_samples
def test_camt_samples_read_alike() -> None:
    paths = sorted(samples("camt").glob("camt053*.xml"))
    assert len(paths) >= 5
    read = 0
    for path in paths:
        data = path.read_bytes()
        has_entries = b"<Ntry>" in data
        for tz in ("UTC", "Asia/Shanghai", "America/New_York"):
            read += _compare(data, tz=tz, currency="EUR", must_read=has_entries)
    assert read >= 15


def test_demo_statement_reads_alike() -> None:
    from recon_local.demo_data import generate_day

    day = generate_day(date(2026, 11, 20), orders=150)
    statements = [data for name, data in day.files.values() if name.endswith(".xml")]
    assert statements
    for data in statements:
        assert _compare(data, must_read=True)


_TEXTS = [
    "ALIPAY SETTLEMENT 20261120",
    "支付宝（中国）网络技术有限公司",
    "财付通支付科技有限公司 结算",
    "Bank charges",
    "monthly fee",
    "feesy",
    "SERVICE FEE",
    "手续费",
    "payout",
    "PayPal",
    "Ms Müller",
    "ſettlement",
    "杭州某某商贸有限公司",
    "a  b",
    "INV-2026-0042",
]
_PLAIN_AMOUNTS = ["0.01", "1.5", "10", "123.45", "99999.99", "3.000", "0.00", "7.10"]
_ODD_AMOUNTS = ["1,234.50", "１２.５０", "", "0.005", "1e3", "-3.00", " 12.00 ", "+4.00", ".5"]
_PLAIN_MOMENTS = [
    "2026-11-20T10:30:00",
    "2026-11-20 10:30:00",
    "2026-11-20T10:30:00Z",
    "2026-11-20T10:30:00+08:00",
    "2026-11-20T23:59:59-05:30",
    "2024-02-29T00:00:00+00:00",
]
_ODD_MOMENTS = ["2026-11-20T10:30:00.5", "2026-02-30T10:00:00", "2026-11-20T24:00:00", "20261120", "soon"]


@st.composite
def camt_documents(draw: st.DrawFn) -> tuple[bytes, bool]:
    """(a camt.053 document, whether it is plain: the fast reader must read it)."""
    plain = draw(st.booleans())
    pretty = draw(st.booleans())
    newline = draw(st.sampled_from(["\n", "\r\n"])) if pretty else ""

    def pick(good: list[str], odd: list[str]) -> str:
        return draw(st.sampled_from(good if plain or draw(st.integers(0, 3)) else odd))

    def el(tag: str, *children: str, text: str | None = None, attrs: str = "") -> str:
        inner = "".join(children) if text is None else text
        if not inner and draw(st.integers(0, 5)) == 0:
            return f"<{tag}{attrs}/>"
        return f"<{tag}{attrs}>{inner}</{tag}>{newline}"

    def when(tag: str) -> str:
        if draw(st.booleans()):
            day = draw(st.dates(min_value=date(2020, 1, 1), max_value=date(2030, 12, 31)))
            text = (
                day.isoformat()
                if plain or draw(st.integers(0, 3))
                else draw(st.sampled_from(["2026-13-01", "2026-11-20+08:00", "21/11/2026"]))
            )
            return el(tag, el("Dt", text=text))
        return el(tag, el("DtTm", text=pick(_PLAIN_MOMENTS, _ODD_MOMENTS)))

    def entry(shape: dict[str, Any]) -> str:
        parts = []
        if shape["ref"]:
            parts.append(el("NtryRef", text=draw(st.sampled_from(["E1", "E2", "E3", "NOTPROVIDED"]))))
        ccy = draw(
            st.sampled_from(
                [' Ccy="CNY"', " Ccy='EUR'", ' Ccy="cny"'] if plain else [' Ccy="CNY"', "", ' Ccy="X1"']
            )
        )
        parts.append(el("Amt", text=pick(_PLAIN_AMOUNTS, _ODD_AMOUNTS), attrs=ccy))
        parts.append(el("CdtDbtInd", text=pick(["CRDT", "DBIT", "dbit"], ["CRDT", "XX", ""])))
        if shape["reversal"]:
            parts.append(el("RvslInd", text=draw(st.sampled_from(["true", "false", "1"]))))
        status = pick(["BOOK", "PDNG", "INFO", "book"], ["BOOK", "OTHR", ""])
        parts.append(el("Sts", el("Cd", text=status)) if shape["sts_cd"] else el("Sts", text=status))
        if shape["booked"]:
            parts.append(when("BookgDt"))
        if shape["value"] or not shape["booked"]:
            parts.append(when("ValDt"))
        if shape["acct_ref"]:
            parts.append(el("AcctSvcrRef", text=draw(st.sampled_from(["R-1", "R-2", " R-3 ", "R-1"]))))
        if shape["codes"]:
            domain = el(
                "Domn",
                el("Cd", text="PMNT"),
                el(
                    "Fmly",
                    el("Cd", text="CCRD"),
                    el("SubFmlyCd", text=draw(st.sampled_from(["CHRG", "POSD", "COMM"]))),
                ),
            )
            parts.append(el("BkTxCd", domain))
        details = []
        for n in range(shape["txs"]):
            tx = []
            if shape["refs"]:
                refs = [
                    el(name, text=draw(st.sampled_from(["T-1", "NOTPROVIDED", "notprovided"])))
                    for name in shape["refs"]
                ]
                tx.append(el("Refs", *refs))
            if (n == 0 and shape["tx_amount"]) or (n > 0 and shape["split"]):
                tx.append(el("Amt", text=pick(_PLAIN_AMOUNTS, _ODD_AMOUNTS), attrs=' Ccy="CNY"'))
                tx.append(el("CdtDbtInd", text="CRDT"))
            if shape["party"]:
                role, path = shape["party"]
                name = el("Nm", text=draw(st.sampled_from(_TEXTS)))
                tx.append(el("RltdPties", el(role, el("Pty", name) if path else name)))
            rmt = [
                el("Ustrd", text=draw(st.sampled_from([*_TEXTS, "", "  "]))) for _ in range(shape["ustrd"])
            ]
            if shape["strd"]:
                rmt.append(el("Strd", el("CdtrRefInf", el("Ref", text=draw(st.sampled_from(["SO-1", ""]))))))
            if rmt:
                tx.append(el("RmtInf", *rmt))
            if shape["addtl_tx"]:
                tx.append(el("AddtlTxInf", text=draw(st.sampled_from(_TEXTS))))
            details.append(el("TxDtls", *tx))
        if details:
            parts.append(el("NtryDtls", *details))
        if shape["addtl"]:
            parts.append(el("AddtlNtryInf", text=draw(st.sampled_from(_TEXTS))))
        body = "".join(parts)
        if not plain and draw(st.integers(0, 4)) == 0:
            body = draw(st.sampled_from(["<!-- note -->", "<![CDATA[x]]>", ""])) + body
        return f"<Ntry>{newline}{body}</Ntry>{newline}"

    def shape() -> dict[str, Any]:
        return {
            "ref": draw(st.booleans()),
            "reversal": draw(st.booleans()),
            "sts_cd": draw(st.booleans()),
            "booked": draw(st.booleans()),
            "value": draw(st.booleans()),
            "acct_ref": draw(st.booleans()),
            "codes": draw(st.booleans()),
            "txs": draw(st.integers(0, 2)),
            "refs": draw(
                st.lists(
                    st.sampled_from(["AcctSvcrRef", "EndToEndId", "TxId", "InstrId"]), unique=True, max_size=3
                )
            ),
            "tx_amount": draw(st.booleans()),
            "split": not plain and draw(st.booleans()),
            "party": draw(
                st.sampled_from([None, ("Dbtr", False), ("Dbtr", True), ("Cdtr", True), ("UltmtCdtr", False)])
            ),
            "ustrd": draw(st.integers(0, 2)),
            "strd": draw(st.booleans()),
            "addtl_tx": draw(st.booleans()),
            "addtl": draw(st.booleans()),
        }

    statements = []
    for s in range(draw(st.integers(1, 3))):
        shapes = [shape() for _ in range(draw(st.integers(1, 3)))]
        entries = [entry(draw(st.sampled_from(shapes))) for _ in range(draw(st.integers(0, 12)))]
        head = el("Id", text=f"STMT-{s}") if draw(st.booleans()) else ""
        acct = el(
            "Acct",
            el("Ccy", text=draw(st.sampled_from(["CNY", "EUR", "cny"] if plain else ["CNY", "", "EURO"]))),
        )
        balances = "".join(
            el(
                "Bal",
                el("Tp", el("CdOrPrtry", el("Cd", text=code))),
                el("Amt", text=amount, attrs=' Ccy="CNY"'),
                el("CdtDbtInd", text="CRDT"),
                el("Dt", el("Dt", text="2026-11-20")),
            )
            for code, amount in (("OPBD", "100.00"), ("CLBD", draw(st.sampled_from(["100.00", "250.50"]))))
        )
        summary = (
            el("TxsSummry", el("TtlNtries", el("NbOfNtries", text=str(len(entries)))))
            if draw(st.booleans())
            else ""
        )
        statements.append(el("Stmt", head, acct, balances, summary, *entries))
    version = draw(st.sampled_from(["02", "08"]))
    document = (
        f'<?xml version="1.0" encoding="UTF-8"?>{newline}'
        f'<Document xmlns="urn:iso:std:iso:20022:tech:xsd:camt.053.001.{version}">{newline}'
        f"<BkToCstmrStmt>{newline}<GrpHdr><MsgId>M</MsgId></GrpHdr>{newline}{''.join(statements)}</BkToCstmrStmt>{newline}</Document>{newline}"
    )
    return document.encode("utf-8"), plain and b"<Ntry>" in document.encode()


@_SETTINGS
@given(camt_documents(), st.sampled_from(["UTC", "Asia/Shanghai", "America/Sao_Paulo"]))
def test_generated_camt_documents_read_alike(case: tuple[bytes, bool], tz: str) -> None:
    data, plain = case
    # A plain document is read by the fast reader unless one of its entries would be rejected.
    careful = _careful(data, tz)
    rejected = careful[0] is not None and bool(careful[0].errors)
    _compare(data, tz=tz, must_read=plain and not rejected and careful[1] is None)


def test_generated_plain_documents_are_read_fast() -> None:
    """The property above is not vacuous: most plain generated documents take the fast reader."""
    read = tried = 0

    @settings(max_examples=60, deadline=None, database=None)
    @given(camt_documents())
    def count(case: tuple[bytes, bool]) -> None:
        nonlocal read, tried
        data, plain = case
        if plain:
            tried += 1
            read += _fast(data) is not None

    count()
    assert tried and read >= tried // 2


@pytest.mark.parametrize(
    "change",
    [
        lambda d: d.replace(b"<Ntry>", b"<Ntry >", 1),  # a tag written another way
        lambda d: d.replace(b"<Ustrd>", b"<Ustrd><!-- c -->", 1),  # a comment
        lambda d: d.replace(b"</Ustrd>", b"&amp;</Ustrd>", 1),  # an entity
        lambda d: d.replace(b"<Document ", b"<x:Document xmlns:x='urn:x' ", 1).replace(
            b"</Document>", b"</x:Document>"
        ),
        lambda d: d.replace(b"<Ntry>", b"<Foo><Ntry>", 1).replace(
            b"</Ntry>", b"</Ntry></Foo>", 1
        ),  # not a child of Stmt
        lambda d: d.replace(
            b"</Ntry>", b"<AddtlNtryInf>x\x01</AddtlNtryInf></Ntry>", 1
        ),  # a control character
        lambda d: d.replace(b"</Stmt>", b"<recon.entries run='0'/></Stmt>", 1),  # the placeholder name
        lambda d: d.replace(b"<Ustrd>", b"<Ustrd>a\r", 1),  # a carriage return in a text
    ],
)
def test_unusual_documents_are_left_to_the_careful_reader_or_read_alike(
    change: Callable[[bytes], bytes],
) -> None:
    from recon_local.demo_data import generate_day

    day = generate_day(date(2026, 11, 20), orders=60)
    data = next(data for name, data in day.files.values() if name.endswith(".xml"))
    changed = change(data)
    assert changed != data
    _compare(changed, must_read=False)


def test_many_entries_read_alike() -> None:
    """A statement of many entries of a few shapes (the hash and shift checks at scale)."""
    rows = []
    rng = random.Random(7)
    for i in range(3000):
        indicator = rng.choice(["CRDT", "DBIT"])
        memo = rng.choice(_TEXTS)
        extra = f"<AddtlNtryInf>{memo}</AddtlNtryInf>" if i % 3 else ""
        rows.append(
            f"<Ntry><NtryRef>N{i}</NtryRef><Amt Ccy='CNY'>{rng.randint(1, 10**7) / 100:.2f}</Amt>"
            f"<CdtDbtInd>{indicator}</CdtDbtInd><Sts><Cd>BOOK</Cd></Sts><BookgDt><Dt>2026-11-21</Dt></BookgDt>"
            f"<AcctSvcrRef>R{i % 2900}</AcctSvcrRef>{extra}</Ntry>"
        )
    data = (
        "<?xml version='1.0' encoding='UTF-8'?><Document xmlns='urn:iso:std:iso:20022:tech:xsd:camt.053.001.08'>"
        "<BkToCstmrStmt><Stmt><Id>S</Id>"
        + "".join(rows[:1500])
        + "</Stmt><Stmt><Id>T</Id>"
        + "".join(rows[1500:])
        + "</Stmt></BkToCstmrStmt></Document>"
    ).encode()
    assert _compare(data, must_read=True)
    fast = _fast(data)
    assert fast is not None and fast[0] is not None
    assert fast[0].in_file_duplicates == 100  # R0..R99 repeat, flagged and kept


# --------------------------------------------------------------------------------------- profile engine


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(bills())
def test_slices_of_rows_convert_like_the_whole(case: tuple[dict, bytes, list[list[str]]]) -> None:  # type: ignore[type-arg]
    profile_doc, data, _rows = case
    profile = Profile.model_validate(profile_doc)

    def run() -> tuple[ParsedStatement | None, list[str] | None]:
        try:
            return (
                _parse(data, profile),
                None,
            )
        except StatementParseError as exc:
            return exc.parsed, [str(e) for e in exc.errors]

    whole = run()
    saved = engine.CHUNK_ROWS
    engine.CHUNK_ROWS = 3
    try:
        sliced = run()
    finally:
        engine.CHUNK_ROWS = saved
    assert sliced[1] == whole[1]
    assert (sliced[0] is None) == (whole[0] is None)
    if whole[0] is not None and sliced[0] is not None:
        assert sliced[0] == whole[0]
        assert sliced[0].table.equals(whole[0].table, check_metadata=True)


def _parse(data: bytes, profile: Profile) -> ParsedStatement:
    from recon.parsing import parse_statement

    return parse_statement(
        data,
        filename="bill.csv",
        raw_key="raw/bill.csv",
        statement_id="s",
        source=Source.ERP,
        account_id="a",
        profile=profile,
    )


# -------------------------------------------------------------------------------------------- helpers

_DIGITS = st.text(alphabet="0123456789", min_size=1, max_size=9)


@st.composite
def amount_columns(draw: st.DrawFn) -> tuple[list[str], int]:
    places = draw(st.integers(0, 5))
    values = []
    for _ in range(draw(st.integers(1, 30))):
        sign = draw(st.sampled_from(["", "", "-"]))
        whole = draw(_DIGITS)
        frac = draw(st.text(alphabet="0123456789", min_size=places, max_size=places))
        values.append(sign + whole + ("." + frac if places else ""))
    if draw(st.integers(0, 3)) == 0:
        values[draw(st.integers(0, len(values) - 1))] = draw(
            st.sampled_from(
                [
                    "0x10.00",
                    "+5.00",
                    "1.2.3",
                    "-.50",
                    "5.",
                    "",
                    " 1.00",
                    "１.００",
                    "9223372036854775807",
                    "1e3",
                ]
            )
        )
    return values, draw(st.sampled_from([0, 2, 3]))


@settings(max_examples=300, deadline=None)
@given(amount_columns())
def test_fast_amounts_equal_the_general_path(case: tuple[list[str], int]) -> None:
    values, exp = case
    arr = pa.array(values, pa.string())
    exps = np.full(len(values), exp, dtype=np.int64)
    fast = vector.fast_amounts(arr, exps, AmountFormat())
    if fast is None:
        return
    general = _general_amounts(arr, exps)
    assert not general.failure.mask.any()
    assert fast.tolist() == general.minor.tolist()
    for value, minor in zip(values, fast.tolist(), strict=True):  # and the plain Decimal reading
        assert Decimal(value).scaleb(exp) == minor


def test_fast_amounts_refuse_what_is_no_plain_decimal() -> None:
    exps = np.full(1, 2, dtype=np.int64)
    for value in ["0x10.00", "0X10", "+5.00", "1.2.3", "-.50", "5.", "", " 1.00", "１.００", "1e3", "1.005"]:
        assert vector.fast_amounts(pa.array([value]), exps, AmountFormat()) is None, value
    mixed = vector.fast_amounts(pa.array(["10.74000", "-1.5", "3"]), np.full(3, 2), AmountFormat())
    assert mixed is not None and mixed.tolist() == [1074, -150, 300]


def _general_amounts(arr: pa.Array, exps: np.ndarray) -> vector.Amounts:  # type: ignore[type-arg]
    saved = vector.fast_amounts
    vector.fast_amounts = lambda *_a: None
    try:
        return vector.amounts(
            arr, exps, lambda rows: ["CNY"] * len(rows), AmountFormat(), lambda rows: ["x"] * len(rows)
        )
    finally:
        vector.fast_amounts = saved


_CELL = st.text(alphabet=" \t`ab中\u3000\u00a0\u2003x-", max_size=6)


@settings(max_examples=200, deadline=None)
@given(st.lists(_CELL, min_size=1, max_size=20), st.sampled_from(["", "`"]), st.sampled_from(["", "-", "x"]))
def test_clean_equals_the_two_trims(values: list[str], prefix: str, strip: str) -> None:
    arr = pa.array(values, pa.string())
    if prefix:
        expected = pc.utf8_rtrim_whitespace(pc.utf8_ltrim(arr, characters=vector._SPACE + prefix + strip))
    else:
        expected = pc.utf8_trim_whitespace(arr)
    if strip:
        expected = pc.utf8_trim(expected, characters=strip)
    assert vector.clean(arr, strip=strip, prefix=prefix).to_pylist() == expected.to_pylist()


@pytest.mark.parametrize(
    "values",
    [["a1", "x-b", "", "c"], ["a ", "b\t", "", "c- ", "d\x1c"], [" a", "\tb", "", " -c", "\u3000d"]],
    ids=["nothing to trim", "right ends only", "left ends only"],
)
def test_clean_trims_the_ends_that_need_it(values: list[str]) -> None:
    arr = pa.array(values, pa.string())
    for strip in ("", "-"):
        expected = pc.utf8_trim_whitespace(arr)
        expected = pc.utf8_trim(expected, characters=strip) if strip else expected
        assert vector.clean(arr, strip=strip).to_pylist() == expected.to_pylist()
    plain = pa.array(["a1", "x b", ""], pa.string())
    assert vector.clean(plain) is plain  # no value has anything to trim: not even a copy


def test_arrow_whitespace_is_pythons() -> None:
    """camt_fast strips with Arrow what camt strips with str.strip()."""
    chars = [chr(c) for c in range(0x10000) if not 0xD800 <= c <= 0xDFFF]
    stripped = pc.utf8_trim_whitespace(pa.array([f"{c}a{c}" for c in chars])).to_pylist()
    assert [c for c, s in zip(chars, stripped, strict=True) if s == "a"] == [c for c in chars if c.isspace()]


@settings(max_examples=100, deadline=None)
@given(st.lists(st.text(alphabet="ab#1", max_size=3), max_size=40))
def test_mark_duplicates_small(keys: list[str]) -> None:
    assert mark_duplicates(pa.array(keys, pa.string())).to_pylist() == _repeats(keys)


def test_mark_duplicates_in_buckets() -> None:
    rng = np.random.default_rng(3)
    keys = [str(k) for k in rng.integers(0, 150_000, 200_000)]
    keys[::997] = [""] * len(keys[::997])
    keys[5::1013] = ["7"] * len(keys[5::1013])
    arr = pa.array(keys, pa.string())
    assert mark_duplicates(arr).to_pylist() == _repeats(keys)
    assert mark_duplicates(arr.slice(3)).to_pylist() == _repeats(keys[3:])
    # buckets computed piece by piece (as the engine does per slice of rows) are the same buckets
    pieces = [bucket_of(arr.slice(lo, 70_000)) for lo in range(0, len(keys), 70_000)]
    buckets = np.concatenate([p for p in pieces if p is not None])
    whole = bucket_of(arr)
    assert whole is not None and np.array_equal(buckets, whole)
    assert mark_duplicates(arr, buckets).to_pylist() == _repeats(keys)


def test_mark_duplicates_long_keys() -> None:
    """Random keys of 0 to 40 bytes, one in ten repeating an earlier one: equal keys hash alike whatever
    their neighbours, and keys sharing a hash are compared exactly (all hashes equal: every key compared)."""
    rng = np.random.default_rng(4)
    digits = "".join(rng.choice(list("0123456789"), 90_000 * 40))
    keys = [digits[i * 40 : i * 40 + int(n)] for i, n in enumerate(rng.integers(0, 41, 90_000))]
    for i in rng.integers(1, 90_000, 9_000).tolist():
        keys[i] = keys[int(rng.integers(0, i))]
    arr = pa.array(keys, pa.string())
    assert mark_duplicates(arr).to_pylist() == _repeats(keys)
    assert mark_duplicates(arr.slice(7)).to_pylist() == _repeats(keys[7:])
    collided = np.zeros(len(keys), dtype=np.uint64)
    assert mark_duplicates(arr, collided).to_pylist() == _repeats(keys)
    # without empty keys, then without keys of 8 bytes or fewer: the words of all keys read in one step
    for subset in ([k for k in keys if k], [k for k in keys if len(k) > 8]):
        assert mark_duplicates(pa.array(subset, pa.string())).to_pylist() == _repeats(subset)


def _repeats(keys: list[str]) -> list[bool]:
    seen: set[str] = set()
    out = []
    for k in keys:
        out.append(k in seen)
        seen.add(k)
    return out


@pytest.mark.parametrize(
    "zone", ["Asia/Shanghai", "America/New_York", "Europe/London", "Australia/Lord_Howe"]
)
def test_from_utc_is_astimezone(zone: str) -> None:
    tz = ZoneInfo(zone)
    rng = np.random.default_rng(5)
    start = datetime(2020, 1, 1, tzinfo=UTC)
    micros = rng.integers(0, 6 * 365 * 86_400, 3000) * 1_000_000 + int(start.timestamp() * 1_000_000)
    local = vector.from_utc(micros, tz)
    epoch = datetime(1970, 1, 1)
    for m, got in zip(micros.tolist(), local.tolist(), strict=True):
        aware = datetime.fromtimestamp(m / 1_000_000, UTC).astimezone(tz)
        assert epoch + timedelta(microseconds=got) == aware.replace(tzinfo=None)


@settings(max_examples=150, deadline=None)
@given(
    st.lists(
        st.sampled_from(["a,b", '"q"', "x", "", " ", "\r", "\n", "\r\n", "中", "\t", "\t\t\t"]), max_size=40
    )
)
def test_line_scan_in_slices_is_the_whole(pieces: list[str]) -> None:
    data = "".join(pieces).encode()
    whole = lines.BufferLines(data, delimiter=",", quote='"')
    saved = lines._SCAN_BYTES
    lines._SCAN_BYTES = 3
    try:
        sliced = lines.BufferLines(data, delimiter=",", quote='"')
    finally:
        lines._SCAN_BYTES = saved
    for name in ("starts", "ends", "next_starts", "blank", "_first"):
        assert np.array_equal(getattr(sliced, name), getattr(whole, name)), name
    assert (sliced.count, sliced.multiline, sliced.buf) == (whole.count, whole.multiline, whole.buf)
    assert [whole.text(i) for i in range(whole.count)] == _reference_lines(data)


def _reference_lines(data: bytes) -> list[str]:
    """Lines as CRLF, LF and lone CR end them (no empty line after a final line end)."""
    text = data.decode().replace("\r\n", "\n").replace("\r", "\n")
    if not text:
        return []
    found = text.split("\n")
    return found[:-1] if text.endswith("\n") else found


@pytest.mark.parametrize(("good", "bad"), [(b"SO-6999", b"SO-\xff999"), ("咖啡".encode(), b"\xff\xfe\xff")])
def test_bad_utf8_past_the_sample_in_a_read_column_names_its_line(good: bytes, bad: bytes) -> None:
    """Arrow reads the columns unchecked; each column read is checked (an ASCII one by its bytes, another by
    Arrow's validation), and a bad one sends the file to the exact decode, which names the line."""
    rows = [wx_payment(f"42{i:08d}", f"SO-{i}", "1.00", "0.00600") for i in range(7000)]
    data = wx_bill(rows, "`7000,`7000.00,`0.00,`0.00,`42.00000,`7000.00,`0.00")
    assert len(data) > engine.SAMPLE_BYTES  # only the head is decoded before the read
    last = data.rindex(good)  # in the last data row (line 7001)
    with pytest.raises(StatementParseError) as info:
        parse_bill(data[:last] + bad + data[last + len(good) :], "bill.csv")
    (error,) = info.value.errors
    assert (error.row, "undecodable" in error.reason) == (7001, True)


def test_a_quote_left_open_on_its_line_is_read_line_by_line() -> None:
    """Arrow would read on into the next lines; the rows are read as the csv module reads each line."""
    data = b'id,kind,memo\n1,p"ay,"\n2,x,y\n3,z,w\n'
    buffer = lines.BufferLines(data, delimiter=",", quote='"')
    assert not buffer.multiline
    table = buffer.read(np.arange(1, 4), 3, [0, 1, 2])
    assert [table.columns[i].to_pylist() for i in range(3)] == [
        ["1", "2", "3"],
        ['p"ay', "x", "z"],
        ["", "y", "w"],
    ]
    assert table.widths.tolist() == [3, 3, 3]


def test_small_helpers() -> None:
    assert vector.const("", 3).to_pylist() == ["", "", ""]
    assert vector.const("ab", 2).to_pylist() == ["ab", "ab"]
    assert vector.single_value(pa.array(["CNY", "CNY"])) == "CNY"
    assert vector.single_value(pa.array(["CNY", "USD"])) is None
    assert vector.nulls_for_empty(pa.array(["a", "", "b"]).slice(1)).to_pylist() == [None, "b"]
    assert vector.empty(pa.array(["", "x", ""]).slice(1)).tolist() == [False, True]
    assert vector.all_ascii(pa.array(["abc", "d"])) and not vector.all_ascii(pa.array(["a", "中"]))
