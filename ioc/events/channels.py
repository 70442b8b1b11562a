"""Every PostgreSQL NOTIFY channel of ioc, named once.

A writer queues `pg_notify(channel, payload)` in its own transaction, so the notification
is delivered exactly when (and only if) the transaction commits; readers subscribe through
the process's one `Listener`. Payloads are small hints, never data: a reader that hears one
reads the rows itself (and after a reconnect, with payload `None`, catches up anyway).
"""

from __future__ import annotations

# payload: the highest seq just committed to the event log (`ioc.events.publish`)
EVENTS_CHANNEL = "ioc_events"
# payload: the feed whose records changed: dossiers, procedures, reports or documents
INGEST_CHANNEL = "ioc_ingest"
# payload: the id of an API token just revoked (open websockets of that token close)
TOKENS_CHANNEL = "ioc_tokens"
# payload: the id of a feed subscription just created, changed or deleted
FEEDS_CHANNEL = "ioc_feeds"
# payload: empty; alert notifications wait in the outbox
ALERT_OUTBOX_CHANNEL = "ioc_alert_outbox"
