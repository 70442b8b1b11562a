"""Live screens (docs/api.md §5): `/ws`, the per-process fan-out hub, and a Python client.

The app composes `router`, `build_services(ctx)` (the hub, kept in `ctx.handles`, and its
loops) and `register_cli` (`ioc watch`). The typed client is `ioc.live.client`: a program
that only watches a screen imports it alone (it needs only `websockets`).
"""

from ioc.live.cli import register_cli
from ioc.live.hub import Hub, Topic
from ioc.live.loops import EventRetention, LiveTail, LiveTicker, build_services
from ioc.live.server import WS_IMPLEMENTATION
from ioc.live.views import router

__all__ = [
    "WS_IMPLEMENTATION",
    "EventRetention",
    "Hub",
    "LiveTail",
    "LiveTicker",
    "Topic",
    "build_services",
    "register_cli",
    "router",
]
