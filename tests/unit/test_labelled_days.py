"""The labelled-days generator: its files parse with the real parsers, every row has exactly one label,
settlement credits pay the true net of their batches, balances chain, and it is deterministic."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections import Counter, defaultdict
from datetime import date, datetime, timedelta
from functools import cache
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from recon.domain import Project, Source, Transaction, TxnStatus
from recon.parsing import parse_statement
from recon_local.labelled import (
    Expect,
    LabelledSet,
    _certain_pairs,
    _Node,
    generate_labelled_days,
    read_labels,
)

# Seeds reserved for the accuracy work (docs/accuracy.md): engine tests must not use them.
SEED = 4243
START = date(2026, 3, 5)  # Thursday: the set holds a Saturday, whose Alipay batch is paid T+2 with Sunday's
NS = {"c": "urn:iso:std:iso:20022:tech:xsd:camt.053.001.08"}


@cache
def labelled() -> LabelledSet:
    return generate_labelled_days(SEED, START, 4, 40, "realistic")


@cache
def parsed() -> dict[str, list[Transaction]]:
    out: dict[str, list[Transaction]] = {}
    for f in labelled().files:
        if f.redelivery_of:
            continue
        result = parse_statement(
            f.content,
            filename=f.name,
            raw_key=f.name,
            statement_id=f.name,
            source=Source(f.source),
            account_id=f.account_id,
        )
        assert result.errors == [], (f.name, result.errors[:3])
        assert all(t.ok for t in result.control_totals), (f.name, result.control_totals)
        out[f.name] = list(result.transactions)
    return out


def test_every_parsed_row_has_exactly_one_label() -> None:
    rows = Counter(
        (t.source.value, t.txn_id, t.amount_minor, name) for name, ts in parsed().items() for t in ts
    )
    labels = Counter(
        (label.source, label.txn_id, label.amount_minor, label.file)
        for label in labelled().labels
        if not label.aggregate
    )
    assert rows == labels
    assert len({label.label_id for label in labelled().labels}) == len(labelled().labels)


def test_every_scenario_of_the_profile_occurs() -> None:
    scenarios = {label.scenario for label in labelled().labels}
    assert scenarios >= {
        "plain", "refund-full", "refund-partial", "unpaid", "missing-in-channel", "missing-in-erp",
        "amount-error", "duplicate-erp", "duplicate-channel", "revoked", "refund-missing-in-channel",
        "refund-missing-in-erp", "refund-unbooked-full", "refund-amount-error", "mangled-ref",
        "ambiguous-twin", "cross-midnight", "settlement", "batch-payout", "bank-missing", "bank-short",
        "bank-unknown", "interest", "fee",
    }  # fmt: skip
    expects = Counter((label.expect, label.case_type or label.filter_rule) for label in labelled().labels)
    for case_type in (
        "AMOUNT_MISMATCH",
        "DUPLICATE",
        "MISSING_IN_BANK",
        "MISSING_IN_CHANNEL",
        "MISSING_IN_ERP",
        "STATUS_MISMATCH",
    ):
        assert expects[(Expect.CASE, case_type)] >= 1, case_type
    assert expects[(Expect.FILTERED, "erp-unpaid-orders")] >= 1
    assert expects[(Expect.FILTERED, "bank-fees-and-interest")] >= 1


def test_settlement_credits_pay_the_true_net_of_their_batches() -> None:
    """A batch is its channel day's net (amount - fee) without re-sent copies and revoked payments; a
    matched credit pays exactly the batches of its group (several when batches fall due together)."""
    channel_rows: dict[str, list[Transaction]] = {}
    for f in labelled().files:
        if f.source in ("wechat", "alipay"):
            channel_rows[f"{f.account_id}@{f.statement_date.isoformat()}"] = parsed()[f.name]
    batches = [label for label in labelled().labels if label.aggregate]
    assert batches
    for batch in batches:
        seen: set[str] = set()
        net = 0
        for t in channel_rows[batch.txn_id]:
            if t.txn_id in seen or t.status is not TxnStatus.SUCCESS:
                continue
            seen.add(t.txn_id)
            net += t.net_minor
        assert batch.amount_minor == net, batch.txn_id
    credits = {label.group: label for label in labelled().labels if label.source == "bank" and label.group}
    by_group: dict[str, int] = defaultdict(int)
    for batch in batches:
        if batch.expect is Expect.MATCH:
            by_group[batch.group] += batch.amount_minor
    assert by_group and set(by_group) == set(credits)
    for group, total in by_group.items():
        assert credits[group].amount_minor == total, group
    payouts = [label for label in batches if label.scenario == "batch-payout"]
    assert len(payouts) >= 2 and len({label.group for label in payouts}) < len(payouts)


def test_bank_statements_chain_and_cover_every_settlement_day() -> None:
    statements = sorted((f for f in labelled().files if f.source == "bank"), key=lambda f: f.statement_date)
    dates = [f.statement_date for f in statements]
    assert dates == [START + timedelta(days=n) for n in range(1, len(dates) + 1)]
    assert dates[-1] >= START + timedelta(days=3 + 1)
    previous_closing = None
    for f in statements:
        root = ET.fromstring(f.content)
        balances = {
            bal.findtext("c:Tp/c:CdOrPrtry/c:Cd", namespaces=NS): bal.findtext("c:Amt", namespaces=NS)
            for bal in root.iterfind(".//c:Bal", NS)
        }
        if previous_closing is not None:
            assert balances["OPBD"] == previous_closing, f.name
        previous_closing = balances["CLBD"]


def test_revoked_payments_parse_as_reversed_and_cross_midnight_rows_land_in_the_next_bill() -> None:
    status = {(t.source.value, t.txn_id): t.status for ts in parsed().values() for t in ts}
    revoked = [x for x in labelled().labels if x.scenario == "revoked" and x.source == "wechat"]
    assert revoked and all(status[("wechat", x.txn_id)] is TxnStatus.REVERSED for x in revoked)
    cross = [x for x in labelled().labels if x.scenario == "cross-midnight"]
    by_group: dict[str, dict[str, date]] = defaultdict(dict)
    for x in cross:
        by_group[x.group]["erp" if x.source == "erp" else "channel"] = x.statement_date
    assert by_group
    for sides in by_group.values():
        assert sides["channel"] == sides["erp"] + timedelta(days=1)


def test_twins_are_ambiguous_and_other_keyless_rows_mostly_are_not() -> None:
    labels = labelled().labels
    twins = [x for x in labels if x.scenario == "ambiguous-twin"]
    assert twins and all(x.ambiguous for x in twins)
    mangled = [x for x in labels if x.scenario == "mangled-ref"]
    assert any(not x.ambiguous for x in mangled)
    assert not any(x.ambiguous for x in labels if x.scenario == "plain")


def test_the_re_delivered_export_is_the_same_bytes_and_adds_no_labels() -> None:
    resent = [f for f in labelled().files if f.redelivery_of]
    assert len(resent) == 1
    original = next(f for f in labelled().files if f.name == resent[0].redelivery_of)
    assert resent[0].content == original.content and resent[0].name != original.name
    assert not any(label.file == resent[0].name for label in labelled().labels)


def test_the_project_settles_every_lag_the_set_uses() -> None:
    project = Project.from_yaml(labelled().project_text)
    lags = {r.channel_account: set(r.lag_days) for r in project.settlement_rules}
    assert lags["alipay-main"] >= {1, 2}
    assert lags["wechat-main"] >= {1}


def test_deterministic_in_the_seed(tmp_path: Path) -> None:
    again = generate_labelled_days(SEED, START, 4, 40, "realistic", directory=tmp_path / "a")
    assert [(f.name, f.content) for f in again.files] == [(f.name, f.content) for f in labelled().files]
    assert again.labels == labelled().labels
    labelled().write(tmp_path / "b")
    for name in ("labels.json", "labels.parquet", "project.yaml"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes(), name
    assert read_labels(tmp_path / "a") == again.labels
    assert pq.read_table(tmp_path / "a" / "labels.parquet").num_rows == len(again.labels)
    other = generate_labelled_days(SEED + 1, START, 4, 40, "realistic")
    assert [f.content for f in other.files] != [f.content for f in again.files]


@pytest.mark.parametrize("profile", ["easy", "hard"])
def test_other_profiles_parse_and_label_every_row(profile: str) -> None:
    data = generate_labelled_days(SEED, START, 2, 60, profile)
    rows: Counter[tuple[str, str]] = Counter()
    for f in data.files:
        if f.redelivery_of:
            continue
        result = parse_statement(
            f.content,
            filename=f.name,
            raw_key=f.name,
            statement_id=f.name,
            source=Source(f.source),
            account_id=f.account_id,
        )
        assert result.errors == [] and all(t.ok for t in result.control_totals), f.name
        rows.update((t.source.value, t.txn_id) for t in result.transactions)
    assert rows == Counter((x.source, x.txn_id) for x in data.labels if not x.aggregate)


def test_arguments_are_checked() -> None:
    with pytest.raises(ValueError, match="orders_per_day"):
        generate_labelled_days(SEED, START, 2, 5)
    with pytest.raises(ValueError, match="days"):
        generate_labelled_days(SEED, START, 0, 40)
    with pytest.raises(KeyError):
        generate_labelled_days(SEED, START, 2, 40, "impossible")


def _confusable(
    sides: str, groups: str, pairs: list[tuple[int, int]]
) -> tuple[set[int], dict[int, set[int]], list[_Node]]:
    """Residue rows (``sides``: 'e'/'c' per row; ``groups``: a true group letter per row, '.' for none) and
    the confusable pairs between them."""
    nodes = [
        _Node(k, "erp" if s == "e" else "channel", 990, datetime(2026, 3, 5, 9, 5), "" if g == "." else g)
        for k, (s, g) in enumerate(zip(sides, groups, strict=True))
    ]
    edges: dict[int, set[int]] = defaultdict(set)
    for a, b in pairs:
        edges[a].add(b)
        edges[b].add(a)
    return set(range(len(nodes))), edges, nodes


@pytest.mark.parametrize(
    ("sides", "groups", "pairs", "certain"),
    [
        # one true pair alone: certain
        ("ec", "aa", [(0, 1)], {0, 1}),
        # two orders, two payments, all confusable: nothing is certain
        ("eecc", "abab", [(0, 2), (0, 3), (1, 2), (1, 3)], set()),
        # seed 11's coffees: the payment naming order 0 conflicts with orders 1-3, so every full pairing
        # gives it order 0; the other three orders and three payments stay ambiguous
        (
            "eeeecccc",
            "abcdabcd",
            [(0, 4), *[(e, c) for e in range(4) for c in (5, 6, 7)]],
            {0, 4},
        ),
        # a chain that the references leave one way to pair: all certain (no size limit)
        ("eeeccc", "abcabc", [(0, 3), (1, 3), (1, 4), (2, 4), (2, 5)], {0, 1, 2, 3, 4, 5}),
        # the forced pairing is not the truth: those rows stay ambiguous
        ("eecc", "abba", [(0, 2), (1, 2), (1, 3)], set()),
        # a missing order beside a true pair, both confusable with the payment: no pair is forced
        ("eec", "a.a", [(0, 2), (1, 2)], set()),
    ],
)
def test_only_forced_true_pairs_of_a_confusable_set_are_certain(
    sides: str, groups: str, pairs: list[tuple[int, int]], certain: set[int]
) -> None:
    assert _certain_pairs(*_confusable(sides, groups, pairs)) == certain
