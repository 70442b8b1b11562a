"""Server-rendered pages: Jinja2 templates (autoescaped), the words of `i18n`, Vietnamese
number and time formats, and the rule form's chart as inline SVG (no script needed)."""

from __future__ import annotations

from datetime import date, datetime
from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse
from jinja2 import Environment, FileSystemLoader, select_autoescape

from ioc.localtime import LOCAL_TZ
from ioc.webconsole.i18n import ROLE_NAMES, STATE_NAMES, t

TEMPLATES = Path(__file__).resolve().parent / "templates"

# Pages load only the console's own script and style; inline scripts are refused, so data
# that reaches a page can never become code. Forms post only to this origin.
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; base-uri 'none'; form-action 'self' {sso}; frame-ancestors 'none'"
)
HEADERS = {
    "Cache-Control": "no-store",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
}


def _environment() -> Environment:
    env = Environment(
        loader=FileSystemLoader(TEMPLATES),
        autoescape=select_autoescape(["html"]),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["when"] = format_time
    env.filters["num"] = format_number
    return env


def format_time(moment: datetime | str | None) -> str:
    if moment is None or moment == "":
        return "—"
    if isinstance(moment, str):
        moment = datetime.fromisoformat(moment)
    return moment.astimezone(LOCAL_TZ).strftime("%H:%M %d/%m/%Y")


def format_number(value: float | None, lang: str = "vi", kpi: str = "") -> str:
    """`0.9103` of a rate → `91,03%` (vi) / `91.03%` (en); other values with 2 decimals."""
    if value is None:
        return "—"
    shown = value * 100 if kpi.endswith("_rate") else value
    text = f"{shown:,.2f}".rstrip("0").rstrip(".")
    if lang == "vi":
        text = text.replace(",", " ").replace(".", ",").replace(" ", ".")
    return text + ("%" if kpi.endswith("_rate") else "")


ENV = _environment()


def render(
    request: Request,
    template: str,
    lang: str,
    status: int = 200,
    sso_origin: str = "",
    **values: Any,
) -> HTMLResponse:
    def tr(key: str, **kw: object) -> str:
        return t(lang, key, **kw)

    def role_name(role: str) -> str:
        pair = ROLE_NAMES.get(role)
        return (pair[1] if lang == "en" else pair[0]) if pair else role

    def state_name(state: str) -> str:
        pair = STATE_NAMES.get(state)
        return (pair[1] if lang == "en" else pair[0]) if pair else state

    html = ENV.get_template(template).render(
        t=tr,
        lang=lang,
        role_name=role_name,
        state_name=state_name,
        path=request.url.path,
        query=request.url.query,
        **values,
    )
    headers = {**HEADERS, "Content-Security-Policy": CSP.format(sso=sso_origin).strip()}
    return HTMLResponse(html, status_code=status, headers=headers)


def chart_svg(points: list[dict[str, Any]], threshold: float | None, kpi: str) -> dict[str, Any]:
    """Coordinates of a 600×200 line chart of daily values with a threshold line."""
    values = [p["value"] for p in points if p.get("value") is not None]
    scale = 100.0 if kpi.endswith("_rate") else 1.0
    candidates = [v * scale for v in values]
    if threshold is not None:
        candidates.append(threshold * scale)
    low = min(candidates, default=0.0)
    high = max(candidates, default=1.0)
    if high - low < 1e-9:
        high = low + 1.0
    pad = (high - low) * 0.1
    low, high = low - pad, high + pad
    width, height, left = 600.0, 200.0, 40.0
    n = max(len(points) - 1, 1)

    def y(v: float) -> float:
        return round(height - (v * scale - low) / (high - low) * height, 1)

    dots = [
        (round(left + i * (width - left) / n, 1), y(p["value"]))
        for i, p in enumerate(points)
        if p.get("value") is not None
    ]
    return {
        "polyline": " ".join(f"{x},{yy}" for x, yy in dots),
        "dots": dots,
        "threshold_y": y(threshold) if threshold is not None else None,
        "width": width,
        "height": height,
        "left": left,
    }


def breaches(points: list[dict[str, Any]], op: str, threshold: float) -> tuple[int, int]:
    """(days on which `value op threshold`, days with a value): the 30-day preview."""

    def compare(v: float) -> bool:
        if op == "<":
            return v < threshold
        if op == "<=":
            return v <= threshold
        if op == ">":
            return v > threshold
        return v >= threshold

    values = [float(p["value"]) for p in points if p.get("value") is not None]
    return sum(1 for v in values if compare(v)), len(values)


def today() -> date:
    return datetime.now(LOCAL_TZ).date()
