"""Live screens (CONTRACT §5): `/ws`, the per-process fan-out hub, and a Python client.

The typed client is `ioc.live.client` (imported on its own: it needs only `websockets`).
"""

from ioc.live.hub import Hub, Topic
from ioc.live.server import WS_IMPLEMENTATION
from ioc.live.services import EventRetention, LiveTail, LiveTicker, live_services
from ioc.live.views import router

__all__ = [
    "WS_IMPLEMENTATION",
    "EventRetention",
    "Hub",
    "LiveTail",
    "LiveTicker",
    "Topic",
    "live_services",
    "router",
]
