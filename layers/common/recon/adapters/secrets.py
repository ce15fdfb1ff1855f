"""``SecretsProvider`` on AWS Secrets Manager through Powertools Parameters (cached per warm Lambda).

Secrets are JSON objects of strings (their shapes are documented in docs/fetching.md). Values never leave
this adapter except as the returned dict: errors name the secret id and the kind of problem, not content.
``force_fetch=True`` bypasses the cache, which is how the fetch stage picks up a rotated secret.
"""

from __future__ import annotations

import json
import logging
from typing import TYPE_CHECKING, Any

from aws_lambda_powertools.utilities.parameters import SecretsProvider as PowertoolsSecrets
from aws_lambda_powertools.utilities.parameters.exceptions import GetParameterError

from recon.ports import SecretUnavailable

from . import aws

if TYPE_CHECKING:
    from mypy_boto3_secretsmanager import SecretsManagerClient


class _NoSecretBodies(logging.Filter):
    """botocore logs every response body at DEBUG, GetSecretValue's included: drop those records, so that
    turning on debug logging cannot write a secret into CloudWatch."""

    def filter(self, record: logging.LogRecord) -> bool:
        text = record.getMessage()
        return "SecretString" not in text and "SecretBinary" not in text


for _name in ("botocore.parsers", "botocore.endpoint", "botocore.httpchecksum"):
    if not any(isinstance(f, _NoSecretBodies) for f in logging.getLogger(_name).filters):
        logging.getLogger(_name).addFilter(_NoSecretBodies())


class SecretsManagerSecrets:
    """JSON secrets from Secrets Manager, each cached for ``max_age`` seconds."""

    def __init__(self, *, max_age: int, client: SecretsManagerClient | None = None) -> None:
        self._max_age = max_age
        self._client = client
        self._provider: PowertoolsSecrets | None = None
        self._provider_client: Any = None

    def _powertools(self) -> PowertoolsSecrets:
        # The cache lives in the Powertools provider; a new boto3 client (tests starting a new mock, a
        # changed endpoint) gets a new provider, so a cache never outlives the backend it was filled from.
        client = self._client or aws.client("secretsmanager")
        if self._provider is None or client is not self._provider_client:
            self._provider = PowertoolsSecrets(boto3_client=client)
            self._provider_client = client
        return self._provider

    def get_secret(self, secret_id: str, *, force_fetch: bool = False) -> dict[str, str]:
        try:
            raw = self._powertools().get(secret_id, max_age=self._max_age, force_fetch=force_fetch)
        except GetParameterError as exc:
            # Powertools re-raises the ClientError as GetParameterError, keeping it as the context.
            code = aws.error_code(exc.__context__) if exc.__context__ else ""
            raise SecretUnavailable(f"secret {secret_id!r} could not be read ({code or 'error'})") from None
        return _json_object(secret_id, raw)


def _json_object(secret_id: str, raw: object) -> dict[str, str]:
    if isinstance(raw, bytes):
        raw = raw.decode("utf-8", errors="replace")
    try:
        value = json.loads(str(raw))
    except ValueError:
        raise SecretUnavailable(f"secret {secret_id!r} is not JSON") from None
    if not isinstance(value, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in value.items()
    ):
        raise SecretUnavailable(f"secret {secret_id!r} must be a JSON object of strings") from None
    return value
