"""Chinese bank exports as built-in profiles: the real double-entry-generator samples (counts and sums),
synthetic files for the layouts without a public sample, and the README worked example (BOCOM, not built in)."""

from __future__ import annotations

import re
from datetime import date
from typing import Any

import pytest

from recon.domain import Source, TxnType
from recon.parsing import (
    ParsedStatement,
    Profile,
    StatementParseError,
    builtin_profiles,
    detect_format,
    parse_statement,
)

from ._support import REPO, assert_accounting, at, parse, samples

DEG = "double-entry-generator"


def _bank(data: bytes, name: str, **kw: Any) -> ParsedStatement:
    return parse(data, name, Source.BANK, **kw)


def _net(p: ParsedStatement) -> int:
    return sum(t.amount_minor for t in p.transactions)


@pytest.mark.needs_samples
@pytest.mark.parametrize(
    ("folder", "fmt"), [("icbc_debit-v1", "bank.icbc.debit_v1"), ("icbc_debit-v2", "bank.icbc.debit_v2")]
)
def test_icbc_samples_parse_and_their_anonymised_footer_is_refused(folder: str, fmt: str) -> None:
    path = next(samples(f"{DEG}/{folder}").glob("*.csv"))
    data = path.read_bytes()
    assert detect_format(data, path.name) == (fmt, 0.9)
    # The sample's 人民币合计 footer was anonymised (1,234.56 / 9,876.54): the rows cannot reproduce it.
    with pytest.raises(StatementParseError) as info:
        _bank(data, path.name)
    errors = {e.column: e for e in info.value.errors}
    assert set(errors) == {"记账金额(收入)", "记账金额(支出)"}
    assert errors["记账金额(收入)"].row == 20
    assert (
        "states 1234.56" in errors["记账金额(收入)"].reason
        and "add up to 2841.74" in errors["记账金额(收入)"].reason
    )
    assert (
        "states 9876.54" in errors["记账金额(支出)"].reason
        and "add up to 4241.08" in errors["记账金额(支出)"].reason
    )
    p = info.value.parsed
    assert p is not None
    assert_accounting(p)
    assert (p.format, p.profile, p.profile_version) == (fmt, fmt, "1")
    assert (p.rows_read, len(p.transactions), p.errors) == (20, 11, [])
    assert p.skipped_by_rule == {"preamble": 3, "blank": 4, "header": 1, "footer": 1}
    credits = [t.amount_minor for t in p.transactions if t.amount_minor > 0]
    debits = [t.amount_minor for t in p.transactions if t.amount_minor < 0]
    assert (len(credits), sum(credits)) == (5, 284174)
    assert (len(debits), sum(debits)) == (6, -424108)
    first = p.transactions[0]
    assert (first.amount_minor, first.currency, str(first.value_date)) == (-1340, "CNY", "2023-05-02")
    assert first.booked_at == at("2023-05-02 00:00:00")
    assert (
        first.counterparty == "深圳市财付通支付科技有限公司"
    )  # padding and the TAB inside the quotes trimmed
    assert first.memo == "消费 / 广东三元麦当劳食品有"
    assert first.txn_id.startswith("h") and len({t.txn_id for t in p.transactions}) == 11
    assert not any(t.in_file_duplicate for t in p.transactions)


@pytest.mark.needs_samples
def test_icbc_ids_are_stable_across_deliveries() -> None:
    path = next(samples(f"{DEG}/icbc_debit-v1").glob("*.csv"))
    ids = []
    for _ in range(2):
        with pytest.raises(StatementParseError) as info:
            _bank(path.read_bytes(), path.name)
        assert info.value.parsed is not None
        ids.append([t.txn_id for t in info.value.parsed.transactions])
    assert ids[0] == ids[1]


@pytest.mark.needs_samples
def test_ccb_xls_sample() -> None:
    path = next(samples(f"{DEG}/ccb").glob("*.xls"))
    data = path.read_bytes()
    assert detect_format(data, "statement.bin") == ("bank.ccb.debit_xls", 0.9)
    p = _bank(data, path.name)
    assert_accounting(p)
    assert (p.encoding, p.rows_read, len(p.transactions)) == ("binary", 13, 6)
    assert p.skipped_by_rule == {"preamble": 4, "blank": 1, "header": 1, "footer": 1}
    assert [t.amount_minor for t in p.transactions] == [-6700, -1678, -2000, -51502, -1806, -6640]
    assert _net(p) == -70326
    first = p.transactions[0]
    assert first.booked_at == at("2025-01-01 18:53:19") and first.value_date == date(2025, 1, 1)
    assert first.currency == "CNY" and first.counterparty == "中***融科技有限公司"
    assert first.memo == "消费 / 支付宝-支付宝外部商户-中移动金融科技有限公司"
    assert [t.row_number for t in p.transactions] == [7, 8, 9, 10, 11, 12]


@pytest.mark.needs_samples
def test_abc_sample() -> None:
    path = next(samples(f"{DEG}/abc_debit").glob("*.csv"))
    p = _bank(path.read_bytes(), path.name)
    assert_accounting(p)
    assert p.format == "bank.abc.debit" and p.errors == []
    assert [t.amount_minor for t in p.transactions] == [1000000, -1000, -1234589, 1, 0]
    assert _net(p) == -235588
    assert p.transactions[0].booked_at == at("2024-01-01 12:34:56")
    assert p.transactions[2].booked_at == at("2024-01-03 00:00:00")  # 交易时间 empty: the date alone
    assert p.transactions[3].counterparty is None  # "--"


@pytest.mark.needs_samples
def test_cmb_debit_sample() -> None:
    path = next(samples(f"{DEG}/cmb_debit").glob("*.csv"))
    p = _bank(path.read_bytes(), path.name)
    assert_accounting(p)
    assert p.format == "bank.cmb.debit" and p.errors == []
    assert [t.amount_minor for t in p.transactions] == [123400, -100000, -300, -100000, -1014]
    assert p.transactions[3].memo == "银联ATM取款 / 银联 ATM 取款，中国银行"


def test_cmb_credit_month_day_dates_take_the_year_from_the_title() -> None:
    text = "\n".join(
        [
            "招商银行信用卡对账单（个人消费卡账户 2024年01月）",
            "",
            "交易日,记账日,交易摘要,人民币金额,卡号末四位,交易地金额",
            "12/30,12/31,星巴克咖啡,36.00,1234,36.00(CN)",
            ",01/02,还款,-500.00,1234,-500.00(CN)",
            "01/05,01/06,美团外卖,-3.90,1234,-3.90(CN)",
        ]
    )
    data = text.encode("gbk")
    assert detect_format(data, "x.csv")[0] == "bank.cmb.credit"
    p = _bank(data, "cmb_credit.csv")
    assert_accounting(p)
    assert p.encoding == "gbk" and p.skipped_by_rule == {"preamble": 1, "blank": 1, "header": 1}
    coffee, repay, refund = p.transactions
    assert coffee.booked_at == at("2023-12-30 00:00:00")  # December on a January statement: the year before
    assert coffee.value_date == date(2023, 12, 31) and coffee.amount_minor == -3600
    assert repay.booked_at == at("2024-01-02 00:00:00")  # 交易日 empty: 记账日
    assert repay.amount_minor == 50000 and repay.txn_type is TxnType.TRANSFER
    assert refund.amount_minor == 390


def test_ccb_csv_layout() -> None:
    text = "\n".join(
        [
            "中国建设银行交易明细",
            "卡号/账号:6217000000000001234,起始日期:20240101,结束日期:20240131",
            "序号,摘要,币别,钞汇,交易日期,交易金额,账户余额,交易地点/附言,对方账号与户名",
            "1,消费,人民币元,钞,20240103,-25.50,974.50,财付通,财付通支付科技有限公司",
            '2,工资,人民币元,钞,20240110,"8,000.00","8,974.50",代发工资,某某公司',
            '3,手续费,人民币元,钞,20240111,-2.00,"8,972.50"',
        ]
    )
    p = _bank(text.encode(), "ccb.csv")
    assert_accounting(p)
    assert p.format == "bank.ccb.debit_csv"
    assert [t.amount_minor for t in p.transactions] == [-2550, 800000, -200]
    assert p.transactions[2].txn_type is TxnType.FEE
    assert p.transactions[1].memo == "工资 / 代发工资"


# ------------------------------------------------------------------------------ the worked example

EXAMPLE = REPO / "docs" / "profiles" / "bank.bocom.debit.yaml"
BOCOM_HEADER = "序号,交易日期,交易时间,交易类型,借贷,交易金额,余额,对方账号,对方户名,交易地点,摘要"


def test_bocom_is_not_built_in_and_parses_with_only_its_yaml() -> None:
    assert "bank.bocom.debit" not in {p.name for p in builtin_profiles()}
    profile = Profile.from_yaml(EXAMPLE.read_text("utf-8"))
    text = "\r\n".join(
        [
            "交通银行借记卡交易明细",
            BOCOM_HEADER,
            '1,2024-03-01,09:15:02,网上支付,借 Dr,"CNY 1,280.00","8,720.00",6222****0001,某某商城,网上银行,订单 88',
            '2,2024-03-01,18:00:00,转账收入,贷 Cr,CNY 123.18,"8,843.18",6222****0002,张三,手机银行,还款',
            '3,2024-03-02,10:00:00,跨行手续费,借 Dr,CNY 0.50,"8,842.68",,,,',
            '4,2024-03-02,11:00:00,转账收入,入 In,CNY 1.00,"8,843.68",,,,',
            "合计,,,,,,,,,,",
        ]
    )
    data = text.encode("gbk")
    assert detect_format(data, "bocom.csv") == ("unknown", 0.0)  # not a built-in layout
    assert detect_format(data, "bocom.csv", profiles=[profile]) == ("bank.bocom.debit", 0.9)
    p = parse_statement(
        data,
        filename="bocom.csv",
        raw_key="raw/bocom.csv",
        statement_id="stmt-1",
        source=Source.BANK,
        account_id="acct-1",
        profile=profile,
    )
    assert_accounting(p)
    assert (p.profile, p.profile_version, p.encoding) == ("bank.bocom.debit", "1", "gbk")
    assert p.skipped_by_rule == {"preamble": 1, "header": 1, "footer": 1}
    pay, income, fee = p.transactions
    assert (pay.amount_minor, income.amount_minor, fee.amount_minor) == (-128000, 12318, -50)
    assert pay.booked_at == at("2024-03-01 09:15:02") and pay.memo == "网上支付 / 订单 88"
    assert fee.txn_type is TxnType.FEE and income.counterparty == "张三"
    (error,) = p.errors
    assert (error.row, error.column) == (6, "借贷")
    assert error.reason == "借贷 must be 借 Dr or 贷 Cr, got '入 In'"


def test_docs_show_the_worked_example_verbatim() -> None:
    doc = (REPO / "docs" / "parsing.md").read_text("utf-8")
    blocks = re.findall(r"```yaml\n(.*?)```", doc, flags=re.S)
    assert EXAMPLE.read_text("utf-8") in blocks


def test_every_builtin_profile_is_documented() -> None:
    doc = (REPO / "docs" / "parsing.md").read_text("utf-8")
    missing = [p.name for p in builtin_profiles().latest() if f"`{p.name}`" not in doc]
    assert missing == []
