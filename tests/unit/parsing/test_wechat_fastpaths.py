"""The WeChat bill's quick paths read what the plain paths read: amounts parsed from the backticked text
as it stands (zeros skipped, a repeated column parsed once), the currency told from one value, the text
fields of a small row kind computed on its rows alone."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from recon.parsing import ParsedStatement, StatementParseError, engine, vector
from recon.parsing.profiles import AmountFormat, Condition

from ._support import WX_ALL_HEADER, parse, wx_bill, wx_payment, wx_refund, wx_row

_PLAIN = st.builds(
    lambda sign, whole, frac: f"{sign}{whole}.{frac}",
    st.sampled_from(["", "", "-"]),
    st.text(alphabet="0123456789", min_size=1, max_size=9),
    st.text(alphabet="0123456789", min_size=2, max_size=2),
)
_ODD = st.sampled_from(
    [
        "",
        "0",
        "-0.00",
        "0.00 ",
        " 1.00",
        "1,234.00",
        "12.3",
        ".50",
        "0x1.00",
        "+1.00",
        "1.2.3",
        "1e3",
        "５.００",
        "\u30001.00",
    ]
)


@st.composite
def backticked(draw: st.DrawFn) -> list[str]:
    """A column of backticked amounts: mostly zeros or mostly others, now and then an odd value."""
    zeros = draw(st.booleans())
    values = [
        "0.00" if zeros and draw(st.integers(0, 9)) else draw(_PLAIN) for _ in range(draw(st.integers(1, 40)))
    ]
    if draw(st.integers(0, 2)) == 0:
        values[draw(st.integers(0, len(values) - 1))] = draw(_ODD)
    prefixes = st.sampled_from(["`"] * 8 + ["", "``", "` "])
    return [draw(prefixes) + v for v in values]


@settings(max_examples=300, deadline=None)
@given(backticked(), st.sampled_from([0, 2, 3]))
def test_prefixed_amounts_equal_cleaning_then_parsing(values: list[str], exp: int) -> None:
    arr = pa.array(values, pa.string())
    exps = np.full(len(values), exp, dtype=np.int64)
    quick = vector.prefixed_amounts(arr, exps, AmountFormat(), prefix="`")
    if quick is None:
        return
    cleaned = vector.clean(arr, prefix="`")
    plain = vector.amounts(
        cleaned, exps, lambda rows: ["CNY"] * len(rows), AmountFormat(), lambda rows: ["x"] * len(rows)
    )
    assert not plain.failure.mask.any()
    assert not vector.empty(cleaned).any()
    assert quick.tolist() == plain.minor.tolist()
    assert quick.tolist() == [Decimal(v).scaleb(exp) for v in cleaned.to_pylist()]


def test_prefixed_amounts_read_plain_columns_and_refuse_the_rest() -> None:
    exps = np.full(5, 2, dtype=np.int64)
    fmt = AmountFormat()
    mostly_zero = pa.array(["`0.00", "`12.50", "`0.00", "`-1.07", "`0.00"])
    found = vector.prefixed_amounts(mostly_zero, exps, fmt, prefix="`")
    assert found is not None and found.tolist() == [0, 1250, 0, -107, 0]
    mostly_other = pa.array(["`3.00", "`12.50", "`0.00", "`-1.07", "`9.99"])
    found = vector.prefixed_amounts(mostly_other, exps, fmt, prefix="`")
    assert found is not None and found.tolist() == [300, 1250, 0, -107, 999]
    fees = vector.prefixed_amounts(pa.array(["`10.74000", "`-1.36000"]), exps[:2], fmt, prefix="`")
    assert fees is not None and fees.tolist() == [1074, -136]
    for odd in ["`1.005", "` 1.00", "1.00", "``1.00", "`1.00x", "`", "`0x1.00"]:
        column = pa.array(["`0.00", "`0.00", odd])
        assert vector.prefixed_amounts(column, exps[:3], fmt, prefix="`") is None, odd
    assert vector.prefixed_amounts(pa.array(["`1.00"]), exps[:1], fmt, prefix="`", strip="-") is None


def test_spread_puts_values_at_their_rows() -> None:
    rows = np.array([1, 3, 4])
    expected = ["", "a", "", "", "bc", ""]
    assert vector.spread(pa.array(["a", "", "bc"]), rows, 6).to_pylist() == expected
    assert vector.spread(pa.array(["z", "a", "", "bc"]).slice(1), rows, 6).to_pylist() == expected
    assert vector.spread(pa.array(["a", None, "bc"]), rows, 6).to_pylist() == ["", "a", "", None, "bc", ""]
    assert vector.spread(pa.array(["", ""]), np.array([0, 2]), 3).to_pylist() == ["", "", ""]


def test_a_column_known_filled_is_not_read_for_an_empty_test() -> None:
    def cell(_aliases: list[str]) -> pa.Array:
        raise AssertionError("read")

    def filled(aliases: list[str]) -> bool:
        return aliases == ["退款金额"]

    test = Condition.model_validate({"not": {"column": "退款金额", "empty": False}})
    assert vector.condition(test, cell, 3, filled).tolist() == [False] * 3
    empty = Condition.model_validate({"column": "退款金额", "empty": True})
    assert vector.condition(empty, cell, 2, filled).tolist() == [False] * 2


def test_map_values_without_and_with_a_default() -> None:
    arr = pa.array(["SUCCESS", "odd", "closed"])
    exact = {"SUCCESS": "success", "CLOSED": "closed"}
    strict = vector.map_values(
        arr, exact=exact, contains=None, ignore_case=True, default=None, reason="?{value}", column=_col
    )
    assert strict.values.to_pylist() == ["success", "", "closed"]
    assert strict.failure.mask.tolist() == [False, True, False]
    assert strict.failure.describe(np.array([1])) == [("状态", "?'odd'")]
    lenient = vector.map_values(
        arr, exact=exact, contains=None, ignore_case=False, default="other", reason="?", column=_col
    )
    assert lenient.values.to_pylist() == ["success", "other", "other"]
    assert not lenient.failure.mask.any()


def _col(rows: Any) -> list[str | None]:
    return ["状态"] * len(rows)


# ------------------------------------------------------------------------------------ whole bills


@st.composite
def wechat_bills(draw: st.DrawFn) -> bytes:
    """A WeChat ALL bill of payments and a few refunds (a fifth at most), some cells spoilt."""
    rows: list[str] = []
    n = draw(st.integers(5, 40))
    refunds = set(draw(st.lists(st.integers(0, n - 1), max_size=n // 5)))
    for i in range(n):
        amount = f"{draw(st.integers(1, 99999)) / 100:.2f}"
        if i in refunds:
            rows.append(wx_refund(f"42{i:08d}", f"SO{i}", f"503{i:07d}", f"RF{i}", amount, "-0.01000"))
        else:
            rows.append(wx_payment(f"42{i:08d}", f"SO{i}", amount, "0.06000"))
    spoilt = {
        "货币种类": ["usd", "", "XX1", " CNY"],
        "退款状态": ["", "PROCESSING", "WEIRD"],
        "微信退款单号": ["", "0"],
        "商户退款单号": ["0", ""],
        "交易状态": ["REFUND", "refund", "CLOSED", "?"],
        "退款金额": ["", "1.234", "0", "-0.00", " 2.00"],
        "订单金额": ["1.00", "", "x"],
        "申请退款金额": ["0", "1.5", "3.00"],
        "充值券退款金额": ["", "0.01"],
        "应结订单金额": ["", "1.001", "12"],
    }
    for _ in range(draw(st.integers(0, 4))):
        i = draw(st.integers(0, n - 1))
        column = draw(st.sampled_from(sorted(spoilt)))
        cells = dict(zip(WX_ALL_HEADER, [c[1:] for c in rows[i].split(",")], strict=True))
        cells[column] = draw(st.sampled_from(spoilt[column]))
        rows[i] = wx_row(**cells)
    summary = ",".join(f"`{v}" for v in (str(n), "0.00", "0.00", "0.00", "0.00", "0.00", "0.00"))
    return wx_bill(rows, summary)


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(wechat_bills())
def test_quick_paths_read_bills_alike(data: bytes) -> None:
    quick = _read(data)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(engine.Cells, "amounts", lambda *_a: None)
        mp.setattr(engine.Cells, "single", lambda *_a: None)
        mp.setattr(engine._Partition, "_own_rows", lambda _self: None)
        plain = _read(data)
    assert quick[1] == plain[1]
    assert quick[0] == plain[0]
    assert quick[0].table.equals(plain[0].table, check_metadata=True)


def _read(data: bytes) -> tuple[ParsedStatement, list[str]]:
    try:
        return parse(data, "all.csv"), []
    except StatementParseError as exc:
        assert exc.parsed is not None, str(exc)
        return exc.parsed, [str(e) for e in exc.errors]
