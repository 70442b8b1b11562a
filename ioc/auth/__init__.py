"""API tokens, roles and unit scope (CONTRACT §3)."""

from ioc.auth.deps import authenticate, require, require_role
from ioc.auth.service import (
    ROLES,
    Principal,
    TokenInfo,
    create_token,
    hash_token,
    list_tokens,
    principal_for_token,
    revoke_token,
)

__all__ = [
    "ROLES",
    "Principal",
    "TokenInfo",
    "authenticate",
    "create_token",
    "hash_token",
    "list_tokens",
    "principal_for_token",
    "require",
    "require_role",
    "revoke_token",
]
