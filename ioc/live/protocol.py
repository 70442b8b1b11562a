"""The `/ws` wire protocol (docs/api.md §5): message shapes, close codes, and event → message.

Every message is one JSON object with a `type`. Server messages are serialised once per
event (not once per screen): a `Wire` holds the text, and builds its UTF-8 bytes and its
websocket frame at most once, so the same bytes are written to every screen that wants it.
"""

from __future__ import annotations

import json
from collections.abc import Hashable
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field
from websockets.frames import Frame, Opcode

from ioc.events import Event

Window = Literal["today", "7d", "month", "quarter", "year"]
LIVE_EVENT_TYPES = ["kpi", "alert", "scorecard"]

# Close codes. Clients reconnect (with backoff and `since`) after 1001, 1006, 1011, 1012 and
# 1013; 1008 and 1009 mean "this will fail again": fix the token, the unit or the client.
CLOSE_GOING_AWAY = 1001
CLOSE_POLICY = 1008
CLOSE_TOO_BIG = 1009
CLOSE_TRY_AGAIN = 1013
RECONNECTABLE = frozenset({1000, 1001, 1005, 1006, 1011, 1012, 1013, 1014})


class Subscribe(BaseModel):
    """client → `{"type": "subscribe", "unit": "689", "windows": ["today"], "since": 123}`."""

    model_config = ConfigDict(extra="forbid")

    type: Literal["subscribe"]
    unit: str = Field(min_length=2, max_length=5, pattern=r"^[0-9]+$")
    windows: list[Window] = Field(default=["today"], min_length=1, max_length=5)
    since: int | None = Field(default=None, ge=0)


class ClientPing(BaseModel):
    """client → `{"type": "ping"}`; the server answers `{"type": "pong", "seq": N}`."""

    model_config = ConfigDict(extra="allow")

    type: Literal["ping"]


def dumps(message: dict[str, Any]) -> str:
    """Compact JSON, Vietnamese text kept as is."""
    return json.dumps(message, ensure_ascii=False, separators=(",", ":"), default=str)


class Wire:
    """One server message as sent: its JSON text, and (built on first use, then shared by
    every screen it goes to) its UTF-8 bytes and its single unmasked, uncompressed text frame.
    """

    __slots__ = ("_data", "_frame", "kind", "text")

    def __init__(self, text: str) -> None:
        self.text = text
        # every server message starts with {"type":"<kind>" (see `dumps`): the metrics label
        self.kind = text[9 : text.find('"', 9)]
        self._data: bytes | None = None
        self._frame: bytes | None = None

    @property
    def data(self) -> bytes:
        if self._data is None:
            self._data = self.text.encode()
        return self._data

    @property
    def frame(self) -> bytes:
        """The whole websocket frame (RFC 6455 §5.2) for a connection without extensions."""
        if self._frame is None:
            self._frame = Frame(Opcode.TEXT, self.data).serialize(mask=False, extensions=[])
        return self._frame


def error_message(status: int, title: str, detail: str) -> Wire:
    """An `error` message, shaped like a problem detail (the socket is closed after it)."""
    return Wire(dumps({"type": "error", "status": status, "title": title, "detail": detail}))


def event_message(event: Event, *, coalesce: bool) -> tuple[Hashable, Wire] | None:
    """The queue key and wire text of a kpi/alert/scorecard event (None for other types).

    KPI events of the same (unit, window, kpi) share a key when `coalesce` is on, so a value
    still waiting in a slow screen's queue is replaced by the newer one (state, not history)."""
    payload = event.payload
    if event.type == "kpi":
        kpi = payload.get("kpi", {})
        key: Hashable = (
            ("kpi", event.unit_code, event.time_window, event.subject) if coalesce else event.seq
        )
        return key, Wire(
            dumps(
                {
                    "type": "kpi",
                    "seq": event.seq,
                    "unit": event.unit_code,
                    "window": event.time_window,
                    "as_of": payload.get("as_of"),
                    "kpi": kpi,
                }
            )
        )
    if event.type == "scorecard":
        # State, not history: a newer scorecard of the unit replaces one still queued.
        key = ("scorecard", event.unit_code) if coalesce else event.seq
        return key, Wire(
            dumps(
                {
                    "type": "scorecard",
                    "seq": event.seq,
                    "unit": event.unit_code,
                    "period": event.time_window,
                    "scorecard": payload.get("scorecard"),
                }
            )
        )
    if event.type == "alert":
        alert = payload.get("alert")
        return event.seq, Wire(
            dumps({"type": "alert", "seq": event.seq, "unit": event.unit_code, "alert": alert})
        )
    return None
