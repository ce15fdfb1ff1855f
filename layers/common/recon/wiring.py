"""Build the AWS-backed ``Services`` for a Lambda from its settings (created lazily, once per process)."""

from __future__ import annotations

from functools import lru_cache

from .pipeline.services import Services
from .settings import Settings, get_settings


def aws_services() -> Services:
    return _services_for(get_settings())


# Keyed by the settings: the local runtime runs every function of the template in one process, each with
# its own environment (e.g. only the parse function names the PDF extractor).
@lru_cache(maxsize=8)
def _services_for(settings: Settings) -> Services:
    # Imported here so that importing the logic never imports boto3.
    from .adapters.dynamodb import DynamoRunRepository
    from .adapters.functions import LambdaInvoker
    from .adapters.notify import SesMailer, SnsAlertPublisher
    from .adapters.pdf_tables import InProcessPdfTables, RemotePdfTables
    from .adapters.s3 import S3ObjectStore
    from .adapters.scheduler import EventBridgeScheduleManager
    from .adapters.secrets import SecretsManagerSecrets
    from .adapters.workflow import StepFunctionsStarter

    store = S3ObjectStore()
    return Services(
        settings=settings,
        store=store,
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
        pdf_tables=(
            RemotePdfTables(
                LambdaInvoker(),
                store,
                function_name=settings.pdf_extractor_function,
                rows_bucket=settings.data_bucket,
            )
            if settings.pdf_extractor_function
            else InProcessPdfTables()
        ),
    )
