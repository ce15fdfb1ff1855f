"""Where things live in S3. One place defines every key layout.

raw bucket (versioned, never modified):
    raw/<project>/<account>/<statement date>/<file name>
data bucket:
    config/projects/<project>.yaml
    normalized/project=<p>/source=<s>/account=<a>/date=<d>/<statement id>.parquet
    results/project=<p>/date=<d>/run=<run id>/{matches,residue}.parquet
    reports/<project>/<date>/<run id>/{report.html,matches.csv,cases.csv,summary.json}
    quarantine/<project>/<account>/<date>/<file name>(.error.json)
"""

from __future__ import annotations

from datetime import date

RAW_PREFIX = "raw/"


def raw_prefix(project_id: str, account_id: str, statement_date: date) -> str:
    return f"{RAW_PREFIX}{project_id}/{account_id}/{statement_date.isoformat()}/"


def raw_key(project_id: str, account_id: str, statement_date: date, filename: str) -> str:
    return raw_prefix(project_id, account_id, statement_date) + filename


def parse_raw_key(key: str) -> tuple[str, str, date, str] | None:
    """Split a raw key into (project, account, statement date, file name); None if it is not one."""
    parts = key.split("/")
    if len(parts) != 5 or parts[0] + "/" != RAW_PREFIX or not parts[4]:
        return None
    try:
        statement_date = date.fromisoformat(parts[3])
    except ValueError:
        return None
    return parts[1], parts[2], statement_date, parts[4]


def project_config_key(project_id: str, prefix: str = "config/projects/") -> str:
    return f"{prefix}{project_id}.yaml"


def normalized_prefix(project_id: str, source: str, account_id: str, statement_date: date) -> str:
    return f"normalized/project={project_id}/source={source}/account={account_id}/date={statement_date.isoformat()}/"


def normalized_key(
    project_id: str, source: str, account_id: str, statement_date: date, statement_id: str
) -> str:
    return normalized_prefix(project_id, source, account_id, statement_date) + f"{statement_id}.parquet"


def results_prefix(project_id: str, business_date: date, run_id: str) -> str:
    return f"results/project={project_id}/date={business_date.isoformat()}/run={run_id}/"


def report_prefix(project_id: str, business_date: date, run_id: str) -> str:
    """Folder of a run's report.html, matches.csv, cases.csv and summary.json."""
    return f"reports/{project_id}/{business_date.isoformat()}/{run_id}/"


def report_key(project_id: str, business_date: date, run_id: str) -> str:
    return report_prefix(project_id, business_date, run_id) + "report.html"


def quarantine_key(project_id: str, account_id: str, statement_date: date, filename: str) -> str:
    return f"quarantine/{project_id}/{account_id}/{statement_date.isoformat()}/{filename}"
