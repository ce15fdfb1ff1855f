"""Where things live in S3. One place defines every key layout.

raw bucket (versioned, never modified):
    raw/<project>/<account>/<statement date>/<file name>
data bucket:
    config/projects/<project>.yaml
    config/profiles/<profile name>/<profile version>.yaml
    normalized/project=<p>/source=<s>/account=<a>/date=<d>/<statement id>[@<profile>@<version>].parquet
    results/project=<p>/date=<d>/run=<run id>/{placements,groups,cases}.parquet, inputs.json, report.json
    open-items/project=<p>/date=<d>/{open_items.parquet,batches.json}   (still in flight after that day's run)
    reports/<project>/<date>/<run id>/{report.html,matches.csv,cases.csv,summary.json}
    quarantine/<project>/<account>/<date>/<file name>(.error.json)
    derived/pdf-rows/<sha256 of the PDF>.json.gz   (table rows of a PDF, recon.pdf_tables.rows_document)
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


PROFILE_PREFIX = "config/profiles/"


def profile_prefix(name: str) -> str:
    """Folder holding every uploaded version of one parsing profile."""
    return f"{PROFILE_PREFIX}{name}/"


def profile_key(name: str, version: str) -> str:
    """Where version ``version`` of the user profile ``name`` is uploaded (YAML)."""
    return f"{profile_prefix(name)}{version}.yaml"


def parse_profile_key(key: str) -> tuple[str, str] | None:
    """Split a profile key into (name, version); None if it is not one."""
    if not key.startswith(PROFILE_PREFIX) or not key.endswith(".yaml"):
        return None
    parts = key[len(PROFILE_PREFIX) : -len(".yaml")].split("/")
    if len(parts) != 2 or not all(parts):
        return None
    return parts[0], parts[1]


def normalized_prefix(project_id: str, source: str, account_id: str, statement_date: date) -> str:
    return f"normalized/project={project_id}/source={source}/account={account_id}/date={statement_date.isoformat()}/"


def normalized_key(
    project_id: str,
    source: str,
    account_id: str,
    statement_date: date,
    statement_id: str,
    *,
    profile: str | None = None,
    profile_version: str | None = None,
) -> str:
    """Normalized rows of one statement; with a profile, one object per profile version that read it.

    Parsing the same statement with another profile version (a re-parse) writes beside the earlier object
    instead of over it; the Statement record names the current one (``parquet_key``).
    """
    name = statement_id if profile is None else f"{statement_id}@{profile}@{profile_version or ''}"
    return normalized_prefix(project_id, source, account_id, statement_date) + f"{name}.parquet"


def normalized_day_key(whole: str, project_id: str, source: str, account_id: str, day: date) -> str:
    """The rows booked on ``day`` of a statement covering several days, whose whole rows are at ``whole``
    (``normalized_key``): filed in the day's partition, named after the whole object (same version)."""
    name = whole.rsplit("/", 1)[-1].removesuffix(".parquet")
    return normalized_prefix(project_id, source, account_id, day) + f"{name}.day.parquet"


def results_prefix(project_id: str, business_date: date, run_id: str) -> str:
    return f"results/project={project_id}/date={business_date.isoformat()}/run={run_id}/"


# The match stage's results (Parquet, zstd) and the small JSON the report stage reads.
RESULT_FILES = ("placements.parquet", "groups.parquet", "cases.parquet")
REPORT_DATA_FILE = "report.json"
INPUTS_FILE = "inputs.json"  # the normalized objects the placements' rows come from, in order


def result_key(project_id: str, business_date: date, run_id: str, name: str) -> str:
    """One of RESULT_FILES / REPORT_DATA_FILE of a run."""
    return results_prefix(project_id, business_date, run_id) + name


def open_items_prefix(project_id: str) -> str:
    """Rows still in flight (carry-over), one snapshot per business date that left them open."""
    return f"open-items/project={project_id}/"


def open_items_key(project_id: str, business_date: date) -> str:
    return f"{open_items_prefix(project_id)}date={business_date.isoformat()}/open_items.parquet"


def open_batches_key(project_id: str, business_date: date) -> str:
    """Settlement batches waiting for a credit that may also pay a later day (JSON), beside the rows."""
    return f"{open_items_prefix(project_id)}date={business_date.isoformat()}/batches.json"


def parse_open_items_key(key: str) -> date | None:
    """Business date of an open-items snapshot key; None if it is not one."""
    parts = key.split("/")
    if (
        len(parts) != 4
        or parts[0] != "open-items"
        or not parts[2].startswith("date=")
        or parts[3] != "open_items.parquet"
    ):
        return None
    try:
        return date.fromisoformat(parts[2][len("date=") :])
    except ValueError:
        return None


def report_prefix(project_id: str, business_date: date, run_id: str) -> str:
    """Folder of a run's report.html, matches.csv, cases.csv and summary.json."""
    return f"reports/{project_id}/{business_date.isoformat()}/{run_id}/"


def report_key(project_id: str, business_date: date, run_id: str) -> str:
    return report_prefix(project_id, business_date, run_id) + "report.html"


def quarantine_key(project_id: str, account_id: str, statement_date: date, filename: str) -> str:
    return f"quarantine/{project_id}/{account_id}/{statement_date.isoformat()}/{filename}"


PDF_ROWS_PREFIX = "derived/pdf-rows/"


def pdf_rows_key(sha256: str) -> str:
    """Where the table rows of the PDF with this SHA-256 are kept (content-addressed: written once)."""
    return f"{PDF_ROWS_PREFIX}{sha256}.json.gz"
