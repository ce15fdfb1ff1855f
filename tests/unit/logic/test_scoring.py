"""The accuracy scorer on hand-made labels and hand-made run outputs (no engine involved).

Each test builds the files a run writes (matches.csv, cases.csv, filtered.csv, open_items.csv,
summary.json) and checks the scorer's figures exactly, so a scorer that miscounts fails here.
"""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import pytest

from recon_local.labelled import Expect, RowLabel
from recon_local.scoring import score

DAY = date(2026, 3, 5)
MATCH_HEAD = "group_id,rule,source,txn_id,amount,currency,status,confidence,pass"
CASE_HEAD = "case_id,type,source,txn_id,amount,currency,counterpart_source,counterpart_txn_id,delta,severity,reason,rule"
FILTER_HEAD = "source,account_id,txn_id,amount,currency,rule"
OPEN_HEAD = "source,account_id,txn_id,amount,currency,first_seen,age_days"


def label(
    source: str,
    txn_id: str,
    expect: Expect = Expect.MATCH,
    *,
    group: str = "",
    case_type: str = "",
    filter_rule: str = "",
    amount: int = 1990,
    ambiguous: bool = False,
    aggregate: bool = False,
    label_id: str = "",
) -> RowLabel:
    return RowLabel(
        label_id=label_id or f"{source}:{txn_id}",
        source=source,
        account_id={"erp": "erp", "wechat": "wechat-main", "alipay": "alipay-main", "bank": "bank-cmb"}[
            source
        ],
        txn_id=txn_id,
        amount_minor=amount,
        currency="CNY",
        file="f.csv",
        statement_date=DAY,
        expect=expect,
        group=group,
        case_type=case_type,
        filter_rule=filter_rule,
        ambiguous=ambiguous,
        aggregate=aggregate,
    )


def pair(order: str, channel_id: str, source: str = "wechat") -> list[RowLabel]:
    return [label("erp", order, group=f"order:{order}"), label(source, channel_id, group=f"order:{order}")]


def write_run(
    root: Path,
    name: str,
    *,
    matches: list[str] | None = None,
    cases: list[str] | None = None,
    filtered: list[str] | None = None,
    open_items: list[str] | None = None,
    match_head: str = MATCH_HEAD,
    summary: dict[str, object] | None = None,
) -> Path:
    out = root / name
    out.mkdir(parents=True)
    (out / "matches.csv").write_text("\n".join([match_head, *(matches or [])]) + "\n", encoding="utf-8")
    (out / "cases.csv").write_text("\n".join([CASE_HEAD, *(cases or [])]) + "\n", encoding="utf-8")
    if filtered is not None:
        (out / "filtered.csv").write_text("\n".join([FILTER_HEAD, *filtered]) + "\n", encoding="utf-8")
    if open_items is not None:
        (out / "open_items.csv").write_text("\n".join([OPEN_HEAD, *open_items]) + "\n", encoding="utf-8")
    if summary is not None:
        (out / "summary.json").write_text(json.dumps(summary), encoding="utf-8")
    return out


def m(group: str, source: str, txn_id: str, status: str = "auto", amount: str = "19.90") -> str:
    return f"{group},r,{source},{txn_id},{amount},CNY,{status},1.0,key"


def c(case: str, kind: str, source: str, txn_id: str, amount: str = "19.90") -> str:
    return f"{case},{kind},{source},{txn_id},{amount},CNY,,,{amount},low,why,r"


def test_a_perfect_run_meets_every_target(tmp_path: Path) -> None:
    labels = [
        *pair("SO1", "W1"),
        *pair("SO2", "A2", "alipay"),
        label("erp", "SO3", Expect.CASE, case_type="MISSING_IN_CHANNEL"),
        label("erp", "SO4", Expect.FILTERED, filter_rule="erp-unpaid-orders"),
        label("bank", "B1", group="settle:B1"),
        label("wechat", "wechat-main@2026-03-05", group="settle:B1", aggregate=True),
    ]
    out = write_run(
        tmp_path,
        "2026-03-05",
        matches=[
            m("g1", "erp", "SO1"),
            m("g1", "wechat", "W1"),
            m("g2", "erp", "SO2"),
            m("g2", "alipay", "A2"),
            m("g3", "bank", "B1"),
            m("g3", "wechat", "wechat-main@2026-03-05"),
        ],
        cases=[c("k1", "MISSING_IN_CHANNEL", "erp", "SO3")],
        filtered=["erp,erp,SO4,19.90,CNY,erp-unpaid-orders"],
        open_items=[],
    )
    result = score(labels, [out])
    assert result.failures() == []
    assert (result.auto_links, result.wrong_auto_links) == (3, 0)
    assert (result.matchable_rows, result.matchable_auto_correct) == (5, 5)
    assert result.case_types["MISSING_IN_CHANNEL"].tp == 1
    assert (result.filtered_expected, result.filtered_correct) == (1, 1)
    assert result.rows_lost == [] and result.rows_twice == [] and result.labelled_rows == 7
    assert "MEETS THE TARGETS" in result.report()


def test_wrong_links_are_counted_per_pair(tmp_path: Path) -> None:
    labels = [*pair("SO1", "W1"), *pair("SO2", "W2"), *pair("SO3", "W3")]
    # g1 joins SO1 with W2 (1 wrong link); g2 puts SO2, W1, W3 together (3 links, all wrong);
    # g3 pairs SO3 with nothing but a suggested partner (not an auto link).
    out = write_run(
        tmp_path,
        "d1",
        matches=[
            m("g1", "erp", "SO1"),
            m("g1", "wechat", "W2"),
            m("g2", "erp", "SO2"),
            m("g2", "wechat", "W1"),
            m("g2", "wechat", "W3"),
            m("g3", "erp", "SO3", status="suggested"),
        ],
    )
    result = score(labels, [out])
    assert (result.auto_links, result.wrong_auto_links) == (4, 4)
    assert result.wrong_links_per_1000 == 1000.0
    assert result.matchable_auto == 5 and result.matchable_auto_correct == 0
    assert result.suggested_groups == 1 and result.suggested_links == 0
    assert result.rows_lost == []
    assert any(f.startswith("wrong auto links") for f in result.failures())
    assert "g1: erp:SO1 [order:SO1] + wechat:W2 [order:SO2]" in result.report()


def test_one_wrong_link_in_a_thousand_is_within_the_target(tmp_path: Path) -> None:
    labels: list[RowLabel] = []
    rows = []
    for n in range(1000):
        labels += pair(f"SO{n}", f"W{n}")
        rows += [m(f"g{n}", "erp", f"SO{n}"), m(f"g{n}", "wechat", f"W{n}")]
    labels.append(label("erp", "SOX", Expect.CASE, case_type="MISSING_IN_CHANNEL"))
    labels.append(label("wechat", "WX", Expect.CASE, case_type="MISSING_IN_ERP"))
    rows += [m("gx", "erp", "SOX"), m("gx", "wechat", "WX")]  # two orphans linked: one wrong link
    result = score(labels, [write_run(tmp_path, "d1", matches=rows)])
    assert (result.auto_links, result.wrong_auto_links) == (1001, 1)
    assert result.wrong_links_per_1000 == pytest.approx(1000 / 1001)
    assert not any(f.startswith("wrong auto links") for f in result.failures())
    # ... but both orphans were cases: recall on them is 0.
    assert result.case_types["MISSING_IN_CHANNEL"].fn == 1 and result.case_types["MISSING_IN_ERP"].fn == 1


def test_a_row_absent_from_every_output_is_lost_and_a_row_in_two_places_is_counted(tmp_path: Path) -> None:
    labels = [*pair("SO1", "W1"), *pair("SO2", "W2")]
    first = write_run(tmp_path, "d1", matches=[m("g1", "erp", "SO1"), m("g1", "wechat", "W1")])
    # The next run places SO1 again (a re-delivery processed twice) and never shows SO2 or W2.
    second = write_run(tmp_path, "d2", cases=[c("k1", "MISSING_IN_CHANNEL", "erp", "SO1")])
    result = score(labels, [first, second])
    assert sorted(result.rows_lost) == ["erp:SO2", "wechat:W2"]
    assert result.rows_twice == ["erp:SO1"]
    assert "2 row(s) lost" in result.failures()
    assert "1 row(s) placed more than once" in result.failures()
    # The matched copy of SO1 is the one kept (better agreement with its label); the case is the extra.
    assert result.matchable_auto_correct == 2
    assert result.case_types == {}


def test_open_items_count_only_in_the_last_run(tmp_path: Path) -> None:
    labels = [*pair("SO1", "W1"), label("erp", "SO2", group="order:SO2"), label("erp", "SO3", group="")]
    open_row = "erp,erp,{id},19.90,CNY,2026-03-05,{age}"
    d1 = write_run(
        tmp_path,
        "d1",
        open_items=[
            open_row.format(id="SO1", age=0),
            open_row.format(id="SO2", age=0),
            open_row.format(id="SO3", age=0),
        ],
    )
    # d2: SO1 found its partner; SO2 is still open; SO3 silently vanished (the carry-over dropped it).
    d2 = write_run(
        tmp_path,
        "d2",
        matches=[m("g1", "erp", "SO1"), m("g1", "wechat", "W1")],
        open_items=[open_row.format(id="SO2", age=1)],
    )
    result = score(labels, [d1, d2])
    assert result.rows_lost == ["erp:SO3"]
    assert result.open_at_end == 1
    assert result.rows_twice == []
    assert result.matchable_auto_correct == 2


def test_repeated_ids_are_paired_with_their_labels_in_any_order(tmp_path: Path) -> None:
    labels = [
        *pair("SO1", "W1"),
        label("erp", "SO1", Expect.CASE, case_type="DUPLICATE", label_id="erp:SO1~2"),
    ]
    out = write_run(
        tmp_path,
        "d1",
        matches=[m("g1", "erp", "SO1"), m("g1", "wechat", "W1")],
        cases=[c("k1", "DUPLICATE", "erp", "SO1")],
    )
    result = score(labels, [out])
    assert result.failures() == []
    assert result.case_types["DUPLICATE"].tp == 1
    # Both copies in the group: one link (W1-SO1) right, the copy's two links wrong, the DUPLICATE missed.
    out2 = write_run(
        tmp_path,
        "d2",
        matches=[m("g1", "erp", "SO1"), m("g1", "erp", "SO1"), m("g1", "wechat", "W1")],
    )
    result = score(labels, [out2])
    assert (result.auto_links, result.wrong_auto_links) == (3, 2)
    assert result.case_types["DUPLICATE"].fn == 1
    assert result.rows_lost == [] and result.rows_twice == []


def test_case_type_precision_and_recall_per_type_micro_and_macro(tmp_path: Path) -> None:
    labels = [
        label("erp", "E1", Expect.CASE, case_type="MISSING_IN_CHANNEL"),
        label("erp", "E2", Expect.CASE, case_type="MISSING_IN_CHANNEL"),
        label("erp", "E3", Expect.CASE, case_type="MISSING_IN_CHANNEL"),
        label("wechat", "W1", Expect.CASE, case_type="MISSING_IN_ERP"),
        label("wechat", "W2", Expect.CASE, case_type="AMOUNT_MISMATCH", group="order:X"),
        label("erp", "X", Expect.CASE, case_type="AMOUNT_MISMATCH", group="order:X"),
        *pair("SO9", "W9"),
        label("wechat", "wechat-main@2026-03-05", Expect.CASE, case_type="MISSING_IN_BANK", aggregate=True),
    ]
    out = write_run(
        tmp_path,
        "d1",
        cases=[
            c("k1", "MISSING_IN_CHANNEL", "erp", "E1"),  # TP
            c("k2", "MISSING_IN_CHANNEL", "erp", "E2"),  # TP
            c("k3", "DUPLICATE", "erp", "E3"),  # FN MISSING_IN_CHANNEL, FP DUPLICATE
            c("k4", "MISSING_IN_ERP", "wechat", "W1"),  # TP
            c("k5", "AMOUNT_MISMATCH", "wechat", "W2"),  # TP
            c("k5", "AMOUNT_MISMATCH", "erp", "X"),  # TP
            c("k6", "MISSING_IN_ERP", "wechat", "W9"),  # FP MISSING_IN_ERP (it matches SO9)
            c("k6", "MISSING_IN_CHANNEL", "erp", "SO9"),  # FP MISSING_IN_CHANNEL
            # the MISSING_IN_BANK batch is not reported: FN
        ],
    )
    result = score(labels, [out])
    types = result.case_types
    assert (
        types["MISSING_IN_CHANNEL"].tp,
        types["MISSING_IN_CHANNEL"].fp,
        types["MISSING_IN_CHANNEL"].fn,
    ) == (
        2,
        1,
        1,
    )
    assert (types["MISSING_IN_ERP"].tp, types["MISSING_IN_ERP"].fp, types["MISSING_IN_ERP"].fn) == (1, 1, 0)
    assert (types["AMOUNT_MISMATCH"].tp, types["AMOUNT_MISMATCH"].fp) == (2, 0)
    assert (types["DUPLICATE"].tp, types["DUPLICATE"].fp) == (0, 1)
    assert (types["MISSING_IN_BANK"].tp, types["MISSING_IN_BANK"].fn) == (0, 1)
    assert result.case_precision == pytest.approx(5 / 8)
    assert result.case_recall == pytest.approx(5 / 7)
    # macro precision over types with predictions: MIC 2/3, MIE 1/2, AM 1, DUP 0
    assert result.case_macro_precision == pytest.approx((2 / 3 + 1 / 2 + 1 + 0) / 4)
    # macro recall over types with truths: MIC 2/3, MIE 1, AM 1, MIB 0
    assert result.case_macro_recall == pytest.approx((2 / 3 + 1 + 1 + 0) / 4)
    assert result.matchable_rows == 2 and result.matchable_auto_correct == 0


def test_ambiguous_rows_must_not_be_auto_matched_and_are_not_matchable(tmp_path: Path) -> None:
    labels = [
        label("erp", "SO1", group="order:SO1", ambiguous=True),
        label("wechat", "W1", group="order:SO1", ambiguous=True),
        label("erp", "SO2", group="order:SO2", ambiguous=True),
        label("wechat", "W2", group="order:SO2", ambiguous=True),
    ]
    suggested = write_run(
        tmp_path,
        "d1",
        matches=[
            m("g1", "erp", "SO1", status="suggested"),
            m("g1", "wechat", "W2", status="suggested"),
            m("g2", "erp", "SO2", status="suggested"),
            m("g2", "wechat", "W1", status="suggested"),
        ],
    )
    result = score(labels, [suggested])
    assert result.failures() == []
    assert (result.ambiguous_rows, result.ambiguous_suggested, result.ambiguous_auto) == (4, 4, 0)
    assert (result.suggested_links, result.wrong_suggested_links, result.suggested_rows) == (2, 2, 4)
    assert result.matchable_rows == 0 and result.auto_links == 0
    guessed = write_run(
        tmp_path,
        "d2",
        matches=[
            m("g1", "erp", "SO1"),
            m("g1", "wechat", "W1"),
            m("g2", "erp", "SO2"),
            m("g2", "wechat", "W2"),
        ],
    )
    result = score(labels, [guessed])
    assert result.ambiguous_auto == 4
    assert result.wrong_auto_links == 0  # right by luck, still not allowed
    assert "4 ambiguous row(s) auto-matched" in result.failures()


def test_engines_without_the_appended_columns_and_files_are_scored(tmp_path: Path) -> None:
    labels = [
        *pair("SO1", "W1"),
        label("erp", "SO4", Expect.FILTERED, filter_rule="erp-unpaid-orders"),
        label("erp", "SO5", Expect.FILTERED, filter_rule="erp-unpaid-orders"),
        label("bank", "B9", Expect.FILTERED, filter_rule="bank-fees-and-interest", amount=-2000),
    ]
    summary: dict[str, object] = {
        "sources": {"erp": {"filtered_by_rule": {"erp-unpaid-orders": 1}}, "bank": {}}
    }
    out = write_run(
        tmp_path,
        "d1",
        matches=["g1,r,erp,SO1,19.90,CNY", "g1,r,wechat,W1,19.90,CNY"],
        match_head="group_id,rule,source,txn_id,amount,currency",
        summary=summary,
    )
    result = score(labels, [out])
    assert result.auto_links == 1 and result.matchable_auto_correct == 2
    assert result.filtered_by_count
    # The summary accounts for one ERP row filtered by erp-unpaid-orders, none for the bank fee.
    assert (result.filtered_expected, result.filtered_correct) == (3, 1)
    assert len(result.rows_lost) == 2
    assert any("no status column" in note for note in result.notes)
    assert any("no filtered.csv" in note for note in result.notes)


def test_a_row_alone_in_a_group_is_not_a_correct_match_but_a_bank_credit_may_be(tmp_path: Path) -> None:
    labels = [
        *pair("SO1", "W1"),
        label("bank", "B1", group="settle:B1"),
        label("wechat", "wechat-main@2026-03-05", group="settle:B1", aggregate=True),
    ]
    out = write_run(
        tmp_path, "d1", matches=[m("g1", "erp", "SO1"), m("g2", "wechat", "W1"), m("g3", "bank", "B1")]
    )
    result = score(labels, [out])
    assert result.matchable_auto == 3
    assert result.matchable_auto_correct == 1  # B1 only: SO1 and W1 each sit without their partner
    assert result.auto_links == 0


def test_rows_no_label_knows_are_reported_and_their_cases_are_false_positives(tmp_path: Path) -> None:
    labels = pair("SO1", "W1")
    out = write_run(
        tmp_path,
        "d1",
        matches=[m("g1", "erp", "SO1"), m("g1", "wechat", "W1")],
        cases=[
            c("k1", "MISSING_IN_ERP", "wechat", "W404"),
            c("k2", "MISSING_IN_BANK", "wechat", "wechat-main@2026-03-01"),
        ],
    )
    result = score(labels, [out])
    assert result.unknown_rows == ["wechat:W404"]
    assert result.case_types["MISSING_IN_ERP"].fp == 1
    assert "MISSING_IN_BANK" not in result.case_types  # an unlabelled batch is no row: not scored
    assert result.case_precision == 0.0


def test_repeats_in_two_cases_are_paired_by_case_type(tmp_path: Path) -> None:
    labels = [
        label("erp", "SO1", Expect.CASE, case_type="AMOUNT_MISMATCH", group="order:SO1"),
        label("erp", "SO1", Expect.CASE, case_type="DUPLICATE", label_id="erp:SO1~2"),
        label("wechat", "W1", Expect.CASE, case_type="AMOUNT_MISMATCH", group="order:SO1"),
    ]
    out = write_run(
        tmp_path,
        "d1",
        cases=[
            c("k1", "DUPLICATE", "erp", "SO1"),
            c("k2", "AMOUNT_MISMATCH", "erp", "SO1"),
            c("k2", "AMOUNT_MISMATCH", "wechat", "W1"),
        ],
    )
    result = score(labels, [out])
    assert result.case_types["DUPLICATE"].tp == 1
    assert result.case_types["AMOUNT_MISMATCH"].tp == 2
    assert result.case_precision == 1.0 and result.case_recall == 1.0
