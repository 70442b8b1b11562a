"""Sending one e-mail over the configured SMTP server (IOC_SMTP_*): alert notifications and
failing-feed notices go out the same way. Errors are aiosmtplib's, `OSError` or
`TimeoutError`; the caller decides what a failure means for its message."""

from __future__ import annotations

from email.message import Message

import aiosmtplib

from ioc.settings import Settings


async def send_mail(message: Message, settings: Settings, *, timeout: float) -> str:
    """Send `message` through `settings.smtp_host` (TLS as configured); the server's reply."""
    _, reply = await aiosmtplib.send(
        message,
        hostname=settings.smtp_host,
        port=settings.smtp_port,
        username=settings.smtp_user,
        password=settings.smtp_password,
        use_tls=settings.smtp_tls == "tls",
        start_tls=settings.smtp_tls == "starttls",
        timeout=timeout,
    )
    return reply
