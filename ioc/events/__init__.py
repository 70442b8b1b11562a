"""The event log: every "it happened" that screens, alerts and feeds act on.

Writers call `publish()` inside their own transaction; every reader reads `seq > cursor`
through `read_since()` (or, keeping up with whole rounds, `read_runs_since()`): `read.py`.
Every NOTIFY channel is named in `channels.py`; `Listener` fans them out in one process.
"""

from ioc.events import tables as _tables  # noqa: F401  (puts the room's tables on ioc.db.metadata)
from ioc.events.channels import (
    ALERT_OUTBOX_CHANNEL,
    EVENTS_CHANNEL,
    FEEDS_CHANNEL,
    INGEST_CHANNEL,
    TOKENS_CHANNEL,
)
from ioc.events.listener import Listener
from ioc.events.read import Event, Reader, last_seq, latest, oldest_seq, read_runs_since, read_since
from ioc.events.service import NewEvent, publish, purge_before

__all__ = [
    "ALERT_OUTBOX_CHANNEL",
    "EVENTS_CHANNEL",
    "FEEDS_CHANNEL",
    "INGEST_CHANNEL",
    "TOKENS_CHANNEL",
    "Event",
    "Listener",
    "NewEvent",
    "Reader",
    "last_seq",
    "latest",
    "oldest_seq",
    "publish",
    "purge_before",
    "read_runs_since",
    "read_since",
]
