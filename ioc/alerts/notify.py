"""Composing and sending one alert message (email or webhook) for one recipient.

A message carries one or more notifications (several rules firing together for the same
recipient are grouped). Sending raises `DeliveryError` saying whether retrying can help.
"""

from __future__ import annotations

import json
import time
from collections.abc import Collection
from dataclasses import dataclass
from email.header import Header
from email.mime.text import MIMEText
from email.utils import formatdate
from typing import Any
from urllib.parse import urlencode

import aiosmtplib
import httpx

from ioc.alerts.format import (
    OP_WORDS,
    SEVERITY_NAMES,
    WINDOW_NAMES,
    console_url,
    format_time,
)
from ioc.errors import Invalid
from ioc.kpis import format_value, kpi_name
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


HEADINGS = {
    "firing": "ĐANG CẢNH BÁO",
    "reminder": "NHẮC LẠI — VẪN ĐANG CẢNH BÁO",
    "resolved": "ĐÃ TRỞ LẠI BÌNH THƯỜNG",
}


def screen_url(public_url: str, alert: dict[str, Any]) -> str:
    query = urlencode({"unit": alert["unit"], "window": alert["window"]})
    return f"{public_url.rstrip('/')}/screen?{query}"


def _subject(message: Message) -> str:
    notes = message.notifications
    if len(notes) == 1:
        note = notes[0]
        a = note.alert
        what = f"{kpi_name(a['kpi'])} tại {a['unit_name']}: {format_value(a['kpi'], a['value'])}"
        if note.kind == "resolved":
            return f"[IOC] Đã khắc phục: {what}"
        severity = SEVERITY_NAMES.get(a["severity"], a["severity"])
        prefix = "Nhắc lại cảnh báo" if note.kind == "reminder" else "Cảnh báo"
        return f"[IOC][{severity}] {prefix}: {what}"
    firing = sum(1 for n in notes if n.kind != "resolved")
    resolved = len(notes) - firing
    parts = []
    if firing:
        parts.append(f"{firing} đang cảnh báo")
    if resolved:
        parts.append(f"{resolved} đã khắc phục")
    units = sorted({n.alert["unit_name"] for n in notes})
    return f"[IOC] {len(notes)} thông báo cảnh báo ({', '.join(parts)}): {', '.join(units)}"


def _block(note: Notification, public_url: str) -> str:
    a = note.alert
    kpi = a["kpi"]
    lines = [
        f"■ {HEADINGS[note.kind]}: {a['rule_name']}",
        f"  Đơn vị: {a['unit_name']} (mã {a['unit']})",
        f"  Chỉ tiêu: {kpi_name(kpi)} — kỳ {WINDOW_NAMES.get(a['window'], a['window'])}",
        f"  Giá trị: {format_value(kpi, a['value'])}",
    ]
    if a.get("numerator") is not None and a.get("denominator") is not None:
        lines[-1] += (
            f" ({format_value('count', a['numerator'])}/{format_value('count', a['denominator'])})"
        )
    threshold = f"{OP_WORDS[a['op']]} {format_value(kpi, a['threshold'])}"
    lines.append(f"  Ngưỡng cảnh báo: {threshold}")
    if a.get("clear_threshold") is not None and a["clear_threshold"] != a["threshold"]:
        lines.append(f"  Hết cảnh báo khi vượt: {format_value(kpi, a['clear_threshold'])}")
    if a.get("target") is not None:
        lines.append(f"  Mục tiêu: {format_value(kpi, a['target'])}")
    lines.append(f"  Mức độ: {SEVERITY_NAMES.get(a['severity'], a['severity'])}")
    lines.append(f"  Cảnh báo từ: {format_time(a.get('fired_at'))} (giờ Việt Nam)")
    if note.kind == "resolved":
        lines.append(f"  Đã khắc phục lúc: {format_time(a.get('resolved_at'))}")
    if note.kind != "resolved":
        lines.append(f"  Xác nhận (acknowledge): {console_url(public_url, a['id'])}")
    lines.append(f"  Xem trên màn hình điều hành: {screen_url(public_url, a)}")
    return "\n".join(lines)


def compose_email(message: Message, settings: Settings) -> MIMEText:
    """The Vietnamese email for a message; its Message-ID is stable across retries.

    Built with the compat32 `MIMEText` + `Header` on purpose: the modern `EmailMessage`
    folder drops the space between RFC 2047 encoded words when it folds a long Vietnamese
    subject ("cảnh báo" arrives as "cảnhbáo"); `Header` encodes the spaces inside the words.
    """
    intro = "Kính gửi anh/chị,\n\nHệ thống IOC thông báo tình hình các chỉ tiêu sau:\n"
    blocks = "\n\n".join(_block(n, settings.public_url) for n in message.notifications)
    outro = (
        "\n\nĐể xác nhận đã nắm thông tin và dừng nhắc lại, hãy xác nhận (acknowledge) cảnh "
        "báo theo đường dẫn « Xác nhận » ở trên.\n\nTrung tâm Điều hành thông minh (IOC) — "
        "thư tự động, vui lòng không trả lời.\n"
    )
    email = MIMEText(intro + "\n" + blocks + outro, "plain", "utf-8")
    email["From"] = settings.smtp_from
    email["To"] = message.recipient
    email["Subject"] = Header(_subject(message), "utf-8")  # type: ignore[assignment]
    email["Date"] = formatdate(localtime=False)
    email["Message-ID"] = f"<{message.message_id}@ioc.alerts>"
    email["X-IOC-Notification-Ids"] = " ".join(n.notification_id for n in message.notifications)
    return email


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
