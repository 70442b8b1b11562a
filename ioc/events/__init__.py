"""The event log: every "it happened" that screens, alerts and feeds act on.

Writers call `publish()` inside their own transaction; readers tail `seq`. See `service.py`.
"""

from ioc.events.service import (
    EVENTS_CHANNEL,
    Event,
    NewEvent,
    last_seq,
    oldest_seq,
    publish,
    purge_before,
    read_since,
)

__all__ = [
    "EVENTS_CHANNEL",
    "Event",
    "NewEvent",
    "last_seq",
    "oldest_seq",
    "publish",
    "purge_before",
    "read_since",
]
