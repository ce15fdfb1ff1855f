"""Labelled days for the accuracy benchmark: several consecutive business days of the demo merchant in the
real file formats, with the true answer for every row.

``generate_labelled_days`` builds, per business day, the ERP export (CSV), the WeChat Pay ALL trade bill,
the Alipay trade business-bill zip (GBK, detail + summary) and, per statement date, the CMB camt.053 statement
that carries the settlement credits. The files come from ``demo_data``'s writers (imported, not copied):
this module decides *what* happened and hands each writer the orders of its file.

What it plants (rates per order or per batch come from a ``Difficulty`` profile; every scenario the profile
enables occurs at least once in a set):

* amounts crowded at the demo's price points (9.90, 19.90, 99.00, ...), with bursts of same-price orders
  seconds apart, so that amount alone is ambiguous;
* fees: both channels charge the contract rate of 0.6 % per row, rounded half-up to the fen, as the writers
  do; a refund gives back its own fee (0.6 % of the refund, rounded half-up, written negative);
* refunds and partial refunds (same day), refunds missing on either side, a partial refund the ERP never
  booked, a full refund the ERP never booked (the ERP still says *paid*), refund amount errors;
* amount errors between the ERP and the channel, ERP orders missing in the channel, channel trades missing
  in the ERP, closed / pending ERP orders (filtered), WeChat Pay payments revoked by the channel while the
  ERP says paid;
* duplicates: an ERP line exported twice, a channel row re-sent twice in the same bill, and one whole ERP
  export delivered a second time (same bytes, another name: a re-delivery, never new rows);
* cross-midnight orders: the ERP says paid at 23:59:5x, the channel completes them after midnight, so the
  channel row is in the next day's bill and settlement batch;
* channel rows whose 商户订单号 is missing or mangled, so that only an amount-and-time pass can link them,
  and twin orders (same price, same second, both references missing) whose pairing is genuinely ambiguous;
* settlement: WeChat Pay pays each day's net T+1; Alipay pays T+1 or T+2 (always T+2 for a Saturday), and
  batches that fall due on the same day are paid in one credit; a missing credit, a short credit, a credit
  no channel explains, interest and account fees (filtered). Consecutive statements chain their balances.

Labels (``RowLabel``): every input row gets its true *link group* (rows that truly belong together) and its
expected disposition: ``match``, ``case`` (with the CaseType name), ``filtered`` (with the rule) or
``counterpart`` (a settlement batch that is the counterpart of a bank amount mismatch). Settlement batches
(``<channel account>@<business date>``, not input rows) are labelled too. Rows whose pairing no engine can
decide from the data are flagged ``ambiguous``: they must not be auto-matched. See docs/accuracy.md.

Seeded and deterministic: the same arguments give byte-identical files and labels. The random stream is
namespaced ``recon-accuracy:<seed>``, so no seed here reproduces a demo day.
"""

from __future__ import annotations

import hashlib
import json
import random
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, replace
from datetime import date, datetime, time, timedelta
from enum import StrEnum
from itertools import pairwise
from pathlib import Path
from typing import Any

import yaml

from recon.domain import Project
from recon.matching.window import orders_conflict

from .demo_data import (
    _HOUR_WEIGHTS,
    _PRICE_POINTS,
    _WECHAT_SHARE,
    ALIPAY_ACCOUNT,
    BANK_ACCOUNT,
    CMB_NAME,
    CURRENCY,
    ERP_ACCOUNT,
    WECHAT_ACCOUNT,
    _account_fee,
    _alipay_payout,
    _bank_statement,
    _BankEntry,
    _Day,
    _decorate,
    _fee,
    _make_refund,
    _number_entries,
    _Order,
    _wechat_payout,
)

__all__ = [
    "DIFFICULTIES",
    "FILTER_BANK_FEES",
    "FILTER_UNPAID",
    "LABELS_FORMAT",
    "Difficulty",
    "Expect",
    "LabelledFile",
    "LabelledSet",
    "RowLabel",
    "generate_labelled_days",
    "read_labels",
]

LABELS_FORMAT = "recon-accuracy-labels/1"
DEMO_PROJECT = Path(__file__).parent / "projects" / "demo.yaml"
# Filter rules of the demo project that the labels name (checked against the project at generation).
FILTER_UNPAID = "erp-unpaid-orders"
FILTER_BANK_FEES = "bank-fees-and-interest"

SOURCE_OF = {ERP_ACCOUNT: "erp", WECHAT_ACCOUNT: "wechat", ALIPAY_ACCOUNT: "alipay", BANK_ACCOUNT: "bank"}
_CHANNEL_ACCOUNT = {"wechat": WECHAT_ACCOUNT, "alipay": ALIPAY_ACCOUNT}
_ODD_PRODUCT = "组合订单"
_REFUND_CUTOFF = time(21, 0)  # same-day refunds are requested within hours of the payment
_CUSTOMER_COMPANY = ("上海某某贸易有限公司", "31050161393600001234")


class Expect(StrEnum):
    """Where a correct engine puts a labelled row."""

    MATCH = "match"
    CASE = "case"
    FILTERED = "filtered"
    COUNTERPART = "counterpart"  # a settlement batch compared with a short credit: no row of its own


@dataclass(frozen=True)
class RowLabel:
    """The truth about one input row (or one settlement batch when ``aggregate``).

    ``label_id`` is unique: ``<source>:<txn_id>``, with ``~<n>`` for the n-th repeat of the same id (a
    duplicate). ``group`` is the true link group ("" when the row belongs with nothing). ``txn_id`` is the id
    the parsers report (README: ERP order number, 微信订单号, 支付宝交易号, AcctSvcrRef; refunds
    ``<id>#<refund id>``; batches ``<channel account>@<business date>``).
    """

    label_id: str
    source: str
    account_id: str
    txn_id: str
    amount_minor: int
    currency: str
    file: str
    statement_date: date
    expect: Expect
    group: str = ""
    case_type: str = ""
    filter_rule: str = ""
    ambiguous: bool = False
    aggregate: bool = False
    scenario: str = "plain"

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["statement_date"] = self.statement_date.isoformat()
        data["expect"] = self.expect.value
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> RowLabel:
        values = dict(data)
        values["statement_date"] = date.fromisoformat(str(values["statement_date"]))
        values["expect"] = Expect(values["expect"])
        return cls(**values)


@dataclass(frozen=True)
class Difficulty:
    """How often each situation occurs. ``*_share`` are per order (or per batch / statement where named)."""

    name: str
    odd_amount_share: float = 0.10  # orders at an amount off the price points
    burst_share: float = 0.15  # orders that come with 1-3 same-price siblings within 20 s
    refund_share: float = 0.08
    partial_refund_share: float = 0.5
    unpaid_share: float = 0.02  # ERP orders closed or pending (filtered)
    missing_in_channel_share: float = 0.006
    missing_in_erp_share: float = 0.006
    amount_error_share: float = 0.004
    duplicate_erp_share: float = 0.003
    duplicate_channel_share: float = 0.003
    revoked_share: float = 0.003  # WeChat Pay revoked it, the ERP says paid
    refund_missing_in_channel_share: float = 0.002
    refund_missing_in_erp_share: float = 0.002  # a partial refund the ERP never booked
    refund_unbooked_full_share: float = 0.002  # the channel refunded in full, the ERP still says paid
    refund_amount_error_share: float = 0.002
    mangled_ref_share: float = 0.03  # channel rows whose 商户订单号 is missing or mangled
    ambiguous_twin_share: float = 0.004  # twin orders (same price, same second, no references)
    cross_midnight_share: float = 0.005
    alipay_t2_share: float = 0.2  # Alipay batches paid T+2 (Saturdays always are)
    bank_missing_share: float = 0.05  # per WeChat Pay batch: the credit never arrives
    bank_short_share: float = 0.05  # per credit: the credit is short
    bank_unknown_credit_share: float = 0.1  # per statement: a credit no channel explains
    bank_interest_share: float = 0.2  # per statement
    bank_fee_share: float = 0.2  # per statement
    redeliver_erp_export: bool = True
    ambiguity_window_s: int = 60  # see docs/accuracy.md: rows closer than this are confusable


DIFFICULTIES: dict[str, Difficulty] = {
    "easy": Difficulty(
        name="easy",
        odd_amount_share=0.3,
        burst_share=0.0,
        mangled_ref_share=0.01,
        ambiguous_twin_share=0.0,
        missing_in_channel_share=0.003,
        missing_in_erp_share=0.003,
        amount_error_share=0.002,
    ),
    "realistic": Difficulty(name="realistic"),
    "hard": Difficulty(
        name="hard",
        odd_amount_share=0.03,
        burst_share=0.3,
        refund_share=0.12,
        unpaid_share=0.03,
        missing_in_channel_share=0.012,
        missing_in_erp_share=0.012,
        amount_error_share=0.008,
        duplicate_erp_share=0.006,
        duplicate_channel_share=0.006,
        revoked_share=0.006,
        refund_missing_in_channel_share=0.004,
        refund_missing_in_erp_share=0.004,
        refund_unbooked_full_share=0.004,
        refund_amount_error_share=0.004,
        mangled_ref_share=0.08,
        ambiguous_twin_share=0.01,
        cross_midnight_share=0.01,
        alipay_t2_share=0.4,
        bank_missing_share=0.1,
        bank_short_share=0.1,
        bank_unknown_credit_share=0.2,
    ),
}


@dataclass(frozen=True)
class LabelledFile:
    """One delivered file: the account it belongs to and the statement date it is filed under."""

    account_id: str
    statement_date: date
    name: str
    content: bytes
    redelivery_of: str = ""  # a second delivery of that file's exact bytes: it must add no rows

    @property
    def source(self) -> str:
        return SOURCE_OF[self.account_id]

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.content).hexdigest()


@dataclass(frozen=True)
class LabelledSet:
    """Files of consecutive business days, the project that reconciles them, and the truth."""

    seed: int
    start: date
    days: int
    orders_per_day: int
    difficulty: Difficulty
    project_text: str
    files: list[LabelledFile]
    labels: list[RowLabel]

    @property
    def business_dates(self) -> list[date]:
        return [self.start + timedelta(days=i) for i in range(self.days)]

    @property
    def project_id(self) -> str:
        return Project.from_yaml(self.project_text).project_id

    def manifest(self) -> dict[str, Any]:
        return {
            "format": LABELS_FORMAT,
            "seed": self.seed,
            "start": self.start.isoformat(),
            "days": self.days,
            "orders_per_day": self.orders_per_day,
            "difficulty": asdict(self.difficulty),
            "project_id": self.project_id,
            "files": [
                {
                    "account_id": f.account_id,
                    "source": f.source,
                    "statement_date": f.statement_date.isoformat(),
                    "name": f.name,
                    "path": f"files/{f.statement_date.isoformat()}/{f.name}",
                    "sha256": f.sha256,
                    "redelivery_of": f.redelivery_of,
                }
                for f in self.files
            ],
            "rows": [label.to_json() for label in self.labels],
        }

    def write(self, directory: Path) -> Path:
        """Write ``files/<statement date>/<name>``, ``project.yaml``, ``labels.json`` and ``labels.parquet``."""
        directory.mkdir(parents=True, exist_ok=True)
        for f in self.files:
            path = directory / "files" / f.statement_date.isoformat() / f.name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(f.content)
        (directory / "project.yaml").write_text(self.project_text, encoding="utf-8")
        text = json.dumps(self.manifest(), ensure_ascii=False, indent=1, sort_keys=True) + "\n"
        (directory / "labels.json").write_text(text, encoding="utf-8")
        _write_labels_parquet(self.labels, directory / "labels.parquet")
        return directory / "labels.json"


def read_labels(path: Path) -> list[RowLabel]:
    """Labels from a ``labels.json`` (or the folder that holds it)."""
    if path.is_dir():
        path = path / "labels.json"
    data = json.loads(path.read_text("utf-8"))
    if data.get("format") != LABELS_FORMAT:
        raise ValueError(f"{path}: not a {LABELS_FORMAT} file")
    return [RowLabel.from_json(row) for row in data["rows"]]


def _write_labels_parquet(labels: list[RowLabel], path: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    rows = [label.to_json() for label in labels]
    columns = list(RowLabel.__dataclass_fields__)
    table = pa.table({name: [row[name] for row in rows] for name in columns})
    pq.write_table(table, path, compression="zstd")


# --- generation ---------------------------------------------------------------------------------------


def generate_labelled_days(
    seed: int,
    start: date,
    days: int,
    orders_per_day: int,
    profile_of_difficulty: str | Difficulty = "realistic",
    *,
    directory: Path | None = None,
    project_text: str | None = None,
) -> LabelledSet:
    """Generate ``days`` consecutive business days from ``start`` (and the bank statements up to T+2 of the
    last day); write them to ``directory`` when given. ``project_text`` defaults to the demo project, whose
    settlement lags are widened to the lags the set uses."""
    if not 1 <= days <= 366:
        raise ValueError("days must be between 1 and 366")
    if not 20 <= orders_per_day <= 50_000:
        raise ValueError("orders_per_day must be between 20 and 50000")
    difficulty = (
        DIFFICULTIES[profile_of_difficulty]
        if isinstance(profile_of_difficulty, str)
        else profile_of_difficulty
    )
    builder = _SetBuilder(seed, start, days, orders_per_day, difficulty)
    builder.build()
    project = _project_for(project_text or DEMO_PROJECT.read_text("utf-8"), builder.lags_used())
    labelled = LabelledSet(
        seed=seed,
        start=start,
        days=days,
        orders_per_day=orders_per_day,
        difficulty=difficulty,
        project_text=project,
        files=builder.files,
        labels=sorted(builder.labels, key=lambda label: (label.source, label.label_id)),
    )
    if directory is not None:
        labelled.write(directory)
    return labelled


def _project_for(text: str, lags: dict[str, set[int]]) -> str:
    """The project with each settlement rule's lags widened to the lags its channel account uses."""
    data = yaml.safe_load(text)
    for rule in data.get("rules", []):
        if rule.get("kind") == "settlement" and rule.get("channel_account") in lags:
            rule["lag_days"] = sorted(set(rule.get("lag_days") or [1]) | lags[rule["channel_account"]])
    out = yaml.safe_dump(data, allow_unicode=True, sort_keys=False)
    project = Project.from_yaml(out)
    names = {rule.name for rule in project.filter_rules}
    missing = {FILTER_UNPAID, FILTER_BANK_FEES} - names
    if missing:
        raise ValueError(f"the project lacks the filter rules the labels name: {sorted(missing)}")
    return out


@dataclass
class _Sale:
    """One order as it really happened, and how each side shows it."""

    day: date
    scenario: str
    erp: _Order | None  # the ERP's view (None: the ERP does not have it)
    channel: _Order | None  # the channel's view (None: never paid through the channel)
    channel_day: date  # the bill (and settlement batch) it lands in
    channel_copies: int = 1
    revoked: bool = False


def _max_pairing(
    erp: list[int], edges: dict[int, set[int]], banned: tuple[int, int] | None = None
) -> dict[int, int]:
    """A maximum one-to-one pairing of ``erp`` rows with their confusable channel rows (augmenting paths,
    rows and partners in sorted order: deterministic), without the pair ``banned``: channel row -> ERP row."""
    partner: dict[int, int] = {}

    def augment(a: int, seen: set[int]) -> bool:
        for b in sorted(edges[a]):
            if (a, b) == banned or b in seen:
                continue
            seen.add(b)
            if b not in partner or augment(partner[b], seen):
                partner[b] = a
                return True
        return False

    for a in erp:
        augment(a, set())
    return partner


def _certain_pairs(component: set[int], edges: dict[int, set[int]], nodes: list[_Node]) -> set[int]:
    """The rows of a confusable set that a one-to-one pass cannot pair otherwise, and truly belong together.

    A pair is *forced* when every maximum one-to-one pairing of the set contains it: without it, fewer rows
    can be paired (the order references ruled the alternatives out). A forced pair that is the truth is
    certain; every other row of the set is ambiguous (it has another partner in some maximum pairing)."""
    erp = sorted(i for i in component if nodes[i].side == "erp")
    best = _max_pairing(erp, edges)
    certain: set[int] = set()
    for b, a in sorted(best.items()):
        true = bool(nodes[a].group) and nodes[a].group == nodes[b].group
        if true and len(_max_pairing(erp, edges, banned=(a, b))) < len(best):
            certain |= {a, b}
    return certain


@dataclass
class _Node:
    """A residue row for the ambiguity check: no usable key links it."""

    label_index: int
    side: str  # "erp" | "channel"
    amount: int
    at: datetime
    group: str
    order_ref: str = ""


@dataclass
class _Batch:
    channel: str
    day: date
    net: int
    due: date


# Scenarios that take orders from the day's pool, in planting order (constraints in _SetBuilder._plant).
_SCENARIOS: tuple[tuple[str, str], ...] = (
    ("unpaid", "unpaid_share"),
    ("missing-in-channel", "missing_in_channel_share"),
    ("missing-in-erp", "missing_in_erp_share"),
    ("amount-error", "amount_error_share"),
    ("duplicate-erp", "duplicate_erp_share"),
    ("duplicate-channel", "duplicate_channel_share"),
    ("revoked", "revoked_share"),
    ("refund-missing-in-channel", "refund_missing_in_channel_share"),
    ("refund-missing-in-erp", "refund_missing_in_erp_share"),
    ("refund-unbooked-full", "refund_unbooked_full_share"),
    ("refund-amount-error", "refund_amount_error_share"),
    ("mangled-ref", "mangled_ref_share"),
)


class _SetBuilder:
    def __init__(self, seed: int, start: date, days: int, orders: int, difficulty: Difficulty) -> None:
        # Reproducible test data, not cryptography.
        self.rng = random.Random(f"recon-accuracy:{seed}:{start.isoformat()}:{days}:{orders}")  # noqa: S311
        self.start = start
        self.days = [start + timedelta(days=i) for i in range(days)]
        self.orders = orders
        self.d = difficulty
        self.used_ids: set[str] = set()
        self.customers = [f"U{self.rng.randrange(100_000, 999_999)}" for _ in range(max(10, orders // 2))]
        self.sales: list[_Sale] = []
        self.files: list[LabelledFile] = []
        self.labels: list[RowLabel] = []
        self.batches: list[_Batch] = []

    # -- plan ------------------------------------------------------------------------------------------

    def build(self) -> None:
        plan = self._plan()
        for index, day in enumerate(self.days):
            self._day(day, plan[index], is_last=index == len(self.days) - 1)
        self._render_days()
        self._label_ambiguity()
        self._render_bank()

    def lags_used(self) -> dict[str, set[int]]:
        lags: dict[str, set[int]] = defaultdict(set)
        for batch in self.batches:
            lags[_CHANNEL_ACCOUNT[batch.channel]].add((batch.due - batch.day).days)
        return lags

    def _count(self, rate: float, per: int) -> int:
        expected = rate * per
        whole = int(expected)
        return whole + (1 if self.rng.random() < expected - whole else 0)

    def _plan(self) -> list[dict[str, int]]:
        """Scenario counts per day; every scenario with a non-zero rate occurs at least once in the set."""
        names = [*_SCENARIOS, ("ambiguous-twin", "ambiguous_twin_share")]
        names.append(("cross-midnight", "cross_midnight_share"))
        plan: list[dict[str, int]] = [{} for _ in self.days]
        for position, (scenario, attr) in enumerate(names):
            rate = float(getattr(self.d, attr))
            eligible = list(range(len(self.days)))
            if scenario == "cross-midnight":
                eligible = eligible[:-1]  # the next day's bill must be in the set
            for i in eligible:
                plan[i][scenario] = self._count(rate, self.orders)
            if rate > 0 and eligible and not any(plan[i][scenario] for i in eligible):
                plan[eligible[position % len(eligible)]][scenario] = 1
        return plan

    # -- one business day --------------------------------------------------------------------------------

    def _day(self, day: date, counts: dict[str, int], *, is_last: bool) -> None:
        rng = self.rng
        ymd = f"{day:%Y%m%d}"
        midnight = datetime.combine(day, time())
        twins = counts.get("ambiguous-twin", 0)
        total = self.orders
        specs: list[tuple[datetime, int, str, str]] = []  # paid_at, amount, product, channel
        while len(specs) < total - twins:
            hour = rng.choices(range(24), weights=_HOUR_WEIGHTS)[0]
            second = hour * 3600 + rng.randrange(3600)
            if not 300 <= second <= 86_000:
                continue
            amount, product = self._price()
            channel = "wechat" if rng.random() < _WECHAT_SHARE else "alipay"
            paid = midnight + timedelta(seconds=second)
            specs.append((paid, amount, product, channel))
            if rng.random() < self.d.burst_share:
                for _ in range(rng.randrange(1, 4)):
                    if len(specs) >= total - twins:
                        break
                    sibling = paid + timedelta(seconds=rng.randrange(1, 21))
                    other = "wechat" if rng.random() < _WECHAT_SHARE else "alipay"
                    specs.append((sibling, amount, product, other))
        twin_of: list[tuple[int, int]] = []
        bases = rng.sample(range(len(specs)), min(twins, len(specs)))
        for base in bases:
            paid, amount, product, channel = specs[base]
            specs.append((paid + timedelta(seconds=rng.randrange(0, 3)), amount, product, channel))
            twin_of.append((base, len(specs) - 1))

        orders: list[_Order] = []
        for paid, amount, product, channel in specs:
            created = max(midnight, paid - timedelta(seconds=rng.randrange(8, 300)))
            orders.append(
                _Order(
                    order_no="",
                    channel=channel,
                    amount=amount,
                    product=product,
                    customer=rng.choice(self.customers),
                    created_at=created,
                    paid_at=paid,
                    channel_at=paid - timedelta(seconds=rng.randrange(0, 4)),
                    channel_amount=amount,
                )
            )
        reserved = {i for pair in twin_of for i in pair}
        cross: set[int] = set()
        pool = [i for i in range(len(orders)) if i not in reserved]
        rng.shuffle(pool)
        for _ in range(0 if is_last else counts.get("cross-midnight", 0)):
            index = pool.pop()
            order = orders[index]
            order.paid_at = midnight + timedelta(hours=23, minutes=59, seconds=rng.randrange(50, 60))
            order.created_at = order.paid_at - timedelta(seconds=rng.randrange(8, 120))
            order.channel_at = midnight + timedelta(days=1, seconds=rng.randrange(1, 10))
            cross.add(index)

        by_created = sorted(range(len(orders)), key=lambda i: (orders[i].created_at, i))
        for seq, index in enumerate(by_created, start=1):
            orders[index].order_no = f"SO{ymd}{seq:06d}"
        for order in orders:
            _decorate(order, rng, self.used_ids)

        sales: dict[int, _Sale] = {}
        for index in cross:
            sales[index] = self._plain(day, orders[index], "cross-midnight")
            sales[index].channel_day = day + timedelta(days=1)
        for pair in twin_of:
            for index in pair:
                sale = self._plain(day, orders[index], "ambiguous-twin")
                assert sale.channel is not None
                sale.channel.order_no = ""
                sales[index] = sale
        self._plant(day, orders, pool, sales, counts)
        for index in pool:
            order = orders[index]
            sale = self._plain(day, order, "plain")
            if order.channel_at.time() < _REFUND_CUTOFF and rng.random() < self.d.refund_share:
                full = rng.random() >= self.d.partial_refund_share
                refund = _make_refund(order, rng, ymd, self.used_ids, full=full)
                sale = self._plain(day, order, "refund-full" if refund.full else "refund-partial")
                if refund.full:
                    assert sale.erp is not None
                    sale.erp.status = "refunded"
            sales[index] = sale
        self.sales.extend(sales[i] for i in sorted(sales))

    def _price(self) -> tuple[int, str]:
        if self.rng.random() < self.d.odd_amount_share:
            return self.rng.randrange(500, 50_000), _ODD_PRODUCT
        weights = [w for _, _, w in _PRICE_POINTS]
        amount, product, _ = self.rng.choices(_PRICE_POINTS, weights=weights)[0]
        return amount, product

    @staticmethod
    def _plain(day: date, order: _Order, scenario: str) -> _Sale:
        erp = replace(order, refunds=[replace(r) for r in order.refunds])
        channel = replace(order, refunds=[replace(r) for r in order.refunds])
        return _Sale(
            day=day, scenario=scenario, erp=erp, channel=channel, channel_day=order.channel_at.date()
        )

    def _plant(
        self,
        day: date,
        orders: list[_Order],
        pool: list[int],
        sales: dict[int, _Sale],
        counts: dict[str, int],
    ) -> None:
        rng = self.rng
        ymd = f"{day:%Y%m%d}"

        def take(accept: Callable[[_Order], bool]) -> _Order | None:
            for position, index in enumerate(pool):
                if accept(orders[index]):
                    del pool[position]
                    return orders[index]
            return None

        def early(order: _Order) -> bool:
            return order.channel_at.time() < _REFUND_CUTOFF and order.amount >= 200

        for scenario, _ in _SCENARIOS:
            for _ in range(counts.get(scenario, 0)):
                accept: Callable[[_Order], bool] = (lambda o: True) if scenario == "unpaid" else early
                if scenario == "revoked":
                    accept = lambda o: o.channel == "wechat"  # noqa: E731
                order = take(accept)
                if order is None:
                    continue
                index = orders.index(order)
                sale = self._plain(day, order, scenario)
                erp, channel = sale.erp, sale.channel
                assert erp is not None and channel is not None
                if scenario == "unpaid":
                    erp.status = rng.choice(("closed", "closed", "pending"))
                    erp.paid_at = None
                    sale.channel = None
                elif scenario == "missing-in-channel":
                    sale.channel = None
                elif scenario == "missing-in-erp":
                    sale.erp = None
                elif scenario == "amount-error":
                    channel.channel_amount = _wrong_amount(rng, order.amount)
                elif scenario == "duplicate-erp":
                    erp.erp_copies = 2
                elif scenario == "duplicate-channel":
                    sale.channel_copies = 2
                elif scenario == "revoked":
                    sale.revoked = True
                elif scenario == "mangled-ref":
                    channel.order_no = _mangle(rng, order.order_no)
                else:
                    full = scenario == "refund-unbooked-full"
                    refund = _make_refund(order, rng, ymd, self.used_ids, full=full)
                    erp.refunds = [replace(refund)]
                    channel.refunds = [replace(refund)]
                    if scenario == "refund-missing-in-channel":
                        channel.refunds[0].in_channel = False
                    elif scenario in ("refund-missing-in-erp", "refund-unbooked-full"):
                        erp.refunds = []
                    else:  # refund-amount-error: the ERP books another amount than the channel refunded
                        erp.refunds[0].amount = _wrong_refund(rng, refund.amount, order.amount)
                sales[index] = sale

    # -- files and labels ------------------------------------------------------------------------------

    def _render_days(self) -> None:
        erp_lists: dict[date, list[_Order]] = defaultdict(list)
        channel_lists: dict[date, list[_Order]] = defaultdict(list)
        revoked: dict[date, set[str]] = defaultdict(set)
        nets: dict[tuple[str, date], int] = defaultdict(int)
        for sale in self.sales:
            self._label_sale(sale)
            if sale.erp is not None:
                sale.erp.in_erp = True
                erp_lists[sale.day].append(sale.erp)
            if sale.channel is not None:
                bill = sale.channel
                bill.in_channel = True
                channel_lists[sale.channel_day].extend([bill] * sale.channel_copies)
                # What the channel really pays: a re-sent row once, a revoked payment not at all.
                if sale.revoked:
                    revoked[sale.channel_day].add(bill.channel_txn_id)
                else:
                    nets[(bill.channel, sale.channel_day)] += bill.channel_amount - _fee(bill.channel_amount)
                for refund in bill.refunds:
                    if refund.in_channel:
                        nets[(bill.channel, sale.channel_day)] += _fee(refund.amount) - refund.amount
        for index, day in enumerate(self.days):
            export = datetime.combine(day + timedelta(days=1), time(5, self.rng.randrange(60), 0))
            erp_day = _Day(business_date=day, rng=self.rng, orders=erp_lists[day], export_time=export)
            name, content, _ = erp_day._erp_file()
            self.files.append(LabelledFile(ERP_ACCOUNT, day, name, content))
            if self.d.redeliver_erp_export and index == len(self.days) // 2:
                resent = name.replace(".csv", "_resent.csv")
                self.files.append(LabelledFile(ERP_ACCOUNT, day, resent, content, redelivery_of=name))
            channel_day = _Day(business_date=day, rng=self.rng, orders=channel_lists[day], export_time=export)
            name, content, _, _ = channel_day._wechat_file()
            self.files.append(LabelledFile(WECHAT_ACCOUNT, day, name, _revoke(content, revoked[day])))
            name, content, _, _ = channel_day._alipay_file()
            self.files.append(LabelledFile(ALIPAY_ACCOUNT, day, name, content))
            for channel in ("wechat", "alipay"):
                if not any(o.channel == channel for o in channel_lists[day]):
                    continue
                self.batches.append(_Batch(channel, day, nets[(channel, day)], day + timedelta(days=1)))
        self._alipay_lags()

    def _alipay_lags(self) -> None:
        """Alipay pays Saturday's batch T+2 and Sunday's T+1 (both on Monday, in one credit), other days
        T+1 or T+2. When the set has no two batches falling due together, the first two are made to."""
        alipay = [b for b in self.batches if b.channel == "alipay"]
        for batch in alipay:
            weekday = batch.day.weekday()
            late = weekday == 5 or (weekday != 6 and self.rng.random() < self.d.alipay_t2_share)
            batch.due = batch.day + timedelta(days=2 if late else 1)
        dues = Counter(b.due for b in alipay)
        consecutive = [(a, b) for a, b in pairwise(alipay) if b.day == a.day + timedelta(days=1)]
        if self.d.alipay_t2_share > 0 and consecutive and max(dues.values()) < 2:
            first, second = consecutive[0]
            first.due = first.day + timedelta(days=2)
            second.due = second.day + timedelta(days=1)

    def _label_sale(self, sale: _Sale) -> None:
        """Labels of a sale's rows (files are named by convention; checked when rendering)."""
        erp, channel = sale.erp, sale.channel
        view = erp if erp is not None else channel
        order_no = view.order_no if view is not None else ""
        group = f"order:{order_no}"
        scenario = sale.scenario

        def add(source: str, txn_id: str, amount: int, day: date, expect: Expect, **kw: Any) -> None:
            account = ERP_ACCOUNT if source == "erp" else _CHANNEL_ACCOUNT[source]
            self.labels.append(
                RowLabel(
                    label_id="",
                    source=source,
                    account_id=account,
                    txn_id=txn_id,
                    amount_minor=amount,
                    currency=CURRENCY,
                    file=_expected_file(account, day),
                    statement_date=day,
                    expect=expect,
                    scenario=scenario,
                    **kw,
                )
            )

        pay_case = {"amount-error": "AMOUNT_MISMATCH", "revoked": "STATUS_MISMATCH"}.get(scenario)
        if erp is not None:
            if scenario == "unpaid":
                add("erp", erp.order_no, erp.amount, sale.day, Expect.FILTERED, filter_rule=FILTER_UNPAID)
            elif channel is None:
                add("erp", erp.order_no, erp.amount, sale.day, Expect.CASE, case_type="MISSING_IN_CHANNEL")
            elif pay_case:
                add("erp", erp.order_no, erp.amount, sale.day, Expect.CASE, group=group, case_type=pay_case)
            else:
                add("erp", erp.order_no, erp.amount, sale.day, Expect.MATCH, group=group)
            for _ in range(erp.erp_copies - 1):
                add("erp", erp.order_no, erp.amount, sale.day, Expect.CASE, case_type="DUPLICATE")
        if channel is not None:
            source = channel.channel
            amount = channel.channel_amount
            day = sale.channel_day
            if erp is None:
                add(source, channel.channel_txn_id, amount, day, Expect.CASE, case_type="MISSING_IN_ERP")
            elif pay_case:
                add(source, channel.channel_txn_id, amount, day, Expect.CASE, group=group, case_type=pay_case)
            else:
                add(source, channel.channel_txn_id, amount, day, Expect.MATCH, group=group)
            for _ in range(sale.channel_copies - 1):
                add(source, channel.channel_txn_id, amount, day, Expect.CASE, case_type="DUPLICATE")
        erp_refunds = {r.refund_no: r for r in (erp.refunds if erp else [])}
        channel_refunds = {r.refund_no: r for r in (channel.refunds if channel else []) if r.in_channel}
        for refund_no in sorted(set(erp_refunds) | set(channel_refunds)):
            refund_group = f"refund:{order_no}#{refund_no}"
            mine, theirs = erp_refunds.get(refund_no), channel_refunds.get(refund_no)
            if mine is not None and erp is not None:
                txn = f"{erp.order_no}#{refund_no}"
                if theirs is None:
                    add("erp", txn, -mine.amount, sale.day, Expect.CASE, case_type="MISSING_IN_CHANNEL")
                elif mine.amount != theirs.amount:
                    add("erp", txn, -mine.amount, sale.day, Expect.CASE, group=refund_group,
                        case_type="AMOUNT_MISMATCH")  # fmt: skip
                else:
                    add("erp", txn, -mine.amount, sale.day, Expect.MATCH, group=refund_group)
            if theirs is not None and channel is not None:
                refund_id = theirs.channel_refund_id if channel.channel == "wechat" else refund_no
                txn = f"{channel.channel_txn_id}#{refund_id}"
                day = sale.channel_day
                if mine is None:
                    unbooked_full = scenario == "refund-unbooked-full"
                    add(channel.channel, txn, -theirs.amount, day, Expect.CASE,
                        case_type="STATUS_MISMATCH" if unbooked_full else "MISSING_IN_ERP")  # fmt: skip
                elif mine.amount != theirs.amount:
                    add(channel.channel, txn, -theirs.amount, day, Expect.CASE, group=refund_group,
                        case_type="AMOUNT_MISMATCH")  # fmt: skip
                else:
                    add(channel.channel, txn, -theirs.amount, day, Expect.MATCH, group=refund_group)

    def _label_ambiguity(self) -> None:
        """Flag rows that an amount-and-time pass cannot pair with certainty (docs/accuracy.md).

        The residue is every row no key links: ERP rows without a keyed channel partner and channel rows
        whose reference is missing, mangled or unknown to the ERP. Two residue rows of opposite sides are
        confusable when they have the same signed amount and lie within ``ambiguity_window_s``. In a connected
        set of confusable rows, only the true pairs that every maximum one-to-one pairing contains are
        unambiguous (``_certain_pairs``).
        """
        facts = self._row_facts()
        keyless = {"mangled-ref", "ambiguous-twin"}
        nodes: list[_Node] = []
        for index, label in enumerate(self.labels):
            if label.expect is Expect.FILTERED or label.case_type == "DUPLICATE":
                continue
            residue = label.scenario in keyless or label.case_type in (
                "MISSING_IN_CHANNEL",
                "MISSING_IN_ERP",
            )
            residue |= label.scenario == "refund-unbooked-full" and label.case_type == "STATUS_MISMATCH"
            if residue:
                side = "erp" if label.source == "erp" else "channel"
                at, ref = facts[(label.source, label.txn_id)]
                nodes.append(_Node(index, side, label.amount_minor, at, label.group, ref))
        window = timedelta(seconds=self.d.ambiguity_window_s)
        edges: dict[int, set[int]] = defaultdict(set)
        by_amount: dict[int, list[int]] = defaultdict(list)
        for n, node in enumerate(nodes):
            by_amount[node.amount].append(n)
        for members in by_amount.values():
            for i in members:
                for j in members:
                    a, b = nodes[i], nodes[j]
                    # Rows naming different orders are not confusable: the window pass never pairs them
                    # (WindowMatchRule.reject_conflicting_orders, on in the labelled days' project).
                    if (
                        a.side == "erp"
                        and b.side == "channel"
                        and abs(a.at - b.at) <= window
                        and not orders_conflict(a.order_ref, b.order_ref)
                    ):
                        edges[i].add(j)
                        edges[j].add(i)
        seen: set[int] = set()
        for n in range(len(nodes)):
            if n in seen or not edges[n]:
                continue
            component, stack = set(), [n]
            while stack:
                current = stack.pop()
                if current not in component:
                    component.add(current)
                    stack.extend(edges[current] - component)
            seen |= component
            certain = _certain_pairs(component, edges, nodes)
            for i in sorted(component - certain):
                label = self.labels[nodes[i].label_index]
                self.labels[nodes[i].label_index] = replace(label, ambiguous=True)

    def _row_facts(self) -> dict[tuple[str, str], tuple[datetime, str]]:
        """Per row: when its side booked it (ERP: paid / refund done; channel: completion) and the order
        reference it carries (the ERP's order number; the channel's, maybe mangled)."""
        facts: dict[tuple[str, str], tuple[datetime, str]] = {}
        for sale in self.sales:
            if sale.erp is not None:
                erp = sale.erp
                facts[("erp", erp.order_no)] = (erp.paid_at or erp.created_at, erp.order_no)
                for r in erp.refunds:
                    facts[("erp", f"{erp.order_no}#{r.refund_no}")] = (r.erp_done_at, erp.order_no)
            if sale.channel is not None:
                ch = sale.channel
                facts[(ch.channel, ch.channel_txn_id)] = (ch.channel_at, ch.order_no)
                for r in ch.refunds:
                    refund_id = r.channel_refund_id if ch.channel == "wechat" else r.refund_no
                    facts[(ch.channel, f"{ch.channel_txn_id}#{refund_id}")] = (r.channel_at, ch.order_no)
        return facts

    # -- bank ------------------------------------------------------------------------------------------

    def _render_bank(self) -> None:
        rng = self.rng
        d = self.d
        first = self.days[0] + timedelta(days=1)
        last = max([b.due for b in self.batches], default=self.days[-1] + timedelta(days=1))
        wechat = [b for b in self.batches if b.channel == "wechat"]
        missing = {id(b) for b in wechat if rng.random() < d.bank_missing_share}
        if d.bank_missing_share > 0 and not missing and wechat:
            missing.add(id(wechat[len(wechat) // 2]))
        due: dict[tuple[str, date], list[_Batch]] = defaultdict(list)
        for batch in self.batches:
            if id(batch) not in missing:
                due[(batch.channel, batch.due)].append(batch)
        single = [key for key, batches in sorted(due.items()) if len(batches) == 1]
        short = {key for key in single if rng.random() < d.bank_short_share}
        if d.bank_short_share > 0 and not short and single:
            short.add(single[-1])

        for batch in self.batches:
            if id(batch) in missing:
                self._aggregate(batch, Expect.CASE, case_type="MISSING_IN_BANK", scenario="bank-missing")

        opening = rng.randrange(50_000_000, 300_000_000)
        statement_dates = [first + timedelta(days=i) for i in range((last - first).days + 1)]
        unknown_days = {s for s in statement_dates if rng.random() < d.bank_unknown_credit_share}
        if d.bank_unknown_credit_share > 0 and not unknown_days:
            unknown_days.add(statement_dates[len(statement_dates) // 2])
        interest_days = {s for s in statement_dates if rng.random() < d.bank_interest_share}
        fee_days = {s for s in statement_dates if rng.random() < d.bank_fee_share}
        if d.bank_interest_share > 0 and not interest_days:
            interest_days.add(statement_dates[0])
        if d.bank_fee_share > 0 and not fee_days:
            fee_days.add(statement_dates[-1])
        ref_base = rng.randrange(100_000, 800_000)

        for stmt_day in statement_dates:
            name = f"camt053_{BANK_ACCOUNT}_{stmt_day:%Y%m%d}.xml"
            entries: list[tuple[_BankEntry, Expect, dict[str, str], list[_Batch]]] = []
            if stmt_day in interest_days:
                entry = _BankEntry(
                    amount=rng.randrange(800, 9000),
                    credit=True,
                    booked=datetime.combine(stmt_day, time(0, 30, rng.randrange(60))),
                    domain=("ACMT", "MCOP", "INTR"),
                    party=CMB_NAME,
                    party_account="",
                    memo="结息",
                )
                entries.append(
                    (entry, Expect.FILTERED, {"filter_rule": FILTER_BANK_FEES, "scenario": "interest"}, [])
                )
            for channel in ("wechat", "alipay"):
                batches = due.get((channel, stmt_day), [])
                if not batches:
                    continue
                amount = sum(b.net for b in batches)
                labels: dict[str, str] = {"scenario": "settlement" if len(batches) == 1 else "batch-payout"}
                expect = Expect.MATCH
                if (channel, stmt_day) in short:
                    amount -= rng.choice((1000, 500, 1, rng.randrange(2, 5000)))
                    expect = Expect.CASE
                    labels = {"case_type": "AMOUNT_MISMATCH", "scenario": "bank-short"}
                entry = _settlement_entry(channel, stmt_day, batches, amount, rng)
                entries.append((entry, expect, labels, batches))
            if stmt_day in unknown_days:
                entry = _BankEntry(
                    amount=rng.randrange(50_000, 2_000_000),
                    credit=True,
                    booked=datetime.combine(stmt_day, time(14, rng.randrange(60), rng.randrange(60))),
                    domain=("PMNT", "RCDT", "BOOK"),
                    party=_CUSTOMER_COMPANY[0],
                    party_account=_CUSTOMER_COMPANY[1],
                    memo=f"货款 合同{rng.randrange(1000, 9999)}",
                )
                entries.append(
                    (entry, Expect.CASE, {"case_type": "MISSING_IN_CHANNEL", "scenario": "bank-unknown"}, [])
                )
            if stmt_day in fee_days:
                entry = _account_fee(stmt_day, rng)
                entries.append(
                    (entry, Expect.FILTERED, {"filter_rule": FILTER_BANK_FEES, "scenario": "fee"}, [])
                )
            entries.sort(key=lambda item: item[0].booked)
            bank_entries = [e for e, _, _, _ in entries]
            ref_base = _number_entries(bank_entries, stmt_day, ref_base, rng)
            day = _Day(business_date=stmt_day - timedelta(days=1), rng=rng, orders=[])
            xml, closing = _bank_statement(day, bank_entries, opening)
            self.files.append(LabelledFile(BANK_ACCOUNT, stmt_day, name, xml))
            opening = closing
            for entry, expect, extra, settled in entries:
                self._bank_label(entry, stmt_day, name, expect, extra, batches=settled)
        self._number_labels()

    def _bank_label(
        self,
        entry: _BankEntry,
        stmt_day: date,
        name: str,
        expect: Expect,
        extra: dict[str, str],
        *,
        batches: list[_Batch],
    ) -> None:
        signed = entry.amount if entry.credit else -entry.amount
        group = f"settle:{entry.ref}" if batches and expect is Expect.MATCH else ""
        self.labels.append(
            RowLabel(
                label_id="",
                source="bank",
                account_id=BANK_ACCOUNT,
                txn_id=entry.ref,
                amount_minor=signed,
                currency=CURRENCY,
                file=name,
                statement_date=stmt_day,
                expect=expect,
                group=group,
                case_type=extra.get("case_type", ""),
                filter_rule=extra.get("filter_rule", ""),
                scenario=extra.get("scenario", "plain"),
            )
        )
        for batch in batches:
            if expect is Expect.MATCH:
                self._aggregate(batch, Expect.MATCH, group=group, scenario=extra["scenario"])
            else:
                self._aggregate(batch, Expect.COUNTERPART, scenario=extra["scenario"])

    def _aggregate(
        self, batch: _Batch, expect: Expect, *, group: str = "", case_type: str = "", scenario: str
    ) -> None:
        account = _CHANNEL_ACCOUNT[batch.channel]
        self.labels.append(
            RowLabel(
                label_id="",
                source=batch.channel,
                account_id=account,
                txn_id=f"{account}@{batch.day.isoformat()}",
                amount_minor=batch.net,
                currency=CURRENCY,
                file="",
                statement_date=batch.day,
                expect=expect,
                group=group,
                case_type=case_type,
                aggregate=True,
                scenario=scenario,
            )
        )

    def _number_labels(self) -> None:
        """Final ids (``~n`` on repeats) and a check that every label names a file of the set."""
        names = {(f.account_id, f.statement_date): f.name for f in self.files if not f.redelivery_of}
        seen: dict[tuple[str, str], int] = defaultdict(int)
        numbered: list[RowLabel] = []
        for label in self.labels:
            key = (label.source, label.txn_id)
            seen[key] += 1
            label_id = f"{label.source}:{label.txn_id}" + (f"~{seen[key]}" if seen[key] > 1 else "")
            file = label.file
            if not label.aggregate:
                file = names[(label.account_id, label.statement_date)]
            numbered.append(replace(label, label_id=label_id, file=file))
        self.labels = numbered


def _expected_file(account_id: str, day: date) -> str:
    """Placeholder until the files exist; ``_number_labels`` replaces it with the real name."""
    return f"{account_id}@{day.isoformat()}"


def _settlement_entry(
    channel: str, stmt_day: date, batches: list[_Batch], amount: int, rng: random.Random
) -> _BankEntry:
    days = ",".join(f"{b.day:%Y%m%d}" for b in batches)
    payout = _wechat_payout if channel == "wechat" else _alipay_payout
    return payout(stmt_day, amount, days, rng)


def _wrong_amount(rng: random.Random, amount: int) -> int:
    """What a channel charged instead: a fen off, a yuan off, or another price point."""
    choices = [amount + 1, amount - 1, amount + 100, amount - 1000, amount + 1000]
    choices = [c for c in choices if c > 0 and c != amount]
    return rng.choice(choices)


def _wrong_refund(rng: random.Random, refund: int, paid: int) -> int:
    choices = [
        c for c in (refund + 100, refund - 100, refund + 1, refund - 1) if 0 < c <= paid and c != refund
    ]
    return rng.choice(choices)


def _mangle(rng: random.Random, order_no: str) -> str:
    """A merchant order number as some channel rows carry it: missing, cut, without prefix, or suffixed.

    None of these can equal another ERP order number (those are all ``SO`` + 14 digits).
    """
    kind = rng.choice(("missing", "missing", "truncated", "no-prefix", "suffix"))
    if kind == "missing":
        return ""
    if kind == "truncated":
        return order_no[:-2]
    if kind == "no-prefix":
        return order_no[2:]
    return f"{order_no}_{rng.randrange(1, 4)}"


def _revoke(bill: bytes, txn_ids: Iterable[str]) -> bytes:
    """Set 交易状态 to REVOKED on the given payment rows of a WeChat Pay ALL bill (amounts unchanged, so the
    bill's control totals still hold): the channel revoked what the ERP thinks is paid."""
    wanted = set(txn_ids)
    if not wanted:
        return bill
    lines = bill.decode("utf-8").split("\r\n")
    for n, line in enumerate(lines):
        fields = line.split(",")
        if len(fields) == 27 and fields[5][1:] in wanted and fields[14] == "`0" and fields[9] == "`SUCCESS":
            fields[9] = "`REVOKED"
            lines[n] = ",".join(fields)
    return "\r\n".join(lines).encode("utf-8")
