"""Composing and sending one alert message (email or webhook) for one recipient.

A message carries one or more notifications (several rules firing together for the same
recipient are grouped). Sending raises `DeliveryError` saying whether retrying can help.
"""

from __future__ import annotations

import json
import time
from collections.abc import Collection
from dataclasses import dataclass
from typing import Any

import aiosmtplib
import httpx

from ioc.alerts.emails import compose_email
from ioc.alerts.format import console_url, screen_url
from ioc.errors import Invalid
from ioc.settings import Settings
from ioc.smtp import send_mail
from ioc.webhooks import signature_headers, validate_target_url


class DeliveryError(Exception):
    """Sending failed; `permanent` when retrying the same message cannot succeed."""

    def __init__(self, detail: str, *, permanent: bool = False) -> None:
        super().__init__(detail)
        self.detail = detail
        self.permanent = permanent


SMTP_UNSET = (
    "e-mail is not sent while IOC_SMTP_HOST is unset: set IOC_SMTP_HOST (and IOC_SMTP_PORT, "
    "IOC_SMTP_FROM, IOC_SMTP_TLS as the mail server needs) and restart ioc; until then "
    "notifications to e-mail recipients are retried and end as failed"
)


class SmtpUnset(DeliveryError):
    """An e-mail message while no SMTP server is configured (retried like any error, but
    logged once by the sender service, not at every attempt)."""

    def __init__(self) -> None:
        super().__init__("SMTP is not configured: set IOC_SMTP_HOST")


def email_warnings(settings: Settings, channels: Collection[str]) -> list[str]:
    """What to tell whoever sets up e-mail recipients (`channels` of a rule's recipients)
    when e-mail cannot be sent: [] when it can."""
    if "email" in channels and not settings.smtp_host:
        return [SMTP_UNSET]
    return []


@dataclass(frozen=True, slots=True)
class Notification:
    """One outbox row as the sender sees it."""

    pk: int
    notification_id: str
    kind: str  # firing | reminder | resolved
    alert: dict[str, Any]


@dataclass(frozen=True, slots=True)
class Message:
    message_id: str
    channel: str
    recipient: str
    notifications: list[Notification]
    secrets: list[str]


def webhook_body(message: Message, public_url: str) -> bytes:
    """The JSON body of a webhook message (stable for a given message: safe to re-sign)."""
    return json.dumps(
        {
            "type": "alert_notification",
            "id": message.message_id,
            "notifications": [
                {
                    "id": n.notification_id,
                    "kind": n.kind,
                    "alert": {
                        **n.alert,
                        "screen_url": screen_url(public_url, n.alert),
                        "console_url": console_url(public_url, n.alert["id"]),
                    },
                }
                for n in message.notifications
            ],
        },
        ensure_ascii=False,
        sort_keys=True,
    ).encode()


async def send_email(message: Message, settings: Settings) -> str:
    if not settings.smtp_host:
        raise SmtpUnset()
    email = compose_email(message, settings)
    try:
        reply = await send_mail(email, settings, timeout=settings.smtp_timeout_seconds)
    except aiosmtplib.SMTPRecipientsRefused as exc:
        raise DeliveryError(f"recipient refused: {exc}", permanent=True) from None
    except aiosmtplib.SMTPResponseException as exc:
        raise DeliveryError(
            f"SMTP {exc.code}: {exc.message}", permanent=500 <= exc.code < 600
        ) from None
    except (aiosmtplib.SMTPException, OSError, TimeoutError) as exc:
        raise DeliveryError(f"SMTP unreachable: {type(exc).__name__}: {exc}") from None
    return reply


async def send_webhook(message: Message, settings: Settings, client: httpx.AsyncClient) -> str:
    try:
        # Checked again at send time: DNS may now point somewhere private (rebinding).
        validate_target_url(message.recipient, allow_private=settings.webhooks_allow_private)
    except Invalid as exc:
        raise DeliveryError(exc.detail, permanent=True) from None
    body = webhook_body(message, settings.public_url)
    headers = signature_headers(message.secrets, message.message_id, body)
    try:
        response = await client.post(
            message.recipient,
            content=body,
            headers=headers,
            timeout=settings.alerts_webhook_timeout_seconds,
        )
    except httpx.HTTPError as exc:
        raise DeliveryError(f"webhook unreachable: {type(exc).__name__}: {exc}") from None
    if response.is_success:
        return f"HTTP {response.status_code}"
    retryable = response.status_code in (408, 429) or response.status_code >= 500
    raise DeliveryError(
        f"HTTP {response.status_code}: {response.text[:200]}", permanent=not retryable
    )


async def send(
    message: Message, settings: Settings, client: httpx.AsyncClient
) -> tuple[str, float]:
    """Send a message; return (detail, seconds taken) or raise `DeliveryError`."""
    started = time.perf_counter()
    if message.channel == "email":
        detail = await send_email(message, settings)
    else:
        detail = await send_webhook(message, settings, client)
    return detail, time.perf_counter() - started
