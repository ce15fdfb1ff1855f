"""Keep both bodies of SES e-mails sent under moto.

moto 5.2.5 stores one body per simple message (HTML if present, else text), so a report sent with both parts
loses its text part. These patches wrap moto's SES v1 and v2 ``SendEmail`` responses and attach the HTML and
text parts of the request to the stored message (``local_html`` / ``local_text`` attributes).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any
from unittest import mock


def _attach(messages: list[Any], count_before: int, html: str | None, text: str | None) -> None:
    if len(messages) > count_before:
        message = messages[-1]
        message.local_html = html
        message.local_text = text


def install() -> list[Any]:
    """Start the patches; returns them (stop each on teardown)."""
    from moto.ses.responses import EmailResponse
    from moto.sesv2.responses import SESV2Response

    v1_original: Callable[[Any], Any] = EmailResponse.send_email
    v2_original: Callable[[Any], Any] = SESV2Response.send_email

    def v1_send_email(self: Any) -> Any:
        html = self._get_param("Message.Body.Html.Data")
        text = self._get_param("Message.Body.Text.Data")
        messages = self.backend.sent_messages
        before = len(messages)
        result = v1_original(self)
        _attach(messages, before, html, text)
        return result

    def v2_send_email(self: Any) -> Any:
        body = (json.loads(self.body or "{}").get("Content") or {}).get("Simple", {}).get("Body", {})
        messages = self.sesv2_backend.core_backend.sent_messages
        before = len(messages)
        result = v2_original(self)
        _attach(messages, before, (body.get("Html") or {}).get("Data"), (body.get("Text") or {}).get("Data"))
        return result

    patches = [
        mock.patch.object(EmailResponse, "send_email", v1_send_email),
        mock.patch.object(SESV2Response, "send_email", v2_send_email),
    ]
    for patch in patches:
        patch.start()
    return patches
