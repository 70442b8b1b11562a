"""Threshold alerts (docs/api.md §6): rules, evaluation, notifications, acknowledgements, silences.

Other rooms use `list_open_alerts(session, unit)` (screens' snapshots), `ensure_demo_rules`
(the demo province's rules, created once by `ioc demo`), the `alert` events this room
publishes to the event log on every state transition; the app composes `router` and
`build_services(ctx)`.
"""

from ioc.alerts import tables as _tables  # noqa: F401  (puts the room's tables on ioc.db.metadata)
from ioc.alerts.demo import DEMO_RULES, ensure_demo_rules
from ioc.alerts.loops import build_services
from ioc.alerts.service import get_alert, list_alerts, list_open_alerts
from ioc.alerts.views import router

__all__ = [
    "DEMO_RULES",
    "build_services",
    "ensure_demo_rules",
    "get_alert",
    "list_alerts",
    "list_open_alerts",
    "router",
]
