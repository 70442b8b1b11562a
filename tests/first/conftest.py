"""Tests of issue 19 ("the first hour as a product"): they push records and create tokens,
so they get their own database and no other room's literal counts see them."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from ioc.auth import create_token
from ioc.db import Database

from ..conftest import DatabaseFactory, TokenMaker


@pytest.fixture(scope="session")
async def database_url(databases: DatabaseFactory) -> str:
    return await databases.create()


@pytest.fixture(scope="session")
async def db(database_url: str) -> AsyncIterator[Database]:
    database = Database(database_url, pool_size=5)
    yield database
    await database.close()


@pytest.fixture(scope="session")
def make_token(db: Database) -> TokenMaker:
    async def make(role: str, unit: str | None = "70", name: str | None = None) -> str:
        async with db.session() as session:
            secret, _ = await create_token(
                session, name=name or f"test-{role}-{unit}", role=role, unit_code=unit
            )
        return secret

    return make


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}
