"""Loading the engine's memory (`EngineMemory`) from the aggregates and `kpi_current`: at
start, on a new local day, after a rebuild, when another replica ran rounds or the clock went
back (~1 s at full scale, most of it PostgreSQL's; the API is served meanwhile).
"""

from __future__ import annotations

import asyncio
import heapq
from collections import defaultdict
from datetime import date, datetime, timedelta
from itertools import repeat
from typing import Any

import numpy as np
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from ioc.kpis.catalogue import window_days
from ioc.kpis.compute import response_times, window_counts
from ioc.kpis.contributions import COUNT_COLUMNS
from ioc.kpis.current import current_of
from ioc.kpis.median import BINS, EDGES
from ioc.kpis.memory import NEVER, EngineMemory, Responses
from ioc.kpis.targets import Targets
from ioc.localtime import WINDOWS
from ioc.units import closure_pairs

_EDGE_ARRAY = np.array(EDGES)


def horizon_of(today: date) -> date:
    """The first local day any window of `today` can include (7d reaches back into the old
    year during the first days of January)."""
    return min(today.replace(month=1, day=1), today - timedelta(days=6))


async def _rows(session: AsyncSession, sql: str, **params: object) -> list[Any]:
    return list(await session.execute(text(sql), params))


class Tree:
    """The unit tree as the memory reads it: every unit, its ancestors and descendants (both
    including itself)."""

    def __init__(self, closure: list[tuple[str, str]]) -> None:
        self.units = sorted({a for a, _ in closure} | {d for _, d in closure})
        self.index = {u: i for i, u in enumerate(self.units)}
        ancestors: dict[str, list[str]] = defaultdict(list)
        descendants: dict[str, list[str]] = defaultdict(list)
        for a, d in closure:  # ordered by depth: the unit itself first
            ancestors[d].append(a)
            descendants[a].append(d)
        self.ancestors, self.descendants = dict(ancestors), dict(descendants)


async def _responses(
    session: AsyncSession, today: date, firsts: list[int], ancestors: dict[str, list[str]]
) -> tuple[list[dict[str, Responses]], list[dict[str, list[int]]]]:
    """Per window: each filing unit's sorted response times, and each unit's hour bins
    rolled up from its subtree."""
    resp: list[dict[str, Responses]] = [{} for _ in WINDOWS]
    bins: list[dict[str, list[int]]] = [{} for _ in WINDOWS]
    for unit, received, times in await response_times(session, horizon_of(today), today):
        for w, first in enumerate(firsts):
            inside = times[received >= first]
            if len(inside):
                resp[w][unit] = Responses(inside.tolist())
                bins[w][unit] = np.bincount(
                    np.searchsorted(_EDGE_ARRAY, inside, side="right"), minlength=BINS
                ).tolist()
    rolled: list[dict[str, list[int]]] = [{} for _ in WINDOWS]
    for w in range(len(WINDOWS)):
        for unit, histogram in bins[w].items():
            for a in ancestors.get(unit, ()):
                acc = rolled[w].setdefault(a, [0] * BINS)
                for i, count in enumerate(histogram):
                    acc[i] += count
    return resp, rolled


async def _open_dues(
    session: AsyncSession, moment: datetime
) -> tuple[dict[tuple[str, str], int], list[tuple[datetime, str, str, int]]]:
    """Open records past due at `moment` counted per (unit, feed); the later due moments as
    a heap."""
    sql = "SELECT unit_code, feed, sum(n)::bigint FROM kpi_open WHERE due_at < :m GROUP BY 1, 2"
    overdue = {(u, f): int(n) for u, f, n in await _rows(session, sql, m=moment)}
    heap: list[tuple[datetime, str, str, int]] = []
    for u, f, dues, ns in await _rows(
        session,
        "SELECT unit_code, feed, array_agg(due_at), array_agg(n) FROM kpi_open "
        "WHERE due_at >= :m GROUP BY 1, 2",
        m=moment,
    ):
        heap.extend(zip(dues, repeat(u), repeat(f), ns, strict=False))
        await asyncio.sleep(0)
    heapq.heapify(heap)
    return overdue, heap


async def _services(
    session: AsyncSession,
) -> tuple[dict[tuple[str, str], tuple[bool, date | None]], dict[str, dict[date, int]]]:
    """Each online service's state, and per unit how many offered services have each last
    day used."""
    services = {
        (u, p): (bool(o), d)
        for u, p, o, d in await _rows(
            session,
            "SELECT unit_code, procedure_code, offered, last_day FROM kpi_service "
            "WHERE offered OR last_day IS NOT NULL",  # (listed-only rows: the catalogue's)
        )
    }
    usage: dict[str, dict[date, int]] = defaultdict(dict)
    for u, d, n in await _rows(session, "SELECT unit_code, last_day, n FROM kpi_service_usage"):
        # '-infinity' arrives as date.min (asyncpg) or a string, depending on the codec
        usage[u][d if isinstance(d, date) else NEVER] = int(n)
    return services, dict(usage)


async def load_memory(
    session: AsyncSession,
    *,
    cursor: int,
    generation: int,
    moment: datetime,
    today: date,
    targets: Targets,
    margin: float,
) -> EngineMemory:
    """Build the memory from the aggregates (which must hold every folded round) and
    `kpi_current`, for the windows of `today`, in the caller's transaction."""
    # the grouping below sorts or hashes a year of responses (spilled at the default 4 MB)
    await session.execute(text("SET LOCAL work_mem = '64MB'"))
    tree = Tree(await closure_pairs(session))
    firsts = [window_days(w, today)[0].toordinal() for w in WINDOWS]
    counts = np.zeros((len(tree.units), len(WINDOWS), len(COUNT_COLUMNS)), dtype=np.int64)
    for (unit, window), values in (
        await window_counts(session, tree.units, WINDOWS, today)
    ).items():
        counts[tree.index[unit], WINDOWS.index(window)] = [values[c] for c in COUNT_COLUMNS]
    resp, resp_hist = await _responses(session, today, firsts, tree.ancestors)
    overdue, heap = await _open_dues(session, moment)
    services, usage = await _services(session)
    memory = EngineMemory(
        cursor=cursor,
        generation=generation,
        moment=moment,
        today=today,
        units=tree.units,
        index=tree.index,
        ancestors=tree.ancestors,
        descendants=tree.descendants,
        counts=counts,
        firsts=firsts,
        resp=resp,
        resp_hist=resp_hist,
        overdue=overdue,
        due_heap=heap,
        services=services,
        usage=usage,
        targets=targets,
        margin=margin,
    )
    memory.set_emitted(await current_of(session), targets)
    return memory
