"""Domain models (pydantic v2). Money is integer minor units; see ``recon.money``."""

from .account import Account, Delivery
from .common import Source, mask_number, stable_id
from .project import Cycle, Notifications, Project, Sides, project_json_schema
from .results import (
    AuditEvent,
    Case,
    CaseStatus,
    CaseType,
    Evidence,
    FileAccounting,
    MatchGroup,
    MatchStatus,
    MemberRef,
    Run,
    RunStatus,
    SourceAccounting,
)
from .rules import FieldCondition, FilterRule, KeyMatchRule, Rule, SettlementRule, Severity, SeverityThresholds
from .statement import (
    ControlTotal,
    RowDisposition,
    RowError,
    Statement,
    StatementStatus,
    Transaction,
    TxnStatus,
    TxnType,
)

__all__ = [
    "Account", "AuditEvent", "Case", "CaseStatus", "CaseType", "ControlTotal", "Cycle", "Delivery", "Evidence",
    "FieldCondition", "FileAccounting", "FilterRule", "KeyMatchRule", "MatchGroup", "MatchStatus", "MemberRef",
    "Notifications", "Project", "RowDisposition", "RowError", "Rule", "Run", "RunStatus", "SettlementRule",
    "Severity", "SeverityThresholds", "Sides", "Source", "SourceAccounting", "Statement", "StatementStatus",
    "Transaction", "TxnStatus", "TxnType", "mask_number", "project_json_schema", "stable_id",
]
