"""Merchant-funded discounts in channel bills: what the channel settles is the amount (Review A #2, #9).

Alipay 业务明细: 商家实收 = 订单金额 − 商家优惠; 服务费 is charged on 商家实收 and the 汇总's 实收净额 is
商家实收 − 服务费. WeChat ALL: 应结订单金额 = 订单金额 − 免充值券 (a 充值券 leaves it unchanged)."""

from __future__ import annotations

from decimal import Decimal

from recon.domain import Source

from ._support import (
    STEM,
    WX_ALL_HEADER,
    ali_detail,
    ali_row,
    ali_summary,
    assert_accounting,
    gbk_zip,
    parse,
    wx_bill,
    wx_payment,
    wx_refund,
    wx_row,
)

DETAIL = f"{STEM}_业务明细.csv"
SUMMARY = f"{STEM}_业务明细(汇总).csv"


def _discounted_alipay_bill() -> bytes:
    rows = [
        ali_row("2019091622001458860515315461", "SO-1", "交易", "100.00", "0.60"),
        # 订单金额 299.00, the merchant's own 10.00 discount: Alipay settles 289.00 and charges 0.6% of it
        ali_row(
            "2019091622001458860515315462",
            "SO-2",
            "交易",
            "299.00",
            "1.73",
            **{"商家实收（元）": "289.00", "商家优惠（元）": "10.00"},
        ),
        # a refund of part of the discounted order: what the merchant gives back of what it received
        ali_row(
            "2019091622001458860515315462",
            "SO-2",
            "退款",
            "-149.50",
            "-0.87",
            refund_no="SO-2-r1",
            **{"商家实收（元）": "-144.50", "商家优惠（元）": "-5.00"},
        ),
    ]
    detail = ali_detail(
        rows,
        "#交易合计：2笔，商家实收共389.00元，商家优惠共10.00元",
        "#退款合计：1笔，商家实收退款共-144.50元，商家优惠退款共-5.00元",
    )
    # 门店编号,门店名称,交易订单总笔数,退款订单总笔数,订单金额,商家实收,支付宝优惠,商家优惠,卡消费金额,服务费,分润,实收净额
    total = "合计,,2,1,249.50,244.50,0.00,5.00,0.00,1.46,0.00,243.04"
    return gbk_zip([(DETAIL, detail), (SUMMARY, ali_summary(total))])


def test_alipay_amount_is_what_the_merchant_receives_after_its_own_discount() -> None:
    p = parse(_discounted_alipay_bill(), "bill.zip", Source.ALIPAY)
    assert_accounting(p)
    assert p.errors == [] and all(c.ok for c in p.control_totals)
    _, discounted, refund = p.transactions
    assert (discounted.amount_minor, discounted.fee_minor, discounted.net_minor) == (28900, 173, 28727)
    assert (refund.amount_minor, refund.fee_minor, refund.net_minor) == (-14450, -87, -14363)


def test_alipay_net_adds_up_to_the_summary_net_received() -> None:
    p = parse(_discounted_alipay_bill(), "bill.zip", Source.ALIPAY)
    stated_net = Decimal("243.04")  # the 汇总 合计 row's 实收净额（元）: what Alipay pays out for the day
    assert sum(t.net_minor for t in p.transactions) == int(stated_net * 100)
    assert sum(t.fee_minor for t in p.transactions) == 146  # the 汇总's 服务费: charged on 商家实收


def test_wechat_amount_is_the_settled_amount_after_a_no_recharge_voucher() -> None:
    # 免充值券 10.00 (merchant-funded): 订单金额 199.00, 代金券金额 10.00, 应结订单金额 189.00
    paid = wx_payment("4200002001202611206266344103", "SO-3", "189.00", "1.13000")
    cells = dict(zip(WX_ALL_HEADER, (cell.removeprefix("`") for cell in paid.split(",")), strict=True))
    row = wx_row(**{**cells, "代金券金额": "10.00", "订单金额": "199.00"})
    p = parse(wx_bill([row], "`1,`189.00,`0.00,`0.00,`1.13000,`199.00,`0.00"), "wx.csv")
    assert_accounting(p)
    assert p.errors == [] and all(c.ok for c in p.control_totals)
    (txn,) = p.transactions
    assert (txn.amount_minor, txn.fee_minor, txn.net_minor) == (18900, 113, 18787)


# --- the amount before the merchant's discount (schema version 3: gross_minor) -----------------------------
def test_alipay_rows_carry_the_order_amount_before_the_merchant_discount() -> None:
    """订单金额 is kept beside 商家实收, so a case can say the difference is the merchant's own discount."""
    p = parse(_discounted_alipay_bill(), "bill.zip", Source.ALIPAY)
    assert [t.gross_minor for t in p.transactions] == [10000, 29900, -14950]
    assert p.table.column("gross_minor").to_pylist() == [10000, 29900, -14950]
    assert (p.profile, p.profile_version) == ("alipay.trade.zip", "4")


def test_wechat_payments_carry_the_order_amount_before_a_no_recharge_voucher() -> None:
    paid = wx_payment("4200002001202611206266344103", "SO-3", "189.00", "1.13000")
    cells = dict(zip(WX_ALL_HEADER, (cell.removeprefix("`") for cell in paid.split(",")), strict=True))
    row = wx_row(**{**cells, "代金券金额": "10.00", "订单金额": "199.00"})
    plain = wx_payment("4200002001202611206266344104", "SO-4", "50.00", "0.30000")
    # a refund row repeats its payment's 订单金额: that is not the refund's, so a refund states none
    refund = wx_refund("4200002001202611206266344104", "SO-4", "5030000", "SO-4-r1", "50.00", "-0.30000")
    refund = refund.replace("`0.00,`50.00,`", "`50.00,`50.00,`")  # 订单金额 50.00 on the refund row
    summary = "`3,`239.00,`50.00,`0.00,`1.13000,`299.00,`50.00"
    p = parse(wx_bill([row, plain, refund], summary), "wx.csv")
    assert_accounting(p)
    assert p.errors == []
    assert [(t.amount_minor, t.gross_minor) for t in p.transactions] == [
        (18900, 19900),
        (5000, 5000),
        (-5000, None),
    ]


def test_wechat_legacy_layout_states_no_amount_before_discounts() -> None:
    header = (
        "交易时间,公众账号ID,商户号,子商户号,设备号,微信订单号,商户订单号,用户标识,交易类型,交易状态,付款银行,"
        "货币种类,总金额,代金券或立减优惠金额,微信退款单号,商户退款单号,退款金额,代金券或立减优惠退款金额,退款类型,"
        "退款状态,商品名称,商户数据包,手续费,费率"
    )
    row = (
        "`2014-11-10 16:33:45,`wx2421b1c4370ec43b,`10000100,`0,`1000,`1001690740201411100005734289,"
        "`1415640626,`085e9858e3ba5186aafcbaed1,`MICROPAY,`SUCCESS,`OTHERS,`CNY,`0.01,`0.0,`0,`0,`0,`0,`,`,"
        "`被扫支付测试,`订单额外描述,`0,`0.60%"
    )
    summary = "总交易单数,总交易额,总退款金额,总代金券或立减优惠退款金额,手续费总金额\n`1,`0.01,`0,`0,`0"
    p = parse(f"{header}\n{row}\n{summary}\n".encode(), "wx.csv")
    assert p.errors == [] and p.profile == "wechat.tradebill.all_legacy"
    assert [(t.amount_minor, t.gross_minor) for t in p.transactions] == [(1, None)]
