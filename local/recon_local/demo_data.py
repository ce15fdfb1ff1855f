"""A seeded, realistic business day for one merchant, in the real statement layouts, with ground truth.

``generate_day`` builds the four files of one day for the demo project:

==============  =======  ==================================================  =====================
account id      source   file                                                statement date
==============  =======  ==================================================  =====================
``erp``         erp      ``erp_orders_YYYYMMDD.csv`` (UTF-8 BOM, CRLF)       business date
``wechat-main`` wechat   ``wechat_tradebill_ALL_YYYYMMDD.csv`` (UTF-8, CRLF)  business date
``alipay-main`` alipay   ``<PID>0156_YYYYMMDD.csv.zip`` (two GBK members)     business date
``bank-cmb``    bank     ``camt053_bank-cmb_YYYYMMDD.xml`` (camt.053.001.08)  business date + 1
==============  =======  ==================================================  =====================

The layouts follow ``shared/notes/formats.md`` sections 1.3 (Alipay trade business bill), 2.5 (WeChat Pay
trade bill ``ALL``) and 4.2 (camt.053). Times are Asia/Shanghai wall-clock times. Money is integer fen
throughout; text is produced with ``Decimal`` only.

Planted differences (``DemoDay.planted``), the ground truth a run of the demo project must find:

1. ``MISSING_IN_CHANNEL`` (erp): an ERP WeChat order marked paid that the WeChat bill does not contain.
2. ``MISSING_IN_ERP`` (alipay): an Alipay trade whose 商户订单号 the ERP does not have.
3. ``AMOUNT_MISMATCH`` (wechat): the ERP books 199.00, WeChat Pay charged 189.00 for the same order.
4. ``DUPLICATE`` (erp): one ERP payment row exported twice (two identical lines).
5. ``AMOUNT_MISMATCH`` (bank): the Alipay settlement credit is 10.00 short of the Alipay day's net.
6. ``MISSING_IN_CHANNEL`` (erp): an ERP refund the channel never executed (txn_id ``<order>#<refund>``).

The settlement credits are computed from the channel bills *as written* (planted channel-side differences
included), so only difference 5 shows at the bank level.

Balances chain: the opening balance (OPBD) of a day's bank statement is the closing balance (CLBD) of the
day before's, for days generated with the same ``seed`` and ``orders``, so consecutive days can be
reconciled into one store. The statement dated a Monday ends with the group's weekly sweep (资金归集, filtered
by the demo project like fees and interest): it leaves the account at a balance fixed per seed. A day's
opening is that balance plus the net of the statements since the last sweep (at most six earlier days,
built but not rendered), so no day needs the whole history before it.

Sign convention of ``PlantedDifference.delta_minor`` (fen):

* ``AMOUNT_MISMATCH``: ``right - left``, where *left* is the side that sets the expectation (the ERP for
  an ERP/channel pair; the channel settlement aggregate for a bank credit) and *right* the side that
  deviates (channel row, bank credit). ERP 199.00 vs WeChat 189.00 gives ``-1000``; a credit 10.00 short
  gives ``-1000``.
* ``MISSING_*`` and ``DUPLICATE``: the signed amount of the orphan (or surplus) row, positive = money in to
  the merchant: ``+amount`` for a payment, ``-amount`` for a refund.

Nothing here reads the wall clock: the same seed and date give identical bytes.
"""

from __future__ import annotations

import csv
import io
import random
import xml.etree.ElementTree as ET
import zipfile
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path

from recon.money import to_decimal

__all__ = [
    "ALIPAY_ACCOUNT",
    "ALIPAY_DETAIL_HEADER",
    "ALIPAY_PID",
    "ALIPAY_SUMMARY_HEADER",
    "BANK_ACCOUNT",
    "BANK_ACCOUNT_NUMBER",
    "ERP_ACCOUNT",
    "ERP_HEADER",
    "WECHAT_ACCOUNT",
    "WECHAT_MCHID",
    "WECHAT_SUMMARY_HEADER",
    "WECHAT_TRADE_HEADER",
    "DemoDay",
    "PlantedDifference",
    "generate_day",
    "write_day",
]

# --- accounts of the demo project ---------------------------------------------------------------------

ERP_ACCOUNT = "erp"
WECHAT_ACCOUNT = "wechat-main"
ALIPAY_ACCOUNT = "alipay-main"
BANK_ACCOUNT = "bank-cmb"

WECHAT_MCHID = "1900000109"
WECHAT_APPID = "wxd930ea5d5a258f4f"
ALIPAY_PID = "2088101122136241"
ALIPAY_USER_ID = ALIPAY_PID + "0156"
BANK_ACCOUNT_NUMBER = "75591234561080100018"
BANK_BIC = "CMBCCNBS"
MERCHANT_NAME = "上海示例咖啡有限公司"
TENPAY_NAME = "财付通支付科技有限公司"
TENPAY_ACCOUNT = "1004990000000000101"
ALIPAY_COMPANY = "支付宝（中国）网络技术有限公司"
ALIPAY_COMPANY_ACCOUNT = "1001164509300085788"
CMB_NAME = "招商银行股份有限公司上海分行"
GROUP_NAME = "上海示例咖啡集团有限公司"
GROUP_ACCOUNT = "75591234561080100001"  # the group's head account at CMB, where the sweep takes the cash
SWEEP_WEEKDAY = 0  # the statement dated a Monday carries the weekly sweep
SWEEP_MEMO = "资金归集"  # the sweep up to the head account (a top-up down from it: 资金下拨)
TOP_UP_MEMO = "资金下拨"

CURRENCY = "CNY"
FEE_RATE = Decimal("0.006")  # 0.6 %, both channels
FEE_RATE_TEXT = "0.60%"

# --- exact layout strings (formats.md) ------------------------------------------------------------------

ERP_HEADER = "order_no,refund_no,type,channel,amount,currency,created_at,paid_at,status,customer,memo"

WECHAT_TRADE_HEADER = (
    "交易时间,公众账号ID,商户号,特约商户号,设备号,微信订单号,商户订单号,用户标识,交易类型,交易状态,付款银行,"
    "货币种类,应结订单金额,代金券金额,微信退款单号,商户退款单号,退款金额,充值券退款金额,退款类型,退款状态,"
    "商品名称,商户数据包,手续费,费率,订单金额,申请退款金额,费率备注"
)
WECHAT_SUMMARY_HEADER = (
    "总交易单数,应结订单总金额,退款总金额,充值券退款总金额,手续费总金额,订单总金额,申请退款总金额"
)

ALIPAY_DETAIL_HEADER = (
    "支付宝交易号,商户订单号,业务类型,商品名称,创建时间,完成时间,门店编号,门店名称,操作员,终端号,对方账户,"
    "订单金额（元）,商家实收（元）,支付宝红包（元）,集分宝（元）,支付宝优惠（元）,商家优惠（元）,券核销金额（元）,"
    "券名称,商家红包消费金额（元）,卡消费金额（元）,退款批次号/请求号,服务费（元）,分润（元）,备注"
)
ALIPAY_SUMMARY_HEADER = (
    "门店编号,门店名称,交易订单总笔数,退款订单总笔数,订单金额（元）,商家实收（元）,支付宝优惠（元）,"
    "商家优惠（元）,卡消费金额（元）,服务费（元）,分润（元）,实收净额（元）"
)
ALIPAY_DETAIL_START = "#" + "-" * 41 + "业务明细列表" + "-" * 40
ALIPAY_DETAIL_END = "#" + "-" * 41 + "业务明细列表结束" + "-" * 36
ALIPAY_SUMMARY_START = "#" + "-" * 41 + "业务汇总列表" + "-" * 40
ALIPAY_SUMMARY_END = "#" + "-" * 40 + "业务汇总列表结束" + "-" * 37
ALIPAY_STORE_ID = "S0001"
ALIPAY_STORE_NAME = "静安旗舰店"

CAMT_NS = "urn:iso:std:iso:20022:tech:xsd:camt.053.001.08"

CRLF = "\r\n"
_ZIP_UTF8_FLAG = 0x800

# Price points (fen) with weights: sales crowd at a few prices.
_PRICE_POINTS: tuple[tuple[int, str, int], ...] = (
    (990, "美式咖啡", 14),
    (1990, "拿铁咖啡", 18),
    (2990, "燕麦拿铁", 12),
    (3900, "手冲咖啡", 8),
    (5990, "咖啡豆 250g", 7),
    (9900, "咖啡豆 500g", 8),
    (19900, "手冲礼盒", 6),
    (29900, "会员年卡", 3),
    (59900, "咖啡机滤芯套装", 1),
)
_ODD_PRODUCT = "组合订单"
_ODD_SHARE = 0.15
_WECHAT_SHARE = 0.55
_REFUND_SHARE = 0.08

_WECHAT_TRADE_TYPES = (("JSAPI", 70), ("NATIVE", 15), ("MICROPAY", 10), ("APP", 5))
_WECHAT_BANKS = (("OTHERS", 30), ("CFT", 25), ("CMB_DEBIT", 15), ("ICBC_DEBIT", 12), ("CCB_CREDIT", 10))
_GIVEN_NAMES = "明华伟芳静丽强磊洋艳勇军杰娟涛超秀霞平刚桂英"
_HOUR_WEIGHTS = (1, 1, 0, 0, 0, 0, 1, 4, 9, 8, 6, 7, 9, 8, 6, 6, 7, 7, 8, 8, 6, 4, 3, 2)


# --- public API -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PlantedDifference:
    """One difference planted on purpose, as the reconciliation should report it.

    ``source`` is the side whose row(s) the case is about; ``txn_id`` the id the parser reports for that
    row (for ``MISSING_IN_BANK`` the settlement batch ``'<channel account>@<YYYY-MM-DD>'``).
    ``counterpart`` is the id on the other side where there is one (the ERP order for a channel amount
    mismatch, the settlement batch for a bank amount mismatch), else ``""``. See the module docstring for
    the sign of ``delta_minor``.
    """

    case_type: str
    source: str
    txn_id: str
    delta_minor: int
    description: str
    counterpart: str = ""


@dataclass(frozen=True)
class DemoDay:
    """The files of one business day and what a reconciliation of them must find."""

    business_date: date
    files: dict[str, tuple[str, bytes]]
    statement_dates: dict[str, date]
    planted: list[PlantedDifference]
    expected: dict[str, int]


def generate_day(business_date: date, *, seed: int = 7, orders: int = 120) -> DemoDay:
    """Generate one business day of the demo merchant (deterministic in ``seed`` and ``business_date``).

    ``orders`` is the number of ERP orders (payment rows before the planted duplicate; a few of them are
    closed or pending, i.e. never paid). It must be between 20 and 20 000.
    """
    if not 20 <= orders <= 20_000:
        raise ValueError("orders must be between 20 and 20000")
    day = _build_day(business_date, _day_rng(seed, business_date), orders)
    day.retained_balance = _retained_balance(seed)
    day.opening_balance = _opening_balance(business_date, seed, orders)
    return day.render()


def write_day(day: DemoDay, directory: Path) -> list[Path]:
    """Write the day's files into ``directory`` (created if needed); returns the paths written."""
    directory.mkdir(parents=True, exist_ok=True)
    paths: list[Path] = []
    for name, content in day.files.values():
        path = directory / name
        path.write_bytes(content)
        paths.append(path)
    return paths


# --- the model of the day -------------------------------------------------------------------------------


@dataclass
class _Refund:
    refund_no: str
    amount: int  # fen, positive
    requested_at: datetime  # ERP created_at
    channel_at: datetime  # channel completion time
    erp_done_at: datetime  # ERP paid_at (refund confirmed)
    channel_refund_id: str  # 微信退款单号 (WeChat); "" for Alipay
    in_channel: bool = True
    full: bool = False


@dataclass
class _Order:
    order_no: str
    channel: str  # "wechat" | "alipay"
    amount: int  # fen, as the ERP books it
    product: str
    customer: str
    created_at: datetime
    paid_at: datetime | None  # ERP paid_at; None when never paid
    channel_at: datetime  # channel completion time
    status: str = "paid"
    channel_amount: int = 0  # what the channel charged (differs on the planted mismatch)
    channel_txn_id: str = ""  # 微信订单号 / 支付宝交易号
    in_channel: bool = True
    in_erp: bool = True
    erp_copies: int = 1
    refunds: list[_Refund] = field(default_factory=list)
    # channel row decoration
    openid: str = ""
    trade_type: str = ""
    bank_type: str = ""
    buyer: str = ""

    @property
    def paid(self) -> bool:
        return self.paid_at is not None


@dataclass
class _Day:
    business_date: date
    rng: random.Random
    orders: list[_Order]
    planted: list[PlantedDifference] = field(default_factory=list)
    bank_shortfall: int = 1000
    export_time: datetime = datetime(2000, 1, 1)  # replaced in _build_day
    opening_balance: int = 0  # fen, the bank statement's OPBD (set by generate_day)
    retained_balance: int = 0  # fen, what the weekly sweep leaves on the account (set by generate_day)

    @property
    def ymd(self) -> str:
        return f"{self.business_date:%Y%m%d}"

    @property
    def statement_date(self) -> date:
        return self.business_date + timedelta(days=1)

    def render(self) -> DemoDay:
        erp_name, erp_bytes, erp_rows = self._erp_file()
        wx_name, wx_bytes, wx_net, wx_rows = self._wechat_file()
        ali_name, ali_bytes, ali_net, ali_rows = self._alipay_file()
        bank_name, bank_bytes, bank_rows, alipay_ref, closing = self._bank_file(wx_net, ali_net)
        planted = [
            PlantedDifference(
                case_type="AMOUNT_MISMATCH",
                source="bank",
                txn_id=alipay_ref,
                delta_minor=-self.bank_shortfall,
                description=(
                    f"Alipay settled {_yuan(ali_net)} for {self.business_date.isoformat()}, "
                    f"the CMB credit {alipay_ref} is {_yuan(ali_net - self.bank_shortfall)}"
                ),
                counterpart=f"{ALIPAY_ACCOUNT}@{self.business_date.isoformat()}",
            ),
            *self.planted,
        ]
        planted.sort(key=_planted_order)
        paid = [o for o in self.orders if o.in_erp and o.paid]
        matched = sum(1 for o in paid if o.in_channel and o.amount == o.channel_amount) + sum(
            1 for o in paid for r in o.refunds if r.in_channel and o.in_channel
        )
        expected = {
            "erp_rows": erp_rows,
            "erp_payment_rows": sum(o.erp_copies for o in self.orders if o.in_erp),
            "erp_refund_rows": sum(len(o.refunds) for o in self.orders if o.in_erp),
            "erp_unpaid_rows": sum(1 for o in self.orders if o.in_erp and not o.paid),
            "wechat_rows": wx_rows,
            "alipay_rows": ali_rows,
            "bank_rows": bank_rows,
            "matched_erp_channel_pairs": matched,
            "wechat_settlement_minor": wx_net,
            "alipay_settlement_minor": ali_net,
            "bank_wechat_credit_minor": wx_net,
            "bank_alipay_credit_minor": ali_net - self.bank_shortfall,
            "bank_opening_minor": self.opening_balance,
            "bank_closing_minor": closing,
            "planted_differences": len(planted),
        }
        return DemoDay(
            business_date=self.business_date,
            files={
                ERP_ACCOUNT: (erp_name, erp_bytes),
                WECHAT_ACCOUNT: (wx_name, wx_bytes),
                ALIPAY_ACCOUNT: (ali_name, ali_bytes),
                BANK_ACCOUNT: (bank_name, bank_bytes),
            },
            statement_dates={
                ERP_ACCOUNT: self.business_date,
                WECHAT_ACCOUNT: self.business_date,
                ALIPAY_ACCOUNT: self.business_date,
                BANK_ACCOUNT: self.statement_date,
            },
            planted=planted,
            expected=expected,
        )

    # --- ERP -------------------------------------------------------------------------------------------

    def _erp_file(self) -> tuple[str, bytes, int]:
        rows: list[tuple[datetime, int, list[str]]] = []
        for index, order in enumerate(self.orders):
            if not order.in_erp:
                continue
            payment = [
                order.order_no,
                "",
                "payment",
                order.channel,
                _amount(order.amount),
                CURRENCY,
                _ts(order.created_at),
                _ts(order.paid_at) if order.paid_at else "",
                order.status,
                order.customer,
                order.product,
            ]
            for _ in range(order.erp_copies):
                rows.append((order.created_at, index, payment))
            for refund in order.refunds:
                memo = "全额退款" if refund.full else "部分退款"
                rows.append(
                    (
                        refund.requested_at,
                        index,
                        [
                            order.order_no,
                            refund.refund_no,
                            "refund",
                            order.channel,
                            _amount(-refund.amount),
                            CURRENCY,
                            _ts(refund.requested_at),
                            _ts(refund.erp_done_at),
                            "refunded",
                            order.customer,
                            memo,
                        ],
                    )
                )
        rows.sort(key=lambda item: (item[0], item[1]))
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator=CRLF)
        buffer.write(ERP_HEADER + CRLF)
        for _, _, row in rows:
            writer.writerow(row)
        return f"erp_orders_{self.ymd}.csv", buffer.getvalue().encode("utf-8-sig"), len(rows)

    # --- WeChat Pay ------------------------------------------------------------------------------------

    def _wechat_file(self) -> tuple[str, bytes, int, int]:
        lines: list[tuple[datetime, list[str]]] = []
        settle = refunded = fees = order_total = refund_requested = 0
        for order in self.orders:
            if order.channel != "wechat" or not order.in_channel:
                continue
            fee = _fee(order.channel_amount)
            settle += order.channel_amount
            fees += fee
            order_total += order.channel_amount
            lines.append(
                (
                    order.channel_at,
                    _wechat_row(
                        order,
                        at=order.channel_at,
                        status="SUCCESS",
                        settle=order.channel_amount,
                        fee=fee,
                        order_amount=order.channel_amount,
                    ),
                )
            )
            for refund in order.refunds:
                if not refund.in_channel:
                    continue
                refund_fee = -_fee(refund.amount)
                refunded += refund.amount
                refund_requested += refund.amount
                fees += refund_fee
                lines.append(
                    (
                        refund.channel_at,
                        _wechat_row(
                            order,
                            at=refund.channel_at,
                            status="REFUND",
                            fee=refund_fee,
                            refund=(refund.channel_refund_id, refund.refund_no, refund.amount),
                        ),
                    )
                )
        lines.sort(key=lambda item: (item[0], item[1][5], item[1][14]))
        summary = [
            str(len(lines)),
            _amount(settle),
            _amount(refunded),
            "0.00",
            _fee5(fees),
            _amount(order_total),
            _amount(refund_requested),
        ]
        out = [WECHAT_TRADE_HEADER]
        out.extend(_backticked(fields) for _, fields in lines)
        out.append(WECHAT_SUMMARY_HEADER)
        out.append(_backticked(summary))
        text = CRLF.join(out) + CRLF
        net = settle - refunded - fees
        return f"wechat_tradebill_ALL_{self.ymd}.csv", text.encode("utf-8"), net, len(lines)

    # --- Alipay ----------------------------------------------------------------------------------------

    def _alipay_file(self) -> tuple[str, bytes, int, int]:
        rows: list[tuple[datetime, list[str]]] = []
        trades = refunds = 0
        trade_received = refund_received = order_sum = fee_sum = 0
        for order in self.orders:
            if order.channel != "alipay" or not order.in_channel:
                continue
            fee = _fee(order.channel_amount)
            trades += 1
            trade_received += order.channel_amount
            order_sum += order.channel_amount
            fee_sum += fee
            rows.append((order.channel_at, self._alipay_row(order, "交易", order.channel_amount, fee, None)))
            for refund in order.refunds:
                if not refund.in_channel:
                    continue
                refund_fee = -_fee(refund.amount)
                refunds += 1
                refund_received -= refund.amount
                order_sum -= refund.amount
                fee_sum += refund_fee
                rows.append(
                    (refund.channel_at, self._alipay_row(order, "退款", -refund.amount, refund_fee, refund))
                )
        rows.sort(key=lambda item: (item[0], item[1][0], item[1][21]))
        received = trade_received + refund_received
        net = order_sum - fee_sum
        stem = f"{ALIPAY_USER_ID}_{self.ymd}"
        bill = alipay_trade_zip(
            stem,
            [",".join(fields) for _, fields in rows],
            first=self.business_date,
            last=self.business_date,
            trades=trades,
            refunds=refunds,
            trade_received=trade_received,
            refund_received=refund_received,
            order_sum=order_sum,
            received=received,
            fee_sum=fee_sum,
            exported=self.export_time,
        )
        return f"{stem}.csv.zip", bill, net, len(rows)

    @staticmethod
    def _alipay_row(order: _Order, kind: str, amount: int, fee: int, refund: _Refund | None) -> list[str]:
        finished = refund.channel_at if refund else order.channel_at
        return [
            f"{order.channel_txn_id}\t",
            f"{order.order_no}\t",
            f"{kind}\t",
            order.product,
            _ts(order.created_at),
            _ts(finished),
            f"{ALIPAY_STORE_ID}\t",
            f"{ALIPAY_STORE_NAME}\t",
            "\t",  # 操作员 (online orders: none)
            "\t",  # 终端号
            f"{order.buyer}\t",
            _amount(amount),  # 订单金额
            _amount(amount),  # 商家实收
            "0.00",  # 支付宝红包
            "0.00",  # 集分宝
            "0.00",  # 支付宝优惠
            "0.00",  # 商家优惠
            "0.00",  # 券核销金额
            "",  # 券名称
            "0.00\t",  # 商家红包消费金额
            "0.00",  # 卡消费金额
            f"{refund.refund_no}\t" if refund else "\t",  # 退款批次号/请求号
            _amount(fee),  # 服务费
            "0.00",  # 分润
            "",  # 备注
        ]

    # --- bank (camt.053.001.08) ------------------------------------------------------------------------

    def _bank_file(self, wechat_net: int, alipay_net: int) -> tuple[str, bytes, int, str, int]:
        stmt_day = self.statement_date
        ref_base, entries = self._bank_entries(wechat_net, alipay_net)
        if stmt_day.weekday() == SWEEP_WEEKDAY:
            swept = self.opening_balance + _net(entries) - self.retained_balance
            if swept:
                entries.append(_sweep(stmt_day, swept))
        _number_entries(entries, stmt_day, ref_base, self.rng)
        xml, closing = _bank_statement(self, entries, self.opening_balance)
        return f"camt053_{BANK_ACCOUNT}_{stmt_day:%Y%m%d}.xml", xml, len(entries), entries[2].ref, closing

    def bank_net(self) -> int:
        """What the day's bank statement adds to the balance before any sweep (fen), without rendering the
        day's files; draws the day's bank randomness as ``render`` does."""
        _, entries = self._bank_entries(self._channel_net("wechat"), self._channel_net("alipay"))
        return _net(entries)

    def _channel_net(self, channel: str) -> int:
        """The channel's settlement for the day as its bill states it: sales - refunds - fees (fen)."""
        net = 0
        for order in self.orders:
            if order.channel != channel or not order.in_channel:
                continue
            net += order.channel_amount - _fee(order.channel_amount)
            for refund in order.refunds:
                if refund.in_channel:
                    net -= refund.amount - _fee(refund.amount)
        return net

    def _bank_entries(self, wechat_net: int, alipay_net: int) -> tuple[int, list[_BankEntry]]:
        """The first reference number and the day's entries before any sweep, not yet numbered."""
        rng = self.rng
        stmt_day = self.statement_date
        ref_base = rng.randrange(100_000, 800_000)
        entries: list[_BankEntry] = [
            _BankEntry(
                amount=rng.randrange(800, 9000),
                credit=True,
                booked=datetime.combine(stmt_day, time(0, 30, 12)),
                domain=("ACMT", "MCOP", "INTR"),
                party=CMB_NAME,
                party_account="",
                memo="结息",
            ),
            _wechat_payout(stmt_day, wechat_net, self.ymd, rng),
            _alipay_payout(stmt_day, alipay_net - self.bank_shortfall, self.ymd, rng),
            _account_fee(stmt_day, rng),
        ]
        return ref_base, entries


def alipay_preamble(title: str, first: date, last: date) -> list[str]:
    """The three lines that open every Alipay bill CSV: title, account, the period's first and last day."""
    start = datetime.combine(first, time())
    end = datetime.combine(last + timedelta(days=1), time())
    return [
        title,
        f"#账号：[{ALIPAY_USER_ID}]",
        f"#起始日期：[{_cn_ts(start)}]   终止日期：[{_cn_ts(end)}]",
    ]


def alipay_trade_zip(
    stem: str,
    rows: list[str],
    *,
    first: date,
    last: date,
    trades: int,
    refunds: int,
    trade_received: int,
    refund_received: int,
    order_sum: int,
    received: int,
    fee_sum: int,
    exported: datetime,
) -> bytes:
    """The Alipay trade bill zip (业务明细 and 业务明细(汇总), GBK): the detail ``rows`` as written, with
    their totals (fen) in the closing lines and the summary."""
    export = _cn_ts(exported)
    detail = [
        *alipay_preamble("#支付宝业务明细查询", first, last),
        ALIPAY_DETAIL_START,
        ALIPAY_DETAIL_HEADER,
        *rows,
        ALIPAY_DETAIL_END,
        f"#交易合计：{trades}笔，商家实收共{_amount(trade_received)}元，商家优惠共0.00元",
        f"#退款合计：{refunds}笔，商家实收退款共{_amount(refund_received)}元，商家优惠退款共0.00元",
        f"#导出时间：[{export}]",
    ]
    totals = [
        str(trades),
        str(refunds),
        _amount(order_sum),
        _amount(received),
        "0.00",
        "0.00",
        "0.00",
        _amount(fee_sum),
        "0.00",
        _amount(received - fee_sum),
    ]
    summary = [
        *alipay_preamble("#支付宝业务汇总查询", first, last),
        ALIPAY_SUMMARY_START,
        ALIPAY_SUMMARY_HEADER,
        ",".join([f"{ALIPAY_STORE_ID}\t", f"{ALIPAY_STORE_NAME}\t", *totals]),
        ",".join(["合计", "", *totals]),
        ALIPAY_SUMMARY_END,
        f"#导出时间：[{export}]",
    ]
    members = [
        (f"{stem}_业务明细.csv", (CRLF.join(detail) + CRLF).encode("gbk")),
        (f"{stem}_业务明细(汇总).csv", (CRLF.join(summary) + CRLF).encode("gbk")),
    ]
    return _gbk_zip(members, exported)


@dataclass
class _BankEntry:
    amount: int
    credit: bool
    booked: datetime
    domain: tuple[str, str, str]
    party: str
    party_account: str
    memo: str
    ref: str = ""


def _wechat_payout(stmt_day: date, amount: int, period: str, rng: random.Random) -> _BankEntry:
    """Tenpay's settlement credit for the WeChat Pay sales of ``period`` (yyyymmdd, comma-separated)."""
    return _BankEntry(
        amount=amount,
        credit=True,
        booked=datetime.combine(stmt_day, time(9, 12, rng.randrange(60))),
        domain=("PMNT", "RCDT", "BOOK"),
        party=TENPAY_NAME,
        party_account=TENPAY_ACCOUNT,
        memo=f"微信支付结算 {WECHAT_MCHID} {period}",
    )


def _alipay_payout(stmt_day: date, amount: int, period: str, rng: random.Random) -> _BankEntry:
    """Alipay's settlement credit for the sales of ``period`` (yyyymmdd, comma-separated)."""
    return _BankEntry(
        amount=amount,
        credit=True,
        booked=datetime.combine(stmt_day, time(10, 41, rng.randrange(60))),
        domain=("PMNT", "RCDT", "BOOK"),
        party=ALIPAY_COMPANY,
        party_account=ALIPAY_COMPANY_ACCOUNT,
        memo=f"支付宝结算 {ALIPAY_PID} {period}",
    )


def _account_fee(stmt_day: date, rng: random.Random) -> _BankEntry:
    """The bank's account management fee (filtered by the demo project's bank-fee rule)."""
    return _BankEntry(
        amount=rng.choice((1500, 2000, 3000)),
        credit=False,
        booked=datetime.combine(stmt_day, time(16, 5, 0)),
        domain=("ACMT", "MDOP", "CHRG"),
        party=CMB_NAME,
        party_account="",
        memo="账户管理费",
    )


def _sweep(stmt_day: date, amount: int) -> _BankEntry:
    """The weekly sweep of ``amount`` (fen; positive: up to the group's head account, negative: a top-up from
    it), booked after the day's other entries."""
    return _BankEntry(
        amount=abs(amount),
        credit=amount < 0,
        booked=datetime.combine(stmt_day, time(17, 30, 0)),
        domain=("CAMT", "ACCB", "SWEP" if amount > 0 else "TOPG"),
        party=GROUP_NAME,
        party_account=GROUP_ACCOUNT,
        memo=SWEEP_MEMO if amount > 0 else TOP_UP_MEMO,
    )


def _net(entries: list[_BankEntry]) -> int:
    return sum(e.amount if e.credit else -e.amount for e in entries)


def _day_rng(seed: int, business_date: date) -> random.Random:
    return random.Random(f"recon-demo:{seed}:{business_date.isoformat()}")


def _retained_balance(seed: int) -> int:
    """The balance (fen) the weekly sweep leaves on the account: fixed per seed."""
    return random.Random(f"recon-demo-bank:{seed}").randrange(50_000_000, 300_000_000)


def _opening_balance(business_date: date, seed: int, orders: int) -> int:
    """The opening balance (fen) of the statement for ``business_date``: the closing of the one before.

    The last sweep left the retained balance; every statement since added its net. Those days are built
    (not rendered) only for their bank net: at most six of them.
    """
    statement_date = business_date + timedelta(days=1)
    since_sweep = (statement_date.weekday() - SWEEP_WEEKDAY - 1) % 7  # statements between the sweep and this
    balance = _retained_balance(seed)
    for back in range(since_sweep, 0, -1):
        earlier = business_date - timedelta(days=back)
        balance += _build_day(earlier, _day_rng(seed, earlier), orders).bank_net()
    return balance


def _number_entries(entries: list[_BankEntry], stmt_day: date, ref_base: int, rng: random.Random) -> int:
    """Give the entries CMB's rising references, in order; returns the last reference number used."""
    for entry in entries:
        ref_base += rng.randrange(7, 97)
        entry.ref = f"CMB{stmt_day:%Y%m%d}{ref_base:07d}"
    return ref_base


def _bank_statement(day: _Day, entries: list[_BankEntry], opening: int) -> tuple[bytes, int]:
    """The camt.053 file of the entries and its closing balance (opening + credits - debits)."""
    credits = sum(e.amount for e in entries if e.credit)
    debits = sum(e.amount for e in entries if not e.credit)
    closing = opening + credits - debits
    return _camt053(day, entries, opening=opening, closing=closing, credits=credits, debits=debits), closing


# --- building the day -----------------------------------------------------------------------------------


def _build_day(business_date: date, rng: random.Random, count: int) -> _Day:
    ymd = f"{business_date:%Y%m%d}"
    midnight = datetime.combine(business_date, time())
    day_end = midnight + timedelta(hours=23, minutes=59, seconds=59)

    # ERP paid_at times over the day; the last order is the cross-midnight one (paid 23:59:58).
    seconds: set[int] = set()
    while len(seconds) < count - 1:
        hour = rng.choices(range(24), weights=_HOUR_WEIGHTS)[0]
        second = hour * 3600 + rng.randrange(3600)
        if 300 <= second <= 86_000:
            seconds.add(second)
    paid_times = [midnight + timedelta(seconds=s) for s in sorted(seconds)]
    paid_times.append(midnight + timedelta(hours=23, minutes=59, seconds=58))

    used_ids: set[str] = set()
    customers = [f"U{rng.randrange(100_000, 999_999)}" for _ in range(max(10, count // 2))]
    orders: list[_Order] = []
    for paid_at in paid_times:
        channel = "wechat" if rng.random() < _WECHAT_SHARE else "alipay"
        amount, product = _pick_price(rng)
        created = max(midnight, paid_at - timedelta(seconds=rng.randrange(8, 300)))
        latency = rng.randrange(0, 4)  # the channel completes first, the ERP records the callback
        order = _Order(
            order_no="",
            channel=channel,
            amount=amount,
            product=product,
            customer=rng.choice(customers),
            created_at=created,
            paid_at=paid_at,
            channel_at=paid_at - timedelta(seconds=latency),
            channel_amount=amount,
        )
        _decorate(order, rng, used_ids)
        orders.append(order)
    # Cross-midnight: the ERP says 23:59:58; the channel must complete within the day to be in this bill
    # (both bill by completion time), so it completes at 23:59:59, not 00:00:03 the next day.
    cross_midnight = orders[-1]
    cross_midnight.channel_at = day_end
    # The ERP numbers orders when they are created.
    orders.sort(key=lambda item: item.created_at)
    for seq, order in enumerate(orders, start=1):
        order.order_no = f"SO{ymd}{seq:06d}"

    candidates = [i for i, order in enumerate(orders) if order is not cross_midnight]
    rng.shuffle(candidates)

    def take(*, channel: str | None = None, before: datetime | None = None) -> _Order:
        for position, index in enumerate(candidates):
            order = orders[index]
            if channel is not None and order.channel != channel:
                continue
            if before is not None and order.channel_at >= before:
                continue
            del candidates[position]
            return order
        # Not enough orders of that channel: convert one.
        index = candidates.pop()
        order = orders[index]
        if channel is not None and order.channel != channel:
            order.channel = channel
            _decorate(order, rng, used_ids)
        return order

    # Orders never paid: two closed, one pending (no channel row; the ERP shows them without paid_at).
    for status in ("closed", "closed", "pending"):
        order = take()
        order.status = status
        order.paid_at = None
        order.in_channel = False

    planted: list[PlantedDifference] = []

    missing = take(channel="wechat")
    missing.in_channel = False
    planted.append(
        PlantedDifference(
            case_type="MISSING_IN_CHANNEL",
            source="erp",
            txn_id=missing.order_no,
            delta_minor=missing.amount,
            description=(
                f"ERP order {missing.order_no} is marked paid via WeChat Pay ({_yuan(missing.amount)}) "
                "but the WeChat Pay bill has no such trade (the customer never paid)"
            ),
        )
    )

    mismatch = take(channel="wechat")
    mismatch.amount, mismatch.channel_amount, mismatch.product = 19900, 18900, "手冲礼盒"
    planted.append(
        PlantedDifference(
            case_type="AMOUNT_MISMATCH",
            source="wechat",
            txn_id=mismatch.channel_txn_id,
            delta_minor=mismatch.channel_amount - mismatch.amount,
            description=(
                f"ERP books {_yuan(mismatch.amount)} for order {mismatch.order_no}, "
                f"WeChat Pay charged {_yuan(mismatch.channel_amount)}"
            ),
            counterpart=mismatch.order_no,
        )
    )

    duplicate = take()
    duplicate.erp_copies = 2
    planted.append(
        PlantedDifference(
            case_type="DUPLICATE",
            source="erp",
            txn_id=duplicate.order_no,
            delta_minor=duplicate.amount,
            description=(
                f"ERP order {duplicate.order_no} ({_yuan(duplicate.amount)}, {duplicate.channel}) "
                "is exported twice"
            ),
        )
    )

    refund_cutoff = midnight + timedelta(hours=21)
    unexecuted = take(before=refund_cutoff)
    refund = _make_refund(unexecuted, rng, ymd, used_ids, full=False)
    refund.in_channel = False
    planted.append(
        PlantedDifference(
            case_type="MISSING_IN_CHANNEL",
            source="erp",
            txn_id=f"{unexecuted.order_no}#{refund.refund_no}",
            delta_minor=-refund.amount,
            description=(
                f"ERP refund {refund.refund_no} of {_yuan(refund.amount)} on order {unexecuted.order_no} "
                f"was never executed by {'WeChat Pay' if unexecuted.channel == 'wechat' else 'Alipay'}"
            ),
            counterpart=unexecuted.order_no,
        )
    )

    # A rounding tie on the fee: 7.50 x 0.6 % = 4.5 fen, 5 fen half-up (half-even would give 4).
    tie = take()
    tie.amount = tie.channel_amount = 750
    tie.product = "黄油曲奇"
    candidates.append(orders.index(tie))

    # Ordinary same-day refunds (about 8 % of orders, half of them full).
    for index in list(candidates):
        order = orders[index]
        if order.channel_at >= refund_cutoff or rng.random() >= _REFUND_SHARE:
            continue
        candidates.remove(index)
        full = rng.random() < 0.5
        _make_refund(order, rng, ymd, used_ids, full=full)
        if full:
            order.status = "refunded"

    # An Alipay trade the ERP never recorded.
    amount, product = 5990, "咖啡豆 250g"
    stray_at = midnight + timedelta(hours=14, minutes=rng.randrange(60), seconds=rng.randrange(60))
    stray = _Order(
        order_no=f"SO{ymd}{900_000 + rng.randrange(1, 99_999):06d}",
        channel="alipay",
        amount=amount,
        product=product,
        customer="",
        created_at=stray_at - timedelta(seconds=rng.randrange(10, 120)),
        paid_at=stray_at,
        channel_at=stray_at,
        channel_amount=amount,
        in_erp=False,
    )
    _decorate(stray, rng, used_ids)
    orders.append(stray)
    planted.append(
        PlantedDifference(
            case_type="MISSING_IN_ERP",
            source="alipay",
            txn_id=stray.channel_txn_id,
            delta_minor=stray.channel_amount,
            description=(
                f"Alipay trade {stray.channel_txn_id} ({_yuan(amount)}, 商户订单号 {stray.order_no}) "
                "has no ERP order"
            ),
        )
    )

    export_time = datetime.combine(
        business_date + timedelta(days=1), time(5, rng.randrange(60), rng.randrange(60))
    )
    return _Day(business_date=business_date, rng=rng, orders=orders, planted=planted, export_time=export_time)


def _pick_price(rng: random.Random) -> tuple[int, str]:
    if rng.random() < _ODD_SHARE:
        return rng.randrange(500, 50_000), _ODD_PRODUCT
    amount, product, _ = rng.choices(_PRICE_POINTS, weights=[w for _, _, w in _PRICE_POINTS])[0]
    return amount, product


def _unique(rng: random.Random, used: set[str], prefix: str, digits: int) -> str:
    while True:
        value = f"{prefix}{rng.randrange(10**digits):0{digits}d}"
        if value not in used:
            used.add(value)
            return value


def _decorate(order: _Order, rng: random.Random, used: set[str]) -> None:
    """Channel ids and row decoration (ids carry the completion date)."""
    day = f"{order.channel_at:%Y%m%d}"
    if order.channel == "wechat":
        order.channel_txn_id = _unique(rng, used, f"4200002001{day}", 10)
        alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
        order.openid = "o" + "".join(rng.choice(alphabet) for _ in range(27))
        order.trade_type = rng.choices(
            [t for t, _ in _WECHAT_TRADE_TYPES], [w for _, w in _WECHAT_TRADE_TYPES]
        )[0]
        order.bank_type = rng.choices([b for b, _ in _WECHAT_BANKS], [w for _, w in _WECHAT_BANKS])[0]
    else:
        order.channel_txn_id = _unique(rng, used, f"{day}22001", 15)
        name = rng.choice(_GIVEN_NAMES)
        if rng.random() < 0.7:
            order.buyer = f"*{name}(1{rng.randrange(30, 99)}****{rng.randrange(10_000):04d})"
        else:
            order.buyer = f"{rng.choice('abcdefghjkmnpqrstwxyz')}{rng.randrange(10, 99)}***@qq.com"


def _make_refund(order: _Order, rng: random.Random, ymd: str, used: set[str], *, full: bool) -> _Refund:
    assert order.paid_at is not None
    latest = datetime.combine(order.channel_at.date(), time(23, 50))
    earliest = order.channel_at + timedelta(minutes=10)
    span = max(1, int((min(latest, order.channel_at + timedelta(hours=4)) - earliest).total_seconds()))
    requested = earliest + timedelta(seconds=rng.randrange(span))
    channel_at = requested + timedelta(seconds=rng.randrange(1, 15))
    if full or order.amount < 200:
        amount, full = order.amount, True
    else:
        amount = rng.randrange(100, order.amount)
    refund = _Refund(
        refund_no=_unique(rng, used, f"RF{ymd}", 6),
        amount=amount,
        requested_at=requested,
        channel_at=channel_at,
        erp_done_at=channel_at + timedelta(seconds=rng.randrange(0, 3)),
        channel_refund_id=_unique(rng, used, f"5030000001{channel_at:%Y%m%d}", 8)
        if order.channel == "wechat"
        else "",
        full=full,
    )
    order.refunds.append(refund)
    return refund


# --- formatting helpers ---------------------------------------------------------------------------------

_FEN = Decimal("0.01")
_FIVE = Decimal("0.00001")


def _fee(amount_minor: int) -> int:
    """Channel fee in fen: 0.6 % of the amount, rounded half-up to the fen."""
    return int((Decimal(amount_minor) * FEE_RATE).quantize(Decimal(1), rounding=ROUND_HALF_UP))


def _wechat_row(
    order: _Order,
    *,
    at: datetime,
    status: str,
    fee: int,
    settle: int = 0,
    order_amount: int = 0,
    refund: tuple[str, str, int] | None = None,
) -> list[str]:
    """One detail row of the WeChat Pay ALL trade bill (27 columns; formats.md 2.5); refunds carry their ids."""
    refund_id, refund_no, refunded = refund or ("0", "0", 0)
    return [
        _ts(at), WECHAT_APPID, WECHAT_MCHID, "0", "", order.channel_txn_id, order.order_no, order.openid,
        order.trade_type, status, order.bank_type, CURRENCY, _amount(settle), "0.00", refund_id, refund_no,
        _amount(refunded), "0.00", "ORIGINAL" if refund else "", "SUCCESS" if refund else "", order.product, "",
        _fee5(fee), FEE_RATE_TEXT, _amount(order_amount), _amount(refunded), "",
    ]  # fmt: skip


def _amount(minor: int) -> str:
    return str(to_decimal(minor, CURRENCY))


def _yuan(minor: int) -> str:
    return _amount(minor)


def _fee5(minor: int) -> str:
    return str(to_decimal(minor, CURRENCY).quantize(_FIVE))


def _ts(moment: datetime) -> str:
    return f"{moment:%Y-%m-%d %H:%M:%S}"


def _cn_ts(moment: datetime) -> str:
    return f"{moment.year:04d}年{moment.month:02d}月{moment.day:02d}日 {moment:%H:%M:%S}"


def _backticked(fields: list[str]) -> str:
    return ",".join("`" + value for value in fields)


def _planted_order(item: PlantedDifference) -> tuple[int, str]:
    order = ("MISSING_IN_CHANNEL", "MISSING_IN_ERP", "AMOUNT_MISMATCH", "DUPLICATE", "MISSING_IN_BANK")
    return (order.index(item.case_type) if item.case_type in order else len(order), item.txn_id)


class _GbkZipInfo(zipfile.ZipInfo):
    """A zip entry whose name is stored as GBK bytes without the UTF-8 flag, as Alipay's bills are."""

    def _encodeFilenameFlags(self) -> tuple[bytes, int]:  # overrides zipfile's private hook
        return self.filename.encode("gbk"), self.flag_bits & ~_ZIP_UTF8_FLAG


def _gbk_zip(members: list[tuple[str, bytes]], stamp: datetime) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, content in members:
            info = _GbkZipInfo(name, date_time=stamp.timetuple()[:6])
            info.compress_type = zipfile.ZIP_DEFLATED
            info.create_system = 0  # MS-DOS, as Windows-built archives
            info.external_attr = 0x20  # archive bit
            archive.writestr(info, content)
    return buffer.getvalue()


# --- camt.053 -------------------------------------------------------------------------------------------


def _sub(parent: ET.Element, tag: str, text: str | None = None, **attrib: str) -> ET.Element:
    element = ET.SubElement(parent, tag, attrib)
    if text is not None:
        element.text = text
    return element


def _amt(parent: ET.Element, tag: str, minor: int) -> None:
    _sub(parent, tag, _amount(minor), Ccy=CURRENCY)


def _iso(moment: datetime) -> str:
    return f"{moment:%Y-%m-%dT%H:%M:%S}+08:00"


def _camt053(
    day: _Day, entries: list[_BankEntry], *, opening: int, closing: int, credits: int, debits: int
) -> bytes:
    stmt_day = day.statement_date
    created = datetime.combine(stmt_day + timedelta(days=1), time(6, 0, 0))
    root = ET.Element("Document", {"xmlns": CAMT_NS})
    report = _sub(root, "BkToCstmrStmt")
    header = _sub(report, "GrpHdr")
    _sub(header, "MsgId", f"CMB053{stmt_day:%Y%m%d}{BANK_ACCOUNT_NUMBER[-6:]}")
    _sub(header, "CreDtTm", _iso(created))
    stmt = _sub(report, "Stmt")
    _sub(stmt, "Id", f"{BANK_ACCOUNT_NUMBER}-{stmt_day:%Y%m%d}")
    sequence = str(stmt_day.timetuple().tm_yday)
    _sub(stmt, "ElctrncSeqNb", sequence)
    _sub(stmt, "LglSeqNb", sequence)
    _sub(stmt, "CreDtTm", _iso(created))
    period = _sub(stmt, "FrToDt")
    _sub(period, "FrDtTm", _iso(datetime.combine(stmt_day, time())))
    _sub(period, "ToDtTm", _iso(datetime.combine(stmt_day, time(23, 59, 59))))
    acct = _sub(stmt, "Acct")
    _sub(_sub(_sub(acct, "Id"), "Othr"), "Id", BANK_ACCOUNT_NUMBER)
    _sub(acct, "Ccy", CURRENCY)
    _sub(acct, "Nm", MERCHANT_NAME)
    institution = _sub(_sub(acct, "Svcr"), "FinInstnId")
    _sub(institution, "BICFI", BANK_BIC)
    _sub(institution, "Nm", CMB_NAME)
    for code, minor in (("OPBD", opening), ("CLBD", closing)):
        balance = _sub(stmt, "Bal")
        _sub(_sub(_sub(balance, "Tp"), "CdOrPrtry"), "Cd", code)
        _amt(balance, "Amt", abs(minor))
        _sub(balance, "CdtDbtInd", "CRDT" if minor >= 0 else "DBIT")
        _sub(_sub(balance, "Dt"), "Dt", stmt_day.isoformat())
    summary = _sub(stmt, "TxsSummry")
    total = _sub(summary, "TtlNtries")
    _sub(total, "NbOfNtries", str(len(entries)))
    _sub(total, "Sum", _amount(credits + debits))
    net = _sub(total, "TtlNetNtry")
    _amt(net, "Amt", abs(credits - debits))
    _sub(net, "CdtDbtInd", "CRDT" if credits >= debits else "DBIT")
    for tag, minor, count in (
        ("TtlCdtNtries", credits, sum(1 for e in entries if e.credit)),
        ("TtlDbtNtries", debits, sum(1 for e in entries if not e.credit)),
    ):
        part = _sub(summary, tag)
        _sub(part, "NbOfNtries", str(count))
        _sub(part, "Sum", _amount(minor))
    for number, entry in enumerate(entries, start=1):
        indicator = "CRDT" if entry.credit else "DBIT"
        ntry = _sub(stmt, "Ntry")
        _sub(ntry, "NtryRef", str(number))
        _amt(ntry, "Amt", entry.amount)
        _sub(ntry, "CdtDbtInd", indicator)
        _sub(_sub(ntry, "Sts"), "Cd", "BOOK")
        _sub(_sub(ntry, "BookgDt"), "DtTm", _iso(entry.booked))
        _sub(_sub(ntry, "ValDt"), "Dt", stmt_day.isoformat())
        _sub(ntry, "AcctSvcrRef", entry.ref)
        domain = _sub(_sub(ntry, "BkTxCd"), "Domn")
        _sub(domain, "Cd", entry.domain[0])
        family = _sub(domain, "Fmly")
        _sub(family, "Cd", entry.domain[1])
        _sub(family, "SubFmlyCd", entry.domain[2])
        details = _sub(_sub(ntry, "NtryDtls"), "TxDtls")
        refs = _sub(details, "Refs")
        _sub(refs, "AcctSvcrRef", entry.ref)
        _sub(refs, "EndToEndId", "NOTPROVIDED")
        _amt(details, "Amt", entry.amount)
        _sub(details, "CdtDbtInd", indicator)
        parties = _sub(details, "RltdPties")
        role, account_role = ("Dbtr", "DbtrAcct") if entry.credit else ("Cdtr", "CdtrAcct")
        _sub(_sub(_sub(parties, role), "Pty"), "Nm", entry.party)
        if entry.party_account:
            _sub(_sub(_sub(_sub(parties, account_role), "Id"), "Othr"), "Id", entry.party_account)
        _sub(_sub(details, "RmtInf"), "Ustrd", entry.memo)
        _sub(ntry, "AddtlNtryInf", entry.memo)
    ET.indent(root, space="  ")
    body = ET.tostring(root, encoding="unicode")
    return ('<?xml version="1.0" encoding="UTF-8"?>\n' + body + "\n").encode("utf-8")
