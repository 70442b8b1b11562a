"""The console's record of changes made through it (targets, tokens, organ mappings)."""

from __future__ import annotations

from typing import Any

import orjson
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from ioc.auth import Principal


async def record(
    session: AsyncSession, who: Principal, action: str, obj: str, detail: dict[str, Any]
) -> None:
    """Append one change (the caller's transaction commits it with the change's page)."""
    await session.execute(
        text(
            "INSERT INTO console_audit (actor, role, action, object, detail) "
            "VALUES (:a, :r, :act, :o, CAST(:d AS jsonb))"
        ),
        {"a": who.name, "r": who.role, "act": action, "o": obj, "d": orjson.dumps(detail).decode()},
    )


async def recent(session: AsyncSession, action: str, limit: int = 100) -> list[dict[str, Any]]:
    rows = await session.execute(
        text(
            "SELECT at, actor, role, object, detail FROM console_audit WHERE action = :act "
            "ORDER BY at DESC, id DESC LIMIT :n"
        ),
        {"act": action, "n": limit},
    )
    return [dict(r._mapping) for r in rows]
