"""A token named as people name things can push: its source is the name's ASCII slug; a
collector token whose name keeps nothing to name a source is refused at creation."""

from __future__ import annotations

import httpx
import pytest

from ioc.auth import create_token, source_name
from ioc.db import Database
from ioc.errors import Invalid

from ..collectors.factories import dossier, value
from ..conftest import TokenMaker
from .conftest import auth


def test_source_name_slugs() -> None:
    assert source_name("portal-70") == "portal-70"
    assert source_name("Cổng dịch vụ công tỉnh") == "cong-dich-vu-cong-tinh"
    assert source_name("  Đồng Xoài: hệ thống 1022 ") == "dong-xoai:-he-thong-1022"
    assert source_name("日本語") == ""


async def test_vietnamese_named_token_pushes(
    client: httpx.AsyncClient, make_token: TokenMaker, db: Database
) -> None:
    token = await make_token("collector", "70", name="Cổng dịch vụ công tỉnh")
    r = await client.post("/api/v1/ingest/dossiers", json=[dossier("TN-1")], headers=auth(token))
    assert r.status_code == 200, r.text
    assert r.json() == {"accepted": 1, "rejected": []}
    assert (
        await value(db, "SELECT source FROM dossiers WHERE source_id = 'TN-1'")
        == "cong-dich-vu-cong-tinh"
    )


async def test_collector_token_that_cannot_push_is_refused(db: Database) -> None:
    async with db.session() as session:
        with pytest.raises(Invalid, match="letters or digits"):
            await create_token(session, name="日本語 ***", role="collector", unit_code="70")
