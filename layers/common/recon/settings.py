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
    config_prefix: str = Field(
        default="config/projects/", description="Prefix of project files in the data bucket"
    )
    aws_endpoint_url: str | None = Field(default=None, validation_alias="AWS_ENDPOINT_URL")

    @property
    def recipients(self) -> list[str]:
        return [r.strip() for r in self.report_recipients.split(",") if r.strip()]


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings (cached: Lambda environments do not change during an invocation)."""
    return Settings()  # values come from the environment
