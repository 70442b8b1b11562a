"""What one running app owns, handed to every room: `AppContext`.

It sits below the rooms (it imports none of them): the app factory (`ioc.app`) builds it in
the lifespan and passes it to each room's `build_services(ctx)`; routes reach it through
`ioc.api.get_ctx`. A room keeps the long-lived objects others need (the live hub, the feed
delivery…) in `ctx.handles`, found again by their type, never by a string.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from ioc.db import Database
from ioc.events import Listener
from ioc.loops import LoopService
from ioc.settings import Settings

T = TypeVar("T")

# A room's contribution to /readyz: {"ok": bool, ...details}.
ReadinessCheck = Callable[[], Awaitable[dict[str, Any]]]


class Handles:
    """The long-lived objects the rooms built, at most one per type."""

    def __init__(self) -> None:
        self._by_type: dict[type[Any], object] = {}

    def add(self, handle: object) -> None:
        """Keep `handle`, found again by its exact type; a second one of a type is a bug."""
        kind = type(handle)
        if kind in self._by_type:
            raise ValueError(f"this app already holds a {kind.__name__}")
        self._by_type[kind] = handle

    def find(self, kind: type[T]) -> T | None:
        """The handle of type `kind`, or None when its room did not build one (disabled)."""
        handle = self._by_type.get(kind)
        return handle if isinstance(handle, kind) else None

    def get(self, kind: type[T]) -> T:
        """The handle of type `kind`; `LookupError` when its room did not build one."""
        handle = self.find(kind)
        if handle is None:
            raise LookupError(f"this app holds no {kind.__name__} (is its room enabled?)")
        return handle


@dataclass
class AppContext:
    """Everything one running app owns; built in the lifespan, reachable as `app.state.ctx`."""

    settings: Settings
    db: Database
    listener: Listener
    services: list[LoopService] = field(default_factory=list)
    readiness: dict[str, ReadinessCheck] = field(default_factory=dict)
    handles: Handles = field(default_factory=Handles)
