"""The demo province: load Bình Phước's units and organ mapping, mint an admin token, and
simulate its sources (portal, 1022 hotline, documents) with collectors pulling from them."""

from __future__ import annotations

import json
import logging
from pathlib import Path

from sqlalchemy import text

from ioc.alerts import ensure_demo_rules
from ioc.auth import create_token
from ioc.db import Database, upgrade
from ioc.settings import Settings
from ioc.units import DEMO_FILES, DEMO_ORGANS, load_organs_csv, load_units_csv


async def prepare_demo(url: str, settings: Settings) -> str:
    """Migrate, load the demo province (idempotent) and return a fresh admin token."""
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
            # The province's alert rules, so the wall's ticker shows real alerts (created once).
            await ensure_demo_rules(session)
            secret, _ = await create_token(session, name="demo-admin", role="admin", unit_code="70")
        return secret
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
