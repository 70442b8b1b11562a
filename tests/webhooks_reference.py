"""Every signature the tests check is checked twice: by ioc's own `verify` and by the
Standard Webhooks reference library (`standardwebhooks`), so ioc cannot sign in a way only
ioc understands (issue 22: a non-base64 secret was signed with its raw text)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from standardwebhooks.webhooks import Webhook

from ioc.webhooks import verify as ioc_verify


def verify(secret: str, headers: Any, body: bytes, **kwargs: Any) -> None:
    """`ioc.webhooks.verify` (timestamp tolerance included), then the reference library's
    signature for the same id, timestamp and body must be one of the header's."""
    ioc_verify(secret, headers, body, **kwargs)
    lower = {k.lower(): v for k, v in dict(headers).items()}
    moment = datetime.fromtimestamp(int(lower["webhook-timestamp"]), UTC).replace(tzinfo=None)
    expected = Webhook(secret).sign(lower["webhook-id"], moment, body.decode())
    assert expected in lower["webhook-signature"].split(" "), "the reference library disagrees"
