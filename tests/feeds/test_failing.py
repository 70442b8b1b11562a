"""Retries exhausted → `failing`, the district e-mailed, GET says why; fail-over between
two replicas keeps every event in order."""

from __future__ import annotations

import email
import socket
from email.message import Message
from typing import Any

import httpx
from aiosmtpd.controller import Controller

from ioc.db import Database
from ioc.feeds import DeliveryService
from tests.conftest import ServerMaker
from tests.feeds.conftest import (
    FAST,
    eventually,
    kpi_event,
    publish_events,
    subscribe,
    token,
    unique_kpi,
)
from tests.feeds.receiver import Receiver


class Inbox:
    def __init__(self) -> None:
        self.messages: list[Message] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.messages.append(email.message_from_bytes(envelope.content))
        return "250 OK"


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def test_failing_after_retries_emails_the_contact(
    db: Database, database_url: str, make_server: ServerMaker, receivers: Any
) -> None:
    inbox = Inbox()
    smtp = Controller(inbox, hostname="127.0.0.1", port=_port())
    smtp.start()
    try:
        server = await make_server(
            url=database_url,
            smtp_host="127.0.0.1",
            smtp_port=smtp.port,
            **{**FAST, "feeds_retry_for_seconds": 1.0},
        )
        receiver: Receiver = await receivers(status=503)
        bearer = await token(db, "district", "689")
        headers = {"Authorization": f"Bearer {bearer}"}
        kpi = unique_kpi()
        async with httpx.AsyncClient(base_url=server.url, timeout=10) as http:
            sub = await subscribe(
                server.url,
                bearer,
                receiver.url,
                kpis=[kpi],
                contact_email="ioc@dongxoai.binhphuoc.gov.vn",
            )
            seqs = await publish_events(db, [kpi_event("689", kpi, 1)])

            async def failing() -> bool:
                got = await http.get(f"/api/v1/subscriptions/{sub['id']}", headers=headers)
                return bool(got.json()["status"] == "failing" and inbox.messages)

            await eventually(failing, what="the subscription to turn failing")
            got = (await http.get(f"/api/v1/subscriptions/{sub['id']}", headers=headers)).json()
            assert got["cursor"] < seqs[0]
            assert f"event seq {seqs[0]} not delivered since" in got["status_reason"]
            assert "last: HTTP 503" in got["status_reason"]
            assert got["status_reason"].endswith("e-mailed ioc@dongxoai.binhphuoc.gov.vn")
            assert got["last_error"] == "HTTP 503"
            assert len(inbox.messages) == 1
            message = inbox.messages[0]
            assert message["To"] == "ioc@dongxoai.binhphuoc.gov.vn"
            assert receiver.url in str(message["Subject"])
            attempts = len(receiver.received)
            assert attempts >= 2
            assert {r.id for r in receiver.received} == {
                f"msg_{sub['id'].replace('-', '')}_{seqs[0]}"
            }
            # failing: nothing more is sent until the district resumes it
            receiver.status = 200
            resumed = await http.patch(
                f"/api/v1/subscriptions/{sub['id']}", json={"status": "active"}, headers=headers
            )
            assert resumed.json()["status"] == "active"
            assert resumed.json()["status_reason"] is None
            await receiver.wait_for(attempts + 1)
            assert receiver.received[-1].json["seq"] == seqs[0]
    finally:
        smtp.stop()


async def test_fail_over_to_the_other_replica_keeps_order(
    db: Database, database_url: str, make_server: ServerMaker, receivers: Any
) -> None:
    first = await make_server(url=database_url, **FAST)
    second = await make_server(url=database_url, **FAST)
    receiver: Receiver = await receivers()
    bearer = await token(db, "district", "689")
    kpi = unique_kpi()
    await subscribe(first.url, bearer, receiver.url, kpis=[kpi])
    before = await publish_events(db, [kpi_event("689", kpi, i) for i in range(5)])
    await receiver.wait_for(5)

    def delivery(server: Any) -> Any:
        return server.app.state.ctx.handles.get(DeliveryService)

    leaders = [s for s in (first, second) if delivery(s).is_leader and delivery(s)._workers]
    assert len(leaders) == 1
    await leaders[0].stop()
    after = await publish_events(db, [kpi_event("689", kpi, i) for i in range(5, 10)])
    await receiver.wait_for(10, timeout=60)
    seqs = receiver.seqs()
    deduped = [s for i, s in enumerate(seqs) if i == 0 or s != seqs[i - 1]]
    assert deduped == before + after
