"""Alerts, rules and silences pages: each reads and changes through the alert room's API."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from fastapi import APIRouter, Response
from fastapi.responses import RedirectResponse

from ioc.localtime import LOCAL_TZ
from ioc.webconsole.apiclient import ApiError
from ioc.webconsole.page import Page, console_page
from ioc.webconsole.render import breaches, chart_svg, today

router = APIRouter(prefix="/console", tags=["console"], include_in_schema=False)

OPEN_STATES = [("state", s) for s in ("firing", "pending", "no_data", "acknowledged")]
OPS = ("<", "<=", ">", ">=")
WINDOWS = ("today", "7d", "month", "quarter", "year")
SEVERITIES = ("info", "warning", "critical")


@router.get("/alerts")
@console_page
async def alerts_page(page: Page, partial: bool = False) -> Response:
    alerts = await page.api("GET", "/api/v1/alerts", params=OPEN_STATES)
    return page.show("alerts_rows.html" if partial else "alerts.html", alerts=alerts)


@router.get("/alerts/{alert_id}")
@console_page
async def alert_page(page: Page, alert_id: int, done: str | None = None) -> Response:
    alert = await page.api("GET", f"/api/v1/alerts/{alert_id}")
    return page.show("alert.html", alert=alert, can_ack=page.may("department_head"), done=done)


@router.post("/alerts/{alert_id}/ack")
@console_page
async def alert_ack(page: Page, alert_id: int) -> Response:
    form = await page.form()
    note = form.get("note", "").strip() or None
    await page.api("POST", f"/api/v1/alerts/{alert_id}/ack", json={"comment": note})
    return RedirectResponse(f"/console/alerts/{alert_id}?done=acked", status_code=303)


# --- rules


@router.get("/rules")
@console_page
async def rules_page(page: Page) -> Response:
    rules = await page.api("GET", "/api/v1/alert-rules")
    return page.show("rules.html", rules=rules, can_manage=page.may("department_head"))


async def _catalogue(page: Page) -> list[dict[str, Any]]:
    kpis: list[dict[str, Any]] = await page.api("GET", "/api/v1/kpis/catalogue")
    return kpis


async def _preview(page: Page, fields: dict[str, Any]) -> dict[str, Any] | None:
    """The KPI's current value and 30 days of daily values against the proposed threshold."""
    kpi, unit, window = fields.get("kpi"), fields.get("unit"), fields.get("window") or "today"
    if not kpi or not unit:
        return None
    end = today()
    series = await page.api(
        "GET",
        f"/api/v1/kpis/{kpi}/series",
        params={
            "unit": unit,
            "from": (end - timedelta(days=29)).isoformat(),
            "to": end.isoformat(),
        },
    )
    snapshot = await page.api("GET", "/api/v1/kpis", params={"unit": unit, "window": window})
    current = next((k for k in snapshot["kpis"] if k["id"] == kpi), None)
    threshold = _float(fields.get("threshold"))
    points = series["points"]
    fired, days = (
        breaches(points, fields.get("op") or "<", threshold) if threshold is not None else (0, 0)
    )
    return {
        "points": points,
        "current": current,
        "chart": chart_svg(points, threshold, kpi),
        "fired": fired,
        "days": days,
        "threshold": threshold,
    }


def _float(value: Any) -> float | None:
    try:
        return float(str(value).replace(",", ".")) if value not in (None, "") else None
    except ValueError:
        return None


def _rule_body(form: dict[str, str]) -> dict[str, Any]:
    """The API's rule fields from the form (the API validates them)."""
    body: dict[str, Any] = {
        "name": form.get("name", "").strip(),
        "kpi": form.get("kpi", ""),
        "unit": form.get("unit", "").strip(),
        "window": form.get("window", "today"),
        "op": form.get("op", "<"),
        "threshold": _float(form.get("threshold")),
        "severity": form.get("severity", "warning"),
        "for_seconds": int(_float(form.get("for_seconds")) or 0),
    }
    emails = [e.strip() for e in form.get("emails", "").replace(";", ",").split(",") if e.strip()]
    body["recipients"] = [{"channel": "email", "to": e} for e in emails]
    return body


async def _rule_form(
    page: Page,
    fields: dict[str, Any],
    rule_id: int | None,
    error: str | None = None,
    status: int = 200,
) -> Response:
    preview = None
    try:
        preview = await _preview(page, fields)
    except ApiError as exc:
        error = error or exc.detail
    return page.show(
        "rule_form.html",
        status=status,
        fields=fields,
        rule_id=rule_id,
        catalogue=await _catalogue(page),
        ops=OPS,
        windows=WINDOWS,
        severities=SEVERITIES,
        preview=preview,
        error=error,
        can_manage=page.may("department_head"),
    )


@router.get("/rules/new")
@console_page
async def rule_new(page: Page) -> Response:
    fields: dict[str, Any] = {
        "unit": page.principal.unit_code or "",
        "window": "today",
        "op": "<",
        "severity": "warning",
        **dict(page.request.query_params),
    }
    return await _rule_form(page, fields, None)


@router.post("/rules/new")
@console_page
async def rule_create(page: Page) -> Response:
    form = await page.form()
    if form.get("action") == "preview":
        return await _rule_form(page, form, None)
    try:
        created = await page.api("POST", "/api/v1/alert-rules", json=_rule_body(form))
    except ApiError as exc:
        if exc.status in (401, 403):
            raise
        return await _rule_form(page, form, None, error=exc.detail, status=exc.status)
    return RedirectResponse(f"/console/rules/{created['rule']['id']}?done=saved", status_code=303)


@router.get("/rules/{rule_id}")
@console_page
async def rule_edit(page: Page, rule_id: int) -> Response:
    rule = await page.api("GET", f"/api/v1/alert-rules/{rule_id}")
    fields = {**rule, "emails": ", ".join(r["to"] for r in rule["recipients"] if r.get("to"))}
    fields.update({k: v for k, v in page.request.query_params.items() if k != "done"})
    return await _rule_form(page, fields, rule_id)


@router.post("/rules/{rule_id}")
@console_page
async def rule_update(page: Page, rule_id: int) -> Response:
    form = await page.form()
    if form.get("action") == "preview":
        return await _rule_form(page, form, rule_id)
    try:
        await page.api("PATCH", f"/api/v1/alert-rules/{rule_id}", json=_rule_body(form))
    except ApiError as exc:
        if exc.status in (401, 403, 404):
            raise
        return await _rule_form(page, form, rule_id, error=exc.detail, status=exc.status)
    return RedirectResponse(f"/console/rules/{rule_id}?done=saved", status_code=303)


@router.post("/rules/{rule_id}/delete")
@console_page
async def rule_delete(page: Page, rule_id: int) -> Response:
    await page.form()
    await page.api("DELETE", f"/api/v1/alert-rules/{rule_id}")
    return RedirectResponse("/console/rules", status_code=303)


# --- silences


@router.get("/silences")
@console_page
async def silences_page(page: Page) -> Response:
    silences = await page.api("GET", "/api/v1/silences")
    rules = await page.api("GET", "/api/v1/alert-rules")
    default_until = (datetime.now(LOCAL_TZ) + timedelta(days=1)).strftime("%Y-%m-%dT%H:%M")
    return page.show(
        "silences.html",
        silences=silences,
        rules=rules,
        default_until=default_until,
        can_manage=page.may("department_head"),
    )


@router.post("/silences")
@console_page
async def silence_create(page: Page) -> Response:
    form = await page.form()
    until = datetime.fromisoformat(form.get("until", "")).replace(tzinfo=LOCAL_TZ)
    body: dict[str, Any] = {
        "until": until.isoformat(),
        "reason": form.get("reason", "").strip(),
        "rule": int(form["rule"]) if form.get("rule") else None,
        "unit": form.get("unit", "").strip() or None,
    }
    await page.api("POST", "/api/v1/silences", json=body)
    return RedirectResponse("/console/silences", status_code=303)


@router.post("/silences/{silence_id}/expire")
@console_page
async def silence_expire(page: Page, silence_id: int) -> Response:
    await page.form()
    await page.api("DELETE", f"/api/v1/silences/{silence_id}")
    return RedirectResponse("/console/silences", status_code=303)
