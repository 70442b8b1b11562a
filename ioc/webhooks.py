"""Standard Webhooks signing and verification, and target-URL validation (SSRF guard).

Used by alert webhooks and feed deliveries (docs/api.md §6, §7). Spec:
https://www.standardwebhooks.com — `webhook-signature: v1,<base64 HMAC-SHA256>` over
`{id}.{timestamp}.{body}`; secrets look like `whsec_<base64>`.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import ipaddress
import secrets
import socket
import time
from urllib.parse import urlsplit

from ioc.errors import Invalid, Unauthorized

SECRET_PREFIX = "whsec_"
DEFAULT_TOLERANCE_SECONDS = 300


def new_secret() -> str:
    """A fresh signing secret (`whsec_` + base64 of 32 random bytes)."""
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(32)).decode()


# What the Standard Webhooks spec allows a signing key to be: 24 to 64 bytes, base64-encoded.
SECRET_MIN_BYTES = 24
SECRET_MAX_BYTES = 64


def check_secret(secret: str) -> str:
    """`secret` if it is a `whsec_` secret every Standard Webhooks library can verify with,
    else `Invalid` saying why. A secret that is not base64 was once signed with its raw
    text, which no receiver's library could check."""
    if not secret.startswith(SECRET_PREFIX):
        raise Invalid(f"a signing secret starts with {SECRET_PREFIX}")
    try:
        key = base64.b64decode(secret.removeprefix(SECRET_PREFIX), validate=True)
    except ValueError:
        raise Invalid(
            f"the part after {SECRET_PREFIX} is not valid base64 (A–Z a–z 0–9 + /, "
            "padded with = to a multiple of 4)"
        ) from None
    if not SECRET_MIN_BYTES <= len(key) <= SECRET_MAX_BYTES:
        raise Invalid(
            f"the secret decodes to {len(key)} bytes; Standard Webhooks keys are "
            f"{SECRET_MIN_BYTES}–{SECRET_MAX_BYTES} bytes"
        )
    return secret


def _key(secret: str) -> bytes:
    return base64.b64decode(check_secret(secret).removeprefix(SECRET_PREFIX), validate=True)


def sign(secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    """The `v1,<signature>` value for one secret."""
    to_sign = f"{msg_id}.{timestamp}.".encode() + body
    digest = hmac.new(_key(secret), to_sign, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def signature_headers(
    secrets_: list[str], msg_id: str, body: bytes, timestamp: int | None = None
) -> dict[str, str]:
    """Headers for a delivery; several secrets (rotation) give space-separated signatures."""
    ts = int(time.time()) if timestamp is None else timestamp
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(ts),
        "webhook-signature": " ".join(sign(s, msg_id, ts, body) for s in secrets_),
        "content-type": "application/json",
    }


def verify(
    secret: str,
    headers: dict[str, str],
    body: bytes,
    *,
    now: float | None = None,
    tolerance: int = DEFAULT_TOLERANCE_SECONDS,
) -> None:
    """Raise `Unauthorized` unless one signature matches and the timestamp is recent."""
    lower = {k.lower(): v for k, v in headers.items()}
    msg_id, ts_text, sigs = (
        lower.get("webhook-id"),
        lower.get("webhook-timestamp"),
        lower.get("webhook-signature"),
    )
    if not (msg_id and ts_text and sigs):
        raise Unauthorized("missing webhook-id, webhook-timestamp or webhook-signature")
    try:
        ts = int(ts_text)
    except ValueError:
        raise Unauthorized("webhook-timestamp is not an integer") from None
    current = time.time() if now is None else now
    if abs(current - ts) > tolerance:
        raise Unauthorized("webhook-timestamp is outside the replay window")
    expected = sign(secret, msg_id, ts, body)
    if not any(hmac.compare_digest(expected, s) for s in sigs.split()):
        raise Unauthorized("no webhook-signature matches")


def validate_target_url(url: str, *, allow_private: bool, resolve: bool = True) -> str:
    """Refuse non-http(s) URLs, and hosts on private/loopback/link-local ranges unless allowed."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise Invalid(f"target URL {url!r} must be an absolute http:// or https:// URL")
    if parts.username or parts.password:
        raise Invalid("target URL must not carry credentials")
    if allow_private:
        return url
    host = parts.hostname
    try:
        addresses = [ipaddress.ip_address(host)]
    except ValueError:
        if not resolve:
            return url
        try:
            infos = socket.getaddrinfo(host, parts.port or 443, proto=socket.IPPROTO_TCP)
        except OSError:
            raise Invalid(f"target host {host!r} does not resolve") from None
        addresses = [ipaddress.ip_address(info[4][0]) for info in infos]
    for address in addresses:
        if not address.is_global or address.is_multicast:
            raise Invalid(
                f"target {host!r} resolves to a private, loopback or reserved address "
                f"({address}); set IOC_WEBHOOKS_ALLOW_PRIVATE=true to allow it"
            )
    return url
