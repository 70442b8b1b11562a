"""Federation: this `ioc` receiving another `ioc`'s feed (a district mirroring its province).

The inbox verifies the Standard Webhooks signature with `IOC_FEDERATION_SECRET` and the
±5 min replay window, ignores a `webhook-id` it has already accepted (upstream retries and
replays of a captured request), stores every event, and keeps the newest value of each
upstream KPI per (unit, window, kpi) for `GET /api/v1/federation/kpis`.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from ioc import metrics
from ioc.errors import Invalid, Unauthorized, Unavailable
from ioc.feeds.models import FederatedKpi, FederatedKpis, InboxOut
from ioc.webhooks import DEFAULT_TOLERANCE_SECONDS, verify

INBOX_MAX_BYTES = 1024 * 1024


def _parse(body: bytes) -> dict[str, Any]:
    try:
        doc = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        raise Invalid("the delivery body is not JSON") from None
    if not (
        isinstance(doc, dict)
        and isinstance(doc.get("type"), str)
        and isinstance(doc.get("seq"), int)
        and isinstance(doc.get("data"), dict)
        and (doc.get("unit") is None or isinstance(doc.get("unit"), str))
    ):
        raise Invalid('the delivery body must be {"type": str, "seq": int, "unit", "data": {}}')
    return doc


async def receive(
    session: AsyncSession, secret: str | None, headers: dict[str, str], body: bytes
) -> InboxOut:
    """Verify and store one upstream delivery; a duplicate id is accepted and ignored."""
    if not secret:
        raise Unavailable("this ioc has no upstream: set IOC_FEDERATION_SECRET to enable it")
    try:
        verify(secret, headers, body, tolerance=DEFAULT_TOLERANCE_SECONDS)
    except Unauthorized:
        metrics.FEDERATION_RECEIVED.labels("refused").inc()
        raise
    doc = _parse(body)
    msg_id = {k.lower(): v for k, v in headers.items()}["webhook-id"]
    fresh = (
        await session.execute(
            text(
                "INSERT INTO federation_inbox (webhook_id, upstream_seq, type) "
                "VALUES (:id, :seq, :type) ON CONFLICT (webhook_id) DO NOTHING RETURNING 1"
            ),
            {"id": msg_id, "seq": doc["seq"], "type": doc["type"]},
        )
    ).first()
    if fresh is None:
        metrics.FEDERATION_RECEIVED.labels("duplicate").inc()
        return InboxOut(accepted=True, duplicate=True, seq=doc["seq"])
    await session.execute(
        text(
            "INSERT INTO federation_events (upstream_seq, type, unit_code, data, webhook_id) "
            "VALUES (:seq, :type, :unit, CAST(:data AS jsonb), :id) "
            "ON CONFLICT (upstream_seq) DO NOTHING"
        ),
        {
            "seq": doc["seq"],
            "type": doc["type"],
            "unit": doc.get("unit"),
            "data": json.dumps(doc["data"], ensure_ascii=False),
            "id": msg_id,
        },
    )
    if doc["type"] == "kpi":
        await _store_kpi(session, doc)
    metrics.FEDERATION_RECEIVED.labels("accepted").inc()
    return InboxOut(accepted=True, duplicate=False, seq=doc["seq"])


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def _time(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    return parsed if parsed.tzinfo is not None else None


async def _store_kpi(session: AsyncSession, doc: dict[str, Any]) -> None:
    data = doc["data"]
    kpi = data.get("kpi")
    unit = data.get("unit") or doc.get("unit")
    if not isinstance(kpi, dict) or not isinstance(kpi.get("id"), str) or not unit:
        raise Invalid("a kpi event needs data.unit (or unit) and data.kpi.id")
    await session.execute(
        text(
            """
            INSERT INTO federation_kpis (unit_code, time_window, kpi_id, value, numerator,
                denominator, target, status, as_of, upstream_seq)
            VALUES (:unit, :window, :kpi, :value, :num, :den, :target, :status,
                :as_of, :seq)
            ON CONFLICT (unit_code, time_window, kpi_id) DO UPDATE SET
                value = EXCLUDED.value, numerator = EXCLUDED.numerator,
                denominator = EXCLUDED.denominator, target = EXCLUDED.target,
                status = EXCLUDED.status, as_of = EXCLUDED.as_of,
                upstream_seq = EXCLUDED.upstream_seq, received_at = now()
            WHERE federation_kpis.upstream_seq < EXCLUDED.upstream_seq
            """
        ),
        {
            "unit": str(unit),
            "window": str(data.get("window") or ""),
            "kpi": kpi["id"],
            "value": _number(kpi.get("value")),
            "num": _number(kpi.get("numerator")),
            "den": _number(kpi.get("denominator")),
            "target": _number(kpi.get("target")),
            "status": kpi.get("status") if isinstance(kpi.get("status"), str) else None,
            "as_of": _time(data.get("as_of")),
            "seq": doc["seq"],
        },
    )


async def federated_kpis(session: AsyncSession, unit: str, window: str | None) -> FederatedKpis:
    """The upstream's latest KPI values for `unit` (one window, or all)."""
    rows = await session.execute(
        text(
            """
            SELECT unit_code AS unit, time_window AS window, kpi_id AS id, value, numerator,
                denominator, target, status, as_of, upstream_seq, received_at
            FROM federation_kpis
            WHERE unit_code = :unit AND (CAST(:window AS text) IS NULL OR time_window = :window)
            ORDER BY time_window, kpi_id
            """
        ),
        {"unit": unit, "window": window},
    )
    return FederatedKpis(
        unit=unit, kpis=[FederatedKpi.model_validate(r, from_attributes=True) for r in rows]
    )
