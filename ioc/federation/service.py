"""Federation: this `ioc` receiving another `ioc`'s feed (a district mirroring its province).

The inbox verifies the Standard Webhooks signature with `IOC_FEDERATION_SECRET` and the
±5 min replay window, ignores a `webhook-id` it has already accepted (upstream retries and
replays of a captured request), stores every event, and keeps the newest value of each
upstream KPI per (unit, window, kpi) for `GET /api/v1/federation/kpis`.

With `IOC_FEDERATION_KPIS=upstream` (the default) a newer upstream KPI value is also
published as a local `kpi` event (same transaction), marked `"source": "upstream"`, so this
instance's live hub pushes it to its own screens; the screens' snapshot and `GET /api/v1/kpis`
overlay the stored values (`ioc.federation.overlay`).
`IOC_FEDERATION_UNIT` limits both to one subtree.

A feed carries changes only; `fetch_upstream()` + `seed()` (`ioc federation seed`) fill in
the upstream's current values once, so KPIs that do not change for a while show too.
"""

from __future__ import annotations

import json
import logging
from datetime import datetime
from typing import Any

import httpx
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from ioc import metrics
from ioc.errors import Forbidden, Invalid, Unauthorized, Unavailable
from ioc.events import NewEvent, publish
from ioc.federation.models import FederatedKpi, FederatedKpis, InboxOut
from ioc.federation.overlay import UPSTREAM, mirrored
from ioc.localtime import WINDOWS
from ioc.units import is_within
from ioc.webhooks import DEFAULT_TOLERANCE_SECONDS, verify

INBOX_MAX_BYTES = 1024 * 1024

log = logging.getLogger("ioc.federation")


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
    session: AsyncSession,
    secret: str | None,
    headers: dict[str, str],
    body: bytes,
    *,
    mirror: bool = False,
    scope_unit: str | None = None,
) -> InboxOut:
    """Verify and store one upstream delivery; a duplicate id is accepted and ignored.

    `mirror`: a `kpi` event that brings a newer value is also published as a local `kpi`
    event, in the caller's transaction. `scope_unit`: a `kpi` event for a unit outside its
    subtree is answered 200 (so the upstream does not retry it) but not taken."""
    if not secret:
        raise Unavailable("this ioc has no upstream: set IOC_FEDERATION_SECRET to enable it")
    try:
        verify(secret, headers, body, tolerance=DEFAULT_TOLERANCE_SECONDS)
    except Unauthorized:
        metrics.FEDERATION_RECEIVED.labels("refused").inc()
        raise
    doc = _parse(body)
    msg_id = {k.lower(): v for k, v in headers.items()}["webhook-id"]
    if doc["type"] == "kpi" and scope_unit is not None:
        unit = _kpi_unit(doc)
        if not await is_within(session, scope_unit, unit):
            metrics.FEDERATION_RECEIVED.labels("out_of_scope").inc()
            log.warning(
                "federation: ignored upstream kpi event %s for unit %s, outside "
                "IOC_FEDERATION_UNIT=%s",
                doc["seq"],
                unit,
                scope_unit,
            )
            return InboxOut(accepted=False, duplicate=False, seq=doc["seq"])
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
        newer = await _store_kpi(session, doc)
        if newer is not None and mirror:
            await publish(session, [_local_event(newer, doc["seq"], msg_id)])
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


def _kpi_unit(doc: dict[str, Any]) -> str:
    kpi = doc["data"].get("kpi")
    unit = doc["data"].get("unit") or doc.get("unit")
    if not isinstance(kpi, dict) or not isinstance(kpi.get("id"), str) or not unit:
        raise Invalid("a kpi event needs data.unit (or unit) and data.kpi.id")
    return str(unit)


async def _store_kpi(session: AsyncSession, doc: dict[str, Any]) -> dict[str, Any] | None:
    """Keep the newest upstream value of a (unit, window, kpi); return it as stored when this
    event is newer than the one kept (None for an older or repeated upstream seq)."""
    unit = _kpi_unit(doc)
    data = doc["data"]
    kpi = data["kpi"]
    row = (
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
                RETURNING unit_code AS unit, time_window AS window, kpi_id AS id, value,
                    numerator, denominator, target, status, as_of
                """
            ),
            {
                "unit": unit,
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
    ).first()
    return dict(row._mapping) if row is not None else None


def _local_event(row: dict[str, Any], upstream_seq: int | None, webhook_id: str | None) -> NewEvent:
    """The local `kpi` event announcing a newer upstream value to this instance's screens
    (`upstream.seq` and `webhook_id` null for a seeded value)."""
    as_of: datetime | None = row["as_of"]
    return NewEvent(
        type="kpi",
        unit_code=row["unit"],
        time_window=row["window"] or None,
        subject=row["id"],
        payload={
            "unit": row["unit"],
            "window": row["window"],
            "as_of": as_of.isoformat() if as_of is not None else None,
            "kpi": mirrored(row),
            "source": UPSTREAM,
            "upstream": {"seq": upstream_seq, "webhook_id": webhook_id},
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


# --- seeding: the upstream's current values, once (a feed carries only changes)


async def fetch_upstream(
    base_url: str, token: str, unit: str, *, timeout: float = 30.0
) -> list[dict[str, Any]]:
    """The upstream's `GET /api/v1/kpis?unit=&window=&children=true` for every window, read
    with a token of the upstream (the district's own, role `district`)."""
    bodies: list[dict[str, Any]] = []
    async with httpx.AsyncClient(
        base_url=base_url.rstrip("/"),
        timeout=timeout,
        headers={"Authorization": f"Bearer {token}"},
    ) as http:
        for window in WINDOWS:
            try:
                resp = await http.get(
                    "/api/v1/kpis", params={"unit": unit, "window": window, "children": "true"}
                )
            except httpx.HTTPError as exc:
                raise Unavailable(f"cannot reach the upstream at {base_url}: {exc}") from None
            if resp.status_code != 200:
                raise Unavailable(
                    f"the upstream answered {resp.status_code} to GET {resp.request.url}: "
                    f"{resp.text[:300]}"
                )
            bodies.append(resp.json())
    return bodies


async def seed(
    session: AsyncSession,
    snapshots: list[dict[str, Any]],
    *,
    mirror: bool,
    scope_unit: str | None = None,
) -> int:
    """Store the values of upstream KPI snapshots (unit and children) that this instance has
    no value for yet; return how many. Seeded rows carry `upstream_seq` 0, so any pushed
    event replaces them and they never replace a pushed one. With `mirror`, each is also
    published as a local `kpi` event, so open screens show it at once."""
    rows: list[dict[str, Any]] = []
    for snap in snapshots:
        window = str(snap["window"])
        groups = [(str(snap["unit"]), snap["kpis"])]
        groups += [(str(c["unit"]), c["kpis"]) for c in snap.get("children", [])]
        for unit, kpis in groups:
            if scope_unit is not None and not await is_within(session, scope_unit, unit):
                raise Forbidden(f"unit {unit} is outside IOC_FEDERATION_UNIT={scope_unit}")
            for k in kpis:
                rows.append(
                    {
                        "unit": unit,
                        "window": window,
                        "id": str(k["id"]),
                        "value": _number(k.get("value")),
                        "numerator": _number(k.get("numerator")),
                        "denominator": _number(k.get("denominator")),
                        "target": _number(k.get("target")),
                        "status": k.get("status") if isinstance(k.get("status"), str) else None,
                        "as_of": snap.get("as_of"),
                    }
                )
    if not rows:
        return 0
    inserted = await session.execute(
        text(
            """
            INSERT INTO federation_kpis (unit_code, time_window, kpi_id, value, numerator,
                denominator, target, status, as_of, upstream_seq)
            SELECT unit, "window", id, value, numerator, denominator, target, status, as_of, 0
            FROM jsonb_to_recordset(CAST(:rows AS jsonb)) AS r(unit text, "window" text,
                id text, value float8, numerator float8, denominator float8, target float8,
                status text, as_of timestamptz)
            ON CONFLICT (unit_code, time_window, kpi_id) DO NOTHING
            RETURNING unit_code AS unit, time_window AS window, kpi_id AS id, value,
                numerator, denominator, target, status, as_of
            """
        ),
        {"rows": json.dumps(rows)},
    )
    stored = [dict(r) for r in inserted.mappings()]
    if mirror and stored:
        await publish(session, [_local_event(r, None, None) for r in stored])
    return len(stored)
