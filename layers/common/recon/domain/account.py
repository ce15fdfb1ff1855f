"""Accounts that take part in a reconciliation."""

from __future__ import annotations

from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_serializer

from .common import Source, mask_number


class Delivery(StrEnum):
    """How a statement reaches us."""

    UPLOAD = "upload"  # a person or system puts the file into the raw bucket
    API = "api"  # the fetcher pulls it from the provider's API
    SFTP = "sftp"  # the fetcher pulls it from the bank's SFTP server


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
    format: str | None = Field(default=None, description="Statement format (parse profile) expected from it")
    secret_id: str | None = Field(
        default=None, description="Secrets Manager id of the API/SFTP credentials (never the secret itself)"
    )

    @property
    def masked_number(self) -> str:
        return mask_number(self.number.get_secret_value()) if self.number else ""

    @field_serializer("number")
    def _serialize_number(self, number: SecretStr | None) -> str | None:
        # Serialised projects (API, logs, DynamoDB) carry the masked number only.
        return mask_number(number.get_secret_value()) if number else None
