"""The event log: every "it happened" that screens, alerts and feeds act on.

Writers call `publish()` inside their own transaction; readers tail `seq` through the
`event_log` view (one row per event; a stored row may hold a run of events). See `service.py`.
"""

from ioc.events.service import (
    EVENTS_CHANNEL,
    LAST_SEQ_SQL,
    OLDEST_SEQ_SQL,
    ROWS_AFTER_SQL,
    Event,
    NewEvent,
    last_seq,
    oldest_seq,
    publish,
    purge_before,
    read_since,
    unpack,
)

__all__ = [
    "EVENTS_CHANNEL",
    "LAST_SEQ_SQL",
    "OLDEST_SEQ_SQL",
    "ROWS_AFTER_SQL",
    "Event",
    "NewEvent",
    "last_seq",
    "oldest_seq",
    "publish",
    "purge_before",
    "read_since",
    "unpack",
]
