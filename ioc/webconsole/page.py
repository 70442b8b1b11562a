"""What every console route starts with: the session, the signed-in principal (checked by
the API's own `principal_for_token`), the language, the API client and the CSRF check."""

from __future__ import annotations

import functools
import inspect
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlsplit

from fastapi import Request, Response
from fastapi.responses import RedirectResponse

from ioc.auth import Principal, principal_for_token, require_role
from ioc.context import AppContext
from ioc.errors import IocError, Unauthorized
from ioc.webconsole import apiclient
from ioc.webconsole.i18n import t
from ioc.webconsole.render import render
from ioc.webconsole.session import Session, csrf_ok, read_session, write_session

PAGES = (  # (path, word, the role the API asks for it)
    ("/console/alerts", "alerts", "operator"),
    ("/console/rules", "rules", "operator"),
    ("/console/silences", "silences", "operator"),
    ("/console/feeds", "feeds", "district"),
    ("/console/targets", "targets", "admin"),
    ("/console/data-quality", "quality", "admin"),
    ("/console/tokens", "tokens", "admin"),
)


class SignInNeeded(Exception):
    """No session, or its token is no longer valid: go to the sign-in page."""


class BadForm(Exception):
    """A change without the session's CSRF secret."""


@dataclass
class Page:
    request: Request
    session: Session
    principal: Principal
    token: str

    @property
    def lang(self) -> str:
        return self.session.lang

    @property
    def ctx(self) -> AppContext:
        ctx: AppContext = self.request.app.state.ctx
        return ctx

    def may(self, role: str) -> bool:
        """Whether the API's role table grants `role` (for showing links and buttons only:
        the API itself decides)."""
        try:
            require_role(self.principal, role)
        except IocError:
            return False
        return True

    async def api(self, method: str, path: str, **kwargs: Any) -> Any:
        return await apiclient.call(self.request, self.token, method, path, **kwargs)

    async def api_public(self, path: str) -> Any:
        """A route that needs no token (`/readyz`): its JSON whatever its status."""
        return await apiclient.call_public(self.request, path)

    async def form(self) -> dict[str, str]:
        """The posted form, after checking its CSRF field against the session."""
        data = await self.request.form()
        if not csrf_ok(self.session, data.get("csrf")):
            raise BadForm
        return {k: v for k, v in data.items() if isinstance(v, str)}

    def show(self, template: str, status: int = 200, **values: Any) -> Response:
        nav = [(p, w) for p, w, role in PAGES if self.may(role)]
        response = render(
            self.request,
            template,
            self.lang,
            status=status,
            nav=nav,
            principal=self.principal,
            csrf=self.session.csrf,
            status_code=status,
            **values,
        )
        write_session(self.request, response, self.session)
        return response


async def open_page(request: Request) -> Page:
    session = read_session(request)
    if session.token is None:
        raise SignInNeeded
    ctx: AppContext = request.app.state.ctx
    try:
        async with ctx.db.sessionmaker() as db:
            principal = await principal_for_token(db, session.token)
    except Unauthorized as exc:
        raise SignInNeeded from exc
    return Page(request, session, principal, session.token)


def sign_in_redirect(request: Request) -> Response:
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    if request.method != "GET":
        target = "/console/alerts"
    return RedirectResponse(f"/console/sign-in?next={quote(target)}", status_code=303)


def safe_next(value: str | None) -> str:
    """Only a path inside the console (no scheme, no host): no open redirect."""
    if not value:
        return "/console/alerts"
    parts = urlsplit(value)
    if parts.scheme or parts.netloc or not parts.path.startswith("/console"):
        return "/console/alerts"
    if value.startswith("//") or "\\" in value:
        return "/console/alerts"
    return value


Handler = Callable[..., Awaitable[Response]]


def console_page(handler: Handler) -> Handler:
    """Run a page with its `Page`; refusals of the API become an error page with the API's
    status (403 stays 403), a lost session a redirect to sign-in."""

    @functools.wraps(handler)
    async def wrapper(request: Request, *args: Any, **kwargs: Any) -> Response:
        try:
            page = await open_page(request)
        except SignInNeeded:
            return sign_in_redirect(request)
        try:
            return await handler(page, *args, **kwargs)
        except BadForm:
            return page.show("error.html", status=403, message=page_word(page, "csrf"))
        except apiclient.ApiError as exc:
            return page.show("error.html", status=exc.status, message=exc.detail)
        except IocError as exc:
            return page.show("error.html", status=exc.status, message=str(exc))
        except ValueError as exc:  # a form value that is not a number or a time
            return page.show("error.html", status=422, message=str(exc))

    # FastAPI reads the route's parameters from the signature: the page is given, not asked.
    wrapper.__signature__ = _without_page(handler)  # type: ignore[attr-defined]
    return wrapper


def page_word(page: Page, key: str) -> str:
    return t(page.lang, key)


def _without_page(handler: Handler) -> inspect.Signature:
    sig = inspect.signature(handler)
    params = list(sig.parameters.values())[1:]
    request = inspect.Parameter(
        "request", inspect.Parameter.POSITIONAL_OR_KEYWORD, annotation=Request
    )
    return sig.replace(parameters=[request, *params])
