"""Telling a district its feed is failing: one short e-mail over the configured SMTP."""

from __future__ import annotations

import logging
from email.message import EmailMessage

import aiosmtplib

from ioc.settings import Settings
from ioc.smtp import send_mail

log = logging.getLogger("ioc.feeds")


def failing_message(
    settings: Settings, *, to: str, sub_id: str, url: str, reason: str
) -> EmailMessage:
    """The notice, in Vietnamese (the district's language), with a link to the subscription."""
    msg = EmailMessage()
    msg["From"] = settings.smtp_from
    msg["To"] = to
    msg["Subject"] = f"[IOC] Nguồn cấp dữ liệu bị lỗi: {url}"
    msg.set_content(
        "Kính gửi quý đơn vị,\n\n"
        f"Đăng ký nhận dữ liệu {sub_id} gửi tới {url} đã chuyển sang trạng thái "
        '"failing" (lỗi) vì không nhận được phản hồi 2xx trong thời gian thử lại.\n'
        f"Lý do: {reason}\n\n"
        'Sau khi khắc phục, hãy kích hoạt lại (PATCH {"status": "active"}) hoặc gửi lại '
        f"từ một seq: {settings.public_url}/api/v1/subscriptions/{sub_id}\n\n"
        "Trung tâm Điều hành thông minh (IOC)\n"
    )
    return msg


async def send_failing_email(
    settings: Settings, *, to: str, sub_id: str, url: str, reason: str
) -> str | None:
    """Send the notice; return None when sent, else why not (shown in the status reason)."""
    if not settings.smtp_host:
        return "no SMTP server configured (IOC_SMTP_HOST)"
    msg = failing_message(settings, to=to, sub_id=sub_id, url=url, reason=reason)
    try:
        await send_mail(msg, settings, timeout=15)
    except (aiosmtplib.SMTPException, OSError, TimeoutError) as exc:
        log.warning("feeds: failing notice to %s not sent: %s", to, exc)
        return f"e-mail to {to} failed: {exc}"
    return None
