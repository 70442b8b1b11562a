"""Parameter types whose OpenAPI description is exactly what they accept."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated

from pydantic import BeforeValidator

# RFC 3339 `date-time`, as JSON Schema's `format: date-time` means it: an offset is required.
_RFC3339 = re.compile(
    r"^\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$", re.ASCII
)


def _rfc3339(value: object) -> object:
    if isinstance(value, datetime) or (isinstance(value, str) and _RFC3339.match(value)):
        return value
    raise ValueError("expected a date and time with an offset, e.g. 2026-11-27T18:00:00+07:00")


Instant = Annotated[datetime, BeforeValidator(_rfc3339)]
"""A moment as ISO 8601 / RFC 3339 with an offset (docs/api.md §0) — not a bare number,
which pydantic would otherwise read as Unix seconds, nor a time without its offset."""
