"""Vietnamese wording and number formats for alert messages (docs/api.md §6: emails in Vietnamese).

Numbers follow Vietnamese usage (`ioc.kpis.format_value`: decimal comma, dot for thousands,
`91,03%`, `1.234`).
Times are shown in Asia/Ho_Chi_Minh, the zone of every screen and calendar window.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from urllib.parse import urlencode

from ioc.localtime import LOCAL_TZ

WINDOW_NAMES: dict[str, str] = {
    "today": "hôm nay",
    "7d": "7 ngày qua",
    "month": "tháng này",
    "quarter": "quý này",
    "year": "năm nay",
}

SEVERITY_NAMES: dict[str, str] = {
    "info": "Thông tin",
    "warning": "Cảnh báo",
    "critical": "Nghiêm trọng",
}

OP_WORDS: dict[str, str] = {"<": "<", "<=": "≤", ">": ">", ">=": "≥"}


def format_time(moment: datetime | str | None) -> str:
    """`HH:MM dd/mm/yyyy` in Vietnam time."""
    if moment is None:
        return "—"
    if isinstance(moment, str):
        moment = datetime.fromisoformat(moment)
    return moment.astimezone(LOCAL_TZ).strftime("%H:%M %d/%m/%Y")


def console_url(public_url: str, alert_id: int) -> str:
    """The web console's page of one alert (history, deliveries, acknowledge): the link an
    alert e-mail and webhook carry (docs/console.md)."""
    return f"{public_url.rstrip('/')}/console/alerts/{alert_id}"


def screen_url(public_url: str, alert: dict[str, Any]) -> str:
    """The wall screen of the alert's unit and window: the link e-mails and webhooks carry."""
    query = urlencode({"unit": alert["unit"], "window": alert["window"]})
    return f"{public_url.rstrip('/')}/screen?{query}"
