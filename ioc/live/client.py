"""A small typed client of `/ws` (docs/api.md §5), used by `ioc watch`, the tests and benchmarks.

It follows the reconnect policy documented in docs/live.md:
- after a drop (1001, 1006, 1011, 1012, 1013…) reconnect after a random delay in
  [0, min(cap, base · 2^attempt)] ("full jitter"), so a restarted replica is not hit by
  every screen in the same millisecond; the attempt counter resets once a connection has
  delivered its first message;
- resubscribe with `since` = the last seq seen (events *and* pings carry it), so only what
  was missed is replayed — or a fresh snapshot comes when that is too old;
- 1008 (token, scope, bad request) and 1009 are not retried: `LiveRefused` is raised;
- send `{"type": "ping"}` every `ping_seconds` (the server closes silent clients), and
  reconnect when the server has sent nothing for `silence_seconds` (it pings every ≤ 15 s).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any, Literal, TypedDict, cast

import websockets
from websockets.asyncio.client import ClientConnection
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus

from ioc.live.protocol import RECONNECTABLE

OPEN_ALERT_STATES = frozenset({"pending", "firing", "acknowledged", "no_data"})


class KpiValue(TypedDict):
    id: str
    value: float | None
    numerator: float | None
    denominator: float | None
    target: float | None
    status: str


class ChildKpis(TypedDict):
    unit: str
    name: str
    kpis: list[KpiValue]


class SnapshotMessage(TypedDict):
    type: Literal["snapshot"]
    seq: int
    unit: str
    windows: list[str]
    as_of: str | None
    kpis: dict[str, list[KpiValue]]
    children: dict[str, list[ChildKpis]]
    alerts: list[dict[str, Any]]


class KpiMessage(TypedDict):
    type: Literal["kpi"]
    seq: int
    unit: str
    window: str
    as_of: str | None
    kpi: KpiValue


class AlertMessage(TypedDict):
    type: Literal["alert"]
    seq: int
    unit: str
    alert: dict[str, Any]


class PingMessage(TypedDict):
    type: Literal["ping", "pong"]
    seq: int


class ErrorMessage(TypedDict):
    type: Literal["error"]
    status: int
    title: str
    detail: str


LiveMessage = SnapshotMessage | KpiMessage | AlertMessage | PingMessage | ErrorMessage


class LiveRefused(Exception):
    """The server refused us for a reason retrying will not fix (token, scope, request)."""

    def __init__(self, detail: str, code: int | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        self.code = code


@dataclass
class ScreenState:
    """What a screen shows, kept current by applying every message in order."""

    unit: str
    seq: int = 0
    # (unit, window, kpi id) → value
    kpis: dict[tuple[str, str, str], KpiValue] = field(default_factory=dict)
    names: dict[str, str] = field(default_factory=dict)  # child unit → name
    alerts: dict[str, dict[str, Any]] = field(default_factory=dict)  # alert id → alert
    as_of: str | None = None
    snapshots: int = 0
    events: int = 0

    def apply(self, message: LiveMessage) -> None:
        if message["type"] == "snapshot":
            snap = message
            self.kpis.clear()
            self.alerts.clear()
            for window, values in snap["kpis"].items():
                for kpi in values:
                    self.kpis[(snap["unit"], window, kpi["id"])] = kpi
            for window, kids in snap["children"].items():
                for child in kids:
                    self.names[child["unit"]] = child["name"]
                    for kpi in child["kpis"]:
                        self.kpis[(child["unit"], window, kpi["id"])] = kpi
            for alert in snap["alerts"]:
                self.alerts[str(alert.get("id"))] = alert
            self.as_of = snap.get("as_of")
            self.snapshots += 1
        elif message["type"] == "kpi":
            event = message
            self.kpis[(event["unit"], event["window"], event["kpi"]["id"])] = event["kpi"]
            self.as_of = event.get("as_of") or self.as_of
            self.events += 1
        elif message["type"] == "alert":
            alert = message["alert"]
            key = str(alert.get("id"))
            if alert.get("state") in OPEN_ALERT_STATES:
                self.alerts[key] = alert
            else:
                self.alerts.pop(key, None)
            self.events += 1
        if "seq" in message:
            self.seq = max(self.seq, int(cast(PingMessage, message)["seq"]))


class LiveClient:
    """Subscribe to a unit and iterate over its messages forever, reconnecting as needed."""

    def __init__(
        self,
        url: str,
        token: str,
        unit: str,
        windows: list[str] | None = None,
        *,
        since: int | None = None,
        compression: bool = False,
        backoff_base: float = 0.5,
        backoff_cap: float = 30.0,
        ping_seconds: float = 20.0,
        silence_seconds: float = 45.0,
    ) -> None:
        self.url = url
        self.token = token
        self.unit = unit
        self.windows = windows or ["today"]
        self.since = since
        self.compression = compression
        self.backoff_base = backoff_base
        self.backoff_cap = backoff_cap
        self.ping_seconds = ping_seconds
        self.silence_seconds = silence_seconds
        self.state = ScreenState(unit)
        self.connects = 0
        self._ws: ClientConnection | None = None

    def backoff(self, attempt: int) -> float:
        """Full jitter: uniform in [0, min(cap, base · 2^attempt)]."""
        return random.uniform(0, min(self.backoff_cap, self.backoff_base * 2**attempt))

    async def close(self) -> None:
        if self._ws is not None:
            await self._ws.close()

    async def messages(self) -> AsyncIterator[LiveMessage]:
        """Every message (snapshots, events, pings), applied to `state` before it is yielded."""
        attempt = 0
        while True:
            try:
                async for message in self._session():
                    attempt = 0
                    yield message
            except LiveRefused:
                raise
            except (OSError, TimeoutError, ConnectionClosed, InvalidHandshake) as exc:
                code = getattr(getattr(exc, "rcvd", None), "code", None)
                if code is not None and code not in RECONNECTABLE:
                    reason = getattr(getattr(exc, "rcvd", None), "reason", "")
                    raise LiveRefused(f"closed by the server: {code} {reason}", code) from exc
            await asyncio.sleep(self.backoff(attempt))
            attempt += 1

    async def _session(self) -> AsyncIterator[LiveMessage]:
        try:
            ws = await websockets.connect(
                self.url,
                additional_headers={"Authorization": f"Bearer {self.token}"},
                compression="deflate" if self.compression else None,
                open_timeout=10,
                max_size=None,
            )
        except InvalidStatus as exc:
            status = exc.response.status_code
            if status in (401, 403):
                detail = _problem_detail(bytes(exc.response.body or b""), status)
                raise LiveRefused(detail, status) from exc
            raise
        self._ws = ws
        self.connects += 1
        pinger = asyncio.create_task(self._ping(ws))
        try:
            since = self.state.seq if self.state.snapshots else self.since
            subscribe: dict[str, Any] = {
                "type": "subscribe",
                "unit": self.unit,
                "windows": self.windows,
            }
            if since is not None:
                subscribe["since"] = since
            await ws.send(json.dumps(subscribe))
            while True:
                raw = await asyncio.wait_for(ws.recv(), self.silence_seconds)
                message = cast(LiveMessage, json.loads(raw))
                if message["type"] == "error":
                    raise LiveRefused(message["detail"], message["status"])
                self.state.apply(message)
                yield message
        finally:
            pinger.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await pinger
            self._ws = None
            await ws.close()

    async def _ping(self, ws: ClientConnection) -> None:
        with contextlib.suppress(ConnectionClosed):
            while True:
                await asyncio.sleep(self.ping_seconds)
                await ws.send('{"type":"ping"}')


def _problem_detail(body: bytes | None, status: int) -> str:
    try:
        return str(json.loads(body or b"{}").get("detail") or f"HTTP {status}")
    except ValueError:
        return f"HTTP {status}"


def render(state: ScreenState, windows: list[str], *, width: int = 100) -> str:
    """The live table `ioc watch` prints: the unit's KPIs per window, children, open alerts."""
    kpi_ids = sorted({k for (u, _, k) in state.kpis if u == state.unit})
    lines = [f"unit {state.unit}   seq {state.seq}   as of {state.as_of or '-'}", ""]
    header = f"{'kpi':<32}" + "".join(f"{w:>14}" for w in windows)
    lines += [header, "-" * len(header)]
    for kpi_id in kpi_ids:
        cells = "".join(f"{_cell(state.kpis.get((state.unit, w, kpi_id))):>14}" for w in windows)
        lines.append(f"{kpi_id:<32}{cells}")
    children = sorted(state.names)
    if children:
        window = windows[0]
        lines += ["", f"children ({window}): bad / warn / ok"]
        for child in children:
            statuses = [
                v["status"] for (u, w, _), v in state.kpis.items() if u == child and w == window
            ]
            lines.append(
                f"  {child:<6} {state.names[child][:40]:<40} "
                f"{statuses.count('bad'):>3} / {statuses.count('warn'):>3} / "
                f"{statuses.count('ok'):>3}"
            )
    lines += ["", f"open alerts: {len(state.alerts)}"]
    for alert in list(state.alerts.values())[:10]:
        lines.append(
            f"  [{alert.get('severity', '?')}] {alert.get('state', '?')}: "
            f"{alert.get('rule_name', alert.get('rule', '?'))} — {alert.get('unit')} "
            f"{alert.get('kpi', '')} = {alert.get('value')}"
        )
    return "\n".join(line[:width] for line in lines)


def _cell(kpi: KpiValue | None) -> str:
    if kpi is None:
        return "-"
    value = kpi["value"]
    if value is None:
        text = "n/a"
    elif float(value).is_integer() and abs(value) >= 1:
        text = f"{int(value)}"
    else:
        text = f"{value:.3f}"
    mark = {"bad": "!", "warn": "~"}.get(kpi["status"], "")
    return text + mark
