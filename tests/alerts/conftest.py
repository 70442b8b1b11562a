"""Fixtures of the alert tests: a fresh database per test (the evaluator's cursor and the
outbox are deployment-wide), helpers to publish KPI events and to create rules."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import pytest

from ioc.alerts.evaluator import Round, evaluate_round
from ioc.alerts.models import RuleIn
from ioc.alerts.rules import Rule, create_rule
from ioc.db import Database
from ioc.events import NewEvent, publish
from tests.conftest import DatabaseFactory


@pytest.fixture
async def adb(databases: DatabaseFactory) -> AsyncIterator[Database]:
    """A fresh migrated database with the demo province, for one test."""
    url = await databases.create()
    database = Database(url, pool_size=3)
    yield database
    await database.close()


async def publish_kpi(
    db: Database,
    kpi: str,
    unit: str,
    value: float | None,
    *,
    window: str = "month",
    numerator: float | None = None,
    denominator: float | None = None,
    target: float | None = 0.95,
) -> None:
    """Publish a `kpi` event exactly as the KPI engine does (architecture §2)."""
    payload = {
        "unit": unit,
        "window": window,
        "as_of": datetime.now(UTC).isoformat(),
        "kpi": {
            "id": kpi,
            "value": value,
            "numerator": numerator,
            "denominator": denominator,
            "target": target,
            "status": "no_data" if value is None else "bad",
        },
    }
    async with db.session() as session:
        await publish(
            session,
            [NewEvent("kpi", payload, unit_code=unit, time_window=window, subject=kpi)],
        )


async def make_rule(db: Database, **fields: Any) -> tuple[Rule, str]:
    data: dict[str, Any] = {
        "name": "Hồ sơ đúng hạn thấp",
        "kpi": "dossier_ontime_rate",
        "unit": "689",
        "window": "month",
        "op": "<",
        "threshold": 0.95,
        "severity": "critical",
        "recipients": [{"channel": "email", "to": "truongphong@binhphuoc.gov.vn"}],
    }
    data.update(fields)
    async with db.session() as session:
        return await create_rule(
            session, RuleIn(**data), scope_unit=None, created_by="test", allow_private=True
        )


async def evaluate(db: Database, *, recompute: bool = False) -> Round:
    async with db.session() as session:
        return await evaluate_round(session, datetime.now(UTC), recompute=recompute)
