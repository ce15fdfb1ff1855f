from __future__ import annotations

import csv
import io
import json
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import numpy as np
import pyarrow.compute as pc
from hypothesis import given, settings
from hypothesis import strategies as st

from recon.domain import (
    Case,
    CaseStatus,
    CaseType,
    Evidence,
    MemberRef,
    Project,
    ResultsDigest,
    Run,
    RunStatus,
    Severity,
    Source,
    TxnStatus,
)
from recon.durations import human_duration, human_durations
from recon.matching.settlement import Batch
from recon.matching.text import local_times
from recon.reporting import cases_csv, render_report, summary_json, summary_text
from recon.reporting.export import (
    CASE_COLUMNS,
    FILTERED_COLUMNS,
    MATCH_COLUMNS,
    OPEN_ITEM_COLUMNS,
    case_stakes,
    evidence_text,
    stake_side,
)
from recon.reporting.masking import Masker
from recon.reporting.tabular import filtered_csv, matches_csv, open_items_csv
from recon.resolving import cases_from_tables, open_items, run_accounting, waiting_batches
from tests.export_contract import (
    APPENDED_FILTERED,
    APPENDED_MATCH,
    CASE_STAKE_FIELDS,
    FOUNDATION_CASE,
    FOUNDATION_FILTERED,
    FOUNDATION_MATCH,
)

from .conftest import DAY, txn
from .matching_support import Outcome, run
from .test_matching import _day


def _results(project: Project) -> tuple[Outcome, Run]:
    rows = _day(
        [
            txn("erp", "SO3", 19900, order_ref="SO3"),
            txn("wechat", "WX3", 18900, order_ref="SO3"),
            txn("erp", "SO4", 9900, order_ref="SO4"),
            txn("erp", "SO6", 500, order_ref="SO6", status=TxnStatus.CLOSED),
        ]
    )
    out = run(project, rows)
    run_ = Run(
        run_id="demo-20261120",
        project_id="demo",
        project_version=1,
        business_date=DAY,
        status=RunStatus.SUCCEEDED,
        started_at=datetime(2026, 11, 21, 1, 30, tzinfo=UTC),
        sources=run_accounting(out.placed, DAY),
        match_groups=out.result.groups.num_rows,
        cases_by_type={"AMOUNT_MISMATCH": 3, "MISSING_IN_CHANNEL": 1},
    )
    return out, run_


def _rows(data: bytes | str) -> list[dict[str, str]]:
    text = data.decode("utf-8-sig") if isinstance(data, bytes) else data
    return list(csv.DictReader(io.StringIO(text)))


def test_matches_csv_one_row_per_member_foundation_columns_first(project: Project) -> None:
    out, _ = _results(project)
    rows = _rows(matches_csv(out.placed))
    assert list(rows[0]) == MATCH_COLUMNS and MATCH_COLUMNS[:6] == FOUNDATION_MATCH
    assert len(rows) == out.dispositions()["matched"]
    wx = next(r for r in rows if r["txn_id"] == "WX1")
    assert wx == {
        **wx,
        "source": "wechat",
        "amount": "199.00",
        "currency": "CNY",
        "rule": "erp-channel-order",
        "status": "auto",
        "confidence": "1",
        "pass": "exact_key",
    }
    partner = [r for r in rows if r["group_id"] == wx["group_id"]]
    assert {r["txn_id"] for r in partner} == {"SO1", "WX1"}
    assert [r["group_id"] for r in rows] == sorted(r["group_id"] for r in rows)


def test_cases_csv_names_counterparts_delta_severity_reason_rule(project: Project) -> None:
    out, _ = _results(project)
    rows = _rows(cases_csv(out.cases))
    assert list(rows[0]) == CASE_COLUMNS and CASE_COLUMNS[:9] == FOUNDATION_CASE
    so3 = next(r for r in rows if r["txn_id"] == "SO3")
    assert so3["type"] == "AMOUNT_MISMATCH"
    assert (so3["counterpart_source"], so3["counterpart_txn_id"], so3["delta"]) == ("wechat", "WX3", "-10.00")
    assert (so3["severity"], so3["rule"]) == ("low", "erp-channel-order") and "189.00" in so3["reason"]
    so4 = next(r for r in rows if r["txn_id"] == "SO4")
    assert (so4["type"], so4["counterpart_txn_id"], so4["amount"]) == ("MISSING_IN_CHANNEL", "", "99.00")
    assert so4["reason"].startswith("短款")
    settlement = next(r for r in rows if r["source"] == "bank")
    assert settlement["counterpart_txn_id"] == "wechat-main@2026-11-20"


def test_filtered_and_open_items_csv(project: Project) -> None:
    out, _ = _results(project)
    descriptions = {r.name: r.description for r in project.filter_rules}
    filtered = _rows(filtered_csv(out.placed, descriptions=descriptions))
    assert list(filtered[0]) == FILTERED_COLUMNS == FOUNDATION_FILTERED + APPENDED_FILTERED
    assert filtered == [
        {
            "source": "erp",
            "account_id": "erp",
            "txn_id": "SO6",
            "amount": "5.00",
            "currency": "CNY",
            "rule": "erp-unpaid-orders",
            "detail": "Orders that were closed or never paid have no money to reconcile.",
        }
    ]
    carry = Project.model_validate(
        {
            **project.model_dump(mode="json"),
            "rules": [
                {
                    "kind": "key_match",
                    "name": "k",
                    "left": ["erp"],
                    "right": ["wechat"],
                    "carry_over": {"sources": ["erp"]},
                }
            ],
        }
    )
    later = run(carry, [txn("erp", "SO8", 1234, order_ref="SO8")], DAY)
    items = _rows(open_items_csv(later.placed, DAY + timedelta(days=1)))  # seen again a day later
    assert list(items[0]) == OPEN_ITEM_COLUMNS
    assert items == [
        {
            "source": "erp",
            "account_id": "erp",
            "txn_id": "SO8",
            "amount": "12.34",
            "currency": "CNY",
            "first_seen": "2026-11-20",
            "age_days": "1",
            "held_by": "k",
        }
    ]
    assert [(o.txn_id, o.age_days, o.rule) for o in open_items(later.placed, DAY)] == [("SO8", 0, "k")]


def test_waiting_settlement_batches_are_open_items_in_open_items_csv(project: Project) -> None:
    """A batch the settlement pass left waiting is an open item like a row: a line of open_items.csv (before
    the rows, as the report lists them) with its net and age, held by ``awaiting-statement:<bank>`` when the
    day's bank statement is missing, else by the rule (its credit may also pay a day not loaded yet)."""
    today = (DAY - date(1970, 1, 1)).days
    batches = {
        "wechat-settlement": [Batch("wechat-main", "wechat", today, "CNY", net=567443)],
        "alipay-settlement": [Batch("alipay-main", "alipay", today - 1, "CNY", net=-1200)],
    }
    held = [
        (o.txn_id, o.amount_minor, o.age_days, o.rule)
        for o in waiting_batches(batches, project, DAY, {"bank-cmb"})
    ]
    assert held == [
        ("alipay-main@2026-11-19", -1200, 1, "awaiting-statement:bank-cmb"),
        ("wechat-main@2026-11-20", 567443, 0, "awaiting-statement:bank-cmb"),
    ]
    in_flight = waiting_batches(batches, project, DAY, {"wechat-main"})  # the bank statement is there
    assert [o.rule for o in in_flight] == ["alipay-settlement", "wechat-settlement"]
    out = run(project, [txn("erp", "SO4", 9900, order_ref="SO4")])  # no row left open
    assert _rows(open_items_csv(out.placed, DAY, batches=in_flight)) == [
        {
            "source": "alipay",
            "account_id": "alipay-main",
            "txn_id": "alipay-main@2026-11-19",
            "amount": "-12.00",
            "currency": "CNY",
            "first_seen": "2026-11-19",
            "age_days": "1",
            "held_by": "alipay-settlement",
        },
        {
            "source": "wechat",
            "account_id": "wechat-main",
            "txn_id": "wechat-main@2026-11-20",
            "amount": "5674.43",
            "currency": "CNY",
            "first_seen": "2026-11-20",
            "age_days": "0",
            "held_by": "wechat-settlement",
        },
    ]


def test_report_and_summary_show_every_source_case_and_disposition(project: Project) -> None:
    out, run_ = _results(project)
    digest = ResultsDigest(
        run_id=run_.run_id, groups_by_rule={"erp-channel-order": 3}, sample_groups=out.groups
    )
    html = render_report(project, run_, digest, out.cases)
    for needle in [
        "AMOUNT_MISMATCH",
        "MISSING_IN_CHANNEL",
        "SO4",
        "wechat-main@2026-11-20",
        "All sources balance",
        "Open items",
    ]:
        assert needle in html
    assert "<script" not in html
    text = summary_text(project, run_, out.cases)
    assert "erp" in text and "OK" in text and "AMOUNT_MISMATCH" in text and "suggested" in text
    data = json.loads(summary_json(run_, out.cases))
    assert data["balanced"] is True
    assert data["sources"]["erp"]["rows_in"] == data["sources"]["erp"]["rows_out"] == 6
    assert data["cases"] == len(out.cases)
    assert data["dispositions"] == {"matched": 7, "suggested": 0, "case": 4, "filtered": 1, "open": 0}


def test_report_escapes_hostile_text(project: Project) -> None:
    out, run_ = _results(project)
    run_.error = "<script>alert(1)</script>"
    html = render_report(project, run_, ResultsDigest(run_id=run_.run_id), out.cases)
    assert "<script>alert(1)</script>" not in html and "&lt;script&gt;" in html


# --- amounts at stake: absolute, split into 长款 / 短款, per currency ------------------------------------------


def _case(case_id: str, type_: str, delta: int, source: str = "erp", currency: str = "CNY") -> Case:
    member = MemberRef(
        txn_uid=f"{source}:{case_id}",
        source=Source(source),
        account_id=source,
        txn_id=case_id,
        amount_minor=delta,
        currency=currency,
    )
    return Case(
        case_id=case_id,
        run_id="demo-20261120",
        type=CaseType(type_),
        members=[member],
        delta_minor=delta,
        currency=currency,
        severity=Severity.LOW,
        reason="r",
    )


def test_amounts_at_stake_add_up_and_split_into_surplus_and_shortage(project: Project) -> None:
    _, run_ = _results(project)
    cases = [
        _case("c1", "MISSING_IN_CHANNEL", 2990),  # an ERP order the channel never received: 短款
        _case("c2", "MISSING_IN_CHANNEL", -3016),  # an ERP refund the channel never paid out: 长款
        _case("c3", "MISSING_IN_CHANNEL", 50000, source="bank"),  # an unexplained bank credit: 长款
        _case("c4", "AMOUNT_MISMATCH", -1000),
        _case("c5", "AMOUNT_MISMATCH", 1),
        _case("c6", "MISSING_IN_ERP", 700, source="wechat", currency="USD"),
        _case("c7", "MISSING_IN_BANK", -12345, source="wechat"),
    ]
    stakes = {(s.case_type, s.currency): s for s in case_stakes(cases)}
    missing = stakes[("MISSING_IN_CHANNEL", "CNY")]
    assert (missing.cases, missing.at_stake_minor) == (3, 2990 + 3016 + 50000)  # not the net 49,974
    assert (missing.surplus_minor, missing.shortage_minor) == (3016 + 50000, 2990)
    mismatch = stakes[("AMOUNT_MISMATCH", "CNY")]  # channel − ERP: -10.00 is short, +0.01 long
    assert (mismatch.at_stake_minor, mismatch.surplus_minor, mismatch.shortage_minor) == (1001, 1, 1000)
    assert stakes[("MISSING_IN_ERP", "USD")].surplus_minor == 700
    assert stakes[("MISSING_IN_BANK", "CNY")].shortage_minor == 12345

    data = json.loads(summary_json(run_, cases, "CNY"))
    assert data["case_amount_by_type"] == {
        "AMOUNT_MISMATCH": "10.01",
        "MISSING_IN_BANK": "123.45",
        "MISSING_IN_CHANNEL": "560.06",
    }  # the project's currency only; USD is in case_stakes
    assert list(data["case_stakes"]["AMOUNT_MISMATCH"]["CNY"]) == CASE_STAKE_FIELDS
    assert data["case_stakes"]["MISSING_IN_CHANNEL"]["CNY"] == {
        "cases": 3,
        "at_stake": "560.06",
        "surplus": "530.16",
        "shortage": "29.90",
        "not_at_stake": "0.00",
    }
    assert data["case_stakes"]["MISSING_IN_ERP"] == {
        "USD": {"cases": 1, "at_stake": "7.00", "surplus": "7.00", "shortage": "0.00", "not_at_stake": "0.00"}
    }
    text = summary_text(project, run_, cases)
    assert "MISSING_IN_CHANNEL      3   at stake 560.06 CNY (长款 530.16, 短款 29.90)" in text
    assert (
        "AMOUNT_MISMATCH         2   at stake 10.01 CNY (长款 0.01, 短款 10.00)" in text
        and "-9.99" not in text
    )
    html = render_report(project, run_, ResultsDigest(run_id=run_.run_id), cases)
    assert "560.06" in html and "530.16" in html and "-9.99" not in html and "USD" in html


def _table(html: str, table_id: str) -> str:
    start = html.index(f'<table id="{table_id}">')
    return html[start : html.index("</table>", start)]


def test_the_report_and_the_mail_count_the_open_cases_money_and_the_handled_cases_apart(
    project: Project,
) -> None:
    """A later run's payout closed the day's MISSING_IN_BANK 6,705.70 (auto_resolved), a reviewer resolved
    an AMOUNT_MISMATCH: "Open cases: 2 (of 4 cases; 2 handled)", yet the report's at-stake figures still
    counted them (短款 6,765.60). The report and the mail show the open cases' money and the handled cases'
    apart; summary.json stays what the run found, whatever the review status (it feeds the e-mail's
    fingerprint)."""
    _, run_ = _results(project)
    closed = {"status": CaseStatus.AUTO_RESOLVED}
    cases = [
        _case("c1", "MISSING_IN_BANK", -670570, source="wechat").model_copy(update=closed),
        _case("c2", "MISSING_IN_BANK", -1000, source="wechat"),
        _case("c3", "MISSING_IN_CHANNEL", 1990),
        _case("c4", "AMOUNT_MISMATCH", -3000).model_copy(update={"status": CaseStatus.RESOLVED}),
    ]
    html = render_report(project, run_, ResultsDigest(run_id=run_.run_id), cases)
    totals = _table(html, "stake-totals")
    assert "<th>Handled cases</th><th>Handled: at stake</th>" in totals
    assert (
        '<tr><td>CNY</td><td class="num">2</td>\n<td class="num"><b>29.90</b></td>\n'
        '<td class="num"><b>0.00</b></td>\n<td class="num"><b>29.90</b></td>\n<td class="num">0.00</td>\n'
        '<td class="num">2</td><td class="num">6,735.70</td></tr>'
    ) in totals
    by_type = _table(html, "case-types")
    assert (
        '<tr><td>MISSING_IN_BANK</td><td>CNY</td><td class="num">1</td><td class="num">10.00</td>\n'
        '<td class="num">0.00</td><td class="num">10.00</td>\n<td class="num">0.00</td>\n'
        '<td class="num">1</td><td class="num">6,705.70</td></tr>'
    ) in by_type
    assert (
        '<tr><td>AMOUNT_MISMATCH</td><td>CNY</td><td class="num">0</td><td class="num">0.00</td>\n'
        '<td class="num">0.00</td><td class="num">0.00</td>\n<td class="num">0.00</td>\n'
        '<td class="num">1</td><td class="num">30.00</td></tr>'
    ) in by_type
    text = summary_text(project, run_, cases)
    assert "Open cases: 2 (of 4 cases; 2 handled: 1 auto_resolved, 1 resolved)" in text
    assert "  MISSING_IN_BANK         1   at stake 10.00 CNY (短款 10.00)\n" in text
    assert "  all open cases          2   at stake 29.90 CNY (短款 29.90)\n" in text
    assert (
        "Handled cases by type (resolved, auto-resolved; in no figure above):\n"
        "  AMOUNT_MISMATCH         1   at stake 30.00 CNY (短款 30.00)\n"
        "  MISSING_IN_BANK         1   at stake 6,705.70 CNY (短款 6,705.70)\n"
    ) in text
    data = json.loads(summary_json(run_, cases, "CNY"))  # what the run found: every case
    assert data["stake_totals"]["CNY"]["shortage"] == "6765.60"  # 6,705.70 + 10.00 + 19.90 + 30.00
    assert data["case_stakes"]["MISSING_IN_BANK"]["CNY"]["cases"] == 2
    reviewed = [c.model_copy(update={"status": CaseStatus.OPEN}) for c in cases]
    assert summary_json(run_, reviewed, "CNY") == summary_json(run_, cases, "CNY")


def test_a_merchant_discount_reads_as_a_booking_in_the_mail_and_the_report(project: Project) -> None:
    """The AMOUNT_MISMATCH whose Δ -10.00 is WeChat's 免充值券 read "AMOUNT_MISMATCH 短款 10.00" in the mail."""
    _, run_ = _results(project)
    discount = Evidence(
        field="merchant_discount",
        left="免充值券 10.00 CNY",
        right="免充值券 10.00 CNY",
        equal=True,
        delta="-10.00",
    )
    voucher = _case("c1", "AMOUNT_MISMATCH", -1000).model_copy(update={"evidence": [discount]})
    text = summary_text(project, run_, [voucher, _case("c2", "MISSING_IN_CHANNEL", 1990)])
    assert "AMOUNT_MISMATCH Δ -10.00 CNY (not at stake: merchant discount to book)  [c1, open]" in text
    assert "  AMOUNT_MISMATCH         1   at stake 0.00 CNY (not at stake 10.00)\n" in text
    assert "  all open cases          2   at stake 19.90 CNY (短款 19.90; not at stake 10.00)\n" in text
    html = render_report(project, run_, ResultsDigest(run_id=run_.run_id), [voucher])
    assert "<b>not at stake: merchant discount to book</b>" in html
    assert "merchant_discount: 免充值券 10.00 CNY" in html
    rows = _rows(cases_csv([voucher]))
    assert (rows[0]["direction"], rows[0]["at_stake"]) == ("not at stake: merchant discount to book", "0.00")


def test_surplus_or_shortage_agrees_with_the_reason_the_engine_wrote(project: Project) -> None:
    rows = [r for r in _day() if r.txn_id != "B-WX"] + [
        txn("erp", "SO40", 9900, order_ref="SO40"),
        txn("erp", "SO41#R9", -500, order_ref="SO41", refund_ref="R9"),
        txn("alipay", "AP50", 5990, order_ref="SO50"),
        txn("bank", "B-X", 123456, value_date=DAY + timedelta(days=1), counterparty="某公司", memo="货款"),
    ]
    cases = run(project, rows).cases
    sided = [(stake_side(c), c.reason[:2]) for c in cases if c.reason[:2] in ("长款", "短款")]
    assert len(sided) >= 5
    assert all({"surplus": "长款", "shortage": "短款"}[side or ""] == word for side, word in sided), sided


# --- matches.csv: every group's rule, members, settled batches and evidence ----------------------------------


def test_matches_csv_carries_every_groups_evidence_and_settled_batch(project: Project) -> None:
    out, _ = _results(project)
    rows = _rows(matches_csv(out.placed, out.result.groups))
    assert list(rows[0]) == MATCH_COLUMNS == FOUNDATION_MATCH + APPENDED_MATCH
    groups = {g.group_id: g for g in out.groups}
    for row in rows:  # the column-wise text says what each group's evidence says, field by field
        group = groups[row["group_id"]]
        assert row["evidence"] == evidence_text(group.evidence) and row["evidence"]
        assert row["explanation"] == group.explanation and row["settles"] == ",".join(group.settles)
    wx = next(r for r in rows if r["txn_id"] == "WX1")
    assert wx["evidence"].startswith("key: SO1; amount: 199.00; booked_at: Δ ")
    settlement = next(r for r in rows if r["rule"] == "alipay-settlement")  # a batch, not an input row
    assert settlement["txn_id"] == "B-AP" and settlement["settles"] == "alipay-main@2026-11-20"
    assert (
        "net_total: 4.87;" in settlement["evidence"] and "memo: 支付宝 ~ 支付宝结算" in settlement["evidence"]
    )


def test_report_says_where_every_group_is(project: Project) -> None:
    out, run_ = _results(project)
    run_.match_groups = 307
    html = render_report(
        project, run_, ResultsDigest(run_id=run_.run_id, sample_groups=out.groups), out.cases
    )
    assert f"(first {len(out.groups)} of 307" in html and "matches.csv" in html
    assert "settles batch <code>alipay-main@2026-11-20</code>" in html


# --- TIME_MISMATCH: both booking times, in the project's time zone, and a human gap ---------------------------


def test_human_duration() -> None:
    assert [human_duration(s) for s in (0, 12, 75, 5400, 172800, 108000, -90)] == [
        "0 s",
        "12 s",
        "1 m 15 s",
        "1 h 30 m",
        "2 d 0 h",
        "1 d 6 h",
        "-1 m 30 s",
    ]


@settings(deadline=None)  # the first call loads Arrow's compute functions
@given(st.lists(st.integers(min_value=-(10**12), max_value=10**12), max_size=50))
def test_human_durations_say_the_two_largest_units(seconds: list[int]) -> None:
    def spoken(value: int) -> str:  # the rule, one value at a time
        sign, value = ("-" if value < 0 else ""), abs(value)
        days, rest = divmod(value, 86_400)
        hours, rest = divmod(rest, 3_600)
        minutes, secs = divmod(rest, 60)
        if days:
            return f"{sign}{days} d {hours} h"
        if hours:
            return f"{sign}{hours} h {minutes} m"
        return f"{sign}{minutes} m {secs} s" if minutes else f"{sign}{secs} s"

    words = human_durations(np.array(seconds, np.int64)).to_pylist()
    assert words == [spoken(s) for s in seconds]


@settings(deadline=None)
# Up to 2037: Arrow's time zone rules (from the system's zoneinfo) stop at 2038, Python's do not.
@given(
    st.lists(st.integers(min_value=-(2**31) * 10**6, max_value=(2**31 - 1) * 10**6), max_size=20),
    st.sampled_from(["Asia/Shanghai", "UTC", "Europe/Amsterdam", "America/St_Johns", "Asia/Kathmandu"]),
)
def test_local_times_are_isoformat_in_the_zone(booked_us: list[int], timezone: str) -> None:
    expected = [
        (datetime(1970, 1, 1, tzinfo=UTC) + timedelta(microseconds=us))
        .astimezone(ZoneInfo(timezone))
        .isoformat()
        for us in booked_us
    ]
    assert local_times(np.array(booked_us, np.int64), timezone).to_pylist() == expected


def test_time_mismatch_shows_both_booking_times_in_the_project_zone(project: Project) -> None:
    erp_at = datetime(2026, 11, 20, 2, 0, tzinfo=UTC)  # 10:00 Asia/Shanghai
    rows = _day(
        [
            txn("wechat", "WX8", 2000, order_ref="SO8", fee=12, at=erp_at + timedelta(days=2)),
            txn("erp", "SO8", 2000, order_ref="SO8", at=erp_at),  # after its counterpart: left is still ERP
        ]
    )
    out = run(project, rows)
    placed = out.placed.append_column("booked_at", out.rows["booked_at"])
    cases = cases_from_tables(
        out.run_id,
        out.result.cases,
        placed,
        timezone=project.timezone,
        left_sources={"erp-channel-order": ["erp"]},
    )
    case = next(c for c in cases if c.type is CaseType.TIME_MISMATCH)
    booked = next(e for e in case.evidence if e.field == "booked_at")
    assert (booked.left, booked.right, booked.delta, booked.equal) == (
        "2026-11-20T10:00:00+08:00",
        "2026-11-22T10:00:00+08:00",
        "2 d 0 h",
        False,
    )
    # The engine words it (cases.parquet); the case, its CSV rows and the report say the same.
    stored = out.result.cases.filter(pc.equal(out.result.cases["type"], "TIME_MISMATCH"))["reason"]
    assert stored.to_pylist() == [case.reason]
    assert {r["reason"] for r in _rows(cases_csv([case]))} == {case.reason}
    assert case.reason == (
        "Keys and amounts agree but the booking times are 2 d 0 h apart "
        "(2026-11-20T10:00:00+08:00 vs 2026-11-22T10:00:00+08:00) (tolerance 24h): erp SO8 vs wechat WX8."
    )
    html = render_report(project, _results(project)[1], ResultsDigest(run_id=out.run_id), cases)
    assert "2 d 0 h apart (2026-11-20T10:00:00+08:00 vs 2026-11-22T10:00:00+08:00)" in html
    assert "booked_at: 2026-11-20T10:00:00+08:00 ≠ 2026-11-22T10:00:00+08:00 (Δ 2 d 0 h)" in html


def test_a_time_mismatch_of_an_order_paid_in_parts_names_the_two_times_furthest_apart(
    project: Project,
) -> None:
    """Several rows on a side: the gap is the widest between a left and a right row, and the reason names
    those two rows' times (not the first rows', which are a second apart)."""
    erp_at = datetime(2026, 11, 20, 2, 0, tzinfo=UTC)  # 10:00 Asia/Shanghai
    rows = _day(
        [
            txn("erp", "SO9", 2000, order_ref="SO9", at=erp_at),
            txn("wechat", "WX9a", 1000, order_ref="SO9", fee=6, at=erp_at + timedelta(seconds=1)),
            txn("wechat", "WX9b", 1000, order_ref="SO9", fee=6, at=erp_at + timedelta(hours=30, seconds=5)),
        ]
    )
    out = run(project, rows)
    reason = out.result.cases.filter(pc.equal(out.result.cases["type"], "TIME_MISMATCH"))[
        "reason"
    ].to_pylist()
    assert reason == [
        "Keys and amounts agree but the booking times are 1 d 6 h apart "
        "(2026-11-20T10:00:00+08:00 vs 2026-11-21T16:00:05+08:00) (tolerance 24h): erp SO9 vs wechat WX9a + WX9b."
    ]


# --- account numbers: masked in every text we write ----------------------------------------------------------


def test_masker_masks_every_declared_number_wherever_it_occurs(project: Project) -> None:
    masker = Masker.for_project(project)
    memo = "支付宝结算 2088101122136241 20261120; 微信支付结算 1900000109; 75591234561080100018"
    assert masker.text(memo) == "支付宝结算 ****6241 20261120; 微信支付结算 ****0109; ****0018"
    assert masker.text("20881011221362410156_20261120.csv.zip") == "****62410156_20261120.csv.zip"
    assert masker.text("199.00 SO20261120000045") == "199.00 SO20261120000045"
    assert not Masker([]) and Masker(["12345"]).text("12345") == "12345"  # too short to be an account
    evidence = Evidence(field="memo", left="支付宝", right="支付宝结算 2088101122136241 20261120", equal=True)
    case = _case("c1", "AMOUNT_MISMATCH", -1000).model_copy(
        update={"reason": "bank 2088101122136241", "evidence": [evidence]}
    )
    masked = masker.case(case)
    assert "2088101122136241" not in masked.model_dump_json() and "****6241" in masked.evidence[0].right
