"""Reconciliation projects: what to reconcile, how and when. Stored as YAML, documented by JSON schema."""

from __future__ import annotations

import json
from enum import StrEnum
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, model_validator

from .account import Account
from .common import Source
from .rules import (
    FilterRule,
    KeyMatchRule,
    MappingRule,
    MatchRule,
    Rule,
    SettlementRule,
    SeverityThresholds,
    SubsetSumRule,
    WindowMatchRule,
)


class Cycle(StrEnum):
    DAILY = "daily"
    WEEKLY = "weekly"
    MONTHLY = "monthly"


class Sides(StrEnum):
    ONE = "one"  # one source checked against itself (duplicates, control totals)
    TWO = "two"  # e.g. ERP <-> channel
    MULTI = "multi"  # e.g. ERP <-> channels <-> bank


class Notifications(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    email_to: list[str] = Field(default_factory=list, description="Report recipients")
    alert_on_cases: bool = Field(default=True, description="Publish an SNS alert when a run has open cases")


class Project(BaseModel):
    """A reconciliation project (对账项目)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    project_id: str = Field(pattern=r"^[a-z0-9][a-z0-9-]{1,62}$")
    name: str
    version: int = Field(default=1, ge=1, description="Bumped on every change; recorded on each run")
    cycle: Cycle = Cycle.DAILY
    sides: Sides = Sides.MULTI
    priority: int = Field(default=100, description="Lower runs first when several projects are due")
    schedule: str = Field(
        default="cron(30 10 * * ? *)",
        pattern=r"^(cron|rate)\(.+\)$",
        description="EventBridge Scheduler expression, evaluated in `timezone`, for the run of the previous "
        "business date (the default 10:30 is after Alipay's ~09:00 and WeChat Pay's 10:00 bill times)",
    )
    timezone: str = Field(default="Asia/Shanghai", description="Business dates are in this time zone")
    currency: str = Field(default="CNY", pattern=r"^[A-Z]{3}$")
    accounts: list[Account] = Field(min_length=1)
    rules: list[Rule] = Field(default_factory=list, description="Applied in the order given (priority order)")
    carry_over_days: int = Field(
        default=2,
        ge=0,
        le=31,
        description="Days an in-flight row may stay open: it is offered to later runs while its age "
        "(business date − first seen) is below this, then it becomes a MISSING case",
    )
    auto_match_min_confidence: float = Field(
        default=0.9,
        ge=0,
        le=1,
        description="Match groups below this confidence are *suggested* for a person to confirm",
    )
    severity: SeverityThresholds = Field(default_factory=SeverityThresholds)
    notifications: Notifications = Field(default_factory=Notifications)

    @model_validator(mode="after")
    def _check_references(self) -> Project:
        ids = [a.account_id for a in self.accounts]
        if len(set(ids)) != len(ids):
            raise ValueError("account ids must be unique within a project")
        names = [r.name for r in self.rules]
        if len(set(names)) != len(names):
            raise ValueError("rule names must be unique within a project")
        known = set(ids)
        for rule in self.rules:
            if isinstance(rule, SettlementRule):
                for ref in (rule.channel_account, rule.bank_account):
                    if ref not in known:
                        raise ValueError(f"rule {rule.name!r} names unknown account {ref!r}")
                if self.account(rule.bank_account).source is not Source.BANK:
                    raise ValueError(f"rule {rule.name!r}: {rule.bank_account!r} is not a bank account")
                if not self.account(rule.channel_account).source.is_channel:
                    raise ValueError(f"rule {rule.name!r}: {rule.channel_account!r} is not a channel account")
        return self

    def account(self, account_id: str) -> Account:
        for account in self.accounts:
            if account.account_id == account_id:
                return account
        raise KeyError(account_id)

    def accounts_of(self, source: Source) -> list[Account]:
        return [a for a in self.accounts if a.source == source]

    @property
    def filter_rules(self) -> list[FilterRule]:
        return [r for r in self.rules if isinstance(r, FilterRule) and r.enabled]

    @property
    def key_rules(self) -> list[KeyMatchRule]:
        return [r for r in self.rules if isinstance(r, KeyMatchRule) and r.enabled]

    @property
    def settlement_rules(self) -> list[SettlementRule]:
        return [r for r in self.rules if isinstance(r, SettlementRule) and r.enabled]

    def statement_lag(self, bank_account: str) -> int:
        """Days after the business date of the bank statement a run reads from ``bank_account``: the smallest
        lag of the settlement rules crediting it (0 when none does). The smallest, not the largest: a
        statement of a smaller lag would otherwise be read by no run when the day before was not run (a first
        day, a single day), and a batch whose credit may be in a later statement waits for that statement's
        run."""
        return min(
            (min(r.lag_days) for r in self.settlement_rules if r.bank_account == bank_account), default=0
        )

    @property
    def mapping_rules(self) -> list[MappingRule]:
        return [r for r in self.rules if isinstance(r, MappingRule) and r.enabled]

    @property
    def match_rules(self) -> list[MatchRule]:
        """Key, window, settlement and subset-sum rules, in the project's (priority) order."""
        kinds = (KeyMatchRule, WindowMatchRule, SettlementRule, SubsetSumRule)
        return [r for r in self.rules if isinstance(r, kinds) and r.enabled]

    @classmethod
    def from_yaml(cls, text: str) -> Project:
        data: Any = yaml.safe_load(text)
        return cls.model_validate(data)


def project_json_schema() -> str:
    """The JSON schema that documents project YAML files (kept in the repo, checked by a test)."""
    schema = Project.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "Reconciliation project"
    return json.dumps(schema, indent=2, ensure_ascii=False, sort_keys=True) + "\n"
