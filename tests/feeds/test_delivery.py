"""Deliveries to real HTTP receivers: signed, ordered, retried, resumed, isolated."""

from __future__ import annotations

from typing import Any

import httpx

from ioc.db import Database
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
from tests.webhooks_reference import verify


async def test_ordered_signed_and_retried_with_the_same_webhook_id(
    db: Database, database_url: str, make_server: ServerMaker, receivers: Any
) -> None:
    server = await make_server(url=database_url, **FAST)
    calls: dict[int, int] = {}

    def flaky(request: Any) -> int:
        seq = request.json["seq"]
        calls[seq] = calls.get(seq, 0) + 1
        # the third event fails twice (500, then 503) before it is accepted
        if seq == third and calls[seq] <= 2:
            return 500 if calls[seq] == 1 else 503
        return 200

    receiver: Receiver = await receivers()
    receiver.respond = flaky
    bearer = await token(db, "district", "689")
    k1, k2, k3 = unique_kpi(), unique_kpi(), unique_kpi()
    sub = await subscribe(server.url, bearer, receiver.url, kpis=[k1, k2, k3])
    assert sub["secret"].startswith("whsec_")
    seqs = await publish_events(
        db,
        [
            kpi_event("689", k1, 0.61),
            kpi_event("688", k1, 0.10),  # another district: not sent
            kpi_event("25195", k2, 12),  # a commune of 689: sent
            kpi_event("689", k2, 0.97),
            kpi_event("70", k1, 0.44),  # the province: not sent
            kpi_event("689", k3, 3),
        ],
    )
    third = seqs[3]
    await receiver.wait_for(6)
    expected = [seqs[0], seqs[2], seqs[3], seqs[3], seqs[3], seqs[5]]
    assert receiver.seqs() == expected
    ids = [r.id for r in receiver.received]
    assert ids[2] == ids[3] == ids[4] == f"msg_{sub['id'].replace('-', '')}_{third}"
    assert len(set(ids)) == 4
    for request in receiver.received:
        verify(sub["secret"], request.headers, request.body)
        assert request.path == "/hook"
    first = receiver.received[0].json
    assert first == {
        "type": "kpi",
        "seq": seqs[0],
        "unit": "689",
        "data": {
            "unit": "689",
            "window": "today",
            "as_of": "2026-11-27T10:00:00+07:00",
            "kpi": {
                "id": k1,
                "value": 0.61,
                "numerator": 61.0,
                "denominator": 100,
                "target": 0.5,
                "status": "ok",
            },
        },
    }
    headers = {"Authorization": f"Bearer {bearer}"}
    async with httpx.AsyncClient(base_url=server.url, timeout=10) as http:

        async def caught_up() -> bool:
            got = (await http.get(f"/api/v1/subscriptions/{sub['id']}", headers=headers)).json()
            return bool(got["cursor"] >= seqs[5])

        await eventually(caught_up, what="cursor at the last event")
        log = await http.get(f"/api/v1/subscriptions/{sub['id']}/deliveries", headers=headers)
        assert log.status_code == 200
        rows = list(reversed(log.json()))
    assert [(r["seq"], r["attempt"], r["status_code"], r["ok"]) for r in rows] == [
        (seqs[0], 1, 200, True),
        (seqs[2], 1, 200, True),
        (seqs[3], 1, 500, False),
        (seqs[3], 2, 503, False),
        (seqs[3], 3, 200, True),
        (seqs[5], 1, 200, True),
    ]
    assert all(r["latency_ms"] >= 0 for r in rows)
    assert rows[2]["error"] == "HTTP 500"


async def test_receiver_down_then_up_gets_every_event_in_order(
    db: Database, database_url: str, make_server: ServerMaker, receivers: Any
) -> None:
    server = await make_server(url=database_url, **FAST)
    receiver: Receiver = await receivers()
    bearer = await token(db, "district", "689")
    kpi = unique_kpi()
    sub = await subscribe(server.url, bearer, receiver.url, kpis=[kpi])
    first = await publish_events(db, [kpi_event("689", kpi, 1)])
    await receiver.wait_for(1)
    await receiver.stop()
    down = []
    for i in range(30):
        down += await publish_events(db, [kpi_event("689", kpi, 2 + i)])
    # Let the worker hit the closed port a few times before the receiver comes back.
    async with httpx.AsyncClient(base_url=server.url, timeout=10) as http:

        async def retried() -> bool:
            got = await http.get(
                f"/api/v1/subscriptions/{sub['id']}",
                headers={"Authorization": f"Bearer {bearer}"},
            )
            return bool(got.json()["attempts"] >= 2)

        await eventually(retried, what="failed attempts while down")
    await receiver.start()
    await receiver.wait_for(31)
    seqs = receiver.seqs()
    # every event, in order; a repeated event only as an identical retry (same id, same body)
    deduped = [s for i, s in enumerate(seqs) if i == 0 or s != seqs[i - 1]]
    assert deduped == first + down
    by_id: dict[str, bytes] = {}
    for request in receiver.received:
        assert by_id.setdefault(request.id, request.body) == request.body
    assert len(by_id) == 31
    values = [r.json["data"]["kpi"]["value"] for r in receiver.received if r.json["seq"] in down]
    assert sorted(set(values)) == list(range(2, 32))


async def test_slow_endpoint_does_not_delay_another(
    db: Database, database_url: str, make_server: ServerMaker, receivers: Any
) -> None:
    server = await make_server(url=database_url, **{**FAST, "feeds_timeout_seconds": 60})
    slow: Receiver = await receivers(delay=30)
    fast: Receiver = await receivers()
    bearer = await token(db, "district", "689")
    kpi = unique_kpi()
    await subscribe(server.url, bearer, slow.url, kpis=[kpi])
    await subscribe(server.url, bearer, fast.url, kpis=[kpi])
    seqs = await publish_events(db, [kpi_event("689", kpi, i) for i in range(20)])
    await fast.wait_for(20)
    assert fast.seqs() == seqs
    # the slow endpoint is still sitting on its first request
    assert len(slow.received) == 0


async def test_filters_rotation_replay_and_pause(
    feed_db: Database, feed_db_url: str, make_server: ServerMaker, receivers: Any
) -> None:
    server = await make_server(url=feed_db_url, **FAST)
    receiver: Receiver = await receivers()
    bearer = await token(feed_db, "district", "689")
    headers = {"Authorization": f"Bearer {bearer}"}
    sub = await subscribe(
        server.url,
        bearer,
        receiver.url,
        filters={"kpis": ["dossier_online_rate"], "severities": ["critical"]},
    )
    from ioc.events import NewEvent

    def alert(severity: str) -> NewEvent:
        return NewEvent(
            type="alert",
            unit_code="689",
            subject="r1",
            payload={"alert": {"id": 7, "severity": severity, "state": "firing"}},
        )

    seqs = await publish_events(
        feed_db,
        [
            kpi_event("689", "dossier_received", 5),
            kpi_event("689", "dossier_online_rate", 0.4),
            alert("warning"),
            alert("critical"),
        ],
    )
    await receiver.wait_for(2)
    assert receiver.seqs() == [seqs[1], seqs[3]]
    old_secret = sub["secret"]
    async with httpx.AsyncClient(base_url=server.url, timeout=10) as http:
        rotated = await http.post(
            f"/api/v1/subscriptions/{sub['id']}/rotate-secret", headers=headers
        )
        assert rotated.status_code == 200, rotated.text
        new_secret = rotated.json()["secret"]
        assert new_secret != old_secret
        assert rotated.json()["previous_secret_expires_at"] is not None
        more = await publish_events(feed_db, [kpi_event("689", "dossier_online_rate", 0.5)])
        await receiver.wait_for(3)
        last = receiver.received[2]
        assert len(last.headers["webhook-signature"].split()) == 2
        verify(old_secret, last.headers, last.body)
        verify(new_secret, last.headers, last.body)
        # replay from the first event: the same events again, in order, with new ids
        replay = await http.post(
            f"/api/v1/subscriptions/{sub['id']}/replay", params={"since": seqs[0]}, headers=headers
        )
        assert replay.status_code == 202, replay.text
        assert replay.json()["replay_epoch"] == 1
        await receiver.wait_for(6)
        assert receiver.seqs()[3:] == [seqs[1], seqs[3], more[0]]
        assert receiver.received[3].id.endswith(f"_{seqs[1]}_r1")
        # pause: nothing is delivered; resume: the backlog arrives
        paused = await http.patch(
            f"/api/v1/subscriptions/{sub['id']}", json={"status": "paused"}, headers=headers
        )
        assert paused.json()["status"] == "paused"
        later = await publish_events(feed_db, [kpi_event("689", "dossier_online_rate", 0.6)])
        resumed = await http.patch(
            f"/api/v1/subscriptions/{sub['id']}", json={"status": "active"}, headers=headers
        )
        assert resumed.json()["status"] == "active"
        await receiver.wait_for(7)
        assert receiver.seqs()[6:] == later
        deleted = await http.delete(f"/api/v1/subscriptions/{sub['id']}", headers=headers)
        assert deleted.status_code == 204
        gone = await http.get(f"/api/v1/subscriptions/{sub['id']}", headers=headers)
        assert gone.status_code == 404


async def test_delivery_log_of_a_deleted_subscription_does_not_block_the_others(
    feed_db: Database, feed_db_url: str, make_server: ServerMaker, receivers: Any
) -> None:
    """Attempts are written to the delivery log in batches (≤ 0.5 s late): a subscription
    deleted in between must not make the batch fail, nor hold back the other subscriptions'
    rows and cursors."""
    import uuid

    import asyncpg

    from ioc.db.engine import asyncpg_dsn
    from ioc.feeds.delivery import Attempt, DeliveryService

    server = await make_server(url=feed_db_url, **FAST)
    receiver: Receiver = await receivers()
    bearer = await token(feed_db, "district", "689")
    kept = await subscribe(server.url, bearer, receiver.url, kpis=[unique_kpi()])
    gone = await subscribe(server.url, bearer, receiver.url, kpis=[unique_kpi()])
    async with httpx.AsyncClient(base_url=server.url, timeout=10) as http:
        deleted = await http.delete(
            f"/api/v1/subscriptions/{gone['id']}", headers={"Authorization": f"Bearer {bearer}"}
        )
    assert deleted.status_code == 204
    kept_id, gone_id = uuid.UUID(kept["id"]), uuid.UUID(gone["id"])
    pool = await asyncpg.create_pool(asyncpg_dsn(feed_db_url), min_size=1, max_size=2)
    try:
        rows = [
            (gone_id, Attempt(1, "msg_gone_1", 1, 200, None, 3.0, True)),
            (kept_id, Attempt(1, "msg_kept_1", 1, 200, None, 2.0, True)),
        ]
        await DeliveryService._write(pool, rows, {kept_id: (0, 1, True), gone_id: (0, 1, True)})
        logged = await pool.fetch("SELECT subscription_id, webhook_id FROM feed_deliveries")
        cursor = await pool.fetchval(
            "SELECT cursor_seq FROM feed_subscriptions WHERE id = $1", kept_id
        )
    finally:
        await pool.close()
    assert [(r["subscription_id"], r["webhook_id"]) for r in logged] == [(kept_id, "msg_kept_1")]
    assert cursor == 1


async def test_scorecard_changes_reach_a_district_subscribed_to_them(
    db: Database, database_url: str, make_server: ServerMaker, receivers: Any
) -> None:
    from ioc.scorecards.loops import scorecard_event

    server = await make_server(url=database_url, **FAST)
    receiver: Receiver = await receivers()
    bearer = await token(db, "district", "689")
    sub = await subscribe(server.url, bearer, receiver.url, topics=["scorecard"])
    marker = unique_kpi()  # the payload's mark: other tests' scorecards may flow too
    seqs = await publish_events(
        db,
        [
            scorecard_event({"unit": "688", "total": 40.0, "mark": marker}, "688"),  # not 689's
            kpi_event("689", marker, 0.5),  # not a subscribed topic
            scorecard_event({"unit": "25195", "total": 61.5, "mark": marker}, "25195"),
        ],
    )

    async def arrived() -> bool:
        return any(r.json["seq"] == seqs[2] for r in receiver.received)

    await eventually(arrived, what="the commune's scorecard")
    mine = [r for r in receiver.received if r.json["data"]["scorecard"].get("mark") == marker]
    assert [r.json["seq"] for r in mine] == [seqs[2]]
    assert mine[0].json == {
        "type": "scorecard",
        "seq": seqs[2],
        "unit": "25195",
        "data": {"scorecard": {"unit": "25195", "total": 61.5, "mark": marker}},
    }
    verify(sub["secret"], mine[0].headers, mine[0].body)
