"""Build the AWS-backed ``Services`` for a Lambda from its settings (created lazily, once per process)."""

from __future__ import annotations

from functools import lru_cache

from .pipeline.services import Services
from .settings import get_settings


@lru_cache(maxsize=1)
def aws_services() -> Services:
    # Imported here so that importing the logic never imports boto3.
    from .adapters.dynamodb import DynamoRunRepository
    from .adapters.notify import SesMailer, SnsAlertPublisher
    from .adapters.s3 import S3ObjectStore
    from .adapters.scheduler import EventBridgeScheduleManager
    from .adapters.secrets import SecretsManagerSecrets
    from .adapters.workflow import StepFunctionsStarter

    settings = get_settings()
    return Services(
        settings=settings,
        store=S3ObjectStore(),
        repo=DynamoRunRepository(settings.table_name),
        mailer=SesMailer(),
        alerts=SnsAlertPublisher(settings.alert_topic_arn),
        workflow=StepFunctionsStarter(settings.state_machine_arn),
        schedules=EventBridgeScheduleManager(
            group=settings.schedule_group,
            target_arn=settings.state_machine_arn,
            role_arn=settings.scheduler_role_arn,
        ),
        secrets=SecretsManagerSecrets(max_age=settings.secrets_max_age_seconds),
    )
