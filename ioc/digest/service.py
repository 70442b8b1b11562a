"""Recipients of the weekly digest, and sending one week's digests once per recipient.

Once, across replicas and restarts: a recipient's row for the week (`digest_sends`, unique per
e-mail, unit and week) is claimed and committed as `sending` before the mail goes out, then
marked `sent`. A second replica (or a second run) finds the row and does nothing. A send that
failed is `failed` and retried at the next run; one interrupted between the SMTP server's
acceptance and `sent` (a crash in that instant) is retried after `STALE_CLAIM` with the same
Message-ID, so the mail system can recognise the repeat — SMTP offers nothing stronger."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from sqlalchemy import delete, select, text, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from ioc.db import Database
from ioc.digest.content import build_digest
from ioc.digest.render import compose
from ioc.digest.tables import digest_recipients, digest_sends
from ioc.errors import Invalid
from ioc.settings import Settings
from ioc.smtp import send_mail
from ioc.units import get_unit

log = logging.getLogger("ioc.digest")
STALE_CLAIM = timedelta(minutes=15)


@dataclass(frozen=True)
class Recipient:
    unit: str
    email: str
    name: str | None


async def add_recipient(session: AsyncSession, unit: str, email: str, name: str | None) -> bool:
    """Add (True) or keep (False) a recipient of a unit's digest."""
    if "@" not in email or any(c.isspace() for c in email):
        raise Invalid(f"{email!r} is not an e-mail address")
    await get_unit(session, unit)
    row = await session.execute(
        insert(digest_recipients)
        .values(unit_code=unit, email=email.strip(), name=name)
        .on_conflict_do_nothing(constraint="uq_digest_recipients")
        .returning(digest_recipients.c.id)
    )
    return row.first() is not None


async def remove_recipient(session: AsyncSession, unit: str, email: str) -> bool:
    done = await session.execute(
        delete(digest_recipients)
        .where(digest_recipients.c.unit_code == unit)
        .where(digest_recipients.c.email == email)
    )
    return bool(done.rowcount)  # type: ignore[attr-defined]


async def recipients(session: AsyncSession) -> list[Recipient]:
    rows = await session.execute(
        select(digest_recipients).order_by(digest_recipients.c.unit_code, digest_recipients.c.email)
    )
    return [Recipient(r.unit_code, r.email, r.name) for r in rows]


def message_id(recipient: Recipient, week: date) -> str:
    return f"digest.{week:%Y%m%d}.{recipient.unit}.{recipient.email.replace('@', '.at.')}"


async def _claim(db: Database, recipient: Recipient, week: date, now: datetime) -> bool:
    """Take the recipient's row for the week: new, failed before, or stale while sending."""
    async with db.session() as session:
        taken = await session.execute(
            insert(digest_sends)
            .values(
                email=recipient.email,
                unit_code=recipient.unit,
                week_start=week,
                state="sending",
                claimed_at=now,
                attempts=1,
            )
            .on_conflict_do_update(
                constraint="uq_digest_sends",
                set_={
                    "state": "sending",
                    "claimed_at": now,
                    "attempts": digest_sends.c.attempts + 1,
                },
                where=(digest_sends.c.state == "failed")
                | (
                    (digest_sends.c.state == "sending")
                    & (digest_sends.c.claimed_at < now - STALE_CLAIM)
                ),
            )
            .returning(digest_sends.c.id)
        )
        return taken.first() is not None


async def _previous_total(db: Database, recipient: Recipient, week: date) -> float | None:
    async with db.session() as session:
        return (
            await session.execute(
                select(digest_sends.c.scorecard_total)
                .where(digest_sends.c.unit_code == recipient.unit)
                .where(digest_sends.c.week_start == week - timedelta(days=7))
                .where(digest_sends.c.scorecard_total.is_not(None))
                .limit(1)
            )
        ).scalar_one_or_none()


async def send_week(db: Database, settings: Settings, week: date) -> int:
    """Send the week's digest to every recipient not yet served; how many were sent now."""
    async with db.session() as session:
        everyone = await recipients(session)
    sent = 0
    for recipient in everyone:
        now = datetime.now(UTC)
        if not await _claim(db, recipient, week, now):
            continue
        try:
            before = await _previous_total(db, recipient, week)
            async with db.session() as session:
                digest = await build_digest(session, recipient.unit, week, score_before=before)
            screen = f"{settings.public_url}/screen?unit={recipient.unit}&view=scorecard"
            email = compose(
                digest,
                sender=settings.smtp_from,
                recipient=recipient.email,
                screen_url=screen,
                message_id=message_id(recipient, week),
            )
            if not settings.smtp_host:
                raise RuntimeError("IOC_SMTP_HOST is not set: the digest cannot be sent")
            await send_mail(email, settings, timeout=settings.smtp_timeout_seconds)
        except Exception as exc:  # recorded on the row and retried at the next run
            log.warning("digest for %s (%s) not sent: %s", recipient.email, recipient.unit, exc)
            await _mark(db, recipient, week, now, "failed", error=str(exc)[:500])
            continue
        await _mark(db, recipient, week, now, "sent", total=digest.score)
        sent += 1
    return sent


async def _mark(
    db: Database,
    recipient: Recipient,
    week: date,
    claimed_at: datetime,
    state: str,
    *,
    error: str | None = None,
    total: float | None = None,
) -> None:
    async with db.session() as session:
        await session.execute(
            update(digest_sends)
            .where(digest_sends.c.email == recipient.email)
            .where(digest_sends.c.unit_code == recipient.unit)
            .where(digest_sends.c.week_start == week)
            # Only our own claim: one taken over after going stale is the other run's to mark.
            .where(digest_sends.c.state == "sending")
            .where(digest_sends.c.claimed_at == claimed_at)
            .values(
                state=state,
                last_error=error,
                sent_at=datetime.now(UTC) if state == "sent" else None,
                scorecard_total=total,
            )
        )


async def week_done(session: AsyncSession, week: date) -> bool:
    """Every recipient has been sent the week's digest."""
    missing = await session.execute(
        text(
            "SELECT 1 FROM digest_recipients r WHERE NOT EXISTS (SELECT 1 FROM digest_sends s "
            "WHERE s.email = r.email AND s.unit_code = r.unit_code AND s.week_start = :w "
            "AND s.state = 'sent') LIMIT 1"
        ),
        {"w": week},
    )
    return missing.first() is None
