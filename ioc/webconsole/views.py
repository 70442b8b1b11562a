"""The console's entry routes: its assets, sign-in (token or single sign-on), sign-out and
the language switch. The pages themselves are in `pages_*.py`."""

from __future__ import annotations

import contextlib
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlsplit

from fastapi import APIRouter, Request, Response
from fastapi.responses import FileResponse, RedirectResponse

from ioc.auth import create_token, principal_for_token, revoke_token
from ioc.context import AppContext
from ioc.errors import IocError, NotFound, Unauthorized
from ioc.webconsole import oidc
from ioc.webconsole.i18n import t
from ioc.webconsole.page import safe_next
from ioc.webconsole.render import HEADERS, render
from ioc.webconsole.session import (
    LANGS,
    OIDC_COOKIE,
    PATH,
    Session,
    csrf_ok,
    read_oidc_state,
    read_session,
    write_oidc_state,
    write_session,
)

STATIC = Path(__file__).resolve().parent.parent / "static" / "webconsole"
ASSETS = {p.name: p for p in sorted(STATIC.iterdir()) if p.suffix in {".css", ".js", ".svg"}}
MEDIA = {".css": "text/css; charset=utf-8", ".js": "text/javascript; charset=utf-8",
         ".svg": "image/svg+xml"}  # fmt: skip

router = APIRouter(prefix="/console", tags=["console"], include_in_schema=False)


def _ctx(request: Request) -> AppContext:
    ctx: AppContext = request.app.state.ctx
    return ctx


def _sso_origin(request: Request) -> str:
    issuer = _ctx(request).settings.console_oidc_issuer
    if not issuer:
        return ""
    parts = urlsplit(issuer)
    return f"{parts.scheme}://{parts.netloc}"


def _sign_in_page(
    request: Request, session: Session, next_url: str, error: str | None = None, status: int = 200
) -> Response:
    response = render(
        request,
        "sign_in.html",
        session.lang,
        status=status,
        sso_origin=_sso_origin(request),
        csrf=session.csrf,
        next_url=next_url,
        sso=oidc.enabled(_ctx(request).settings),
        error=error,
        nav=[],
        principal=None,
    )
    write_session(request, response, session)
    return response


@router.get("/assets/{name}")
async def asset(name: str) -> Response:
    path = ASSETS.get(name)
    if path is None:
        raise NotFound(f"no console asset named {name!r}")
    return FileResponse(path, media_type=MEDIA[path.suffix], headers=HEADERS)


@router.get("")
@router.get("/")
async def home() -> Response:
    return RedirectResponse("/console/alerts", status_code=303)


@router.get("/sign-in")
async def sign_in_form(request: Request, next: str | None = None) -> Response:
    return _sign_in_page(request, read_session(request), safe_next(next))


@router.post("/sign-in")
async def sign_in(request: Request) -> Response:
    session = read_session(request)
    form = await request.form()
    next_url = safe_next(str(form.get("next") or ""))
    if not csrf_ok(session, form.get("csrf")):
        return _sign_in_page(request, session, next_url, error="csrf", status=403)
    token = str(form.get("token") or "").strip()
    try:
        async with _ctx(request).db.sessionmaker() as db:
            principal = await principal_for_token(db, token)
    except Unauthorized as exc:
        return _sign_in_page(request, session, next_url, error=str(exc), status=401)
    if principal.role == "collector":
        # A source system's key: nothing in the console is for it, and a person holding it
        # should not be shown pages that all answer "refused".
        return _sign_in_page(
            request, session, next_url, error=t(session.lang, "collector_token"), status=403
        )
    response = RedirectResponse(next_url, status_code=303)
    write_session(request, response, session.signed_in(token))
    return response


@router.get("/sign-in/sso")
async def sso_start(request: Request, next: str | None = None) -> Response:
    settings = _ctx(request).settings
    session = read_session(request)
    if not oidc.enabled(settings):
        raise NotFound("single sign-on is not configured (IOC_CONSOLE_OIDC_ISSUER)")
    try:
        url, kept = await oidc.start(settings, _redirect_uri(request))
    except (oidc.SignOnError, OSError) as exc:
        return _sign_in_page(request, session, safe_next(next), error=str(exc), status=502)
    response = RedirectResponse(url, status_code=303)
    write_oidc_state(request, response, {**kept, "next": safe_next(next)})
    return response


def _redirect_uri(request: Request) -> str:
    return _ctx(request).settings.public_url + "/console/sign-in/sso/callback"


@router.get("/sign-in/sso/callback")
async def sso_callback(
    request: Request, code: str | None = None, state: str | None = None, error: str | None = None
) -> Response:
    ctx = _ctx(request)
    session = read_session(request)
    kept = read_oidc_state(request)
    next_url = safe_next(kept.get("next") if kept else None)
    if error or code is None or kept is None or state != kept.get("state"):
        reason = error or "the sign-on answer does not match the request this browser started"
        return _sign_in_page(request, session, next_url, error=reason, status=400)
    try:
        claims = await oidc.finish(ctx.settings, _redirect_uri(request), kept, code)
        who = oidc.identity(ctx.settings, claims)
        expires = datetime.now(UTC) + timedelta(hours=ctx.settings.console_session_hours)
        async with ctx.db.sessionmaker() as db, db.begin():
            token, info = await create_token(
                db, name=f"{who.name} (SSO)", role=who.role, unit_code=who.unit, expires_at=expires
            )
    except (oidc.SignOnError, IocError, OSError) as exc:
        return _sign_in_page(request, session, next_url, error=str(exc), status=403)
    response = RedirectResponse(next_url, status_code=303)
    write_session(request, response, session.signed_in(token, minted=str(info.id)))
    response.delete_cookie(OIDC_COOKIE, path=PATH)
    return response


@router.post("/sign-out")
async def sign_out(request: Request) -> Response:
    session = read_session(request)
    form = await request.form()
    if not csrf_ok(session, form.get("csrf")):
        return _sign_in_page(request, session, "/console/alerts", error="csrf", status=403)
    if session.minted:  # a token the console issued for SSO dies with its session
        async with _ctx(request).db.sessionmaker() as db, db.begin():
            with contextlib.suppress(NotFound):
                await revoke_token(db, session.minted)
    response = RedirectResponse("/console/sign-in", status_code=303)
    write_session(request, response, session.signed_out())
    return response


@router.get("/lang/{lang}")
async def switch_language(request: Request, lang: str, next: str | None = None) -> Response:
    """Only the session's display language changes (no data): a plain link, no form."""
    session = read_session(request)
    response = RedirectResponse(safe_next(next), status_code=303)
    chosen = lang if lang in LANGS else "vi"
    write_session(
        request,
        response,
        Session(csrf=session.csrf, lang=chosen, token=session.token, minted=session.minted),
    )
    return response
