"""``QuickLines`` (recon.parsing.lines) indexes only the head and the tail of a large buffer and takes the
lines between for plain data rows, checked as Arrow reads them; a line that is not one sends the parse back
to the full index. With its thresholds shrunk so that small bills take it, every bill (plain, mutated, and
the random profiles' bills) must parse exactly as with every line indexed: the same table, counts, errors,
control totals."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from recon.domain import Source
from recon.parsing import ParsedStatement, Profile, StatementParseError, engine, lines, parse_statement

from ._support import wx_bill, wx_payment, wx_refund
from .test_profile_engine_properties import bills

Outcome = tuple[ParsedStatement | None, list[str] | None]


@dataclass
class _Seen:
    built: int = 0  # QuickLines made
    dropped: list[str] = field(default_factory=list)  # LinesNotPlain raised (the parse started over)


@contextmanager
def _quick(edge: int, count: int, rows_per_block: int = 1 << 18) -> Iterator[_Seen]:
    """Every buffer indexed quickly, with ``edge`` bytes of head and tail and ``count`` bytes counted at a
    time; ``rows_per_block`` lines (at least) per part of the block."""
    saved = (lines.QUICK_BYTES, lines._EDGE_BYTES, lines._COUNT_BYTES, engine.CHUNK_ROWS)
    init, run = lines.QuickLines.__init__, engine._run
    seen = _Seen()

    def spy_init(self: lines.QuickLines, *args: Any, **kw: Any) -> None:
        init(self, *args, **kw)
        seen.built += 1

    def spy_run(*args: Any, **kw: Any) -> ParsedStatement:
        try:
            return run(*args, **kw)
        except lines.LinesNotPlain as exc:
            seen.dropped.append(str(exc))
            raise

    lines.QUICK_BYTES, lines._EDGE_BYTES, lines._COUNT_BYTES = 0, edge, count
    engine.CHUNK_ROWS = rows_per_block
    lines.QuickLines.__init__ = spy_init  # type: ignore[method-assign]
    engine._run = spy_run
    try:
        yield seen
    finally:
        lines.QUICK_BYTES, lines._EDGE_BYTES, lines._COUNT_BYTES, engine.CHUNK_ROWS = saved
        lines.QuickLines.__init__ = init  # type: ignore[method-assign]
        engine._run = run


@contextmanager
def _exact() -> Iterator[None]:
    saved = lines.QUICK_BYTES
    lines.QUICK_BYTES = 1 << 62
    try:
        yield
    finally:
        lines.QUICK_BYTES = saved


def _outcome(data: bytes, profile: Profile | None = None) -> Outcome:
    kw: dict[str, Any] = {"profile": profile} if profile is not None else {}
    try:
        parsed = parse_statement(
            data,
            filename="bill.csv",
            raw_key="raw/bill.csv",
            statement_id="s",
            source=Source.WECHAT if profile is None else Source.ERP,
            account_id="a",
            **kw,
        )
    except StatementParseError as exc:
        return exc.parsed, [str(e) for e in exc.errors]
    return parsed, None


def _assert_same(quick: Outcome, exact: Outcome) -> None:
    assert quick[1] == exact[1]
    assert (quick[0] is None) == (exact[0] is None)
    if quick[0] is not None and exact[0] is not None:
        assert quick[0] == exact[0]
        assert quick[0].table.equals(exact[0].table, check_metadata=True)


def _rows(n: int) -> tuple[list[str], str]:
    """``n`` rows (payments, and a refund every 7th) and the summary row that adds them up."""
    out = []
    paid = refunded = fees = 0  # fen, fen, 1e-5 yuan
    for i in range(n):
        if i % 7 == 3:
            out.append(
                wx_refund(f"42{i - 1:08d}", f"SO-{i - 1}", f"503{i:07d}", f"RF{i}", "0.50", "-0.01000")
            )
            refunded, fees = refunded + 50, fees - 1000
        else:
            fen = (i % 90 + 1) * 100 + i % 100
            out.append(wx_payment(f"42{i:08d}", f"SO-{i}", f"{fen // 100}.{fen % 100:02d}", "0.01000"))
            paid, fees = paid + fen, fees + 1000
    sign = "-" if fees < 0 else ""
    money = [f"{v // 100}.{v % 100:02d}" for v in (paid, refunded)]
    fee = f"{sign}{abs(fees) // 100_000}.{abs(fees) % 100_000:05d}"
    summary = f"`{n},`{money[0]},`{money[1]},`0.00,`{fee},`{money[0]},`{money[1]}"
    return out, summary


# Lines that are no plain data row, put inside the block: each must send the parse to the full index.
_ODD_LINES = [
    "",  # blank
    "   ",
    "\u3000",
    "\t",
    ",,,,,,,,,,,,,,,,,,,,,,,,,,",  # every cell empty (Arrow reads an empty line as such a row)
    "总交易单数,应结订单总金额,退款总金额,充值券退款总金额,手续费总金额,订单总金额,申请退款总金额",  # summary
    "总x",  # starts as the summary does
    "总交易单数" + "," * 26,  # the summary's start, as wide as a data row
    "abc",  # one field
    "`2024-05-01 10:00:00,`wx,`19",  # a short row (a data row, rejected)
    "x\ry",  # a lone CR
    "\r",
    '"quoted",`x',
]


def test_a_plain_bill_takes_the_quick_index_and_parses_as_the_full_one() -> None:
    body, summary = _rows(400)
    data = wx_bill(body, summary, newline="\r\n")
    with _exact():
        exact = _outcome(data)
    with _quick(edge=2000, count=500, rows_per_block=64) as seen:
        quick = _outcome(data)
    assert seen.built == 1 and not seen.dropped
    _assert_same(quick, exact)
    assert quick[1] is None and quick[0] is not None and quick[0].rows_parsed == 400


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    rows=st.integers(30, 80),
    odd=st.lists(st.tuples(st.floats(0.3, 0.7), st.sampled_from(_ODD_LINES)), max_size=3),
    newline=st.sampled_from(["\n", "\r\n"]),
    edge=st.sampled_from([800, 1500]),
    count=st.sampled_from([1, 64, 1000]),
    per_block=st.sampled_from([1, 5, 1 << 18]),
)
def test_mutated_bills_parse_as_with_every_line_indexed(
    rows: int, odd: list[tuple[float, str]], newline: str, edge: int, count: int, per_block: int
) -> None:
    body, summary = _rows(rows)
    for at, line in odd:  # inside the block: past the head's and before the tail's bytes
        body.insert(int(at * len(body)), line)
    data = wx_bill(body, summary, newline=newline)
    with _exact():
        exact = _outcome(data)
    with _quick(edge, count, per_block) as seen:
        quick = _outcome(data)
    _assert_same(quick, exact)
    quoted = any('"' in line for _, line in odd)  # (quotes anywhere: every line indexed from the start)
    assert seen.built == (0 if quoted else 1)
    odd_rows = not quoted and any(not line.startswith("`") for _, line in odd)  # (a short row is plain)
    assert bool(seen.dropped) == odd_rows, seen.dropped


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(case=bills(), edge=st.sampled_from([1, 40, 120]), count=st.sampled_from([1, 16, 256]))
def test_random_profiles_parse_as_with_every_line_indexed(
    case: tuple[dict, bytes, list[list[str]]],  # type: ignore[type-arg]
    edge: int,
    count: int,
) -> None:
    profile_doc, data, _rows_written = case
    profile = Profile.model_validate(profile_doc)
    with _exact():
        exact = _outcome(data, profile)
    with _quick(edge, count, 3):
        quick = _outcome(data, profile)
    _assert_same(quick, exact)
