"""Alert e-mails (docs/alerts.md): Vietnamese, an HTML part with a plain-text alternative,
both rendered from the same figures by the Jinja2 templates in `ioc/alerts/templates`.

Built with the compat32 `MIMEMultipart`/`MIMEText` + `Header` on purpose: the modern
`EmailMessage` folder drops the space between RFC 2047 encoded words when it folds a long
Vietnamese subject ("cảnh báo" arrives as "cảnhbáo"); `Header` encodes the spaces inside
the words.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from email.header import Header
from email.mime.multipart import MIMEMultipart
from email.mime.text import MIMEText
from email.utils import formatdate
from typing import TYPE_CHECKING, Any

from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape

from ioc.alerts.format import (
    OP_WORDS,
    SEVERITY_NAMES,
    WINDOW_NAMES,
    console_url,
    format_time,
    screen_url,
)
from ioc.kpis import CATALOGUE, format_value, kpi_name
from ioc.settings import Settings

if TYPE_CHECKING:
    from ioc.alerts.notify import Message, Notification

HEADINGS = {
    "firing": "ĐANG CẢNH BÁO",
    "reminder": "NHẮC LẠI — VẪN ĐANG CẢNH BÁO",
    "resolved": "ĐÃ TRỞ LẠI BÌNH THƯỜNG",
}
# How a firing alert of each comparison resolves (`ioc.alerts.state.decide`: when the value
# no longer breaches the clear threshold): "Hết cảnh báo khi giá trị …" + the threshold.
CLEARS_WHEN: dict[str, str] = {
    "<": "trở lại từ {} trở lên",
    "<=": "trở lại trên {}",
    ">": "giảm trở lại còn {} trở xuống",
    ">=": "giảm trở lại dưới {}",
}


@dataclass(frozen=True, slots=True)
class AlertBlock:
    """One alert of a message, every figure already worded and formatted."""

    kind: str  # firing | reminder | resolved
    heading: str
    rule_name: str
    unit: str
    unit_name: str
    kpi_name: str
    window: str | None  # None for KPIs the window does not change ("now" figures)
    value: str
    counts: str | None  # `9.103/10.000` for a ratio
    threshold: str
    clears_when: str | None
    target: str | None
    severity: str
    severity_key: str
    fired_at: str
    resolved_at: str | None
    ack_url: str | None
    screen_url: str


def clears_when(op: str, threshold: float, clear: float | None, kpi: str) -> str | None:
    """`giảm trở lại dưới 2` for a `>=` rule clearing below 2; None when the alert clears
    where it fired (no separate clear threshold)."""
    if clear is None or clear == threshold:
        return None
    return CLEARS_WHEN[op].format(format_value(kpi, clear))


def alert_block(note: Notification, public_url: str) -> AlertBlock:
    """The figures of one notification as the e-mail shows them."""
    a: dict[str, Any] = note.alert
    kpi = a["kpi"]
    known = CATALOGUE.get(kpi)
    counts = None
    if a.get("numerator") is not None and a.get("denominator") is not None:
        counts = (
            f"{format_value('count', a['numerator'])}/{format_value('count', a['denominator'])}"
        )
    return AlertBlock(
        kind=note.kind,
        heading=HEADINGS[note.kind],
        rule_name=a["rule_name"],
        unit=a["unit"],
        unit_name=a["unit_name"],
        kpi_name=kpi_name(kpi),
        window=(
            WINDOW_NAMES.get(a["window"], a["window"]) if known is None or known.windowed else None
        ),
        value=format_value(kpi, a["value"]),
        counts=counts,
        threshold=f"{OP_WORDS[a['op']]} {format_value(kpi, a['threshold'])}",
        clears_when=clears_when(a["op"], a["threshold"], a.get("clear_threshold"), kpi),
        target=format_value(kpi, a["target"]) if a.get("target") is not None else None,
        severity=SEVERITY_NAMES.get(a["severity"], a["severity"]),
        severity_key=a["severity"],
        fired_at=format_time(a.get("fired_at")),
        resolved_at=format_time(a.get("resolved_at")) if note.kind == "resolved" else None,
        ack_url=console_url(public_url, a["id"]) if note.kind != "resolved" else None,
        screen_url=screen_url(public_url, a),
    )


def subject(message: Message) -> str:
    """One alert: its severity, KPI, unit and value; several: how many of each, and where."""
    notes = message.notifications
    if len(notes) == 1:
        note = notes[0]
        a = note.alert
        what = f"{kpi_name(a['kpi'])} tại {a['unit_name']}: {format_value(a['kpi'], a['value'])}"
        if note.kind == "resolved":
            return f"[IOC] Đã khắc phục: {what}"
        severity = SEVERITY_NAMES.get(a["severity"], a["severity"])
        prefix = "Nhắc lại cảnh báo" if note.kind == "reminder" else "Cảnh báo"
        return f"[IOC][{severity}] {prefix}: {what}"
    firing = sum(1 for n in notes if n.kind != "resolved")
    resolved = len(notes) - firing
    parts = []
    if firing:
        parts.append(f"{firing} đang cảnh báo")
    if resolved:
        parts.append(f"{resolved} đã khắc phục")
    units = sorted({n.alert["unit_name"] for n in notes})
    return f"[IOC] {len(notes)} thông báo cảnh báo ({', '.join(parts)}): {', '.join(units)}"


@functools.cache
def _templates() -> Environment:
    return Environment(
        loader=PackageLoader("ioc.alerts", "templates"),
        autoescape=select_autoescape(enabled_extensions=("html.j2",), default=False),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )


def render(message: Message, public_url: str) -> tuple[str, str]:
    """(plain text, HTML) of the message's body."""
    context = {
        "subject": subject(message),
        "alerts": [alert_block(n, public_url) for n in message.notifications],
    }
    env = _templates()
    return (
        env.get_template("email.txt.j2").render(context),
        env.get_template("email.html.j2").render(context),
    )


def compose_email(message: Message, settings: Settings) -> MIMEMultipart:
    """The Vietnamese e-mail for a message (`multipart/alternative`: plain, then HTML); its
    Message-ID is stable across retries."""
    plain, html = render(message, settings.public_url)
    email = MIMEMultipart("alternative")
    email.attach(MIMEText(plain, "plain", "utf-8"))
    email.attach(MIMEText(html, "html", "utf-8"))
    email["From"] = settings.smtp_from
    email["To"] = message.recipient
    email["Subject"] = Header(subject(message), "utf-8")  # type: ignore[assignment]
    email["Date"] = formatdate(localtime=False)
    email["Message-ID"] = f"<{message.message_id}@ioc.alerts>"
    email["X-IOC-Notification-Ids"] = " ".join(n.notification_id for n in message.notifications)
    return email
