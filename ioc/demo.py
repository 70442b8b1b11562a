"""The demo province: load Bình Phước's units and organ mapping, mint an admin token."""

from __future__ import annotations

from pathlib import Path

from ioc.auth import create_token
from ioc.db import Database, upgrade
from ioc.settings import Settings
from ioc.units import DEMO_FILES, DEMO_ORGANS, load_organs_csv, load_units_csv


async def prepare_demo(url: str, settings: Settings) -> str:
    """Migrate, load the demo province (idempotent) and return a fresh admin token."""
    await upgrade(url)
    db = Database(url, pool_size=1)
    try:
        async with db.session() as session:
            for path in DEMO_FILES:
                await load_units_csv(session, Path(path))
            await load_organs_csv(session, Path(DEMO_ORGANS))
            secret, _ = await create_token(session, name="demo-admin", role="admin", unit_code="70")
        return secret
    finally:
        await db.close()
