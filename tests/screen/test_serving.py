"""The screen's page and assets are served without a token, with safe headers, from the package."""

from __future__ import annotations

import re

import httpx

from ioc.screen.files import ASSETS, STATIC_DIR


async def test_page_is_served_without_token_and_with_csp(screen_client: httpx.AsyncClient) -> None:
    page = await screen_client.get("/screen", params={"unit": "689", "window": "month"})
    assert page.status_code == 200
    assert page.headers["content-type"] == "text/html; charset=utf-8"
    csp = page.headers["content-security-policy"]
    assert "script-src 'self'" in csp
    assert "connect-src 'self'" in csp
    assert page.headers["referrer-policy"] == "no-referrer"
    assert page.headers["cache-control"] == "no-cache"
    # The page holds no data and no inline script: everything comes from its own assets.
    assert '<script type="module" src="screen/assets/main.js"></script>' in page.text
    assert re.search(r"<script>(?!</script>)", page.text) is None


async def test_every_referenced_asset_is_served_with_its_type(
    screen_client: httpx.AsyncClient,
) -> None:
    assert sorted(ASSETS) == [
        "api.js",
        "format.js",
        "i18n.js",
        "icon.svg",
        "live.js",
        "main.js",
        "map.js",
        "model.js",
        "render.js",
        "scorecard.js",
        "screen.css",
        "trends.js",
        "uplot.esm.js",
        "uplot.min.css",
    ]
    types = {".js": "text/javascript; charset=utf-8", ".css": "text/css; charset=utf-8"}
    for name in ASSETS:
        res = await screen_client.get(f"/screen/assets/{name}")
        assert res.status_code == 200, name
        assert res.content == (STATIC_DIR / name).read_bytes()
        expected = types.get(name[name.rindex(".") :], "image/svg+xml")
        assert res.headers["content-type"] == expected
        assert res.headers["x-content-type-options"] == "nosniff"
        # An unchanged file revalidates to a 304 (a TV reloading every night costs nothing).
        again = await screen_client.get(
            f"/screen/assets/{name}", headers={"If-None-Match": res.headers["etag"]}
        )
        assert again.status_code == 304


async def test_imports_between_modules_resolve_to_served_assets() -> None:
    for path in STATIC_DIR.glob("*.js"):
        for target in re.findall(r"from '\./([\w.]+)'", path.read_text(encoding="utf-8")):
            assert target in ASSETS, f"{path.name} imports {target}, which is not served"


async def test_unknown_or_escaping_asset_names_are_404_problems(
    screen_client: httpx.AsyncClient,
) -> None:
    for name in ["nope.js", "..%2Findex.html", "..%2F..%2Fsettings.py", "index.html"]:
        res = await screen_client.get(f"/screen/assets/{name}")
        assert res.status_code == 404, name
        assert res.headers["content-type"] == "application/problem+json"
