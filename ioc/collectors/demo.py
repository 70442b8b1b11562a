"""The demo province: load Bình Phước's units and organ mapping, keep two demo tokens (an
admin for the API, an operator for the wall screen and `ioc watch`), and simulate its
sources (portal, 1022 hotline, documents) with collectors pulling from them."""

from __future__ import annotations

import json
import logging
import os
import socket
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from ioc.auth import create_token, principal_for_token
from ioc.db import Database, upgrade
from ioc.errors import Unauthorized
from ioc.settings import Settings
from ioc.units import DEMO_FILES, DEMO_ORGANS, load_organs_csv, load_units_csv

# The demo's tokens are kept (mode 0600) beside its data, so each run reuses them instead
# of minting new ones; they expire after DEMO_TOKEN_DAYS and are then replaced.
DEMO_TOKENS_FILE = "demo-tokens.json"
DEMO_TOKEN_DAYS = 30
# name, role: the operator sees the whole province (70) and nothing more than read.
_DEMO_TOKENS = {"admin": ("demo-admin", "admin"), "operator": ("demo-screen-70", "operator")}
_WILDCARDS = ("0.0.0.0", "::", "")  # noqa: S104  (compared, never bound)


@dataclass(frozen=True, slots=True)
class DemoTokens:
    """The demo's two tokens: `admin` for the API, `operator` for screens and `ioc watch`."""

    admin: str
    operator: str


def demo_token(settings: Settings, role: str = "operator") -> str | None:
    """The demo's token of `role` kept under IOC_DATA_DIR by `ioc demo`, if there is one."""
    try:
        kept = json.loads((settings.data_dir / DEMO_TOKENS_FILE).read_text())
    except (OSError, ValueError):
        return None
    value = kept.get(role) if isinstance(kept, dict) else None
    return value if isinstance(value, str) else None


async def _demo_tokens(session: AsyncSession, settings: Settings) -> DemoTokens:
    """The kept tokens when they still work with this database, else new ones (older demo
    tokens of the same name are revoked, so a demo never piles up tokens)."""
    secrets: dict[str, str] = {}
    for key, (name, role) in _DEMO_TOKENS.items():
        kept = demo_token(settings, key)
        if kept is not None:
            try:
                principal = await principal_for_token(session, kept)
            except Unauthorized:
                principal = None
            expires = principal.expires_at if principal else None
            if (
                principal is not None
                and principal.role == role
                and expires is not None
                and expires > datetime.now(UTC) + timedelta(days=1)
            ):
                secrets[key] = kept
                continue
        await session.execute(
            text("UPDATE api_tokens SET revoked_at = now() WHERE name = :n AND revoked_at IS NULL"),
            {"n": name},
        )
        secrets[key], _ = await create_token(
            session,
            name=name,
            role=role,
            unit_code="70",
            expires_at=datetime.now(UTC) + timedelta(days=DEMO_TOKEN_DAYS),
        )
    path = settings.data_dir / DEMO_TOKENS_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        json.dump(secrets, out)
    return DemoTokens(admin=secrets["admin"], operator=secrets["operator"])


def lan_address() -> str | None:
    """This machine's address on its local network (the interface of the default route), or
    None without one. No packet is sent: connecting a UDP socket only picks the route."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.connect(("192.0.2.1", 9))  # TEST-NET-1: never answered, never sent
            address: str = probe.getsockname()[0]
        except OSError:
            return None
    return None if address.startswith(("127.", "0.")) else address


def screen_base_url(settings: Settings) -> str:
    """The base URL to print for screens: IOC_PUBLIC_URL when set; bound to every interface
    (IOC_HOST=0.0.0.0), the LAN address a TV on the network can open; else the default."""
    default = f"http://localhost:{settings.port}"
    if settings.host in _WILDCARDS and settings.public_url == default:
        address = lan_address()
        if address is not None:
            return f"http://{address}:{settings.port}"
    return settings.public_url


async def prepare_demo(url: str, settings: Settings) -> DemoTokens:
    """Migrate, load the demo province (idempotent) and return the demo's tokens (kept from
    the last run while they are valid)."""
    from ioc.collectors.simulator import demo_organs, demo_units

    await upgrade(url)
    db = Database(url, pool_size=1)
    try:
        async with db.session() as session:
            for path in DEMO_FILES:
                await load_units_csv(session, Path(path))
            await load_organs_csv(session, Path(DEMO_ORGANS))
            # The simulator's document system also uses directory-style ids for the
            # districts the shipped mapping does not cover; map them (never overwrite).
            organs = [
                {"organ_id": o, "unit_code": c, "name": f"UBND {c}"}
                for o, c in demo_organs(demo_units()).items()
            ]
            await session.execute(
                text(
                    "INSERT INTO organs (organ_id, unit_code, name) "
                    "SELECT organ_id, unit_code, name FROM jsonb_to_recordset(CAST(:o AS jsonb)) "
                    "AS o(organ_id text, unit_code text, name text) ON CONFLICT DO NOTHING"
                ),
                {"o": json.dumps(organs)},
            )
            return await _demo_tokens(session, settings)
    finally:
        await db.close()


def start_demo_sources(settings: Settings) -> Settings:
    """Start the simulator (its own thread and port) and return settings whose collectors
    pull every feed from it, so the demo shows records within seconds."""
    from ioc.collectors.simserver import demo_sources, start_in_thread
    from ioc.collectors.simulator import World

    # one line per poll of each simulated feed would drown the demo's own output
    logging.getLogger("httpx").setLevel(logging.WARNING)
    world = World(seed=settings.seed, rate=settings.simulate_rate)
    base = start_in_thread(world, host="127.0.0.1")
    return settings.model_copy(update={"collectors": [*settings.collectors, *demo_sources(base)]})
