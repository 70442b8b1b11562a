"""The console's session: one signed, HTTP-only cookie (itsdangerous), checked on every page.

The cookie holds the ioc token the session acts with (the one typed at sign-in, or the one
minted for a single sign-on identity), the CSRF secret and the language. It is signed, not
encrypted: it is as much a credential as the token inside it, which is why it is HttpOnly,
Secure, SameSite=Lax and limited to `/console`. Every request re-checks the token through
`ioc.auth.principal_for_token` (expiry, revocation), exactly as the API does.
"""

from __future__ import annotations

import hmac
import secrets
from dataclasses import dataclass, replace
from typing import Any

from fastapi import Request, Response
from itsdangerous import BadSignature, URLSafeTimedSerializer

from ioc.context import AppContext

COOKIE = "ioc_console"
OIDC_COOKIE = "ioc_console_oidc"
PATH = "/console"
LANGS = ("vi", "en")


@dataclass(frozen=True, slots=True)
class Session:
    """What the cookie carries. `token` None = not signed in (the CSRF secret still guards
    the sign-in form); `minted` = the token id the console issued for an SSO sign-in."""

    csrf: str
    lang: str = "vi"
    token: str | None = None
    minted: str | None = None

    def signed_in(self, token: str, minted: str | None = None) -> Session:
        """A new session for a signed-in user: a fresh CSRF secret (no fixation)."""
        return replace(self, token=token, minted=minted, csrf=secrets.token_urlsafe(32))

    def signed_out(self) -> Session:
        return Session(csrf=secrets.token_urlsafe(32), lang=self.lang)


class ConsoleKeys:
    """The signers of the console's cookies, built once per app from `Settings`."""

    def __init__(self, secret_key: str | None, max_age_seconds: int, secure: bool) -> None:
        key = secret_key or secrets.token_urlsafe(48)
        self.session = URLSafeTimedSerializer(key, salt="ioc-console-session")
        self.oidc = URLSafeTimedSerializer(key, salt="ioc-console-oidc")
        self.max_age = max_age_seconds
        self.secure = secure


def keys_of(ctx: AppContext) -> ConsoleKeys:
    return ctx.handles.get(ConsoleKeys)


def read_session(request: Request) -> Session:
    """The request's session, or a fresh anonymous one (bad or old cookies are ignored)."""
    keys = keys_of(request.app.state.ctx)
    raw = request.cookies.get(COOKIE)
    if raw:
        try:
            data = keys.session.loads(raw, max_age=keys.max_age)
        except BadSignature:
            data = None
        if isinstance(data, dict) and isinstance(data.get("c"), str):
            lang = data.get("l") if data.get("l") in LANGS else "vi"
            return Session(
                csrf=data["c"], lang=str(lang), token=data.get("t"), minted=data.get("m")
            )
    return Session(csrf=secrets.token_urlsafe(32), lang=_browser_lang(request))


def _browser_lang(request: Request) -> str:
    accept = request.headers.get("accept-language", "")
    first = accept.split(",")[0].strip().lower()
    return "en" if first.startswith("en") else "vi"


def write_session(request: Request, response: Response, session: Session) -> None:
    keys = keys_of(request.app.state.ctx)
    value = keys.session.dumps(
        {"c": session.csrf, "l": session.lang, "t": session.token, "m": session.minted}
    )
    response.set_cookie(
        COOKIE,
        value,
        max_age=keys.max_age,
        path=PATH,
        secure=keys.secure,
        httponly=True,
        samesite="lax",
    )


def csrf_ok(session: Session, given: object) -> bool:
    """Whether a form's `csrf` field matches the session's secret (constant time)."""
    return isinstance(given, str) and hmac.compare_digest(given, session.csrf)


def write_oidc_state(request: Request, response: Response, state: dict[str, Any]) -> None:
    keys = keys_of(request.app.state.ctx)
    response.set_cookie(
        OIDC_COOKIE,
        keys.oidc.dumps(state),
        max_age=600,
        path=PATH,
        secure=keys.secure,
        httponly=True,
        samesite="lax",
    )


def read_oidc_state(request: Request) -> dict[str, Any] | None:
    keys = keys_of(request.app.state.ctx)
    raw = request.cookies.get(OIDC_COOKIE)
    if not raw:
        return None
    try:
        data = keys.oidc.loads(raw, max_age=600)
    except BadSignature:
        return None
    return data if isinstance(data, dict) else None
