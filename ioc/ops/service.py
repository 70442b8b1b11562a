"""Entry points of `ioc export` / `ioc import`: a database URL and a directory."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from ioc.db import Database, upgrade
from ioc.ops.transfer import dump, load, read_bundle, write_bundle


async def export_to(url: str, directory: Path) -> dict[str, Any]:
    """Write the configuration of the database at `url` into `directory`; the manifest.

    Does not migrate: exporting must work from a database an older ioc still runs on."""
    db = Database(url, pool_size=1)
    try:
        async with db.session() as session:
            bundle = await dump(session)
    finally:
        await db.close()
    return write_bundle(bundle, directory)


async def import_from(
    url: str,
    directory: Path,
    *,
    verify: bool = True,
    progress: Callable[[str, int, int | None], None] | None = None,
) -> dict[str, int]:
    """Migrate the database at `url`, then merge the bundle in `directory` (all or nothing);
    `progress(step, rows done, rows)` hears of each kind merged."""
    bundle = read_bundle(directory, verify=verify)
    await upgrade(url)
    db = Database(url, pool_size=1)
    try:
        async with db.session() as session:
            return await load(session, bundle, progress=progress)
    finally:
        await db.close()
