"""Where the screen's static files live in the installed package, listed once at import."""

from __future__ import annotations

from pathlib import Path

STATIC_DIR = Path(__file__).resolve().parent.parent / "static" / "screen"
INDEX = STATIC_DIR / "index.html"

MEDIA_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
    ".json": "application/json",
}

# name → path of every servable asset (the page itself is served at /screen only). A
# read-only table of the shipped files, computed once: not state that changes at run time.
ASSETS: dict[str, Path] = {
    p.name: p
    for p in sorted(STATIC_DIR.iterdir())
    if p.is_file() and p.suffix in MEDIA_TYPES and p.name != INDEX.name
}
