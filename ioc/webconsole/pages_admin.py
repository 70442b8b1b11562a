"""Admin pages: tokens, data quality (dead-letters, organ mapping, source health), targets.

Dead-letters, replay and targets go through the API. Tokens and organ mappings have no API
route (the CLI's `ioc token` and `ioc organs load` manage them for the whole deployment);
here the console calls the same service functions after the API's role check, and only an
administrator of the whole deployment (a token with no unit) may use them.
"""

from __future__ import annotations

import tempfile
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Response
from fastapi.responses import RedirectResponse

from ioc.auth import create_token, list_tokens, require_role, revoke_token
from ioc.errors import Forbidden
from ioc.units import load_organs_csv
from ioc.webconsole import audit
from ioc.webconsole.page import Page, console_page

router = APIRouter(prefix="/console", tags=["console"], include_in_schema=False)

ROLES = ("admin", "operator", "department_head", "district", "collector")


def _whole_deployment_admin(page: Page) -> None:
    require_role(page.principal, "admin")
    if page.principal.unit_code is not None:
        raise Forbidden(
            "only an administrator of the whole deployment (a token without a unit) may do this"
        )


# --- tokens


async def _tokens_page(page: Page, secret: str | None = None) -> Response:
    _whole_deployment_admin(page)
    async with page.ctx.db.sessionmaker() as db:
        tokens = await list_tokens(db)
    return page.show("tokens.html", tokens=list(reversed(tokens)), roles=ROLES, secret=secret)


@router.get("/tokens")
@console_page
async def tokens_page(page: Page) -> Response:
    return await _tokens_page(page)


@router.post("/tokens")
@console_page
async def token_issue(page: Page) -> Response:
    _whole_deployment_admin(page)
    form = await page.form()
    days = form.get("days", "").strip()
    expires = datetime.now(UTC) + timedelta(days=float(days)) if days else None
    async with page.ctx.db.sessionmaker() as db, db.begin():
        secret, info = await create_token(
            db,
            name=form.get("name", ""),
            role=form.get("role", ""),
            unit_code=form.get("unit", "").strip() or None,
            expires_at=expires,
        )
        await audit.record(
            db, page.principal, "token.create", info.prefix,
            {"name": info.name, "role": info.role, "unit": info.unit_code},
        )  # fmt: skip
    return await _tokens_page(page, secret=secret)


@router.post("/tokens/{token_id}/revoke")
@console_page
async def token_revoke(page: Page, token_id: str) -> Response:
    _whole_deployment_admin(page)
    await page.form()
    async with page.ctx.db.sessionmaker() as db, db.begin():
        info = await revoke_token(db, token_id)
        await audit.record(db, page.principal, "token.revoke", info.prefix, {"name": info.name})
    return RedirectResponse("/console/tokens", status_code=303)


# --- data quality


def _groups(letters: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Pending dead-letters by (first reason, source), biggest group first."""
    groups: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
    for d in letters:
        reasons = d.get("reasons") or ["?"]
        first = reasons[0]
        reason = first if isinstance(first, str) else str(first.get("message", first))
        groups[(reason, d["source"])].append(d)
    return [
        {"reason": r, "source": s, "count": len(items), "ids": [i["id"] for i in items],
         "letters": items[:20]}
        for (r, s), items in sorted(groups.items(), key=lambda kv: -len(kv[1]))
    ]  # fmt: skip


@router.get("/data-quality")
@console_page
async def quality_page(page: Page, done: str | None = None, n: int = 0, a: int = 0) -> Response:
    letters: list[dict[str, Any]] = []
    after = 0
    while True:  # every pending one, a page of 1,000 at a time
        answer = await page.api(
            "GET", "/api/v1/dead-letters", params={"after_id": after, "limit": 1000}
        )
        letters.extend(answer["items"])
        if answer["next_after_id"] is None or len(letters) >= 10_000:
            break
        after = answer["next_after_id"]
    ready = await page.api_public("/readyz")
    sources = ready.get("checks", {}).get("collectors", {}).get("sources", {})
    return page.show(
        "quality.html",
        groups=_groups(letters),
        total=len(letters),
        sources=sources,
        done=done,
        replayed=n,
        accepted=a,
    )


@router.get("/data-quality/{dead_letter_id}")
@console_page
async def dead_letter_page(page: Page, dead_letter_id: int) -> Response:
    answer = await page.api(
        "GET", "/api/v1/dead-letters",
        params={"pending": "false", "after_id": dead_letter_id - 1, "limit": 1},
    )  # fmt: skip
    items = [d for d in answer["items"] if d["id"] == dead_letter_id]
    if not items:
        return page.show("error.html", status=404, message=f"dead-letter {dead_letter_id}?")
    return page.show("dead_letter.html", letter=items[0])


@router.post("/data-quality/replay")
@console_page
async def quality_replay(page: Page) -> Response:
    form = await page.form()
    ids = [int(i) for i in form.get("ids", "").split(",") if i.strip()]
    result = await page.api("POST", "/api/v1/dead-letters/replay", json={"ids": ids or None})
    return RedirectResponse(
        f"/console/data-quality?done=replayed&n={result['replayed']}&a={result['accepted']}",
        status_code=303,
    )


@router.post("/data-quality/organs")
@console_page
async def organs_load(page: Page) -> Response:
    _whole_deployment_admin(page)
    await page.form()  # the CSRF check (Starlette keeps the parsed form for the upload)
    upload = (await page.request.form()).get("file")
    content = await upload.read() if upload is not None and not isinstance(upload, str) else b""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "organs.csv"
        path.write_bytes(content)
        async with page.ctx.db.sessionmaker() as db, db.begin():
            count = await load_organs_csv(db, path)
            await audit.record(db, page.principal, "organs.load", "organs", {"rows": count})
    return page.show("organs_loaded.html", count=count)


# --- targets


@router.get("/targets")
@console_page
async def targets_page(page: Page, unit: str | None = None, done: str | None = None) -> Response:
    require_role(page.principal, "admin")
    params = {"unit": unit} if unit else {}
    targets = await page.api("GET", "/api/v1/kpis/targets", params=params)
    catalogue = await page.api("GET", "/api/v1/kpis/catalogue")
    async with page.ctx.db.sessionmaker() as db:
        changes = await audit.recent(db, "target.set")
    names = {k["id"]: k["name_vi" if page.lang == "vi" else "name_en"] for k in catalogue}
    return page.show(
        "targets.html",
        targets=targets,
        names=names,
        unit=unit or page.principal.unit_code or (targets[0]["unit"] if targets else ""),
        changes=changes,
        done=done,
    )


@router.post("/targets")
@console_page
async def target_set(page: Page) -> Response:
    form = await page.form()
    unit, kpi = form.get("unit", "").strip(), form.get("kpi", "")
    raw = form.get("target", "").strip().replace(",", ".")
    value = float(raw) if raw else None
    out = await page.api("PUT", f"/api/v1/kpis/targets/{unit}/{kpi}", json={"target": value})
    async with page.ctx.db.sessionmaker() as db, db.begin():
        await audit.record(
            db, page.principal, "target.set", f"{unit}/{kpi}",
            {"unit": unit, "kpi": kpi, "target": value, "now": out.get("target")},
        )  # fmt: skip
    return RedirectResponse(f"/console/targets?unit={unit}&done=saved", status_code=303)
