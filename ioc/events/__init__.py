"""The event log: every "it happened" that screens, alerts and feeds act on.

Writers call `publish()` inside their own transaction; readers tail `seq` through the
`event_log` view (one row per event; a stored row may hold a run of events). See `service.py`.
Every NOTIFY channel is named in `channels.py`; `Listener` fans them out in one process.
"""

from ioc.events.channels import (
    ALERT_OUTBOX_CHANNEL,
    EVENTS_CHANNEL,
    FEEDS_CHANNEL,
    INGEST_CHANNEL,
    TOKENS_CHANNEL,
)
from ioc.events.listener import Listener
from ioc.events.service import (
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
    "ALERT_OUTBOX_CHANNEL",
    "EVENTS_CHANNEL",
    "FEEDS_CHANNEL",
    "INGEST_CHANNEL",
    "LAST_SEQ_SQL",
    "OLDEST_SEQ_SQL",
    "ROWS_AFTER_SQL",
    "TOKENS_CHANNEL",
    "Event",
    "Listener",
    "NewEvent",
    "last_seq",
    "oldest_seq",
    "publish",
    "purge_before",
    "read_since",
    "unpack",
]
