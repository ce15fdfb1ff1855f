"""Accounts that take part in a reconciliation."""

from __future__ import annotations

import ipaddress
import re
import string
from datetime import date
from enum import StrEnum
from typing import Annotated, Literal
from urllib.parse import urlsplit

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationInfo,
    field_serializer,
    field_validator,
    model_validator,
)

from .common import Source, mask_number


class Delivery(StrEnum):
    """How a statement reaches us."""

    UPLOAD = "upload"  # a person or system puts the file into the raw bucket
    API = "api"  # the fetcher pulls it from the provider's API
    SFTP = "sftp"  # the fetcher pulls it from the bank's SFTP server


# --- connector configuration (one per delivery that a fetcher pulls) ----------------------------------------

_LOOPBACK_NAMES = {"localhost"}
_SAMPLE_DATE = date(2000, 1, 31)


def _check_url(url: str, what: str) -> str:
    """HTTPS only; plain HTTP is accepted for loopback hosts (local fake providers, tunnels)."""
    parts = urlsplit(url)
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise ValueError(f"{what} must be an absolute https:// URL")
    if parts.username or parts.password:
        raise ValueError(f"{what} must not carry credentials (they belong in the Secrets Manager secret)")
    if parts.scheme == "http":
        host = parts.hostname
        try:
            loopback = ipaddress.ip_address(host).is_loopback
        except ValueError:
            loopback = host in _LOOPBACK_NAMES
        if not loopback:
            raise ValueError(f"{what} must use https:// (plain http only for loopback hosts)")
    return url


def _check_date_template(template: str, what: str) -> str:
    """A str.format template whose only field is ``{date}`` (with an optional strftime spec)."""
    fields = [name for _, name, _, _ in string.Formatter().parse(template) if name is not None]
    if not fields or any(name != "date" for name in fields):
        raise ValueError(f"{what} must contain a {{date:...}} placeholder and no other field")
    try:
        template.format(date=_SAMPLE_DATE)
    except (ValueError, IndexError) as exc:
        raise ValueError(f"{what}: {exc}") from None
    return template


class Environment(StrEnum):
    """Which provider endpoint a connector talks to (URLs come from the settings, never from code)."""

    PRODUCTION = "production"
    SANDBOX = "sandbox"
    CUSTOM = "custom"  # the account's own ``endpoint`` (private endpoint, proxy, local fake provider)


class FetchWindow(BaseModel):
    """When the provider publishes a day's statement, counted in hours from the end of the bill date
    (midnight in the project's time zone).

    Before ``opens_after_hours`` the fetcher does not call the provider; between the two bounds "not ready"
    is retried by the state machine; after ``closes_after_hours`` a statement that is still missing is
    overdue: the channel is recorded failed and the run alerts.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    opens_after_hours: float = Field(ge=0, le=744)
    closes_after_hours: float = Field(gt=0, le=744)

    @model_validator(mode="after")
    def _ordered(self) -> FetchWindow:
        if self.closes_after_hours <= self.opens_after_hours:
            raise ValueError("closes_after_hours must be after opens_after_hours")
        return self


class _Fetch(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class _ProviderApi(_Fetch):
    environment: Environment = Field(
        default=Environment.PRODUCTION,
        description="production / sandbox gateway from the settings, or custom: the `endpoint` given here",
    )
    endpoint: str | None = Field(default=None, description="Base URL when environment is custom")

    @field_validator("endpoint")
    @classmethod
    def _endpoint_url(cls, value: str | None) -> str | None:
        return None if value is None else _check_url(value, "endpoint")

    @model_validator(mode="after")
    def _endpoint_for_custom(self) -> _ProviderApi:
        if (self.environment is Environment.CUSTOM) != (self.endpoint is not None):
            raise ValueError("endpoint is required with environment 'custom' and only allowed with it")
        return self


AlipayBillType = Literal["trade", "signcustomer"]
WechatTradeBillType = Literal[
    "ALL", "SUCCESS", "REFUND", "RECHARGE_REFUND", "ALL_SPECIAL", "SUC_SPECIAL", "REF_SPECIAL"
]
WechatFundAccount = Literal["BASIC", "OPERATION", "FEES"]


class AlipayFetch(_ProviderApi):
    """Alipay ``alipay.data.dataservice.bill.downloadurl.query`` (signed RSA2 request, verified response)."""

    kind: Literal["alipay"] = "alipay"
    bill_types: list[AlipayBillType] = Field(
        default=["trade"],
        min_length=1,
        description="trade (业务明细) or signcustomer (账务明细): two views of the same money, fetch one",
    )
    window: FetchWindow = Field(
        default_factory=lambda: FetchWindow(opens_after_hours=9, closes_after_hours=15),
        description="Alipay publishes the day's bill at about 09:00 the next day",
    )

    @field_validator("bill_types")
    @classmethod
    def _unique(cls, value: list[AlipayBillType]) -> list[AlipayBillType]:
        if len(set(value)) != len(value):
            raise ValueError("bill_types must be unique")
        return value


class WechatFetch(_ProviderApi):
    """WeChat Pay APIv3 trade bills or fund-flow bills (one view), SHA1-checked against the API's hash."""

    kind: Literal["wechat"] = "wechat"
    bill_types: list[WechatTradeBillType] = Field(
        default=["ALL"],
        description="Trade bills (交易账单) to fetch; [] for an account that fetches its fund-flow bills",
    )
    fundflow_accounts: list[WechatFundAccount] = Field(
        default_factory=list,
        description="Fund-flow bills (资金账单) to fetch (BASIC, OPERATION, FEES), with bill_types: []: "
        "another view of the same money as the trade bill, so an account fetches one of the two",
    )
    gzip: bool = Field(default=True, description="Ask for tar_type=GZIP (stored as delivered)")
    window: FetchWindow = Field(
        default_factory=lambda: FetchWindow(opens_after_hours=10, closes_after_hours=16),
        description="WeChat Pay generates bills from 09:00 the next day; fetch after 10:00",
    )

    @model_validator(mode="after")
    def _no_sandbox(self) -> WechatFetch:
        if self.environment is Environment.SANDBOX:
            raise ValueError("WeChat Pay APIv3 has no sandbox: use production, or custom with an endpoint")
        for name, values in (("bill_types", self.bill_types), ("fundflow_accounts", self.fundflow_accounts)):
            if len(set(values)) != len(values):
                raise ValueError(f"{name} must be unique")
        if not self.bill_types and not self.fundflow_accounts:
            raise ValueError(
                "fetch at least one bill: bill_types (the 交易账单, trade bill) or fundflow_accounts (the "
                "资金账单, fund-flow bill)"
            )
        return self


# How a channel connector fetches each view of its bills (the families of ``recon.bill_views.VIEWS``): what
# to write in ``fetch`` to fetch that view alone.
_FETCH_ONLY = {
    "alipay.trade": "bill_types: [trade]",
    "alipay.signcustomer": "bill_types: [signcustomer]",
    "wechat.tradebill": "bill_types (e.g. [ALL]) and no fundflow_accounts",
    "wechat.fundflow": "fundflow_accounts (e.g. [BASIC]) and bill_types: []",
}
_ONE_VIEW_DOC = 'docs/parse-stage.md, step 3, "One view of a channel\'s bills"'


def _fetched_views(fetch: AlipayFetch | WechatFetch) -> dict[str, str]:
    """The views a channel connector fetches: view family -> the configuration fetching it."""
    if isinstance(fetch, AlipayFetch):
        return {f"alipay.{bill_type}": f"bill_types {bill_type}" for bill_type in fetch.bill_types}
    views = {}
    if fetch.bill_types:
        default = "" if "bill_types" in fetch.model_fields_set else " (the default)"
        views["wechat.tradebill"] = f"bill_types [{', '.join(fetch.bill_types)}]{default}"
    if fetch.fundflow_accounts:
        views["wechat.fundflow"] = f"fundflow_accounts [{', '.join(fetch.fundflow_accounts)}]"
    return views


_FINGERPRINT = r"^SHA256:[A-Za-z0-9+/]{43}$"


class SftpFetch(_Fetch):
    """Statement files on the bank's SFTP server (host key pinned; key or password auth from the secret)."""

    kind: Literal["sftp"] = "sftp"
    host: str = Field(min_length=1, description="SFTP host name or address")
    port: int = Field(default=22, ge=1, le=65535)
    host_key_fingerprints: list[Annotated[str, Field(pattern=_FINGERPRINT)]] = Field(
        min_length=1,
        description="Pinned SHA256 host key fingerprints as `ssh-keygen -lf` prints them (SHA256:...); "
        "list the new key beside the old one while the bank rotates it",
    )
    remote_dir: str = Field(
        default=".",
        min_length=1,
        description="Directory holding the statement files; may contain {date:...} for per-day folders "
        "(a missing per-day folder means not ready, a missing fixed folder is a configuration error)",
    )
    filename_pattern: str = Field(
        description="File name with a {date:%Y%m%d} placeholder; shell wildcards (* ?) allowed, "
        "e.g. 'STMT_{date:%Y%m%d}_*.xml'"
    )
    complete_marker: str | None = Field(
        default=None,
        description="Optional name (same placeholder) of a file the bank writes once the statement files "
        "are complete; until it exists the statement is not ready",
    )
    window: FetchWindow = Field(
        default_factory=lambda: FetchWindow(opens_after_hours=0, closes_after_hours=12),
    )

    @field_validator("remote_dir", "filename_pattern", "complete_marker")
    @classmethod
    def _templates(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is None:
            return None
        if "{" in value or "}" in value:
            _check_date_template(value, info.field_name or "pattern")
        if info.field_name != "remote_dir" and "/" in value:
            raise ValueError(f"{info.field_name} must not contain '/': put directories in remote_dir")
        return value

    @model_validator(mode="after")
    def _dated(self) -> SftpFetch:
        if "{date" not in self.remote_dir and "{date" not in self.filename_pattern:
            raise ValueError(
                "filename_pattern (or remote_dir) needs a {date:...} placeholder, or every day would take "
                "the same files"
            )
        return self


class HttpsFetch(_Fetch):
    """A bank's HTTPS file API: GET one statement file per URL (mutual TLS and/or a bearer token)."""

    kind: Literal["https"] = "https"
    url_template: str = Field(
        description="Statement URL with a {date:...} placeholder, e.g. "
        "'https://files.bank.example/v1/statements/{date:%Y-%m-%d}/camt053.xml'"
    )
    filename_template: str = Field(
        description="Name to store the file under, with a {date:...} placeholder, e.g. 'camt053_{date:%Y%m%d}.xml'"
    )
    not_ready_statuses: list[int] = Field(
        default_factory=lambda: [404, 425],
        description="HTTP statuses meaning 'not generated yet' (retried within the window)",
    )
    checksum_header: str | None = Field(
        default=None,
        description="Response header carrying the file's hex SHA-256; when set, it must be present and match",
    )
    window: FetchWindow = Field(
        default_factory=lambda: FetchWindow(opens_after_hours=0, closes_after_hours=12),
    )

    @field_validator("url_template")
    @classmethod
    def _url(cls, value: str) -> str:
        _check_date_template(value, "url_template")
        _check_url(value.format(date=_SAMPLE_DATE), "url_template")
        return value

    @field_validator("filename_template")
    @classmethod
    def _filename(cls, value: str) -> str:
        _check_date_template(value, "filename_template")
        if "/" in value:
            raise ValueError("filename_template must be a plain file name")
        return value

    @field_validator("not_ready_statuses")
    @classmethod
    def _statuses(cls, value: list[int]) -> list[int]:
        if any(s < 201 or s > 499 or s in (401, 403, 429) for s in value):
            raise ValueError("not_ready_statuses must be codes 201-499 other than 401, 403 and 429")
        return value


FetchConfig = Annotated[AlipayFetch | WechatFetch | SftpFetch | HttpsFetch, Field(discriminator="kind")]

# Which connector kinds fit an account's source and delivery.
_FETCH_FITS: dict[str, tuple[Source, Delivery]] = {
    "alipay": (Source.ALIPAY, Delivery.API),
    "wechat": (Source.WECHAT, Delivery.API),
    "sftp": (Source.BANK, Delivery.SFTP),
    "https": (Source.BANK, Delivery.API),
}

# Secrets Manager names carry the provider: ``recon/<provider>/<name>``. Each fetch function may read only
# its own provider's namespace (infra/template.yaml, ``secret:recon/alipay/*`` etc.), so an Alipay
# account cannot be pointed at the bank's mTLS key or the WeChat Pay APIv3 key.
_SECRET_NAMESPACES: dict[Source, str] = {
    Source.BANK: "recon/bank/",
    Source.ALIPAY: "recon/alipay/",
    Source.WECHAT: "recon/wechat/",
}
# What follows the namespace: Secrets Manager's own name characters (no wildcards).
_SECRET_NAME = re.compile(r"[A-Za-z0-9/_+=.@-]+")


def secret_namespace(source: Source) -> str:
    """The Secrets Manager name prefix an account of ``source`` must use (``recon/<provider>/``)."""
    namespace = _SECRET_NAMESPACES.get(source)
    if namespace is None:
        raise ValueError(f"{source.value!r} accounts are not fetched and have no secrets")
    return namespace


class Account(BaseModel):
    """A bank account, an Alipay or WeChat Pay merchant account, or the ERP order book."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    account_id: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]{1,62}$", description="Stable id used in S3 keys")
    source: Source
    name: str = Field(description="Display name, e.g. 'ICBC Shanghai basic account'")
    number: SecretStr | None = Field(
        default=None,
        description="Full account / merchant number. Masked everywhere except where a provider needs it.",
    )
    currency: str = Field(default="CNY", pattern=r"^[A-Z]{3}$")
    delivery: Delivery = Delivery.UPLOAD
    format: str | None = Field(
        default=None,
        description="Statement format expected from it (a format id such as 'mt940' or 'camt.053', or a "
        "prefix of one); a file detected as another format is quarantined",
    )
    profile: str | None = Field(
        default=None,
        pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*(@[A-Za-z0-9][A-Za-z0-9._-]*)?$",
        description="Parsing profile that reads its statements: 'name' (latest version) or 'name@version', "
        "uploaded to config/profiles/<name>/<version>.yaml or built in; without it the format is detected",
    )
    secret_id: str | None = Field(
        default=None,
        description="Secrets Manager name of the API/SFTP credentials (never the secret itself), in the "
        "account's provider namespace: recon/bank/..., recon/alipay/... or recon/wechat/...",
    )
    fetch: FetchConfig | None = Field(
        default=None,
        description="How the fetcher pulls this account's statements (for delivery api or sftp); "
        "credentials come from the `secret_id` secret",
    )

    @model_validator(mode="after")
    def _check_fetch(self) -> Account:
        if self.fetch is not None:
            source, delivery = _FETCH_FITS[self.fetch.kind]
            if (self.source, self.delivery) != (source, delivery):
                raise ValueError(
                    f"fetch kind {self.fetch.kind!r} needs source {source.value!r} and delivery "
                    f"{delivery.value!r}"
                )
            if not self.secret_id:
                raise ValueError(
                    "an account with a fetch connector needs secret_id naming a Secrets Manager secret under "
                    f"{secret_namespace(self.source)!r}"
                )
            if isinstance(self.fetch, AlipayFetch | WechatFetch):
                self._check_one_view(self.fetch)
        if self.secret_id is not None:
            self._check_secret_namespace(self.secret_id)
        return self

    def _check_one_view(self, fetch: AlipayFetch | WechatFetch) -> None:
        """The account reconciles one view of its channel bills: a fetched file of the other view (or of a
        view its ``format`` does not name) would be quarantined, with an alert, every day."""
        from recon.bill_views import view_of  # imported here: recon.bill_views imports the domain

        fetched = _fetched_views(fetch)
        views = {family: view for family in fetched if (view := view_of(family)) is not None}
        if len({view.kind for view in views.values()}) > 1:
            (a, first), (b, second) = sorted(views.items(), key=lambda item: item[1].kind != "trade")
            raise ValueError(
                f"account {self.account_id} fetches two views of the same {first.channel} bills: "
                f"{fetched[a]} is the {first.name} and {fetched[b]} is the {second.name}. Both describe the "
                f"same money and an account reconciles one view of its bills, so the file of the other view "
                f"would be quarantined, with an alert, every day ({_ONE_VIEW_DOC}). Fetch one: "
                f"{_FETCH_ONLY[a]} for the {first.name}, or {_FETCH_ONLY[b]} for the {second.name}; setting "
                f"the account's format to that view ({a} or {b}) also refuses uploaded files of the other."
            )
        pinned = view_of(self.format or "")
        for family, view in views.items():
            if pinned is not None and pinned.source is view.source and pinned.kind != view.kind:
                raise ValueError(
                    f"account {self.account_id} has format {self.format}, the {pinned.name}, but fetches "
                    f"{fetched[family]}, the {view.name}: each day's file would be refused by the format "
                    f"check and quarantined, with an alert. An account reconciles one view of its bills "
                    f"({_ONE_VIEW_DOC}): fetch {_FETCH_ONLY[pinned.family]} for the {pinned.name}, or, to "
                    f"reconcile the {view.name} instead, set the account's format to {family}."
                )

    def _check_secret_namespace(self, secret_id: str) -> None:
        """The secret must live in the account's provider namespace: that is all its fetcher may read."""
        if self.source not in _SECRET_NAMESPACES:
            raise ValueError(f"secret_id: {self.source.value!r} accounts are not fetched and take no secret")
        namespace = secret_namespace(self.source)
        name = secret_id.removeprefix(namespace)
        if not secret_id.startswith(namespace) or not _SECRET_NAME.fullmatch(name):
            raise ValueError(
                f"secret_id {secret_id!r} of a {self.source.value!r} account must be a Secrets Manager name "
                f"under {namespace!r} (e.g. '{namespace}{self.account_id}'): the {self.source.value} fetch "
                "function may read only that namespace"
            )

    @property
    def masked_number(self) -> str:
        return mask_number(self.number.get_secret_value()) if self.number else ""

    @field_serializer("number")
    def _serialize_number(self, number: SecretStr | None) -> str | None:
        # Serialised projects (API, logs, DynamoDB) carry the masked number only.
        return mask_number(number.get_secret_value()) if number else None
