"""Property-based tests of the profile engine: random profiles and random CSV bills (and mutations of
them) give either a ParsedStatement whose accounting balances and whose rows equal a slow row-by-row
reference interpretation, or StatementParseError — never another exception."""

from __future__ import annotations

import csv
import io
import re
from datetime import datetime
from decimal import Decimal, InvalidOperation
from zoneinfo import ZoneInfo

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from recon.domain import Source
from recon.parsing import ParsedStatement, Profile, StatementParseError, parse_statement

from ._support import assert_accounting

TZ = ZoneInfo("Asia/Shanghai")
STATUS = {"OK": "success", "PENDING": "pending", "FAIL": "failed"}
COLUMNS = ["单号", "金额", "手续费", "时间", "状态", "备注", "附加"]
_SETTINGS = settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@st.composite
def bills(draw: st.DrawFn) -> tuple[dict, bytes, list[list[str]]]:  # type: ignore[type-arg]
    delimiter = draw(st.sampled_from([",", "\t", ";", "|"]))
    thousands = draw(st.sampled_from(["", ","])) if delimiter != "," else ""
    prefix = draw(st.sampled_from(["", "`"]))
    order = draw(st.permutations(COLUMNS))
    profile = {
        "name": "prop.bill",
        "version": draw(st.sampled_from(["1", "2.0", "2024-01"])),
        "match": {"header": ["单号", "金额", "时间"]},
        "delimiter": delimiter,
        "strip_prefix": prefix,
        "lines": [{"name": "footer", "regex": "^#", "scope": "after_header"}],
        "sections": [{"name": "summary", "start": "^合计", "lines": 2}],
        "fields": {
            "txn_id": {"column": "单号"},
            "amount": {"column": "金额", "amount": {"thousands": thousands}},
            "fee": {"column": "手续费", "default": "0", "amount": {"thousands": thousands}},
            "booked_at": {"column": "时间", "formats": ["yyyy-MM-dd HH:mm:ss"]},
            "status": {"column": "状态", "map": STATUS, "unknown_reason": "unknown status {value}"},
            "memo": {"column": "备注"},
        },
        "control_totals": [
            {"name": "summary", "section": "summary", "values": [{"column": "笔数", "count": "all"}]}
        ],
    }
    amount = st.one_of(
        st.integers(-(10**9), 10**9).map(lambda c: f"{Decimal(c) / 100:.2f}"),
        st.sampled_from(
            [
                "",
                "abc",
                "1.234",
                "1.230",
                "+5",
                "-0.00",
                "1,234.50",
                "99999999999999999.00",
                ".5",
                "1e3",
                "１２.５０",
            ]
        ),
    )
    when = st.one_of(
        st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2037, 1, 1)).map(
            lambda d: d.strftime("%Y-%m-%d %H:%M:%S")
        ),
        st.sampled_from(["", "2024-13-01 00:00:00", "yesterday", "2024-02-30 10:00:00"]),
    )
    cell = st.text(alphabet='ab中文 -_`"', max_size=6)  # a data row never starts like a footer (#)
    rows = []
    for _ in range(draw(st.integers(0, 12))):
        values = {
            "单号": draw(st.one_of(st.just(""), st.text(alphabet="AB0123", min_size=1, max_size=5))),
            "金额": draw(amount),
            "手续费": draw(st.one_of(st.just(""), amount)),
            "时间": draw(when),
            "状态": draw(st.sampled_from([*STATUS, "??", ""])),
            "备注": draw(cell),
            "附加": draw(cell),
        }
        pad = draw(st.sampled_from(["", " ", "\t"]))
        row = [prefix + pad + values[c] + pad for c in order]
        if draw(st.integers(0, 20)) == 0:
            row = row[:-1]  # a row with a field missing
        rows.append(row)
    stated = len(rows) + draw(st.sampled_from([0, 0, 0, 1]))
    out = io.StringIO()
    writer = csv.writer(
        out,
        delimiter=delimiter,
        lineterminator=draw(st.sampled_from(["\n", "\r\n"])),
        quoting=csv.QUOTE_MINIMAL,
    )
    preamble = draw(st.integers(0, 2))
    for i in range(preamble):
        out.write(f"导出 {i}\n")
    writer.writerow(order)
    for row in rows:
        writer.writerow(row)
    if draw(st.booleans()):
        out.write("# 导出结束\n")
    writer.writerow(["合计", "笔数"])
    writer.writerow(["", str(stated)])
    encoding = draw(st.sampled_from(["utf-8", "gbk"]))
    return profile, out.getvalue().encode(encoding), [order, *rows]


def _clean(value: str, prefix: str) -> str:
    return value.lstrip(" \t\r\n\x0b\x0c\u00a0\u3000" + prefix).rstrip()


def _amount(text: str, thousands: str) -> tuple[int | None, str]:
    import unicodedata

    text = unicodedata.normalize("NFKC", text).replace("¥", "").replace("$", "").strip()
    if text == "":
        return None, "amount is empty"
    sep = re.escape(thousands)
    pattern = (
        rf"^[+-]?(?:\d{{1,3}}(?:{sep}\d{{3}})+|\d+)(?:\.\d+)?$" if thousands else r"^[+-]?\d+(?:\.\d+)?$"
    )
    if not re.match(pattern, text):
        return None, "not an amount"
    digits = text.replace(thousands, "") if thousands else text
    if len(digits.lstrip("+-").split(".")[0].lstrip("0")) > 15:
        return None, "amount out of range"
    try:
        scaled = Decimal(digits).scaleb(2)
    except InvalidOperation:
        return None, "not an amount"
    if scaled != scaled.to_integral_value():
        return None, "precision"
    if abs(scaled) >= 10**15:
        return None, "amount out of range"
    return int(scaled), ""


def reference(profile: dict, table: list[list[str]]) -> list[tuple[str, object]]:  # type: ignore[type-arg]
    """Row by row, in Python: ('ok', (txn_id, amount, fee, booked_at, status, memo)) or ('reject', column)."""
    header, *rows = table
    prefix = profile["strip_prefix"]
    thousands = profile["fields"]["amount"]["amount"]["thousands"]
    out: list[tuple[str, object]] = []
    for row in rows:
        if len(row) != len(header):
            out.append(("reject", None))
            continue
        cells = {h: _clean(v, prefix) for h, v in zip(header, row, strict=True)}
        if cells["单号"] == "":
            out.append(("reject", "单号"))
            continue
        if cells["金额"] == "":
            out.append(("reject", "金额"))
            continue
        amount, _ = _amount(cells["金额"], thousands)
        if amount is None:
            out.append(("reject", "金额"))
            continue
        fee, _ = _amount(cells["手续费"] or "0", thousands)
        if fee is None:
            out.append(("reject", "手续费"))
            continue
        try:
            when = datetime.strptime(cells["时间"], "%Y-%m-%d %H:%M:%S").replace(tzinfo=TZ)
        except ValueError:
            out.append(("reject", "时间"))
            continue
        if cells["状态"] not in STATUS:
            out.append(("reject", "状态"))
            continue
        out.append(("ok", (cells["单号"], amount, fee, when, STATUS[cells["状态"]], cells["备注"] or None)))
    return out


def _parse(profile: Profile, data: bytes) -> ParsedStatement:
    return parse_statement(
        data,
        filename="bill.csv",
        raw_key="raw/bill.csv",
        statement_id="stmt-1",
        source=Source.BANK,
        account_id="acct-1",
        profile=profile,
    )


@_SETTINGS
@given(bills())
def test_random_bills_match_the_reference(case: tuple[dict, bytes, list[list[str]]]) -> None:  # type: ignore[type-arg]
    doc, data, table = case
    profile = Profile.from_data(doc)
    expected = reference(doc, table)
    try:
        p = _parse(profile, data)
    except StatementParseError as exc:
        assert exc.errors
        p_or_none = exc.parsed
        assert p_or_none is not None and p_or_none.balanced
        stated = int(
            data.decode("utf-8" if b"\xe5" in data else "gbk", "replace")
            .strip()
            .splitlines()[-1]
            .split(doc["delimiter"])[-1]
            .strip('"')
        )
        assert stated != len(table) - 1  # the only file-level problem these bills can have: a wrong count
        p = p_or_none
    assert_accounting(p)
    assert (p.profile, p.profile_version) == ("prop.bill", doc["version"])
    got_ok = [
        (t.txn_id, t.amount_minor, t.fee_minor, t.booked_at, t.status.value, t.memo) for t in p.transactions
    ]
    assert got_ok == [v for k, v in expected if k == "ok"]
    assert [e.column for e in p.errors] == [c for k, c in expected if k == "reject"]
    assert len(p.transactions) + len(p.errors) == len(table) - 1


@st.composite
def mutated(draw: st.DrawFn) -> tuple[dict, bytes]:  # type: ignore[type-arg]
    doc, data, _ = draw(bills())
    buf = bytearray(data)
    for _ in range(draw(st.integers(1, 5))):
        pos = draw(st.integers(0, max(len(buf) - 1, 0)))
        op = draw(st.sampled_from(["flip", "insert", "delete", "truncate"]))
        if op == "flip" and buf:
            buf[pos] = draw(st.integers(0, 255))
        elif op == "insert":
            buf[pos:pos] = draw(
                st.sampled_from(
                    [b",", b"\n", b"\r", b'"', b"`", b"\t", b"#", b"\xff", b"\x00", "合计".encode()]
                )
            )
        elif op == "delete":
            del buf[pos : pos + draw(st.integers(1, 30))]
        else:
            del buf[pos:]
    return doc, bytes(buf)


@_SETTINGS
@given(mutated())
def test_mutated_bills_balance_or_raise_the_parse_error(case: tuple[dict, bytes]) -> None:  # type: ignore[type-arg]
    doc, data = case
    try:
        p = _parse(Profile.from_data(doc), data)
    except StatementParseError as exc:
        assert exc.errors
        if exc.parsed is not None:
            assert exc.parsed.balanced
        return
    assert_accounting(p)
