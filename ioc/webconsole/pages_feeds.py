"""The district's feed subscriptions: list, create, delivery health, pause or resume,
rotate the secret (shown once), replay from a seq, delete — all through the feeds API."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Response
from fastapi.responses import RedirectResponse

from ioc.webconsole.page import Page, console_page

router = APIRouter(prefix="/console", tags=["console"], include_in_schema=False)

TOPICS = ("kpi", "alert", "dossier", "report", "document", "scorecard")


@router.get("/feeds")
@console_page
async def feeds_page(page: Page) -> Response:
    subscriptions = await page.api("GET", "/api/v1/subscriptions")
    return page.show(
        "feeds.html", subscriptions=subscriptions, topics=TOPICS, unit=page.principal.unit_code
    )


@router.post("/feeds")
@console_page
async def feed_create(page: Page) -> Response:
    form = await page.form()
    data = await page.request.form()
    body: dict[str, Any] = {
        "url": form.get("url", "").strip(),
        "unit": form.get("unit", "").strip(),
        "topics": [str(v) for v in data.getlist("topics")],
        "contact_email": form.get("contact_email", "").strip() or None,
        "description": form.get("description", "").strip() or None,
    }
    created = await page.api("POST", "/api/v1/subscriptions", json=body)
    return await _one(page, created["id"], secret=created["secret"])


async def _one(page: Page, sub_id: str, **values: Any) -> Response:
    sub = await page.api("GET", f"/api/v1/subscriptions/{sub_id}")
    deliveries = await page.api(
        "GET", f"/api/v1/subscriptions/{sub_id}/deliveries", params={"limit": 50}
    )
    ok = sum(1 for d in deliveries if d["ok"])
    return page.show("feed.html", sub=sub, deliveries=deliveries, ok=ok, **values)


@router.get("/feeds/{sub_id}")
@console_page
async def feed_page(page: Page, sub_id: str, done: str | None = None) -> Response:
    return await _one(page, sub_id, done=done)


@router.post("/feeds/{sub_id}/rotate")
@console_page
async def feed_rotate(page: Page, sub_id: str) -> Response:
    await page.form()
    rotated = await page.api("POST", f"/api/v1/subscriptions/{sub_id}/rotate-secret")
    return await _one(page, sub_id, secret=rotated["secret"])


@router.post("/feeds/{sub_id}/replay")
@console_page
async def feed_replay(page: Page, sub_id: str) -> Response:
    form = await page.form()
    since = int(form.get("since", "0") or 0)
    await page.api("POST", f"/api/v1/subscriptions/{sub_id}/replay", params={"since": since})
    return RedirectResponse(f"/console/feeds/{sub_id}?done=replay", status_code=303)


@router.post("/feeds/{sub_id}/status")
@console_page
async def feed_status(page: Page, sub_id: str) -> Response:
    form = await page.form()
    status = "paused" if form.get("status") == "paused" else "active"
    await page.api("PATCH", f"/api/v1/subscriptions/{sub_id}", json={"status": status})
    return RedirectResponse(f"/console/feeds/{sub_id}?done=saved", status_code=303)


@router.post("/feeds/{sub_id}/delete")
@console_page
async def feed_delete(page: Page, sub_id: str) -> Response:
    await page.form()
    await page.api("DELETE", f"/api/v1/subscriptions/{sub_id}")
    return RedirectResponse("/console/feeds", status_code=303)
