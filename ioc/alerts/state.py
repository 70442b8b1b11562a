"""The lifecycle of one alert (rule, unit) as a pure function: no database, no clock.

    ok / resolved / no_data ──breach──► pending ──held for_seconds──► firing ──ack──► acknowledged
                                          │ no breach                   │ passes clear_threshold
                                          ▼                             ▼
                                          ok                         resolved

- `no_data` (value null: denominator 0, source silent) is its own state. It never resolves a
  firing alert; it counts as a breach only when the rule says so (`no_data_fires`).
- An evaluation *error* (database or KPI engine down) never fires, even with `no_data_fires`:
  after an outage every rule would otherwise fire at once.
- Hysteresis: a firing alert resolves only when the value passes `clear_threshold`, so a value
  flapping between threshold and clear threshold changes nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

ACTIVE = frozenset({"firing", "acknowledged"})
OPEN = ("pending", "firing", "acknowledged", "no_data")


def breached(op: str, value: float, threshold: float) -> bool:
    """True when `value op threshold` holds (the rule's alarm condition)."""
    if op == "<":
        return value < threshold
    if op == "<=":
        return value <= threshold
    if op == ">":
        return value > threshold
    if op == ">=":
        return value >= threshold
    raise ValueError(f"unknown comparison {op!r}")


def clear_on_right_side(op: str, threshold: float, clear: float) -> bool:
    """The clear threshold must lie on the healthy side of the threshold (or equal it)."""
    return clear >= threshold if op in ("<", "<=") else clear <= threshold


@dataclass(frozen=True, slots=True)
class Condition:
    op: str
    threshold: float
    clear_threshold: float
    for_seconds: int
    no_data_fires: bool


@dataclass(frozen=True, slots=True)
class Decision:
    state: str
    pending_since: datetime | None
    notify: str | None  # "firing" | "resolved" | None


def decide(
    cond: Condition,
    state: str,
    pending_since: datetime | None,
    value: float | None,
    now: datetime,
    *,
    error: bool = False,
) -> Decision:
    """The next state of an alert given one observation of its KPI at `now`."""
    active = state in ACTIVE
    if error or (value is None and not cond.no_data_fires):
        if active:
            return Decision(state, pending_since, None)
        return Decision("no_data", None, None)
    breach = value is None or breached(cond.op, value, cond.threshold)
    if active:
        cleared = value is not None and not breached(cond.op, value, cond.clear_threshold)
        if cleared:
            return Decision("resolved", None, "resolved")
        return Decision(state, pending_since, None)
    if not breach:
        if state in ("pending", "no_data", "closed"):
            return Decision("ok", None, None)
        return Decision(state, None, None)
    started = pending_since if state == "pending" and pending_since is not None else now
    if (now - started).total_seconds() >= cond.for_seconds:
        return Decision("firing", started, "firing")
    return Decision("pending", started, None)
