"""API tokens, roles and unit scope (docs/api.md §3). The app composes `register_cli`."""

from ioc.auth import tables as _tables  # noqa: F401  (puts the room's tables on ioc.db.metadata)
from ioc.auth.cli import register_cli
from ioc.auth.deps import BEARER, ROLE_IMPLIES, authenticate, bearer_token, require, require_role
from ioc.auth.service import (
    ROLES,
    SOURCE_PATTERN,
    Principal,
    TokenInfo,
    create_token,
    hash_token,
    list_tokens,
    principal_for_token,
    revoke_token,
    source_name,
)

__all__ = [
    "BEARER",
    "ROLES",
    "ROLE_IMPLIES",
    "SOURCE_PATTERN",
    "Principal",
    "TokenInfo",
    "authenticate",
    "bearer_token",
    "create_token",
    "hash_token",
    "list_tokens",
    "principal_for_token",
    "register_cli",
    "require",
    "require_role",
    "revoke_token",
    "source_name",
]
