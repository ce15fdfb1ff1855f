"""The demo day's files (recon_local.demo_data) read back through recon.parsing: every total agrees."""

from __future__ import annotations

from datetime import date, timedelta
from itertools import pairwise

import pytest

from recon.domain import Source, TxnType
from recon.pipeline.chain import balances, chain_total

from ._support import assert_accounting, parse

demo_data = pytest.importorskip("recon_local.demo_data")

_SOURCES = {"erp": Source.ERP, "wechat": Source.WECHAT, "alipay": Source.ALIPAY, "bank": Source.BANK}


def test_demo_files_parse_cleanly() -> None:
    day = demo_data.generate_day(date(2026, 11, 20))
    formats = set()
    for key, (name, content) in day.files.items():
        source = next(s for prefix, s in _SOURCES.items() if key.startswith(prefix))
        p = parse(content, name, source)
        assert_accounting(p)
        assert p.errors == [], (name, p.errors[:3])
        assert p.control_totals == [] or all(c.ok for c in p.control_totals)
        assert p.transactions, name
        formats.add(p.format)
        if source is not Source.BANK:
            refunds = [t for t in p.transactions if t.txn_type is TxnType.REFUND]
            assert all(t.amount_minor < 0 and "#" in t.txn_id for t in refunds), name
    assert {"erp.orders.csv", "wechat.tradebill.all", "alipay.trade.zip"} <= formats
    assert any(f.startswith("camt.053.001.") for f in formats)


def test_consecutive_demo_days_parse_to_an_unbroken_balance_chain() -> None:
    # Business days Sat .. Mon: statements Sun, Mon (the weekly sweep), Tue.
    parsed = []
    for n in range(3):
        name, content = demo_data.generate_day(date(2026, 11, 21) + timedelta(days=n)).files["bank-cmb"]
        p = parse(content, name, Source.BANK)
        assert p.errors == [] and all(c.ok for c in p.control_totals), name
        parsed.append(p)
    stated = [balances(p.control_totals, "CNY") for p in parsed]
    assert all(s is not None for s in stated)
    for earlier, later in pairwise(stated):
        assert earlier is not None and later is not None
        assert later.opening == earlier.closing
        assert chain_total(later.opening, earlier.closing).ok  # the parse stage's check of the later one
