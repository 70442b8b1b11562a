"""Single sign-on: OpenID Connect authorization code + PKCE (S256) with Authlib, the ID
token verified with joserfc (signature from the provider's JWKS, issuer, audience, expiry,
nonce), and the identity's claims mapped to an ioc role and unit by `Settings`.

An identity that maps to no role is refused; one that maps is given a real ioc token
(`ioc.auth.create_token`) named after the person and expiring with the session, so every
later request is checked, scoped and revocable exactly like any other token.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import Any

import httpx
from authlib.integrations.httpx_client import AsyncOAuth2Client
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet

from ioc.settings import Settings


class SignOnError(Exception):
    """Why a single sign-on could not complete (shown on the sign-in page)."""


@dataclass(frozen=True, slots=True)
class Identity:
    subject: str
    name: str
    role: str
    unit: str | None


def enabled(settings: Settings) -> bool:
    return bool(settings.console_oidc_issuer)


async def _metadata(issuer: str) -> dict[str, Any]:
    url = issuer.rstrip("/") + "/.well-known/openid-configuration"
    async with httpx.AsyncClient(timeout=10) as http:
        response = await http.get(url)
    if response.status_code != 200:
        raise SignOnError(
            f"the identity provider's metadata ({url}) answered {response.status_code}"
        )
    data: dict[str, Any] = response.json()
    return data


def _client(settings: Settings, redirect_uri: str) -> AsyncOAuth2Client:
    return AsyncOAuth2Client(
        client_id=settings.console_oidc_client_id,
        client_secret=settings.console_oidc_client_secret,
        scope=settings.console_oidc_scopes,
        redirect_uri=redirect_uri,
        code_challenge_method="S256",
        token_endpoint_auth_method=(
            "client_secret_basic" if settings.console_oidc_client_secret else "none"
        ),
        timeout=10,
    )


async def start(settings: Settings, redirect_uri: str) -> tuple[str, dict[str, str]]:
    """The provider's authorization URL and the state to keep until the callback."""
    assert settings.console_oidc_issuer is not None
    meta = await _metadata(settings.console_oidc_issuer)
    verifier = secrets.token_urlsafe(48)
    state = secrets.token_urlsafe(24)
    nonce = secrets.token_urlsafe(24)
    async with _client(settings, redirect_uri) as client:
        url, _ = client.create_authorization_url(
            meta["authorization_endpoint"], state=state, code_verifier=verifier, nonce=nonce
        )
    return url, {"state": state, "verifier": verifier, "nonce": nonce}


async def finish(
    settings: Settings, redirect_uri: str, kept: dict[str, str], code: str
) -> dict[str, Any]:
    """Exchange the code (with the PKCE verifier) and return the verified ID token's claims."""
    assert settings.console_oidc_issuer is not None
    meta = await _metadata(settings.console_oidc_issuer)
    async with _client(settings, redirect_uri) as client:
        try:
            token = await client.fetch_token(
                meta["token_endpoint"], code=code, code_verifier=kept["verifier"]
            )
        except Exception as exc:  # Authlib raises its OAuthError or httpx errors
            raise SignOnError(f"the identity provider refused the code: {exc}") from exc
    id_token = token.get("id_token")
    if not isinstance(id_token, str):
        raise SignOnError("the identity provider sent no ID token")
    async with httpx.AsyncClient(timeout=10) as http:
        jwks = (await http.get(meta["jwks_uri"])).json()
    try:
        decoded = jwt.decode(id_token, KeySet.import_key_set(jwks))
        jwt.JWTClaimsRegistry(
            leeway=60,
            iss={"essential": True, "value": meta.get("issuer", settings.console_oidc_issuer)},
            aud={"essential": True, "value": settings.console_oidc_client_id},
            sub={"essential": True},
            nonce={"essential": True, "value": kept["nonce"]},
            exp={"essential": True},
        ).validate(decoded.claims)
    except (JoseError, ValueError) as exc:
        raise SignOnError(f"the ID token is not valid: {exc}") from exc
    return dict(decoded.claims)


def identity(settings: Settings, claims: dict[str, Any]) -> Identity:
    """Map the claims to a role (first configured value present wins) and a unit."""
    held = claims.get(settings.console_oidc_role_claim)
    values = {str(v) for v in held} if isinstance(held, list) else {str(held)} if held else set()
    role = next((r for v, r in settings.console_oidc_roles.items() if v in values), None)
    if role is None:
        raise SignOnError(
            f"your identity has no {settings.console_oidc_role_claim} value that the console "
            "maps to a role (IOC_CONSOLE_OIDC_ROLES); ask the IOC's administrator"
        )
    unit = claims.get(settings.console_oidc_unit_claim) or settings.console_oidc_default_unit
    name = str(claims.get("name") or claims.get("preferred_username") or claims.get("email") or "")
    return Identity(
        subject=str(claims["sub"]),
        name=name or str(claims["sub"]),
        role=role,
        unit=str(unit) if unit else None,
    )
