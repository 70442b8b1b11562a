"""The API's own documentation, served without any other host: Swagger UI (`/docs`), ReDoc
(`/redoc`) and one page per problem type (`/problems/{name}`). Public, like
`/openapi.json`: they describe routes and errors, not data.

The Swagger UI and ReDoc bundles come from the `fastapi-offline` wheel (which ships the
files FastAPI's default pages load from a CDN), so `/docs` works in an operations centre
without Internet access."""

from __future__ import annotations

import html
from functools import cache
from importlib.resources import files

from fastapi import APIRouter, Request
from fastapi.openapi.docs import (
    get_redoc_html,
    get_swagger_ui_html,
    get_swagger_ui_oauth2_redirect_html,
)
from fastapi.responses import HTMLResponse, Response

from ioc.api.problem_types import PROBLEM_TYPES, ProblemType
from ioc.errors import NotFound

router = APIRouter(include_in_schema=False)

ASSETS = "/docs/assets/"
_BUNDLE = files("fastapi_offline") / "static"
# name → media type: the only files served from the bundle.
_ASSET_TYPES = {
    "swagger-ui-bundle.js": "text/javascript; charset=utf-8",
    "swagger-ui.css": "text/css; charset=utf-8",
    "redoc.standalone.js": "text/javascript; charset=utf-8",
    "favicon.png": "image/png",
}
_CACHE = "public, max-age=86400"
# Swagger UI sends specifications to an online validator by default: not from here.
# The token given to *Authorize* stays in the page, never in the browser's storage.
_SWAGGER_PARAMETERS = {"validatorUrl": None, "persistAuthorization": False}


def _root(request: Request) -> str:
    return str(request.scope.get("root_path", "")).rstrip("/")


@router.get("/docs")
async def swagger_ui(request: Request) -> HTMLResponse:
    root = _root(request)
    return get_swagger_ui_html(
        openapi_url=f"{root}{request.app.openapi_url}",
        title=f"{request.app.title} — API (Swagger UI)",
        oauth2_redirect_url=f"{root}/docs/oauth2-redirect",
        swagger_js_url=f"{root}{ASSETS}swagger-ui-bundle.js",
        swagger_css_url=f"{root}{ASSETS}swagger-ui.css",
        swagger_favicon_url=f"{root}{ASSETS}favicon.png",
        swagger_ui_parameters=_SWAGGER_PARAMETERS,
    )


@router.get("/docs/oauth2-redirect")
async def swagger_ui_redirect() -> HTMLResponse:
    return get_swagger_ui_oauth2_redirect_html()


@router.get("/redoc")
async def redoc(request: Request) -> HTMLResponse:
    root = _root(request)
    return get_redoc_html(
        openapi_url=f"{root}{request.app.openapi_url}",
        title=f"{request.app.title} — API (ReDoc)",
        redoc_js_url=f"{root}{ASSETS}redoc.standalone.js",
        redoc_favicon_url=f"{root}{ASSETS}favicon.png",
        with_google_fonts=False,
    )


@router.get(ASSETS + "{name}")
async def asset(name: str) -> Response:
    media_type = _ASSET_TYPES.get(name)
    if media_type is None:
        raise NotFound(f"no documentation asset {name!r}")
    return Response(_asset(name), media_type=media_type, headers={"Cache-Control": _CACHE})


# ReDoc's sidebar shows Redocly's logo from their CDN (hidden when it fails to load): served
# as an inline image instead, so the page asks no other host for anything.
_REDOCLY_LOGO = b"https://cdn.redoc.ly/redoc/logo-mini.svg"
_INLINE_LOGO = (
    b"data:image/svg+xml,%3Csvg xmlns='http://www.w3.org/2000/svg' width='16' height='16'/%3E"
)


@cache
def _asset(name: str) -> bytes:
    content = (_BUNDLE / name).read_bytes()
    return content.replace(_REDOCLY_LOGO, _INLINE_LOGO)


@router.get("/problems")
async def problem_index() -> HTMLResponse:
    rows = "\n".join(
        f'<tr><td>{t.status}</td><td><a href="{t.uri}"><code>{t.uri}</code></a></td>'
        f"<td>{html.escape(t.title_vi)}<br><small>{html.escape(t.title)}</small></td></tr>"
        for t in sorted(PROBLEM_TYPES.values(), key=lambda t: (t.status, t.name))
    )
    body = (
        "<h1>Các loại lỗi của ioc <small>/ Problem types of ioc</small></h1>"
        "<p>Mỗi lỗi ioc trả về là một <em>problem detail</em> (RFC 9457, "
        "<code>application/problem+json</code>); trường <code>type</code> là một trong các địa "
        "chỉ dưới đây.<br><small>Every error ioc answers is a problem detail (RFC 9457); its "
        "<code>type</code> is one of these addresses.</small></p>"
        f"<table><tr><th>HTTP</th><th>type</th><th>nghĩa / meaning</th></tr>{rows}</table>"
    )
    return HTMLResponse(
        _page("Các loại lỗi — Problem types", body), headers={"Cache-Control": _CACHE}
    )


@router.get("/problems/{name}")
async def problem_page(name: str) -> HTMLResponse:
    kind = PROBLEM_TYPES.get(name)
    if kind is None:
        raise NotFound(f"no problem type {name!r}; the list is at /problems")
    return HTMLResponse(
        _page(f"{kind.title_vi} — {kind.title}", _explain(kind)), headers={"Cache-Control": _CACHE}
    )


def _explain(kind: ProblemType) -> str:
    e = html.escape
    return (
        f'<p><a href="/problems">← /problems</a></p>'
        f"<h1>{e(kind.title_vi)} <small>/ {e(kind.title)}</small></h1>"
        f"<p><code>type: {kind.uri}</code> · HTTP {kind.status}</p>"
        '<section lang="vi"><h2>Ý nghĩa</h2>'
        f"<p>{_code(kind.meaning_vi)}</p><h2>Cần làm gì</h2><p>{_code(kind.action_vi)}</p>"
        "</section>"
        '<section lang="en"><h2>What it means</h2>'
        f"<p>{_code(kind.meaning)}</p><h2>What to do</h2><p>{_code(kind.action)}</p></section>"
        "<p><small>Chi tiết lỗi cụ thể nằm ở trường <code>detail</code> (và <code>errors</code>) "
        "của câu trả lời. / The particular error is in the answer's <code>detail</code> (and "
        "<code>errors</code>).</small></p>"
    )


def _code(text: str) -> str:
    """Escape `text`, and set its `backquoted` parts in <code>."""
    parts = html.escape(text).split("`")
    return "".join(f"<code>{p}</code>" if i % 2 else p for i, p in enumerate(parts))


def _page(title: str, body: str) -> str:
    return (
        '<!doctype html><html lang="vi"><head><meta charset="utf-8">'
        f"<title>{html.escape(title)}</title>"
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        "<style>body{font-family:system-ui,sans-serif;max-width:52rem;margin:2rem auto;"
        "padding:0 1rem;line-height:1.5;color:#1c2430}small{color:#5a6472}"
        "code{background:#eef1f5;padding:0 .25em;border-radius:3px}"
        "table{border-collapse:collapse}td,th{padding:.3em .6em;border-bottom:1px solid #dde2e8;"
        "text-align:left;vertical-align:top}</style></head>"
        f"<body>{body}</body></html>"
    )
