"""Feeds for district IOCs (docs/api.md §7): subscriptions, signed ordered webhook delivery, and
record events for the `dossier`/`report`/`document` topics.

The app composes `router` and `build_services(ctx)`; the receiving side of a feed (another
`ioc` mirroring this one) is `ioc.federation`.
"""

from ioc.feeds import tables as _tables  # noqa: F401  (puts the room's tables on ioc.db.metadata)
from ioc.feeds.delivery import DeliveryService
from ioc.feeds.loops import build_services
from ioc.feeds.records import RecordEventsService
from ioc.feeds.views import router

__all__ = ["DeliveryService", "RecordEventsService", "build_services", "router"]
