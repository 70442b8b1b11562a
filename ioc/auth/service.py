"""Token lifecycle. A token is `ioc_` + 43 random URL-safe characters; only its SHA-256 is
stored (the token has 256 bits of entropy, so a fast hash is safe and lookups stay O(1))."""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import unicodedata
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from ioc.errors import Invalid, NotFound, Unauthorized, UnknownUnit
from ioc.events import TOKENS_CHANNEL

Executor = AsyncSession | AsyncConnection

ROLES = ("admin", "operator", "department_head", "district", "collector")
TOKEN_PREFIX = "ioc_"
SOURCE_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$")


def source_name(token_name: str) -> str:
    """The push source a token of this name writes by default: the name itself when it is a
    valid source (1-64 ASCII letters, digits, '.', '_', ':' or '-'), else its ASCII slug
    ("Cổng dịch vụ công tỉnh" → "cong-dich-vu-cong-tinh"); "" when nothing of it is left."""
    name = token_name.strip()
    if SOURCE_PATTERN.match(name):
        return name
    ascii_ = unicodedata.normalize("NFKD", name.replace("đ", "d").replace("Đ", "D"))
    ascii_ = ascii_.encode("ascii", "ignore").decode("ascii").lower()
    slug = re.sub(r"[^a-z0-9_.:]+", "-", ascii_).strip("-_.:")
    return slug[:64].rstrip("-_.:")


@dataclass(frozen=True, slots=True)
class TokenInfo:
    id: uuid.UUID
    name: str
    role: str
    unit_code: str | None
    prefix: str
    created_at: datetime
    expires_at: datetime | None
    revoked_at: datetime | None
    last_used_at: datetime | None


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling: the token's id, name, role and unit (None = the whole deployment)."""

    token_id: uuid.UUID
    name: str
    role: str
    unit_code: str | None
    expires_at: datetime | None = None


def hash_token(token: str) -> bytes:
    return hashlib.sha256(token.encode("utf-8")).digest()


async def create_token(
    db: Executor,
    *,
    name: str,
    role: str,
    unit_code: str | None,
    expires_at: datetime | None = None,
) -> tuple[str, TokenInfo]:
    """Create a token; return the secret (shown once) and its stored description."""
    if role not in ROLES:
        raise Invalid(f"role {role!r} is not one of {', '.join(ROLES)}")
    if unit_code is None and role != "admin":
        raise Invalid(f"a {role} token needs a unit (--unit CODE); only admin may have none")
    if not name.strip():
        raise Invalid("the token needs a name saying who or what uses it")
    if len(name.strip()) > 200:
        raise Invalid("the token's name is longer than 200 characters")
    if role == "collector" and not source_name(name):
        # A collector pushes under its name by default: a name with no letter or digit
        # to keep would be a token that cannot push.
        raise Invalid(
            f"a collector token's name must contain letters or digits (it names the push "
            f"source); {name!r} has none"
        )
    secret = TOKEN_PREFIX + secrets.token_urlsafe(32)
    token_id = uuid.uuid4()
    row = (
        await db.execute(
            text(
                """
            INSERT INTO api_tokens (id, name, role, unit_code, token_hash, prefix, expires_at)
            SELECT :id, :name, :role, :unit, :hash, :prefix, :exp
            WHERE CAST(:unit AS text) IS NULL
               OR EXISTS (SELECT 1 FROM units WHERE code = CAST(:unit AS text))
            RETURNING id, name, role, unit_code, prefix, created_at, expires_at, revoked_at,
                last_used_at
            """
            ),
            {
                "id": token_id,
                "name": name.strip(),
                "role": role,
                "unit": unit_code,
                "hash": hash_token(secret),
                "prefix": secret[:10],
                "exp": expires_at,
            },
        )
    ).first()
    if row is None:  # the unit's existence is checked in the INSERT itself
        raise UnknownUnit(
            f"unit {unit_code!r} is not a known GSO code; load it with `ioc units load`"
        )
    return secret, TokenInfo(*row)


async def revoke_token(db: Executor, token_id_or_prefix: str) -> TokenInfo:
    """Revoke by id or by the printed prefix; effective at once (every request re-checks)."""
    row = (
        await db.execute(
            text(
                """
            UPDATE api_tokens SET revoked_at = coalesce(revoked_at, now())
            WHERE id::text = :k OR prefix = :k
            RETURNING id, name, role, unit_code, prefix, created_at, expires_at, revoked_at,
                last_used_at
            """
            ),
            {"k": token_id_or_prefix},
        )
    ).all()
    if not row:
        raise NotFound(f"no token with id or prefix {token_id_or_prefix!r}")
    # Delivered at commit to every replica: open websockets of this token close at once.
    await db.execute(
        text("SELECT pg_notify(:channel, :id)"), {"channel": TOKENS_CHANNEL, "id": str(row[0][0])}
    )
    return TokenInfo(*row[0])


async def list_tokens(db: Executor) -> list[TokenInfo]:
    rows = await db.execute(
        text(
            "SELECT id, name, role, unit_code, prefix, created_at, expires_at, revoked_at, "
            "last_used_at FROM api_tokens ORDER BY created_at"
        )
    )
    return [TokenInfo(*r) for r in rows]


async def principal_for_token(db: Executor, token: str) -> Principal:
    """The principal of a presented token, or `Unauthorized` (unknown, revoked or expired)."""
    if not token.startswith(TOKEN_PREFIX) or len(token) > 200:
        raise Unauthorized("the bearer token is not an ioc token")
    digest = hash_token(token)
    row = (
        await db.execute(
            text(
                "SELECT id, name, role, unit_code, token_hash, expires_at, revoked_at "
                "FROM api_tokens WHERE token_hash = :h"
            ),
            {"h": digest},
        )
    ).first()
    if row is None or not hmac.compare_digest(bytes(row.token_hash), digest):
        raise Unauthorized("the bearer token is unknown")
    if row.revoked_at is not None:
        raise Unauthorized("the bearer token was revoked")
    if row.expires_at is not None and row.expires_at <= datetime.now(UTC):
        raise Unauthorized("the bearer token has expired")
    return Principal(row.id, row.name, row.role, row.unit_code, row.expires_at)
