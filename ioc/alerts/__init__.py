"""Threshold alerts (CONTRACT §6): rules, evaluation, notifications, acknowledgements, silences.

Other rooms use `list_open_alerts(session, unit)` (screens' snapshots) and the `alert` events
this room publishes to the event log on every state transition.
"""

from ioc.alerts.service import get_alert, list_alerts, list_open_alerts

__all__ = ["get_alert", "list_alerts", "list_open_alerts"]
