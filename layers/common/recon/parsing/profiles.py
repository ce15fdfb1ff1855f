"""Parsing profiles: how to read one tabular statement layout, as data (YAML/JSON), validated and versioned.

A profile says how to recognise a layout (``match``), how to cut the file into preamble, header, data rows,
footer lines and summary sections (``lines``, ``sections``, ``archive``), how every standard field is made
from the file's columns (``fields``, with per-row-kind overrides in ``kinds``), which totals the file states
about itself (``control_totals``) and which fields identify a row (``dedupe_key``). The engine
(``recon.parsing.engine``) runs any profile; the built-in ones live in ``recon/parsing/builtin/*.yaml``.
The format is documented in docs/parsing.md; ``profile_json_schema()`` is its JSON Schema.

Columns are always named by their header text (aliases allowed: the first one present in the file wins),
compared after NFKC normalisation without spaces (so ``（元）`` equals ``(元)``).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator, Mapping
from decimal import Decimal
from functools import cache
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from recon.domain.common import Source
from recon.domain.statement import TxnStatus, TxnType

BUILTIN_DIR = Path(__file__).with_name("builtin")

# Standard fields a profile can fill, and what they become (see recon.tables.TRANSACTION_SCHEMA).
TEXT_FIELDS = ("txn_id", "order_ref", "refund_ref", "counterparty", "memo")
AMOUNT_FIELDS = ("amount", "fee", "gross")
STANDARD_FIELDS = (
    "txn_id",
    "order_ref",
    "refund_ref",
    "amount",
    "fee",
    "gross",  # optional: a channel payment's amount before merchant-funded discounts (schema version 3)
    "currency",
    "booked_at",
    "value_date",
    "txn_type",
    "status",
    "counterparty",
    "memo",
)
REQUIRED_FIELDS = ("txn_id", "amount", "booked_at")
ALL_ROWS = "all"  # the row group every data row belongs to (control totals)

Columns = list[str]  # header names: aliases of one column, the first present in the file wins


def _regex(value: str) -> str:
    """A regex that compiles (pydantic reports ValueError, not re.error)."""
    try:
        re.compile(value)
    except re.error as exc:
        raise ValueError(f"bad regex {value!r}: {exc}") from None
    return value


def _as_list(value: Any) -> Any:
    return [value] if isinstance(value, str) else value


class _Spec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


# ------------------------------------------------------------------------------------------- pieces


_DATE_TOKENS = (
    ("yyyy", "%Y"),
    ("MM", "%m"),
    ("dd", "%d"),
    ("DD", "%d"),
    ("HH", "%H"),
    ("mm", "%M"),
    ("ss", "%S"),
)


def strptime_format(pattern: str) -> str:
    """``yyyy/MM/dd  HH:mm:ss`` (the issue's notation: MM month, mm minute, dd or DD day; text in single
    quotes is literal, as in ``yyyy-MM-dd'T'HH:mm:ss``) -> strptime."""
    out: list[str] = []
    i = 0
    while i < len(pattern):
        if pattern[i] == "'":  # 'T': quoted literal text
            end = pattern.find("'", i + 1)
            if end < 0:
                raise ValueError(f"date pattern {pattern!r}: unclosed quote")
            out.append(pattern[i + 1 : end].replace("%", "%%"))
            i = end + 1
            continue
        for token, code in _DATE_TOKENS:
            if pattern.startswith(token, i):
                out.append(code)
                i += len(token)
                break
        else:
            char = pattern[i]
            if char.isalpha():
                raise ValueError(
                    f"date pattern {pattern!r}: unknown letter {char!r} (use yyyy MM dd HH mm ss)"
                )
            out.append("%%" if char == "%" else char)
            i += 1
    return "".join(out)


def has_year(pattern: str) -> bool:
    return "yyyy" in pattern


class Condition(_Spec):
    """A test on one row's (cleaned) cells. Leaves name a ``column``; ``all``/``any``/``not`` combine."""

    column: Columns | None = Field(default=None, description="Header name(s) of the tested column")
    equals: str | None = None
    in_: list[str] | None = Field(default=None, alias="in", description="Value is one of these")
    not_in: list[str] | None = Field(default=None, description="Value is none of these")
    empty: bool | None = Field(default=None, description="true: value is empty; false: value is not empty")
    regex: str | None = Field(default=None, description="Python regex searched in the value")
    nonzero: bool | None = Field(
        default=None, description="true: a non-zero amount (text that is not an amount counts as non-zero)"
    )
    ignore_case: bool = False
    all_: list[Condition] | None = Field(default=None, alias="all")
    any_: list[Condition] | None = Field(default=None, alias="any")
    not_: Condition | None = Field(default=None, alias="not")

    _as_list_column = field_validator("column", mode="before")(_as_list)

    @model_validator(mode="after")
    def _one_shape(self) -> Condition:
        tests = [
            t
            for t in (self.equals, self.in_, self.not_in, self.empty, self.regex, self.nonzero)
            if t is not None
        ]
        combinators = [c for c in (self.all_, self.any_, self.not_) if c is not None]
        if combinators:
            if len(combinators) > 1 or self.column is not None or tests:
                raise ValueError("use exactly one of all / any / not, without column tests beside it")
        elif self.column is None or len(tests) != 1:
            raise ValueError("a condition names a column and exactly one test (equals, in, not_in, ...)")
        if self.regex is not None:
            _regex(self.regex)
        return self

    def columns(self) -> Iterator[Columns]:
        if self.column is not None:
            yield self.column
        for sub in (*(self.all_ or ()), *(self.any_ or ()), *([self.not_] if self.not_ else [])):
            yield from sub.columns()


class AmountFormat(_Spec):
    """How amounts are written. Values are exact: more digits than the currency's minor unit reject the row."""

    thousands: str = Field(default=",", description="Thousands separator ('' for none)")
    decimal: str = Field(default=".", description="Decimal separator ('.' or ',')")
    symbols: list[str] = Field(
        default=["¥", "$"], description="Currency symbols or prefixes removed first, e.g. ['CNY', '¥']"
    )
    minor_units: bool = Field(default=False, description="The value is already an integer of minor units")

    @model_validator(mode="after")
    def _separators(self) -> AmountFormat:
        if self.decimal not in (".", ","):
            raise ValueError("decimal must be '.' or ','")
        if self.thousands == self.decimal:
            raise ValueError("thousands and decimal separators must differ")
        if len(self.thousands) > 1:
            raise ValueError("thousands is one character or empty")
        return self


class SignFrom(_Spec):
    """The sign of an unsigned amount, from an indicator column (``借 Dr`` / ``贷 Cr``, 收入 / 支出)."""

    column: Columns
    map: dict[str, Literal["+", "-"]]
    ignore_case: bool = False
    reason: str = Field(
        default="unknown debit/credit indicator {value}",
        description="Rejection reason for a value not in map ({value} is replaced by it)",
    )

    _as_list_column = field_validator("column", mode="before")(_as_list)


class FieldSpec(_Spec):
    """How one standard field is made. Exactly one source: column, first_of, template, join, const, digest
    or credit/debit (amounts). Then cleaning, conversion by the field's type, and validation."""

    # source
    column: Columns | None = Field(default=None, description="Header name(s), aliases; first present wins")
    first_of: list[str] | None = Field(
        default=None, description="Several columns: per row, the first non-empty value"
    )
    template: str | None = Field(
        default=None, description="'{column}' placeholders, e.g. '{微信订单号}#{微信退款单号}'"
    )
    join: list[str] | None = Field(
        default=None, description="Columns whose non-empty values are joined with sep"
    )
    sep: str = " "
    const: str | None = None
    digest: list[str] | None = Field(
        default=None,
        description="A deterministic id from these columns' values (for files without a transaction id)",
    )
    credit: Columns | None = Field(
        default=None, description="Amounts: money-in column (amount = credit - debit)"
    )
    debit: Columns | None = Field(default=None, description="Amounts: money-out column (its sign is ignored)")
    optional: bool = Field(default=False, description="The column may be absent from the file (then empty)")
    # cleaning
    null_values: list[str] = Field(default=[], description="Values that mean empty, e.g. '-' or '0'")
    replace: dict[str, str] = Field(default={}, description="Substring replacements")
    extract: str | None = Field(
        default=None, description="Regex; its first group (or the match) is the value"
    )
    default: str | None = Field(default=None, description="Value used when empty")
    # validation
    required: bool = False
    required_reason: str = "required value is empty"
    # dates and times
    formats: list[str] = Field(
        default=[], description="Date/time patterns tried in order: yyyy MM dd (or DD) HH mm ss"
    )
    year_from: str | None = Field(
        default=None, description="Capture holding the year for patterns without one"
    )
    month_from: str | None = Field(
        default=None,
        description="Capture holding the statement month: later months belong to the year before",
    )
    # amounts
    amount: AmountFormat = AmountFormat()
    negate: bool = False
    unsigned: bool = Field(default=False, description="Reject values written with a sign")
    unsigned_reason: str = "amount must be unsigned"
    abs: bool = False
    sign_of: Literal["amount"] | None = Field(
        default=None, description="Take the magnitude, signed like the row's amount (fees)"
    )
    sign_from: SignFrom | None = None
    min: Decimal | None = None
    max: Decimal | None = None
    range_reason: str | None = None
    # value maps (status, txn_type, currency)
    map: dict[str, str] | None = Field(default=None, description="Exact value map")
    contains: list[tuple[str, str]] | None = Field(
        default=None, description="[[needle, value], ...]: the first needle found in the value wins"
    )
    ignore_case: bool = False
    map_default: str | None = Field(default=None, description="Value for anything not mapped")
    unknown_reason: str = "unknown value {value}"

    _lists = field_validator("column", "credit", "debit", mode="before")(_as_list)

    @model_validator(mode="after")
    def _one_source(self) -> FieldSpec:
        sources = [
            s
            for s in (self.column, self.first_of, self.template, self.join, self.const, self.digest)
            if s is not None
        ]
        dc = self.credit is not None or self.debit is not None
        if len(sources) + (1 if dc else 0) != 1:
            raise ValueError(
                "a field has exactly one source: column, first_of, template, join, const, digest, "
                "or credit/debit"
            )
        for pattern in self.formats:
            strptime_format(pattern)
        if self.extract is not None:
            _regex(self.extract)
        if self.map is not None and self.contains is not None:
            raise ValueError("use map or contains, not both")
        return self

    def source_columns(self) -> list[Columns]:
        """Every column this spec reads (as alias lists)."""
        out: list[Columns] = []
        if self.column is not None:
            out.append(self.column)
        for name in (*(self.first_of or ()), *(self.join or ()), *(self.digest or ())):
            out.append([name])
        if self.template is not None:
            out += [[name] for name in template_columns(self.template)]
        for cols in (self.credit, self.debit):
            if cols is not None:
                out.append(cols)
        if self.sign_from is not None:
            out.append(self.sign_from.column)
        return out


_PLACEHOLDER = re.compile(r"\{([^{}]+)\}")


def template_columns(template: str) -> list[str]:
    return _PLACEHOLDER.findall(template)


def template_parts(template: str) -> list[tuple[bool, str]]:
    """[(is_column, text)] of a template."""
    parts: list[tuple[bool, str]] = []
    pos = 0
    for m in _PLACEHOLDER.finditer(template):
        if m.start() > pos:
            parts.append((False, template[pos : m.start()]))
        parts.append((True, m.group(1)))
        pos = m.end()
    if pos < len(template):
        parts.append((False, template[pos:]))
    return parts


class Check(_Spec):
    """A row of this kind is rejected unless ``require`` holds."""

    require: Condition
    reason: str
    column: str | None = Field(
        default=None, description="Column named in the rejection (default: the tested one)"
    )


class RowKind(_Spec):
    """A kind of data row (payment, refund, income, ...): the first kind whose ``when`` holds wins; a kind
    without ``when`` takes every row left. Kinds are also the row groups control totals count and sum."""

    name: str = Field(pattern=r"^[a-z0-9_]+$")
    when: Condition | None = None
    fields: dict[str, FieldSpec] = Field(default={}, description="Overrides of the profile's fields")
    checks: list[Check] = []


class LineRule(_Spec):
    """Lines skipped under ``name`` (recorded in skipped_by_rule). ``regex`` is matched against the raw line;
    start it with ``^`` and literal text so the engine can find it fast."""

    name: str = Field(pattern=r"^[a-z0-9_]+$")
    regex: str
    scope: Literal["any", "before_header", "after_header"] = "any"
    ends_data: bool = Field(default=True, description="After the header, the first such line ends the data")

    @field_validator("regex")
    @classmethod
    def _compiles(cls, value: str) -> str:
        return _regex(value)


class Section(_Spec):
    """A block after the data (a summary): starts at a line matching ``start``, ``lines`` long (or to the end
    of the file). Its lines are skipped under ``name``; its table (a header row and a values row) states
    control totals. ``table_header``: ``start`` (the section's first line), ``file`` (the file's column header)
    or a regex; ``table_values``: ``next`` (the line after the table header), ``start``, or a regex."""

    name: str = Field(pattern=r"^[a-z0-9_]+$")
    start: str = Field(description="Regex on the raw line")
    lines: int | None = Field(
        default=None, ge=1, description="Length including the start line; none: to the end"
    )
    table_header: str = "start"
    table_values: str = "next"
    required: bool = False
    missing: str | None = Field(default=None, description="File error when a required section is absent")

    @field_validator("start")
    @classmethod
    def _compiles(cls, value: str) -> str:
        return _regex(value)


class Capture(_Spec):
    """A value read from a preamble, footer or section line (NFKC-normalised), e.g. the statement year for
    ``MM/DD`` dates. ``statement_date`` is special: groups y, m, d give the statement's date."""

    name: str = Field(pattern=r"^[a-z0-9_]+$")
    regex: str

    @field_validator("regex")
    @classmethod
    def _compiles(cls, value: str) -> str:
        return _regex(value)


class ArchiveMember(_Spec):
    """One kind of zip member. ``role: data`` is the member the profile's rows come from; any other role is
    a summary member: its records are skipped under ``role`` and its ``section`` table states totals."""

    role: str = Field(pattern=r"^[a-z0-9_]+$")
    first_line: list[str] = Field(default=[], description="The member's first non-blank line starts with one")
    name_suffix: list[str] = Field(default=[], description="Or its entry name ends with one")
    required: bool = True
    table_header: str | None = Field(default=None, description="Regex of the table header line")
    table_values: str | None = Field(default=None, description="Regex of the stated values line")


class Archive(_Spec):
    members: list[ArchiveMember]
    unknown_members: Literal["reject", "skip"] = "reject"

    @model_validator(mode="after")
    def _one_data(self) -> Archive:
        if sum(m.role == "data" for m in self.members) != 1:
            raise ValueError("an archive names exactly one member with role: data")
        return self


class TotalValue(_Spec):
    """One stated total and what it is compared with: ``count`` (data rows of a kind, rejected rows included)
    or ``sum`` (a column, as written, over the parsed rows of a kind)."""

    key: str | None = Field(default=None, description="Suffix of the total's name (default: the column)")
    column: Columns | None = Field(default=None, description="Section totals: the stated column")
    regex: str | None = Field(default=None, description="Line totals: regex whose first group is the value")
    count: str | None = Field(default=None, description="Row kind counted ('all' for every data row)")
    sum: Columns | None = Field(default=None, description="Column summed as an amount")
    sum_kind: str = ALL_ROWS
    sum_abs: bool = Field(default=False, description="Sum magnitudes")
    required: bool = Field(default=True, description="Section totals: the stated column must be present")
    amount: AmountFormat = AmountFormat()

    _lists = field_validator("column", "sum", mode="before")(_as_list)

    @model_validator(mode="after")
    def _shape(self) -> TotalValue:
        if (self.count is None) == (self.sum is None):
            raise ValueError("a total is either a count or a sum")
        if (self.column is None) == (self.regex is None):
            raise ValueError("a total is stated by a section column or by a regex on a line")
        if self.regex is not None:
            _regex(self.regex)
        return self


class ControlTotal(_Spec):
    """Totals stated by a section's table (``section``) or by one skipped line (``line`` regex, optionally
    only among lines skipped under ``rule``). The parsed rows must reproduce them exactly."""

    name: str = Field(description="Prefix of the totals' names, e.g. 'summary' or 'footer.交易合计'")
    section: str | None = None
    line: str | None = Field(default=None, description="Regex on the NFKC-normalised line")
    rule: str | None = None
    label: str | None = Field(default=None, description="Column named in errors (line totals)")
    required: bool = False
    missing: str | None = None
    values: list[TotalValue]

    @model_validator(mode="after")
    def _where(self) -> ControlTotal:
        if (self.section is None) == (self.line is None):
            raise ValueError("control totals come from a section or from a line")
        if self.line is not None:
            _regex(self.line)
        return self


class Match(_Spec):
    """How a file is recognised: every listed marker must hold. ``confidence`` is reported when it does."""

    first_line: list[str] = Field(default=[], description="The first non-blank line starts with one of these")
    header: list[str] = Field(default=[], description="Header names that must all be present")
    header_absent: list[str] = Field(default=[], description="Header names that must not be present")
    confidence: float = Field(default=0.9, ge=0.0, le=1.0)


class Profile(_Spec):
    """One statement layout, as data. See docs/parsing.md for every key with examples."""

    name: str = Field(
        pattern=r"^[a-z0-9][a-z0-9_.-]{1,80}$", description="Format id, e.g. bank.icbc.debit_v1"
    )
    version: str = Field(min_length=1, max_length=40, description="Recorded on every parsed row")
    description: str = ""
    extends: str | None = Field(default=None, description="Name of a profile whose keys this one overrides")
    source: Source | None = Field(default=None, description="Which side the layout belongs to (a hint)")
    match: Match = Match()
    container: Literal["csv", "xls", "xlsx", "json", "pdf"] = "csv"
    encoding: Literal["auto", "utf-8", "gbk", "gb18030"] = "auto"
    encodings: list[Literal["utf-8", "gbk", "gb18030"]] = Field(
        default=["utf-8", "gbk", "gb18030"], description="Order tried when encoding is auto (a BOM wins)"
    )
    delimiter: str = Field(default=",", description="One character, or 'auto' (sniffed: , TAB ; |)")
    quote: str = '"'
    sheet: int | str = Field(default=0, description="xls/xlsx: sheet index or name")
    json_records: str | None = Field(default=None, description="json: dotted path to the array of records")
    header_scan: int = Field(default=60, ge=1, description="Lines searched for the column header")
    header: list[str] = Field(
        default=[], description="Header names locating the header row (default match.header)"
    )
    strip: str = Field(default="", description="Characters trimmed from every cell besides whitespace")
    strip_prefix: str = Field(default="", description="One leading occurrence removed from every cell ('`')")
    extra_fields: Literal["reject", "ignore"] = Field(
        default="reject",
        description="A data row with more fields than the header: reject it, or ignore the extra",
    )
    missing_fields: Literal["reject", "empty"] = Field(
        default="reject",
        description="A data row with fewer fields: reject it, or read the missing ones as empty",
    )
    lines: list[LineRule] = []
    sections: list[Section] = []
    captures: list[Capture] = []
    archive: Archive | None = None
    fields: dict[str, FieldSpec]
    kinds: list[RowKind] = []
    control_totals: list[ControlTotal] = []
    dedupe_key: list[str] = Field(default=["txn_id"], min_length=1)

    @model_validator(mode="after")
    def _consistent(self) -> Profile:
        if self.delimiter != "auto" and len(self.delimiter) != 1:
            raise ValueError("delimiter is one character or 'auto'")
        names = [k.name for k in self.kinds]
        if len(set(names)) != len(names) or ALL_ROWS in names:
            raise ValueError("row kind names must be unique and not 'all'")
        for fld in (*self.fields, *(f for k in self.kinds for f in k.fields)):
            if fld not in STANDARD_FIELDS:
                raise ValueError(f"unknown standard field {fld!r} (one of {', '.join(STANDARD_FIELDS)})")
        for fld in REQUIRED_FIELDS:
            if fld not in self.fields and not (self.kinds and all(fld in k.fields for k in self.kinds)):
                raise ValueError(f"field {fld!r} is required")
        for fld in self.dedupe_key:
            if fld not in STANDARD_FIELDS:
                raise ValueError(f"dedupe_key: unknown standard field {fld!r}")
        sections = {s.name for s in self.sections}
        if self.archive is not None:
            sections |= {m.role for m in self.archive.members if m.role != "data"}
        groups = {ALL_ROWS, *names}
        for total in self.control_totals:
            if total.section is not None and total.section not in sections:
                raise ValueError(f"control total {total.name!r}: no section {total.section!r}")
            for value in total.values:
                kind = value.count if value.count is not None else value.sum_kind
                if kind not in groups:
                    raise ValueError(f"control total {total.name!r}: no row kind {kind!r}")
        captures = {c.name for c in self.captures}
        for spec in (*self.fields.values(), *(s for k in self.kinds for s in k.fields.values())):
            for ref in (spec.year_from, spec.month_from):
                if ref is not None and ref not in captures:
                    raise ValueError(f"no capture named {ref!r}")
        self._check_field_types()
        return self

    def _check_field_types(self) -> None:
        for fld, spec in (*self.fields.items(), *((f, s) for k in self.kinds for f, s in k.fields.items())):
            if fld == "txn_type":
                self._check_enum(fld, spec, {t.value for t in TxnType})
            elif fld == "status":
                self._check_enum(fld, spec, {s.value for s in TxnStatus})
            if fld == "gross" and spec.column is None:
                raise ValueError("gross: give its column (the amount before merchant discounts, as written)")
            if (spec.credit is not None or spec.debit is not None) and fld not in AMOUNT_FIELDS:
                raise ValueError(f"{fld}: credit/debit only make amounts")
            if fld in ("booked_at", "value_date") and spec.const is None and not spec.formats:
                raise ValueError(f"{fld}: give its date/time formats")
            if any(not has_year(p) for p in spec.formats) and spec.year_from is None:
                raise ValueError(f"{fld}: a pattern without yyyy needs year_from")

    @staticmethod
    def _check_enum(fld: str, spec: FieldSpec, allowed: set[str]) -> None:
        values = set()
        if spec.const is not None:
            values.add(spec.const)
        values |= set((spec.map or {}).values()) | {v for _, v in spec.contains or ()}
        if spec.map_default is not None:
            values.add(spec.map_default)
        if spec.const is None and spec.map is None and spec.contains is None:
            raise ValueError(f"{fld}: give const, map or contains")
        bad = values - allowed
        if bad:
            raise ValueError(f"{fld}: {sorted(bad)} not among {sorted(allowed)}")

    # ---------------------------------------------------------------------------------- construction

    @classmethod
    def from_data(cls, data: Mapping[str, Any], *, known: Mapping[str, Profile] | None = None) -> Profile:
        """Validate one profile document; ``extends`` is resolved against ``known`` (default: built-ins)."""
        doc = dict(data)
        parent = doc.get("extends")
        if parent:
            pool = builtin_latest() if known is None else known
            if parent not in pool:
                raise ValueError(f"profile {doc.get('name')!r} extends unknown profile {parent!r}")
            doc = merge(pool[parent].model_dump(mode="json", by_alias=True, exclude_defaults=True), doc)
        return cls.model_validate(doc)

    @classmethod
    def from_yaml(cls, text: str, *, known: Mapping[str, Profile] | None = None) -> Profile:
        data = yaml.safe_load(text)
        if not isinstance(data, dict):
            raise ValueError("a profile document is a mapping")
        return cls.from_data(data, known=known)

    @classmethod
    def from_json(cls, text: str, *, known: Mapping[str, Profile] | None = None) -> Profile:
        data = json.loads(text)
        if not isinstance(data, dict):
            raise ValueError("a profile document is an object")
        return cls.from_data(data, known=known)

    @property
    def key(self) -> tuple[str, str]:
        return (self.name, self.version)

    def header_names(self) -> list[str]:
        return self.header or self.match.header

    def kind_fields(self, kind: RowKind | None) -> dict[str, FieldSpec]:
        """The effective field specs of a row kind (the profile's, overridden by the kind's), in order."""
        merged = dict(self.fields)
        if kind is not None:
            merged.update(kind.fields)
        return merged


def merge(base: Mapping[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    """Deep merge for ``extends``: mappings merge key by key, anything else (lists too) is replaced."""
    out = dict(base)
    for key, value in override.items():
        if key == "extends":
            continue
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = merge(out[key], value)
        else:
            out[key] = value
    return out


def version_key(version: str) -> tuple[tuple[int, int | str], ...]:
    """Natural order of version strings: '2' < '10', '1.2' < '1.10'."""
    return tuple((0, int(p)) if p.isdigit() else (1, p) for p in re.split(r"[.\-_]", version))


class ProfileSet:
    """Profiles by (name, version); the latest version of each name is the one detection uses."""

    def __init__(self, profiles: Iterable[Profile] = ()) -> None:
        self._all: dict[tuple[str, str], Profile] = {}
        for p in profiles:
            self.add(p)

    def add(self, profile: Profile) -> None:
        if profile.key in self._all and self._all[profile.key] != profile:
            raise ValueError(f"profile {profile.name} version {profile.version} defined twice, differently")
        self._all[profile.key] = profile

    def get(self, name: str, version: str | None = None) -> Profile:
        """A profile by name: the given version (for re-parsing with an earlier one) or the latest."""
        if version is not None:
            try:
                return self._all[(name, version)]
            except KeyError:
                raise KeyError(f"no profile {name} version {version}") from None
        found = [p for (n, _), p in self._all.items() if n == name]
        if not found:
            raise KeyError(f"no profile {name}")
        return max(found, key=lambda p: version_key(p.version))

    def versions(self, name: str) -> list[str]:
        return sorted((v for n, v in self._all if n == name), key=version_key)

    def latest(self) -> list[Profile]:
        """The latest version of every profile, in name order (detection order)."""
        return [self.get(n) for n in sorted({n for n, _ in self._all})]

    def __iter__(self) -> Iterator[Profile]:
        return iter(self._all.values())

    def __len__(self) -> int:
        return len(self._all)


def _documents(path: Path) -> list[dict[str, Any]]:
    text = path.read_text("utf-8")
    if path.suffix == ".json":
        loaded: Any = json.loads(text)
        docs = loaded if isinstance(loaded, list) else [loaded]
    else:
        docs = [d for d in yaml.safe_load_all(text) if d is not None]
    for doc in docs:
        if not isinstance(doc, dict):
            raise ValueError(f"{path.name}: a profile document is a mapping")
    return docs


def load_profiles(directory: str | Path, *, base: ProfileSet | None = None) -> ProfileSet:
    """Every profile in ``directory`` (``*.yaml``, ``*.yml``, ``*.json``; several YAML documents per file
    allowed). ``extends`` may name a profile of the same directory or of ``base`` (default: the built-ins);
    a profile extends the latest version of its parent. Raises ``ValueError`` naming the file on a bad one."""
    folder = Path(directory)
    pending: list[tuple[str, dict[str, Any]]] = []
    for path in sorted(folder.iterdir()):
        if path.suffix in (".yaml", ".yml", ".json") and path.is_file():
            pending += [(path.name, doc) for doc in _documents(path)]
    out = ProfileSet()
    known: dict[str, Profile] = {} if base is None else {p.name: p for p in base.latest()}
    if base is None and folder.resolve() != BUILTIN_DIR.resolve():
        known = {p.name: p for p in builtin_profiles().latest()}
    # Resolve parents first: repeat until no progress (a cycle or a missing parent is an error).
    while pending:
        progressed = False
        rest: list[tuple[str, dict[str, Any]]] = []
        local = {str(doc.get("name")) for _, doc in pending}
        for file, doc in pending:
            parent = doc.get("extends")
            if parent and parent in local and parent not in {p.name for p in out}:
                rest.append((file, doc))
                continue
            try:
                profile = Profile.from_data(doc, known={**known, **{p.name: out.get(p.name) for p in out}})
            except (ValidationError, ValueError) as exc:
                raise ValueError(f"{folder.name}/{file}: {exc}") from exc
            out.add(profile)
            progressed = True
        if not progressed:
            names = ", ".join(f"{f}:{d.get('name')}" for f, d in rest)
            raise ValueError(f"profiles extending each other in a cycle: {names}")
        pending = rest
    return out


@cache
def builtin_profiles() -> ProfileSet:
    """The profiles shipped in the layer (recon/parsing/builtin)."""
    return load_profiles(BUILTIN_DIR, base=ProfileSet())


def builtin_latest() -> dict[str, Profile]:
    return {p.name: p for p in builtin_profiles().latest()}


def profile_json_schema() -> dict[str, Any]:
    """JSON Schema of a profile document (checked in as docs/profile.schema.json)."""
    schema = Profile.model_json_schema(by_alias=True)
    schema["$id"] = "https://recon.example/profile.schema.json"
    schema["title"] = "recon parsing profile"
    return schema


if __name__ == "__main__":  # python -m recon.parsing.profiles > docs/profile.schema.json
    print(json.dumps(profile_json_schema(), ensure_ascii=False, indent=2))
