"""The auth room's table: API tokens (only a hash of each token is kept)."""

from sqlalchemy import CheckConstraint, Column, ForeignKey, LargeBinary, Table, Text
from sqlalchemy.dialects.postgresql import UUID

from ioc.db import NOW, TIMESTAMPTZ, metadata

api_tokens = Table(
    "api_tokens",
    metadata,
    Column("id", UUID, primary_key=True),
    Column("name", Text, nullable=False),
    Column("role", Text, nullable=False),
    Column("unit_code", Text, ForeignKey("units.code")),
    Column("token_hash", LargeBinary, nullable=False, unique=True),
    Column("prefix", Text, nullable=False),
    Column("created_at", TIMESTAMPTZ, nullable=False, server_default=NOW),
    Column("expires_at", TIMESTAMPTZ),
    Column("revoked_at", TIMESTAMPTZ),
    Column("last_used_at", TIMESTAMPTZ),
    CheckConstraint(
        "role IN ('admin', 'operator', 'department_head', 'district', 'collector')", name="role"
    ),
)
