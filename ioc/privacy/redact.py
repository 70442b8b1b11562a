"""Keep secrets out of logs: a logging filter that scrubs tokens wherever they appear.

Why a filter and not care at each call site: some lines are written by libraries we do not
control — uvicorn logs a websocket's path *with its query string*, and a browser screen can
only send its token as `?token=`. The filter sits on the handler, so it sees every record.
"""

from __future__ import annotations

import logging
import re

_RULES: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"(?i)\b(token|secret|password|api_key)=[^&\s\"'<>]+"), r"\1=[redacted]"),
    (re.compile(r"(?i)\b(bearer)\s+[A-Za-z0-9._~+/=-]+"), r"\1 [redacted]"),
    (re.compile(r"\bioc_[A-Za-z0-9_-]{8,}"), "ioc_[redacted]"),
    (re.compile(r"\bwhsec_[A-Za-z0-9+/=]{8,}"), "whsec_[redacted]"),
)


def redact(text: str) -> str:
    """`text` with every token, bearer credential and signing secret replaced."""
    for pattern, replacement in _RULES:
        text = pattern.sub(replacement, text)
    return text


class RedactSecrets(logging.Filter):
    """Rewrites a record's message (and formatted exception) when it carries a secret."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.msg, dict):  # a structlog event dict: clean its string values
            record.msg = {k: redact(v) if isinstance(v, str) else v for k, v in record.msg.items()}
            return True
        try:
            message = record.getMessage()
        except (TypeError, ValueError):  # a malformed record: leave it to the formatter
            return True
        clean = redact(message)
        if clean != message:
            record.msg, record.args = clean, None
        if record.exc_info and record.exc_info[1] is not None:
            text = logging.Formatter().formatException(record.exc_info)
            cleaned = redact(text)
            if cleaned != text:
                # The traceback named a secret: keep the cleaned text, drop the live exception.
                record.msg = f"{record.msg}\n{cleaned}"
                record.exc_info, record.exc_text = None, None
        return True


def install(handler: logging.Handler) -> None:
    """Add the filter to `handler` once."""
    if not any(isinstance(f, RedactSecrets) for f in handler.filters):
        handler.addFilter(RedactSecrets())
