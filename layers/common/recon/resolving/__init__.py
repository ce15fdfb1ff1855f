"""Resolving: findings -> typed cases (discrepancies) with severity and a reason; run accounting."""

from .classify import classify_findings, run_accounting

__all__ = ["classify_findings", "run_accounting"]
