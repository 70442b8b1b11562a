"""Structured logging: key=value lines for humans, JSON lines for log shippers."""

from __future__ import annotations

import logging

import structlog

from ioc.privacy import install_log_redaction, redact_secrets

# One record never writes more than this: a traceback is a few KB without locals.
MAX_RECORD_CHARS = 32_000


class _RedactingFormatter(structlog.stdlib.ProcessorFormatter):
    """The last word on every line, in every format: the rendered text itself is redacted
    (a renderer may add what no filter saw, e.g. a traceback's locals) and bounded."""

    def format(self, record: logging.LogRecord) -> str:
        text = redact_secrets(super().format(record))
        if len(text) > MAX_RECORD_CHARS:
            cut = len(text) - MAX_RECORD_CHARS
            text = f"{text[:MAX_RECORD_CHARS]}… [{cut} more characters cut]"
        return text


def configure(level: str = "info", json: bool = False) -> None:
    """Route stdlib and structlog records through one structlog renderer."""
    # Plain tracebacks in both formats: rich's (the console default when rich is installed)
    # prints every frame's locals — request headers, hence bearer tokens, and hundreds of KB.
    renderers: list[structlog.types.Processor] = (
        [
            structlog.processors.format_exc_info,
            structlog.processors.JSONRenderer(ensure_ascii=False),
        ]
        if json
        else [
            structlog.dev.ConsoleRenderer(
                colors=False, exception_formatter=structlog.dev.plain_traceback
            )
        ]
    )
    shared: list[structlog.types.Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    handler = logging.StreamHandler()
    handler.setFormatter(
        _RedactingFormatter(
            foreign_pre_chain=shared,
            processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, *renderers],
        )
    )
    # Tokens must never reach a log line, whoever writes it (docs/security.md).
    install_log_redaction(handler)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    logging.getLogger("uvicorn.access").setLevel(logging.WARNING)
    # One line per polled page would drown what matters; collectors log failures themselves.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    structlog.configure(
        processors=[*shared, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
