"""``Mailer`` on Amazon SES (v1 ``SendEmail``) and ``AlertPublisher`` on Amazon SNS."""

from __future__ import annotations

from typing import TYPE_CHECKING

from recon.settings import get_settings

from . import aws
from ._shared import alert_attributes, alert_message, alert_subject, check_recipients

if TYPE_CHECKING:
    from mypy_boto3_ses import SESClient
    from mypy_boto3_sns import SNSClient
    from mypy_boto3_sns.type_defs import MessageAttributeValueTypeDef

CHARSET = "UTF-8"


class SesMailer:
    """Sends one e-mail with an HTML and a plain-text body (UTF-8); returns SES's MessageId.

    The sender must be an SES-verified identity. At most 50 recipients per message (SES limit).
    """

    def __init__(self, *, configuration_set: str | None = None, client: SESClient | None = None) -> None:
        self._configuration_set = configuration_set
        self._client = client

    @property
    def client(self) -> SESClient:
        if self._client is None:
            self._client = aws.client("ses")
        return self._client

    def send(self, *, sender: str, to: list[str], subject: str, html: str, text: str) -> str:
        recipients = check_recipients(sender, to)
        message = {
            "Subject": {"Data": " ".join(subject.split()), "Charset": CHARSET},
            "Body": {
                "Html": {"Data": html, "Charset": CHARSET},
                "Text": {"Data": text, "Charset": CHARSET},
            },
        }
        if self._configuration_set:
            response = self.client.send_email(
                Source=sender,
                Destination={"ToAddresses": recipients},
                Message=message,  # type: ignore[arg-type]  # shape matches MessageTypeDef
                ConfigurationSetName=self._configuration_set,
            )
        else:
            response = self.client.send_email(
                Source=sender,
                Destination={"ToAddresses": recipients},
                Message=message,  # type: ignore[arg-type]
            )
        return response["MessageId"]


class SnsAlertPublisher:
    """Publishes alerts to one SNS topic; returns the MessageId.

    The subject (used by e-mail subscriptions) is made one line of at most 100 characters; attributes are
    sent as String message attributes (subscription filter policies can select on them).
    """

    def __init__(self, topic_arn: str | None = None, *, client: SNSClient | None = None) -> None:
        self._topic_arn = topic_arn
        self._client = client

    @property
    def client(self) -> SNSClient:
        if self._client is None:
            self._client = aws.client("sns")
        return self._client

    @property
    def topic_arn(self) -> str:
        if not self._topic_arn:
            self._topic_arn = get_settings().alert_topic_arn
        if not self._topic_arn:
            raise ValueError("no alert topic configured (RECON_ALERT_TOPIC_ARN)")
        return self._topic_arn

    def publish(self, *, subject: str, message: str, attributes: dict[str, str] | None = None) -> str:
        wire: dict[str, MessageAttributeValueTypeDef] = {
            name: {"DataType": "String", "StringValue": value}
            for name, value in alert_attributes(attributes).items()
        }
        clean_subject = alert_subject(subject)
        if clean_subject:
            response = self.client.publish(
                TopicArn=self.topic_arn,
                Subject=clean_subject,
                Message=alert_message(message),
                MessageAttributes=wire,
            )
        else:
            response = self.client.publish(
                TopicArn=self.topic_arn, Message=alert_message(message), MessageAttributes=wire
            )
        return response["MessageId"]
