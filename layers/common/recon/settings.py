"""Runtime configuration, declared once. Every Lambda reads its environment through these models."""

from __future__ import annotations

from functools import lru_cache

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """Environment of every function (set in infra/template.yaml Globals and per function)."""

    model_config = SettingsConfigDict(env_prefix="RECON_", extra="ignore", frozen=True)

    raw_bucket: str = Field(description="Versioned bucket holding raw statement files (never modified)")
    data_bucket: str = Field(description="Bucket for normalized Parquet, results, reports, quarantine")
    table_name: str = Field(description="DynamoDB table for runs, statements, match groups, cases, audit")
    alert_topic_arn: str = Field(default="", description="SNS topic for alerts")
    state_machine_arn: str = Field(
        default="", description="Reconcile state machine (for upload-triggered runs)"
    )
    schedule_group: str = Field(
        default="", description="EventBridge Scheduler group holding project schedules"
    )
    scheduler_role_arn: str = Field(
        default="", description="Role EventBridge Scheduler assumes to start runs"
    )
    sender_email: str = Field(default="", description="SES-verified sender of report e-mails")
    report_recipients: str = Field(default="", description="Comma-separated default report recipients")
    review_url: str = Field(
        default="",
        description="Base URL of the review UI: e-mails and alerts link to <review_url>/runs/<run id> "
        "(empty: they say where the report is stored)",
    )
    config_prefix: str = Field(
        default="config/projects/", description="Prefix of project files in the data bucket"
    )
    aws_endpoint_url: str | None = Field(default=None, validation_alias="AWS_ENDPOINT_URL")
    # Matching: days larger than this are matched over partitions (a Distributed Map) of this many rows.
    match_partition_rows: int = Field(
        default=2_000_000, ge=1, description="Rows above which the match stage partitions the day"
    )
    match_rows_per_partition: int = Field(default=1_000_000, ge=1, description="Target rows per partition")

    # Parsing: PDF statements are read by this function when named (AWS: the parse function has no room for
    # pdfplumber next to the AWS SDK for pandas layer), else in this process.
    pdf_extractor_function: str = Field(
        default="", description="Function extracting PDF table rows (empty: in this process, with pdfplumber)"
    )

    # Provider endpoints: the one place production and sandbox URLs live. An account picks one with
    # `fetch.environment`, or names its own with `environment: custom` + `endpoint`.
    alipay_gateway_url: str = Field(
        default="https://openapi.alipay.com/gateway.do", description="Alipay OpenAPI gateway (production)"
    )
    alipay_sandbox_gateway_url: str = Field(
        default="https://openapi-sandbox.dl.alipaydev.com/gateway.do",
        description="Alipay OpenAPI gateway (sandbox)",
    )
    wechatpay_base_url: str = Field(
        default="https://api.mch.weixin.qq.com", description="WeChat Pay APIv3 base URL (production)"
    )
    # Fetching
    fetch_timeout_seconds: float = Field(
        default=20.0, gt=0, description="Per-request connect/read timeout of provider calls"
    )
    fetch_attempts: int = Field(
        default=4, ge=1, le=10, description="Attempts per provider call on 5xx, 429 and timeouts"
    )
    fetch_backoff_max_seconds: float = Field(
        default=8.0,
        gt=0,
        description="Longest wait between attempts (a longer Retry-After is left to the state machine)",
    )
    secrets_max_age_seconds: int = Field(
        default=300, ge=0, description="How long a warm Lambda reuses a secret before reading it again"
    )

    @property
    def recipients(self) -> list[str]:
        return [r.strip() for r in self.report_recipients.split(",") if r.strip()]


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings (cached: Lambda environments do not change during an invocation)."""
    return Settings()  # values come from the environment
