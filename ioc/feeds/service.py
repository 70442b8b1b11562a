"""Subscriptions: create, read, change, delete, rotate the secret, replay; the delivery log.

Every function takes the request's session and only flushes; the caller's unit of work
commits. A change that the delivery worker must notice at once (another replica may be the
one delivering) queues `NOTIFY ioc_feeds, '<id>'`, sent at commit.
"""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from ioc.auth import Principal
from ioc.errors import Invalid, NotFound, OutOfScope
from ioc.events import FEEDS_CHANNEL, last_seq
from ioc.feeds.models import (
    DeliveryOut,
    Filters,
    ReplayOut,
    SubscriptionCreate,
    SubscriptionOut,
    SubscriptionUpdate,
    SubscriptionWithSecret,
)
from ioc.units import is_within, subtree_sql
from ioc.webhooks import new_secret, validate_target_url

_COLUMNS = """
    id, unit_code, url, topics, kpi_ids, severities, contact_email, description, status,
    status_reason, status_changed_at, cursor_seq, attempts, first_failure_at, next_attempt_at,
    last_success_at, last_error,
    CASE WHEN previous_secret_expires_at > now() THEN previous_secret_expires_at END
        AS previous_secret_expires_at,
    created_by, created_at, updated_at, secret
"""


def _out(row: Any) -> SubscriptionOut:
    return SubscriptionOut(
        id=row.id,
        url=row.url,
        unit=row.unit_code,
        topics=list(row.topics),
        filters=Filters(kpis=row.kpi_ids, severities=row.severities),
        contact_email=row.contact_email,
        description=row.description,
        status=row.status,
        status_reason=row.status_reason,
        status_changed_at=row.status_changed_at,
        cursor=row.cursor_seq,
        attempts=row.attempts,
        first_failure_at=row.first_failure_at,
        next_attempt_at=row.next_attempt_at,
        last_success_at=row.last_success_at,
        last_error=row.last_error,
        previous_secret_expires_at=row.previous_secret_expires_at,
        created_by=row.created_by,
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


async def check_url(url: str, *, allow_private: bool) -> str:
    """The URL if deliveries may go there (http/https, no private ranges unless allowed)."""
    # getaddrinfo blocks: keep it off the event loop.
    return await asyncio.to_thread(validate_target_url, url, allow_private=allow_private)


async def _notify(session: AsyncSession, sub_id: uuid.UUID) -> None:
    await session.execute(text("SELECT pg_notify(:c, :p)"), {"c": FEEDS_CHANNEL, "p": str(sub_id)})


async def _row(session: AsyncSession, principal: Principal, sub_id: uuid.UUID) -> Any:
    row = (
        await session.execute(
            text(f"SELECT {_COLUMNS} FROM feed_subscriptions WHERE id = :id"), {"id": sub_id}
        )
    ).first()
    if row is None:
        raise NotFound(f"no subscription {sub_id}")
    if principal.unit_code is not None and not await is_within(
        session, principal.unit_code, row.unit_code
    ):
        raise OutOfScope(f"subscription {sub_id} belongs to a unit outside {principal.unit_code}")
    return row


def _check_filters(topics: list[str], filters: Filters) -> None:
    if filters.kpis and "kpi" not in topics:
        raise Invalid("filters.kpis needs the kpi topic", errors=[{"field": "filters.kpis"}])
    if filters.severities and "alert" not in topics:
        raise Invalid(
            "filters.severities needs the alert topic", errors=[{"field": "filters.severities"}]
        )


async def create_subscription(
    session: AsyncSession, principal: Principal, body: SubscriptionCreate, *, allow_private: bool
) -> SubscriptionWithSecret:
    """Store a subscription (unit already scope-checked) and return it with its secret, once."""
    url = await check_url(body.url, allow_private=allow_private)
    topics: list[str] = sorted(set(body.topics))
    _check_filters(topics, body.filters)
    secret = body.secret or new_secret()
    since = body.since if body.since is not None else await last_seq(session)
    row = (
        await session.execute(
            text(
                f"""
                INSERT INTO feed_subscriptions (id, unit_code, url, topics, kpi_ids, severities,
                    contact_email, description, secret, cursor_seq, created_by)
                VALUES (:id, :unit, :url, :topics, :kpis, :sev, :email, :descr, :secret, :since,
                    :by)
                RETURNING {_COLUMNS}
                """
            ),
            {
                "id": uuid.uuid4(),
                "unit": body.unit,
                "url": url,
                "topics": topics,
                "kpis": body.filters.kpis,
                "sev": body.filters.severities,
                "email": body.contact_email,
                "descr": body.description,
                "secret": secret,
                "since": since,
                "by": principal.name,
            },
        )
    ).one()
    await _notify(session, row.id)
    return SubscriptionWithSecret(**_out(row).model_dump(), secret=secret)


async def list_subscriptions(session: AsyncSession, principal: Principal) -> list[SubscriptionOut]:
    """Subscriptions of units within the caller's unit (all of them for a unit-less admin)."""
    rows = await session.execute(
        text(
            f"""
            SELECT {_COLUMNS} FROM feed_subscriptions
            WHERE CAST(:scope AS text) IS NULL OR unit_code IN {subtree_sql(":scope")}
            ORDER BY created_at, id
            """
        ),
        {"scope": principal.unit_code},
    )
    return [_out(r) for r in rows]


async def get_subscription(
    session: AsyncSession, principal: Principal, sub_id: uuid.UUID
) -> SubscriptionOut:
    return _out(await _row(session, principal, sub_id))


async def update_subscription(
    session: AsyncSession,
    principal: Principal,
    sub_id: uuid.UUID,
    body: SubscriptionUpdate,
    *,
    allow_private: bool,
) -> SubscriptionOut:
    """Change the given fields; resuming (`status: active`) restarts the retry clock."""
    current = await _row(session, principal, sub_id)
    fields = body.model_fields_set
    values: dict[str, Any] = {"id": sub_id}
    sets: list[str] = []
    if "url" in fields and body.url is not None:
        values["url"] = await check_url(body.url, allow_private=allow_private)
        sets.append("url = :url")
    topics = sorted(set(body.topics)) if body.topics is not None else list(current.topics)
    if "topics" in fields and body.topics is not None:
        values["topics"] = topics
        sets.append("topics = :topics")
    if "filters" in fields and body.filters is not None:
        _check_filters(topics, body.filters)
        values["kpis"], values["sev"] = body.filters.kpis, body.filters.severities
        sets += ["kpi_ids = :kpis", "severities = :sev"]
    else:
        _check_filters(topics, Filters(kpis=current.kpi_ids, severities=current.severities))
    for name in ("contact_email", "description"):
        if name in fields:
            values[name] = getattr(body, name)
            sets.append(f"{name} = :{name}")
    if "status" in fields and body.status is not None and body.status != current.status:
        values["status"] = body.status
        values["reason"] = None if body.status == "active" else f"paused by {principal.name}"
        sets += [
            "status = :status",
            "status_reason = :reason",
            "status_changed_at = now()",
            "attempts = 0",
            "first_failure_at = NULL",
            "next_attempt_at = NULL",
        ]
    if sets:
        await session.execute(
            text(
                f"UPDATE feed_subscriptions SET {', '.join(sets)}, updated_at = now() "
                "WHERE id = :id"
            ),
            values,
        )
        await _notify(session, sub_id)
    return _out(await _row(session, principal, sub_id))


async def delete_subscription(
    session: AsyncSession, principal: Principal, sub_id: uuid.UUID
) -> None:
    await _row(session, principal, sub_id)
    await session.execute(text("DELETE FROM feed_subscriptions WHERE id = :id"), {"id": sub_id})
    await _notify(session, sub_id)


async def rotate_secret(
    session: AsyncSession, principal: Principal, sub_id: uuid.UUID, *, grace_seconds: float
) -> SubscriptionWithSecret:
    """A new secret (returned once); the old one keeps signing for `grace_seconds`."""
    await _row(session, principal, sub_id)
    secret = new_secret()
    row = (
        await session.execute(
            text(
                f"""
                UPDATE feed_subscriptions SET previous_secret = secret, secret = :secret,
                    previous_secret_expires_at = now() + make_interval(secs => :grace),
                    updated_at = now()
                WHERE id = :id
                RETURNING {_COLUMNS}
                """
            ),
            {"id": sub_id, "secret": secret, "grace": grace_seconds},
        )
    ).one()
    await _notify(session, sub_id)
    return SubscriptionWithSecret(**_out(row).model_dump(), secret=secret)


async def replay(
    session: AsyncSession, principal: Principal, sub_id: uuid.UUID, since: int
) -> ReplayOut:
    """Re-send every matching event after `since`, in order, as new messages (new ids).

    The replay epoch is part of each webhook id, so a receiver that de-duplicates by id
    (as it should) processes the replayed events again instead of dropping them."""
    await _row(session, principal, sub_id)
    row = (
        await session.execute(
            text(
                """
                UPDATE feed_subscriptions SET cursor_seq = :since,
                    replay_epoch = replay_epoch + 1, attempts = 0, first_failure_at = NULL,
                    next_attempt_at = NULL, status = 'active', status_reason = NULL,
                    status_changed_at = CASE WHEN status = 'active' THEN status_changed_at
                        ELSE now() END,
                    updated_at = now()
                WHERE id = :id RETURNING replay_epoch
                """
            ),
            {"id": sub_id, "since": since},
        )
    ).one()
    await _notify(session, sub_id)
    return ReplayOut(id=sub_id, since=since, replay_epoch=row.replay_epoch)


async def list_deliveries(
    session: AsyncSession,
    principal: Principal,
    sub_id: uuid.UUID,
    *,
    limit: int = 100,
    before: int | None = None,
) -> list[DeliveryOut]:
    """The delivery log, newest first: one row per attempt (status code, error, latency)."""
    await _row(session, principal, sub_id)
    rows = await session.execute(
        text(
            """
            SELECT id, seq, webhook_id, attempt, status_code, error, latency_ms, ok, at
            FROM feed_deliveries
            WHERE subscription_id = :id AND (CAST(:before AS bigint) IS NULL OR id < :before)
            ORDER BY id DESC LIMIT :limit
            """
        ),
        {"id": sub_id, "before": before, "limit": limit},
    )
    return [DeliveryOut.model_validate(r, from_attributes=True) for r in rows]
