"""The demo day generator: exact layouts, self-consistent totals, planted differences, determinism.

The files are read back here with small local readers, on purpose independent of recon.parsing.
"""

from __future__ import annotations

import csv
import io
import struct
import xml.etree.ElementTree as ET
import zipfile
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from itertools import pairwise
from pathlib import Path

import pytest

from recon_local.demo_data import (
    ALIPAY_PID,
    WECHAT_MCHID,
    DemoDay,
    generate_day,
    write_day,
)

DAY = date(2026, 11, 20)
YMD = "20261120"
ERP_HEADER = "order_no,refund_no,type,channel,amount,currency,created_at,paid_at,status,customer,memo"
WECHAT_HEADER = (
    "交易时间,公众账号ID,商户号,特约商户号,设备号,微信订单号,商户订单号,用户标识,交易类型,交易状态,付款银行,"
    "货币种类,应结订单金额,代金券金额,微信退款单号,商户退款单号,退款金额,充值券退款金额,退款类型,退款状态,"
    "商品名称,商户数据包,手续费,费率,订单金额,申请退款金额,费率备注"
)
WECHAT_SUMMARY = (
    "总交易单数,应结订单总金额,退款总金额,充值券退款总金额,手续费总金额,订单总金额,申请退款总金额"
)
ALIPAY_HEADER = (
    "支付宝交易号,商户订单号,业务类型,商品名称,创建时间,完成时间,门店编号,门店名称,操作员,终端号,对方账户,"
    "订单金额（元）,商家实收（元）,支付宝红包（元）,集分宝（元）,支付宝优惠（元）,商家优惠（元）,券核销金额（元）,"
    "券名称,商家红包消费金额（元）,卡消费金额（元）,退款批次号/请求号,服务费（元）,分润（元）,备注"
)
ALIPAY_SUMMARY_HEADER = (
    "门店编号,门店名称,交易订单总笔数,退款订单总笔数,订单金额（元）,商家实收（元）,支付宝优惠（元）,"
    "商家优惠（元）,卡消费金额（元）,服务费（元）,分润（元）,实收净额（元）"
)
# Markers spelled out with the dash counts from formats.md 1.3 (41/40, 41/36, 41/40, 40/37).
DETAIL_START = (
    "#-----------------------------------------业务明细列表----------------------------------------"
)
DETAIL_END = "#-----------------------------------------业务明细列表结束------------------------------------"
SUMMARY_START = (
    "#-----------------------------------------业务汇总列表----------------------------------------"
)
SUMMARY_END = "#----------------------------------------业务汇总列表结束-------------------------------------"
ALIPAY_STEM = f"{ALIPAY_PID}0156_{YMD}"
ALIPAY_TAB_COLUMNS = (0, 1, 2, 6, 7, 8, 9, 10, 19, 21)  # values that carry a trailing TAB
NS = {"c": "urn:iso:std:iso:20022:tech:xsd:camt.053.001.08"}
FEN = Decimal("0.01")


def _fee(amount: Decimal) -> Decimal:
    return (abs(amount) * Decimal("0.006")).quantize(FEN, rounding=ROUND_HALF_UP)


def _fen(amount: Decimal) -> int:
    return int(amount * 100)


# --- local readers ----------------------------------------------------------------------------------------


@dataclass
class Alipay:
    detail_lines: list[str]
    summary_lines: list[str]
    rows: list[list[str]]  # raw fields (TABs kept)

    def clean(self, row: list[str]) -> list[str]:
        return [value.replace("\t", "") for value in row]


def _erp_rows(day: DemoDay) -> list[dict[str, str]]:
    text = day.files["erp"][1].decode("utf-8-sig")
    return list(csv.DictReader(io.StringIO(text, newline="")))


def _wechat(day: DemoDay) -> tuple[list[list[str]], list[str]]:
    lines = day.files["wechat-main"][1].decode("utf-8").split("\r\n")
    assert lines[-1] == ""
    lines = lines[:-1]
    assert lines[0] == WECHAT_HEADER
    assert lines[-2] == WECHAT_SUMMARY
    rows = [line.split(",") for line in lines[1:-2]]
    summary = lines[-1].split(",")
    for fields in [*rows, summary]:
        assert all(value.startswith("`") for value in fields)
    return [[v[1:] for v in fields] for fields in rows], [v[1:] for v in summary]


def _alipay(day: DemoDay) -> Alipay:
    archive = zipfile.ZipFile(io.BytesIO(day.files["alipay-main"][1]), metadata_encoding="gbk")
    names = archive.namelist()
    stem = f"{ALIPAY_PID}0156_{day.business_date:%Y%m%d}"
    assert names == [f"{stem}_业务明细.csv", f"{stem}_业务明细(汇总).csv"]
    detail = archive.read(names[0]).decode("gbk")
    summary = archive.read(names[1]).decode("gbk")
    for text in (detail, summary):
        assert text.endswith("\r\n")
        assert "\n" not in text.replace("\r\n", "")
    detail_lines = detail.split("\r\n")[:-1]
    start = detail_lines.index(DETAIL_START)
    end = detail_lines.index(DETAIL_END)
    rows = [line.split(",") for line in detail_lines[start + 2 : end]]
    return Alipay(detail_lines, summary.split("\r\n")[:-1], rows)


def _camt(day: DemoDay) -> ET.Element:
    return ET.fromstring(day.files["bank-cmb"][1])


def _entries(day: DemoDay) -> list[dict[str, str]]:
    out = []
    for ntry in _camt(day).iterfind(".//c:Ntry", NS):
        out.append(
            {
                "ref": ntry.findtext("c:AcctSvcrRef", namespaces=NS) or "",
                "amount": ntry.findtext("c:Amt", namespaces=NS) or "",
                "ind": ntry.findtext("c:CdtDbtInd", namespaces=NS) or "",
                "ustrd": ntry.findtext(".//c:Ustrd", namespaces=NS) or "",
                "party": ntry.findtext(".//c:RltdPties//c:Nm", namespaces=NS) or "",
                "subfamily": ntry.findtext(".//c:SubFmlyCd", namespaces=NS) or "",
                "booked": ntry.findtext("c:BookgDt/c:DtTm", namespaces=NS) or "",
            }
        )
    return out


def _wechat_net(rows: list[list[str]]) -> Decimal:
    return sum(
        (Decimal(r[12]) - Decimal(r[16]) - Decimal(r[22]) for r in rows),
        Decimal(0),
    )


def _alipay_net(alipay: Alipay) -> Decimal:
    rows = [alipay.clean(r) for r in alipay.rows]
    return sum((Decimal(r[11]) - Decimal(r[22]) for r in rows), Decimal(0))


@pytest.fixture(scope="module")
def day() -> DemoDay:
    return generate_day(DAY)


# --- determinism, names, dates ------------------------------------------------------------------------------


def test_same_seed_and_date_give_identical_bytes(day: DemoDay) -> None:
    again = generate_day(DAY)
    assert again.files == day.files
    assert again.planted == day.planted
    assert again.expected == day.expected
    other = generate_day(DAY, seed=8)
    assert all(other.files[key][1] != day.files[key][1] for key in day.files)


def test_file_names_and_statement_dates(day: DemoDay) -> None:
    assert {key: name for key, (name, _) in day.files.items()} == {
        "erp": f"erp_orders_{YMD}.csv",
        "wechat-main": f"wechat_tradebill_ALL_{YMD}.csv",
        "alipay-main": f"{ALIPAY_STEM}.csv.zip",
        "bank-cmb": "camt053_bank-cmb_20261121.xml",
    }
    assert day.statement_dates == {
        "erp": DAY,
        "wechat-main": DAY,
        "alipay-main": DAY,
        "bank-cmb": date(2026, 11, 21),
    }


def test_write_day_writes_every_file(day: DemoDay, tmp_path: Path) -> None:
    paths = write_day(day, tmp_path / "in")
    assert sorted(p.name for p in paths) == sorted(name for name, _ in day.files.values())
    for name, content in day.files.values():
        assert (tmp_path / "in" / name).read_bytes() == content


def test_orders_out_of_range_are_rejected() -> None:
    with pytest.raises(ValueError, match="orders"):
        generate_day(DAY, orders=5)


# --- ERP --------------------------------------------------------------------------------------------------


def test_erp_layout(day: DemoDay) -> None:
    raw = day.files["erp"][1]
    assert raw.startswith(b"\xef\xbb\xbf" + ERP_HEADER.encode() + b"\r\n")
    assert raw.endswith(b"\r\n")
    assert raw.count(b"\n") == raw.count(b"\r\n")
    rows = _erp_rows(day)
    assert len(rows) == day.expected["erp_rows"]
    for row in rows:
        assert row["type"] in {"payment", "refund"}
        assert row["channel"] in {"wechat", "alipay"}
        assert row["status"] in {"paid", "refunded", "closed", "pending"}
        assert row["currency"] == "CNY"
        amount = Decimal(row["amount"])
        assert amount.as_tuple().exponent == -2
        if row["type"] == "refund":
            assert amount < 0
            assert row["refund_no"]
            assert row["status"] == "refunded"
        else:
            assert amount > 0
            assert row["refund_no"] == ""
        created = datetime.strptime(row["created_at"], "%Y-%m-%d %H:%M:%S")
        assert created.date() == DAY
        if row["status"] in {"closed", "pending"}:
            assert row["paid_at"] == ""
        else:
            paid = datetime.strptime(row["paid_at"], "%Y-%m-%d %H:%M:%S")
            assert paid.date() == DAY
            assert paid >= created
    assert day.expected["erp_unpaid_rows"] == sum(1 for r in rows if r["paid_at"] == "")
    assert day.expected["erp_unpaid_rows"] >= 1


def test_erp_refunds_reference_existing_orders(day: DemoDay) -> None:
    rows = _erp_rows(day)
    payments = {r["order_no"]: r for r in rows if r["type"] == "payment"}
    refunds = [r for r in rows if r["type"] == "refund"]
    assert refunds
    for refund in refunds:
        order = payments[refund["order_no"]]
        assert -Decimal(refund["amount"]) <= Decimal(order["amount"])
        assert refund["channel"] == order["channel"]


def test_channel_mix_and_price_points(day: DemoDay) -> None:
    payments = [r for r in _erp_rows(day) if r["type"] == "payment"]
    wechat = sum(1 for r in payments if r["channel"] == "wechat")
    assert 0.40 < wechat / len(payments) < 0.70
    amounts = [r["amount"] for r in payments]
    common = {"9.90", "19.90", "29.90", "99.00", "199.00"}
    assert sum(1 for a in amounts if a in common) > len(amounts) / 3
    # A fee rounding tie (7.50 x 0.6 % = 4.5 fen) is in the day, so half-up vs half-even matters.
    assert "7.50" in amounts


# --- WeChat Pay -------------------------------------------------------------------------------------------


def test_wechat_layout_and_summary(day: DemoDay) -> None:
    raw = day.files["wechat-main"][1]
    assert not raw.startswith(b"\xef\xbb\xbf")
    assert raw.count(b"\n") == raw.count(b"\r\n")
    rows, summary = _wechat(day)
    assert len(rows) == day.expected["wechat_rows"]
    assert all(len(r) == 27 for r in rows)
    assert len(summary) == 7
    for r in rows:
        assert r[2] == WECHAT_MCHID
        assert r[3] == "0"
        assert len(r[5]) == 28 and r[5].isdigit() and r[5].startswith("4200002001")
        assert r[11] == "CNY"
        assert r[23] == "0.60%"
        assert r[26] == ""
        fee = Decimal(r[22])
        assert fee.as_tuple().exponent == -5
        if r[9] == "SUCCESS":
            assert (r[14], r[15], r[16]) == ("0", "0", "0.00")
            assert r[24] == r[12] and r[25] == "0.00"
            assert fee == _fee(Decimal(r[12]))
        else:
            assert r[9] == "REFUND"
            assert r[12] == "0.00" and r[24] == "0.00"
            assert len(r[14]) == 26 and r[14].startswith("5030000001")
            assert r[15].startswith("RF")
            assert (r[18], r[19]) == ("ORIGINAL", "SUCCESS")
            assert Decimal(r[16]) > 0 and r[25] == r[16]
            assert fee == -_fee(Decimal(r[16]))

    def total(index: int) -> Decimal:
        return sum((Decimal(r[index]) for r in rows), Decimal(0))

    assert summary == [
        str(len(rows)),
        str(total(12)),
        str(total(16)),
        "0.00",
        str(total(22).quantize(Decimal("0.00001"))),
        str(total(24)),
        str(total(25)),
    ]
    # A trailing lone backtick for the empty 费率备注.
    first_row = raw.decode().split("\r\n")[1]
    assert first_row.endswith(",`")


def test_wechat_header_matches_real_sample() -> None:
    repo = Path(__file__).resolve().parents[2]
    sample = repo.parent / "shared" / "samples" / "WxJava" / "PAY_BILL_RESULT_ALL_CONTENT.csv"
    if not sample.is_file():
        pytest.skip("WxJava sample in ../shared/samples absent")
    lines = sample.read_text(encoding="utf-8").splitlines()
    day = generate_day(DAY, orders=20)
    ours = day.files["wechat-main"][1].decode().split("\r\n")
    assert ours[0] == lines[0]
    summary_header = next(line for line in lines[1:] if not line.startswith("`"))
    assert summary_header in ours


# --- Alipay -----------------------------------------------------------------------------------------------


def _central_directory(blob: bytes) -> list[tuple[int, bytes]]:
    """(general purpose flag, raw name bytes) of every central directory entry, read by hand."""
    end = blob.rindex(b"PK\x05\x06")
    count, _size, offset = struct.unpack("<HII", blob[end + 10 : end + 20])
    entries = []
    for _ in range(count):
        assert blob[offset : offset + 4] == b"PK\x01\x02"
        flag = struct.unpack("<H", blob[offset + 8 : offset + 10])[0]
        name_len, extra_len, comment_len = struct.unpack("<HHH", blob[offset + 28 : offset + 34])
        entries.append((flag, blob[offset + 46 : offset + 46 + name_len]))
        offset += 46 + name_len + extra_len + comment_len
    return entries


def test_alipay_zip_entry_names_are_raw_gbk_without_utf8_flag(day: DemoDay) -> None:
    blob = day.files["alipay-main"][1]
    entries = _central_directory(blob)
    expected = [f"{ALIPAY_STEM}_业务明细.csv", f"{ALIPAY_STEM}_业务明细(汇总).csv"]
    assert [name for _, name in entries] == [n.encode("gbk") for n in expected]
    assert all(flag & 0x800 == 0 for flag, _ in entries)
    # The local headers agree (name bytes and flag).
    for name in expected:
        raw = name.encode("gbk")
        position = blob.index(raw)
        header = blob[position - 30 : position]
        assert header[:4] == b"PK\x03\x04"
        assert struct.unpack("<H", header[6:8])[0] & 0x800 == 0
    for info in zipfile.ZipFile(io.BytesIO(blob)).infolist():
        assert info.flag_bits & 0x800 == 0
    with pytest.raises(UnicodeDecodeError):
        entries[0][1].decode("utf-8")


def test_alipay_detail_layout(day: DemoDay) -> None:
    alipay = _alipay(day)
    lines = alipay.detail_lines
    assert lines[:5] == [
        "#支付宝业务明细查询",
        f"#账号：[{ALIPAY_PID}0156]",
        "#起始日期：[2026年11月20日 00:00:00]   终止日期：[2026年11月21日 00:00:00]",
        DETAIL_START,
        ALIPAY_HEADER,
    ]
    assert DETAIL_START.count("-") == 81 and DETAIL_END.count("-") == 77
    assert len(alipay.rows) == day.expected["alipay_rows"]
    for row in alipay.rows:
        assert len(row) == 25
        for index in ALIPAY_TAB_COLUMNS:
            assert row[index].endswith("\t"), (index, row)
        for index in (11, 12, 13, 14, 15, 16, 17, 20, 22, 23):
            assert "\t" not in row[index]
        clean = alipay.clean(row)
        assert len(clean[0]) == 28 and clean[0].isdigit() and clean[0][8:12] == "2200"
        assert clean[6] and clean[7]  # one store
        assert clean[11] == clean[12]
        amount = Decimal(clean[12])
        fee = Decimal(clean[22])
        if clean[2] == "交易":
            assert amount > 0 and clean[21] == ""
            assert fee == _fee(amount)
        else:
            assert clean[2] == "退款"
            assert amount < 0 and clean[21].startswith("RF")
            assert fee == -_fee(amount)
    footer = lines[lines.index(DETAIL_END) :]
    assert len(footer) == 4
    trades = [alipay.clean(r) for r in alipay.rows if r[2] == "交易\t"]
    refunds = [alipay.clean(r) for r in alipay.rows if r[2] == "退款\t"]
    trade_sum = sum((Decimal(r[12]) for r in trades), Decimal("0.00"))
    refund_sum = sum((Decimal(r[12]) for r in refunds), Decimal("0.00"))
    assert footer[1] == f"#交易合计：{len(trades)}笔，商家实收共{trade_sum}元，商家优惠共0.00元"
    assert footer[2] == f"#退款合计：{len(refunds)}笔，商家实收退款共{refund_sum}元，商家优惠退款共0.00元"
    assert footer[3] == "#导出时间：[2026年11月21日 " + footer[3][-9:]
    assert footer[3].endswith("]")


def test_alipay_summary_agrees_with_detail(day: DemoDay) -> None:
    alipay = _alipay(day)
    lines = alipay.summary_lines
    assert lines[0] == "#支付宝业务汇总查询"
    assert lines[1] == alipay.detail_lines[1] and lines[2] == alipay.detail_lines[2]
    assert lines[3] == SUMMARY_START
    assert lines[4] == ALIPAY_SUMMARY_HEADER
    assert lines[-2] == SUMMARY_END
    assert lines[-1] == alipay.detail_lines[-1]  # same export time
    assert SUMMARY_START.count("-") == 81 and SUMMARY_END.count("-") == 77
    store, total = lines[5].split(","), lines[6].split(",")
    assert len(lines) == 9
    assert total[0] == "合计" and total[1] == ""
    assert store[0].endswith("\t") and store[1].endswith("\t")
    assert store[2:] == total[2:]
    rows = [alipay.clean(r) for r in alipay.rows]
    received = sum((Decimal(r[12]) for r in rows), Decimal("0.00"))
    fees = sum((Decimal(r[22]) for r in rows), Decimal("0.00"))
    assert total[2:] == [
        str(sum(1 for r in rows if r[2] == "交易")),
        str(sum(1 for r in rows if r[2] == "退款")),
        str(sum((Decimal(r[11]) for r in rows), Decimal("0.00"))),
        str(received),
        "0.00",
        "0.00",
        "0.00",
        str(fees),
        "0.00",
        str(received - fees),
    ]


# --- bank -------------------------------------------------------------------------------------------------


def test_camt053_balances_and_summary(day: DemoDay) -> None:
    root = _camt(day)
    assert root.tag == "{urn:iso:std:iso:20022:tech:xsd:camt.053.001.08}Document"
    assert day.files["bank-cmb"][1].startswith(b'<?xml version="1.0" encoding="UTF-8"?>')
    stmt = root.find("c:BkToCstmrStmt/c:Stmt", NS)
    assert stmt is not None
    assert stmt.findtext("c:Acct/c:Ccy", namespaces=NS) == "CNY"
    number = stmt.findtext("c:Acct/c:Id/c:Othr/c:Id", namespaces=NS) or ""
    assert number.isdigit() and 18 <= len(number) <= 22
    balances = {}
    for bal in stmt.iterfind("c:Bal", NS):
        code = bal.findtext("c:Tp/c:CdOrPrtry/c:Cd", namespaces=NS)
        sign = 1 if bal.findtext("c:CdtDbtInd", namespaces=NS) == "CRDT" else -1
        balances[code] = sign * Decimal(bal.findtext("c:Amt", namespaces=NS) or "")
        assert bal.findtext("c:Dt/c:Dt", namespaces=NS) == "2026-11-21"
    entries = _entries(day)
    assert len(entries) == day.expected["bank_rows"]
    credits = [Decimal(e["amount"]) for e in entries if e["ind"] == "CRDT"]
    debits = [Decimal(e["amount"]) for e in entries if e["ind"] == "DBIT"]
    assert balances["OPBD"] + sum(credits) - sum(debits) == balances["CLBD"]
    summary = stmt.find("c:TxsSummry", NS)
    assert summary is not None
    assert summary.findtext("c:TtlNtries/c:NbOfNtries", namespaces=NS) == str(len(entries))
    assert summary.findtext("c:TtlNtries/c:Sum", namespaces=NS) == str(sum(credits) + sum(debits))
    assert summary.findtext("c:TtlNtries/c:TtlNetNtry/c:Amt", namespaces=NS) == str(
        sum(credits) - sum(debits)
    )
    assert summary.findtext("c:TtlCdtNtries/c:Sum", namespaces=NS) == str(sum(credits))
    assert summary.findtext("c:TtlDbtNtries/c:Sum", namespaces=NS) == str(sum(debits))
    refs = [e["ref"] for e in entries]
    assert len(set(refs)) == len(refs) and all(refs)
    assert all(e["booked"].startswith("2026-11-21T") for e in entries)


def test_bank_settlements_follow_the_bills_as_written(day: DemoDay) -> None:
    entries = {e["ustrd"]: e for e in _entries(day)}
    wechat_rows, _ = _wechat(day)
    wechat = entries[f"微信支付结算 {WECHAT_MCHID} {YMD}"]
    assert wechat["party"] == "财付通支付科技有限公司" and wechat["ind"] == "CRDT"
    assert Decimal(wechat["amount"]) == _wechat_net(wechat_rows)
    assert _fen(_wechat_net(wechat_rows)) == day.expected["wechat_settlement_minor"]
    alipay = entries[f"支付宝结算 {ALIPAY_PID} {YMD}"]
    assert alipay["party"] == "支付宝（中国）网络技术有限公司" and alipay["ind"] == "CRDT"
    net = _alipay_net(_alipay(day))
    assert _fen(net) == day.expected["alipay_settlement_minor"]
    assert Decimal(alipay["amount"]) == net - Decimal("10.00")
    fee = entries["账户管理费"]
    assert fee["ind"] == "DBIT" and fee["subfamily"] == "CHRG"
    interest = entries["结息"]
    assert interest["ind"] == "CRDT" and interest["subfamily"] == "INTR"


# --- the day's story --------------------------------------------------------------------------------------


def _channel_rows(day: DemoDay) -> list[dict[str, str]]:
    """Every channel row as (txn_id, order, refund, signed amount, time), in parser id rules."""
    out = []
    wechat_rows, _ = _wechat(day)
    for r in wechat_rows:
        refund = r[9] == "REFUND"
        out.append(
            {
                "source": "wechat",
                "txn_id": f"{r[5]}#{r[14]}" if refund else r[5],
                "order": r[6],
                "refund": r[15] if refund else "",
                "amount": f"-{r[16]}" if refund else r[12],
                "at": r[0],
            }
        )
    alipay = _alipay(day)
    for raw in alipay.rows:
        r = alipay.clean(raw)
        out.append(
            {
                "source": "alipay",
                "txn_id": f"{r[0]}#{r[21]}" if r[21] else r[0],
                "order": r[1],
                "refund": r[21],
                "amount": r[12],
                "at": r[5],
            }
        )
    return out


def test_all_channel_rows_complete_on_the_business_date(day: DemoDay) -> None:
    rows = _channel_rows(day)
    assert all(r["at"].startswith("2026-11-20 ") for r in rows)
    txn_ids = [r["txn_id"] for r in rows]
    assert len(set(txn_ids)) == len(txn_ids)


def test_cross_midnight_order_is_matchable_within_the_day(day: DemoDay) -> None:
    erp = [r for r in _erp_rows(day) if r["paid_at"] == "2026-11-20 23:59:58"]
    assert len(erp) == 1
    channel = [r for r in _channel_rows(day) if r["order"] == erp[0]["order_no"]]
    assert len(channel) == 1
    assert channel[0]["at"] == "2026-11-20 23:59:59"
    assert channel[0]["amount"] == erp[0]["amount"]


def test_expected_matched_pairs(day: DemoDay) -> None:
    erp = {(r["order_no"], r["refund_no"]): r["amount"] for r in _erp_rows(day) if r["paid_at"]}
    channel = {(r["order"], r["refund"]): r["amount"] for r in _channel_rows(day)}
    matched = sum(1 for key, amount in erp.items() if channel.get(key) == amount)
    assert matched == day.expected["matched_erp_channel_pairs"]
    assert day.expected["erp_payment_rows"] + day.expected["erp_refund_rows"] == day.expected["erp_rows"]


def test_planted_differences_are_in_the_files(day: DemoDay) -> None:
    erp_rows = _erp_rows(day)
    erp_lines = day.files["erp"][1].decode("utf-8-sig").split("\r\n")
    erp_orders = {r["order_no"] for r in erp_rows}
    channel = _channel_rows(day)
    by_txn = {r["txn_id"]: r for r in channel}
    entries = {e["ref"]: e for e in _entries(day)}
    kinds = sorted((p.case_type, p.source) for p in day.planted)
    assert kinds == [
        ("AMOUNT_MISMATCH", "bank"),
        ("AMOUNT_MISMATCH", "wechat"),
        ("DUPLICATE", "erp"),
        ("MISSING_IN_CHANNEL", "erp"),
        ("MISSING_IN_CHANNEL", "erp"),
        ("MISSING_IN_ERP", "alipay"),
    ]
    assert day.expected["planted_differences"] == len(day.planted)
    for planted in day.planted:
        assert planted.description
        if planted.case_type == "MISSING_IN_CHANNEL" and "#" not in planted.txn_id:
            (row,) = [r for r in erp_rows if r["order_no"] == planted.txn_id]
            assert row["channel"] == "wechat" and row["status"] == "paid" and row["paid_at"]
            assert not [r for r in channel if r["order"] == planted.txn_id]
            assert planted.delta_minor == _fen(Decimal(row["amount"]))
        elif planted.case_type == "MISSING_IN_CHANNEL":
            order_no, refund_no = planted.txn_id.split("#")
            (row,) = [r for r in erp_rows if r["refund_no"] == refund_no]
            assert row["order_no"] == order_no and row["type"] == "refund"
            assert [r for r in channel if r["order"] == order_no and not r["refund"]]  # payment went through
            assert not [r for r in channel if r["refund"] == refund_no]
            assert planted.delta_minor == _fen(Decimal(row["amount"])) < 0
        elif planted.case_type == "MISSING_IN_ERP":
            row2 = by_txn[planted.txn_id]
            assert row2["source"] == "alipay" and row2["order"] not in erp_orders
            assert planted.delta_minor == _fen(Decimal(row2["amount"])) > 0
        elif planted.case_type == "AMOUNT_MISMATCH" and planted.source == "wechat":
            row2 = by_txn[planted.txn_id]
            assert row2["order"] == planted.counterpart
            (erp_row,) = [
                r for r in erp_rows if r["order_no"] == planted.counterpart and r["type"] == "payment"
            ]
            assert (erp_row["amount"], row2["amount"]) == ("199.00", "189.00")
            assert planted.delta_minor == -1000
        elif planted.case_type == "AMOUNT_MISMATCH":
            entry = entries[planted.txn_id]
            assert entry["ustrd"].startswith("支付宝结算")
            assert planted.counterpart == "alipay-main@2026-11-20"
            assert (
                _fen(Decimal(entry["amount"])) - day.expected["alipay_settlement_minor"]
                == planted.delta_minor
            )
            assert planted.delta_minor == -1000
        else:
            assert planted.case_type == "DUPLICATE"
            at = [i for i, line in enumerate(erp_lines) if line.startswith(planted.txn_id + ",,payment,")]
            assert len(at) == 2 and at[1] == at[0] + 1  # exported twice, back to back
            same = [erp_lines[i] for i in at]
            assert same[0] == same[1]
            assert planted.delta_minor == _fen(Decimal(same[0].split(",")[4]))
            assert [r for r in channel if r["order"] == planted.txn_id]


def test_no_unplanted_erp_channel_differences(day: DemoDay) -> None:
    """Apart from the planted ones, every paid ERP row meets a channel row with the same amount."""
    planted = {p.txn_id for p in day.planted} | {p.counterpart for p in day.planted}
    erp = {(r["order_no"], r["refund_no"]): r for r in _erp_rows(day) if r["paid_at"]}
    channel = {(r["order"], r["refund"]): r for r in _channel_rows(day)}
    for key, row in erp.items():
        txn_id = f"{key[0]}#{key[1]}" if key[1] else key[0]
        if txn_id in planted:
            continue
        assert channel[key]["amount"] == row["amount"], key
    for key, row in channel.items():
        if row["txn_id"] in planted:
            continue
        assert key in erp, key


@pytest.mark.parametrize(
    ("business_date", "seed", "orders"),
    [(date(2026, 1, 1), 1, 20), (date(2026, 2, 28), 42, 60), (date(2024, 12, 31), 3, 400)],
)
def test_invariants_hold_for_other_days(business_date: date, seed: int, orders: int) -> None:
    day = generate_day(business_date, seed=seed, orders=orders)
    ymd = f"{business_date:%Y%m%d}"
    assert day.statement_dates["bank-cmb"] == business_date + timedelta(days=1)
    assert day.files["erp"][0] == f"erp_orders_{ymd}.csv"
    wechat_rows, summary = _wechat(day)
    assert summary[0] == str(len(wechat_rows))
    entries = {e["ustrd"]: e for e in _entries(day)}
    assert Decimal(entries[f"微信支付结算 {WECHAT_MCHID} {ymd}"]["amount"]) == _wechat_net(wechat_rows)
    assert _fen(Decimal(entries[f"支付宝结算 {ALIPAY_PID} {ymd}"]["amount"])) == (
        day.expected["alipay_settlement_minor"] - 1000
    )
    assert len(day.planted) == 6
    assert sum(1 for r in _erp_rows(day) if r["type"] == "payment") == orders + 1  # + the duplicate
    rows = _channel_rows(day)
    assert all(r["at"][:10] == business_date.isoformat() for r in rows)


# --- balances across days -----------------------------------------------------------------------------


def _balances(day: DemoDay) -> tuple[Decimal, Decimal]:
    """(OPBD, CLBD) of the day's camt.053, signed."""
    stated = {}
    for bal in _camt(day).iterfind(".//c:Bal", NS):
        sign = 1 if bal.findtext("c:CdtDbtInd", namespaces=NS) == "CRDT" else -1
        stated[bal.findtext("c:Tp/c:CdOrPrtry/c:Cd", namespaces=NS)] = sign * Decimal(
            bal.findtext("c:Amt", namespaces=NS) or ""
        )
    return stated["OPBD"], stated["CLBD"]


_SWEEPS = ("资金归集", "资金下拨")


@pytest.mark.parametrize(("seed", "orders"), [(7, 120), (3, 20)])
def test_consecutive_days_chain_their_bank_balances(seed: int, orders: int) -> None:
    # Business days Fri .. Tue: statements Sat .. Wed, across the sweep of Monday's statement.
    days = [generate_day(DAY + timedelta(days=n), seed=seed, orders=orders) for n in range(5)]
    held = [_balances(d) for d in days]
    for (_, closing), (opening, _) in pairwise(held):
        assert opening == closing
    assert [(d.expected["bank_opening_minor"], d.expected["bank_closing_minor"]) for d in days] == [
        (_fen(opening), _fen(closing)) for opening, closing in held
    ]
    assert len({opening for opening, _ in held}) == len(held)  # the balance moves: the chain is not trivial


def test_monday_statement_sweeps_the_week_to_the_retained_balance() -> None:
    sundays = [date(2026, 11, 22), date(2026, 11, 29)]  # business dates whose statements are Mondays
    swept = [generate_day(d) for d in sundays]
    for day in swept:
        sweeps = [e for e in _entries(day) if e["ustrd"] in _SWEEPS]
        assert len(sweeps) == 1 and sweeps[0]["party"] == "上海示例咖啡集团有限公司"
        assert (
            sweeps[0]["ind"] == "DBIT" and sweeps[0]["subfamily"] == "SWEP"
        )  # a week of sales: cash goes up
        assert len(_entries(day)) == day.expected["bank_rows"] == 5
        assert sweeps[0]["booked"] == max(e["booked"] for e in _entries(day))
    assert _balances(swept[0])[1] == _balances(swept[1])[1]
    # Only Monday's statement sweeps; the demo day (a Saturday statement) has its four entries.
    weekday = generate_day(DAY)
    assert not [e for e in _entries(weekday) if e["ustrd"] in _SWEEPS] and weekday.expected["bank_rows"] == 4


def test_demo_project_filters_the_sweep_as_it_filters_fees() -> None:
    import re

    from recon.domain import Project

    project = Project.from_yaml(
        (Path(__file__).resolve().parents[2] / "local/recon_local/projects/demo.yaml").read_text("utf-8")
    )
    bank_filters = [
        rule.when[0].value for rule in project.rules if rule.kind == "filter" and rule.sources == ["bank"]
    ]
    for memo in (*_SWEEPS, "账户管理费", "结息"):
        assert any(re.search(str(pattern), memo) for pattern in bank_filters), memo
    assert not any(re.search(str(p), f"支付宝结算 {ALIPAY_PID} {YMD}") for p in bank_filters)
