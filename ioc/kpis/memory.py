"""The engine's working copy of the current windows, in memory.

A round must turn a committed ingest batch into its KPI events within 100 ms (issue #4). The
aggregates in PostgreSQL answer any day and window, but reading them back for 123 units x
5 windows costs hundreds of milliseconds per round (exact medians above all). So the engine
keeps, for the windows of its current local day only, what the values are made of:

- `counts`: the additive counters per (unit, window), already rolled up to every ancestor, as
  one int64 array (a fact moves every window of today that holds its day);
- `resp`: per *filing* unit, every report with a response received since `horizon`, sorted by
  day (numpy arrays of days, seconds, ids), for exact medians by selection;
- `overdue`: the count of open records already past due per (unit, feed), and a heap of the
  open records' future due moments (per unit), moved forward with the clock;
- `services`: each online service's state and, per unit, how many offered services have each
  last-used day;
- `current`: what was last emitted per (unit, window, kpi), to tell what changed.

It is loaded from the aggregates (`load`) and moved by the same old/new contributions that
the fold later writes there (`fold`), so after each round it equals a fresh load: the property
test checks that, and that the values equal a recomputation from raw records. It is only a
cache: the engine reloads it when the state it describes is not the database's (another
replica ran rounds, `ioc kpis rebuild`, a target changed, a new local day, the clock went
back).
"""

from __future__ import annotations

import asyncio
import bisect
import heapq
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from itertools import repeat
from typing import Any

import numpy as np
import numpy.typing as npt
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from ioc.kpis.aggregates import COUNT_COLUMNS
from ioc.kpis.catalogue import CATALOGUE, WINDOWS, status_of, window_days
from ioc.kpis.compute import Raw, raw_values, window_counts
from ioc.kpis.service import Change, Judged, Targets, current_of

_COL = {c: i for i, c in enumerate(COUNT_COLUMNS)}
_NCOLS = len(COUNT_COLUMNS)
_FEEDS = ("dossiers", "reports", "documents")
# "Never used" in `kpi_service_usage` ('-infinity'): before every window.
_NEVER = date.min
_EMPTY_DAYS: npt.NDArray[np.int32] = np.zeros(0, dtype=np.int32)
_EMPTY_SECS: npt.NDArray[np.float64] = np.zeros(0, dtype=np.float64)
_EMPTY_IDS: npt.NDArray[np.int64] = np.zeros(0, dtype=np.int64)


# Above this many values a median counts per 1-hour bucket before selecting.
_BUCKETED = 20_000


def _median_of(values: npt.NDArray[np.float64]) -> tuple[float, int]:
    """`percentile_cont(0.5)` of `values`, to the last bit: the two middle values a <= b give
    a + (b - a) * 0.5 (a = b for an odd count); and how many values."""
    n = len(values)
    if n == 0:
        return 0.0, 0
    k1, k2 = (n - 1) // 2, n // 2
    if n > _BUCKETED:
        buckets = np.floor(values / 3600.0).astype(np.int64)
        low = int(buckets.min())
        cumulative = np.cumsum(np.bincount(buckets - low))
        picked = []
        for k in (k1, k2):
            b = int(np.searchsorted(cumulative, k, side="right"))
            before = int(cumulative[b - 1]) if b else 0
            inside = values[buckets == b + low]
            picked.append(float(np.partition(inside, k - before)[k - before]))
        a_val, b_val = picked
    else:
        chosen = np.partition(values, (k1, k2)) if n > 2 else np.sort(values)
        a_val, b_val = float(chosen[k1]), float(chosen[k2])
    return a_val + (b_val - a_val) * 0.5, n


def horizon_of(today: date) -> date:
    """The first local day any window of `today` can include (7d reaches back into the old
    year during the first days of January)."""
    return min(today.replace(month=1, day=1), today - timedelta(days=6))


# 1-hour bins of response times for the medians of large subtrees: below 0 h (responses
# stamped before reception), each hour up to 48 h, then everything later.
_BINS = 50


def _bins(secs: npt.NDArray[np.float64]) -> npt.NDArray[np.int64]:
    return np.clip(np.floor(secs / 3600.0), -1, _BINS - 2).astype(np.int64) + 1


@dataclass
class Responses:
    """Reports with a response filed under one unit, sorted by response time (so a window's
    subset, picked by day, stays sorted), with their receiving days, ids and hour bins."""

    days: npt.NDArray[np.int32] = field(default_factory=lambda: _EMPTY_DAYS)
    secs: npt.NDArray[np.float64] = field(default_factory=lambda: _EMPTY_SECS)
    ids: npt.NDArray[np.int64] = field(default_factory=lambda: _EMPTY_IDS)
    bins: npt.NDArray[np.int64] = field(default_factory=lambda: _EMPTY_IDS)
    # the first and last receiving day, and the histogram of all bins: a window holding
    # every response (the year, most days) takes them as they are
    first: int = 0
    last: int = -1
    histogram: npt.NDArray[np.int64] = field(default_factory=lambda: np.zeros(_BINS, np.int64))

    @classmethod
    def of(
        cls,
        days: npt.NDArray[np.int32],
        secs: npt.NDArray[np.float64],
        ids: npt.NDArray[np.int64],
    ) -> Responses:
        if not len(secs):
            return cls()
        order = np.argsort(secs, kind="stable")
        bins = _bins(secs[order])
        return cls(
            days[order],
            secs[order],
            ids[order],
            bins,
            int(days.min()),
            int(days.max()),
            np.bincount(bins, minlength=_BINS),
        )

    def replace(self, removed: set[int], added: list[tuple[int, int, float]]) -> Responses:
        keep = ~np.isin(self.ids, np.fromiter(removed, dtype=np.int64)) if removed else None
        days, secs, ids = (
            (self.days[keep], self.secs[keep], self.ids[keep])
            if keep is not None
            else (self.days, self.secs, self.ids)
        )
        if added:
            days = np.concatenate([days, np.array([a[1] for a in added], dtype=np.int32)])
            secs = np.concatenate([secs, np.array([a[2] for a in added], dtype=np.float64)])
            ids = np.concatenate([ids, np.array([a[0] for a in added], dtype=np.int64)])
        return Responses.of(days, secs, ids)


@dataclass
class Facts:
    """One round's changes, as the engine folds them into memory."""

    # (filing unit, day ordinal) -> signed counter deltas (COUNT_COLUMNS order); documents
    # come already at each distinct ancestor (`at_ancestors`).
    counts: dict[tuple[str, int], list[int]] = field(default_factory=dict)
    doc_counts: dict[tuple[str, int], list[int]] = field(default_factory=dict)
    # (unit, feed, due moment, +-1); `ancestors` says whether it still fans out
    opens: list[tuple[str, str, datetime, int, bool]] = field(default_factory=list)
    # filing unit -> (removed report ids, added (id, day ordinal, seconds))
    removed: dict[str, set[int]] = field(default_factory=lambda: defaultdict(set))
    added: dict[str, list[tuple[int, int, float]]] = field(
        default_factory=lambda: defaultdict(list)
    )
    # (filing unit, procedure) -> {day: signed online dossiers}
    online: dict[tuple[str, str], dict[date, int]] = field(
        default_factory=lambda: defaultdict(lambda: defaultdict(int))
    )
    procedures: set[tuple[str, str]] = field(default_factory=set)
    units: set[str] = field(default_factory=set)  # filing units touched (values may move)
    median_units: set[str] = field(default_factory=set)

    def add_count(self, unit: str, day: date | None, column_values: dict[str, int]) -> None:
        if day is None:
            return
        key = (unit, day.toordinal())
        row = self.counts.get(key)
        if row is None:
            row = self.counts[key] = [0] * _NCOLS
        for column, v in column_values.items():
            row[_COL[column]] += v


def dossier_facts(facts: Facts, old: Sequence[Any] | None, new: Sequence[Any] | None) -> None:
    """Rows as in `kpi_dossier_proj`: (id, unit, procedure, recv_day, online, digitized, paid,
    fin_day, ontime, open_due)."""
    for row, s in ((old, -1), (new, 1)):
        if row is None:
            continue
        _, unit, procedure, recv_day, online, digitized, paid, fin_day, ontime, open_due = row
        facts.units.add(unit)
        facts.add_count(
            unit,
            recv_day,
            {
                "d_received": s,
                "d_online": s * online,
                "d_digitized": s * digitized,
                "d_paid": s * paid,
            },
        )
        facts.add_count(unit, fin_day, {"d_finished": s, "d_ontime": s * ontime})
        if open_due is not None:
            facts.opens.append((unit, "dossiers", open_due, s, True))
        if online:
            facts.online[(unit, procedure)][recv_day] += s


def report_facts(facts: Facts, old: Sequence[Any] | None, new: Sequence[Any] | None) -> None:
    """Rows as in `kpi_report_proj`: (id, unit, recv_day, resolved_day, ontime, resp_seconds,
    resp_bucket, open_due)."""
    for row, s in ((old, -1), (new, 1)):
        if row is None:
            continue
        _, unit, recv_day, resolved_day, ontime, _secs, _bucket, open_due = row
        facts.units.add(unit)
        facts.add_count(unit, recv_day, {"r_received": s})
        facts.add_count(unit, resolved_day, {"r_resolved": s, "r_ontime": s * ontime})
        if open_due is not None:
            facts.opens.append((unit, "reports", open_due, s, True))
    before = (old[1], old[2], old[5]) if old is not None and old[5] is not None else None
    after = (new[1], new[2], new[5]) if new is not None and new[5] is not None else None
    if before != after:
        if before is not None and old is not None:
            facts.removed[before[0]].add(int(old[0]))
            facts.median_units.add(before[0])
        if after is not None and new is not None:
            facts.added[after[0]].append((int(new[0]), after[1].toordinal(), float(after[2])))
            facts.median_units.add(after[0])


def document_facts(
    facts: Facts,
    old: Sequence[Any] | None,
    new: Sequence[Any] | None,
    ancestors: dict[str, list[str]],
) -> None:
    """Rows as in `kpi_document_proj`: (pk, units, open_units, sent_day, electronic, due_at);
    a document counts once at every distinct ancestor of the units involved."""
    for row, s in ((old, -1), (new, 1)):
        if row is None:
            continue
        _, units, open_units, sent_day, electronic, due_at = row
        facts.units.update(units)
        facts.units.update(open_units)
        for a in {a for u in units for a in ancestors.get(u, ())}:
            key = (a, sent_day.toordinal())
            acc = facts.doc_counts.get(key)
            if acc is None:
                acc = facts.doc_counts[key] = [0] * _NCOLS
            acc[_COL["doc_sent"]] += s
            acc[_COL["doc_electronic"]] += s * electronic
        if due_at is not None:
            for a in {a for u in open_units for a in ancestors.get(u, ())}:
                facts.opens.append((a, "documents", due_at, s, False))


@dataclass
class EngineMemory:
    """See the module docstring. Built by `load`; moved by `fold`; read by `values`."""

    # What this copy describes: the engine's cursor, clock and generation it was built at.
    cursor: int
    generation: int
    moment: datetime
    today: date
    horizon: date
    units: list[str]
    index: dict[str, int]
    ancestors: dict[str, list[str]]
    descendants: dict[str, list[str]]
    # the units in tree pre-order, and each unit's subtree as a range of it (when contiguous)
    order: list[str]
    spans: dict[str, tuple[int, int]]
    counts: npt.NDArray[np.int64]  # [unit, window (WINDOWS order), column]
    firsts: list[int]  # each window's first day (ordinal), WINDOWS order
    resp: dict[str, Responses]
    overdue: dict[tuple[str, str], int]
    due_heap: list[tuple[datetime, str, str, int]]
    services: dict[tuple[str, str], tuple[bool, date | None]]
    usage: dict[str, dict[date, int]]
    targets: Targets
    margin: float
    current: dict[tuple[str, str, str], Judged]
    _usage_cache: dict[str, tuple[list[int], list[int]]] = field(default_factory=dict)

    # --- folding ----------------------------------------------------------------------------

    def fold(
        self,
        facts: Facts,
        moment: datetime,
        offered: dict[tuple[str, str], bool],
        service_days: dict[tuple[str, str], dict[date, int]],
    ) -> set[str]:
        """Move the memory by one round's facts and the clock; return the units whose values
        may have moved (every ancestor of a touched filing unit, and units with records newly
        overdue). `offered` / `service_days`: for the services the round touched, whether
        they are offered now and their online dossiers per day before this round (read by the
        caller only for services whose last day may have gone back)."""
        touched: set[str] = set()
        hi = self.today.toordinal()
        moved: dict[tuple[int, int], list[int]] = {}
        for source, fan_out in ((facts.counts, True), (facts.doc_counts, False)):
            for (unit, day), deltas in source.items():
                if day > hi or not any(deltas):
                    continue
                windows = [i for i, first in enumerate(self.firsts) if first <= day]
                for a in self.ancestors.get(unit, ()) if fan_out else (unit,):
                    if a in self.index:
                        for w in windows:
                            acc = moved.get((self.index[a], w))
                            if acc is None:
                                moved[(self.index[a], w)] = list(deltas)
                            else:
                                for c, d in enumerate(deltas):
                                    acc[c] += d
        if moved:
            # one (unit, window) per row, so a plain fancy-indexed add is exact
            rows, windows_at = zip(*moved, strict=True)
            self.counts[list(rows), list(windows_at)] += np.array(list(moved.values()), np.int64)
        for unit in facts.units:
            touched.update(self.ancestors.get(unit, ()))
        opens: dict[tuple[str, str, datetime], int] = defaultdict(int)
        for unit, feed, due, n, fan_out in facts.opens:
            for a in self.ancestors.get(unit, ()) if fan_out else (unit,):
                opens[(a, feed, due)] += n
        for (a, feed, due), n in opens.items():
            if n:
                touched.add(a)
                if due < moment:
                    self.overdue[(a, feed)] = self.overdue.get((a, feed), 0) + n
                else:
                    heapq.heappush(self.due_heap, (due, a, feed, n))
        while self.due_heap and self.due_heap[0][0] < moment:
            _, a, feed, n = heapq.heappop(self.due_heap)
            self.overdue[(a, feed)] = self.overdue.get((a, feed), 0) + n
            touched.add(a)
        for unit in facts.median_units:
            added = [x for x in facts.added.get(unit, []) if x[1] >= self.horizon.toordinal()]
            self.resp[unit] = self.resp.get(unit, Responses()).replace(
                facts.removed.get(unit, set()), added
            )
        self._fold_services(facts, offered, service_days, touched)
        self.moment = moment
        return touched

    def _fold_services(
        self,
        facts: Facts,
        offered: dict[tuple[str, str], bool],
        service_days: dict[tuple[str, str], dict[date, int]],
        touched: set[str],
    ) -> None:
        for key in set(facts.online) | facts.procedures:
            was_offered, was_last = self.services.get(key, (False, None))
            now_offered = offered.get(key, False) if key in facts.procedures else was_offered
            deltas = {d: n for d, n in facts.online.get(key, {}).items() if n}
            last = was_last
            if any(n < 0 for n in deltas.values()):
                days = dict(service_days.get(key, {}))
                for d, n in deltas.items():
                    days[d] = days.get(d, 0) + n
                last = max((d for d, n in days.items() if n > 0), default=None)
            elif deltas:
                # only additions: a day with a positive delta has an online dossier now
                last = max([*deltas, *([was_last] if was_last is not None else [])])
            if (now_offered, last) == (was_offered, was_last):
                continue
            unit = key[0]
            for a in self.ancestors.get(unit, ()):
                self._usage_cache.pop(a, None)
                usage = self.usage.setdefault(a, {})
                if was_offered:
                    k = was_last or _NEVER
                    usage[k] -= 1
                    if not usage[k]:
                        del usage[k]
                if now_offered:
                    k = last or _NEVER
                    usage[k] = usage.get(k, 0) + 1
                touched.add(a)
            if now_offered or last is not None:
                self.services[key] = (now_offered, last)
            else:
                self.services.pop(key, None)

    # --- values -----------------------------------------------------------------------------

    def raws(self, units: Iterable[str]) -> dict[tuple[str, str], dict[str, Raw]]:
        """Values before targets for every (unit, window) of `units`."""
        units = [u for u in units if u in self.index]
        if not units:
            return {}
        sums = self.counts[[self.index[u] for u in units]].tolist()
        today = self.today.toordinal()
        usage = {u: self._usage_index(u) for u in units}
        out: dict[tuple[str, str], dict[str, Raw]] = {}
        for i, (w, first) in enumerate(zip(WINDOWS, self.firsts, strict=True)):
            medians = self._medians(units, first, today)
            for u, c in zip(units, sums, strict=True):
                days, running = usage[u]
                used = int(
                    running[bisect.bisect_right(days, today)]
                    - running[bisect.bisect_left(days, first)]
                )
                out[(u, w)] = raw_values(
                    dict(zip(COUNT_COLUMNS, c[i], strict=True)),
                    {f: self.overdue.get((u, f), 0) for f in _FEEDS},
                    (used, int(running[-1])),
                    medians[u],
                )
        return out

    def _usage_index(self, unit: str) -> tuple[list[int], list[int]]:
        """A unit's offered services by last-used day: the days (ordinals) in order and the
        running count before each (and the total last), cached until the usage moves."""
        cached = self._usage_cache.get(unit)
        if cached is None:
            pairs = sorted((d.toordinal(), n) for d, n in self.usage.get(unit, {}).items())
            running = [0]
            for _, n in pairs:
                running.append(running[-1] + n)
            cached = self._usage_cache[unit] = ([d for d, _ in pairs], running)
        return cached

    def _medians(self, units: list[str], first: int, last: int) -> dict[str, tuple[float, int]]:
        """Exact medians of the response times received in [first, last] per unit's subtree.

        Each filing unit's responses are sorted by time, so its window subset is too: a unit
        that is one filing unit reads its middle value(s) directly. For a larger subtree
        (contiguous in the tree pre-order `order`), per-filing-unit hour histograms summed
        over the subtree give the hour bin(s) of the middle rank(s); each filing unit's values
        in that bin are one slice of its sorted subset, and only they are selected from."""
        n_units = len(self.order)
        window: list[tuple[npt.NDArray[np.float64], npt.NDArray[np.int64]]] = [
            (_EMPTY_SECS, _EMPTY_IDS)
        ] * n_units
        histograms = np.zeros((n_units + 1, _BINS), dtype=np.int64)
        for i, f in enumerate(self.order):
            r = self.resp.get(f)
            if r is None or not len(r.secs) or r.last < first or r.first > last:
                continue
            if first <= r.first and r.last <= last:
                window[i] = (r.secs, r.bins)
                histograms[i + 1] = r.histogram
                continue
            inside = (r.days >= first) & (r.days <= last)
            secs, bins = r.secs[inside], r.bins[inside]
            if len(secs):
                window[i] = (secs, bins)
                histograms[i + 1] = np.bincount(bins, minlength=_BINS)
        cumulative = np.cumsum(histograms, axis=0)
        out: dict[str, tuple[float, int]] = {}
        for u in units:
            span = self.spans.get(u)
            if span is None:  # a unit whose subtree is not contiguous (several parents)
                parts = [
                    r.secs[(r.days >= first) & (r.days <= last)]
                    for f in self.descendants.get(u, ())
                    if (r := self.resp.get(f)) is not None
                ]
                out[u] = _median_of(np.concatenate(parts) if parts else _EMPTY_SECS)
                continue
            start, end = span
            if end - start == 1:
                values = window[start][0]
                n = len(values)
                if n == 0:
                    out[u] = (0.0, 0)
                    continue
                a, b = float(values[(n - 1) // 2]), float(values[n // 2])
                out[u] = (a + (b - a) * 0.5, n)
                continue
            hist = cumulative[end] - cumulative[start]
            n = int(hist.sum())
            if n == 0:
                out[u] = (0.0, 0)
                continue
            running = np.cumsum(hist)
            picked: dict[int, float] = {}
            ranks = sorted({(n - 1) // 2, n // 2})
            bin_of = {k: int(np.searchsorted(running, k, side="right")) for k in ranks}
            for b in sorted(set(bin_of.values())):
                before = int(running[b - 1]) if b else 0
                chunks = []
                for secs, bins in window[start:end]:
                    if len(secs):
                        lo, hi = np.searchsorted(bins, (b, b + 1))
                        if hi > lo:
                            chunks.append(secs[lo:hi])
                chosen = np.concatenate(chunks)
                at = [k - before for k in ranks if bin_of[k] == b]
                selected = np.partition(chosen, at)
                picked.update({k: float(selected[k - before]) for k in ranks if bin_of[k] == b})
            a_val, b_val = picked[(n - 1) // 2], picked[n // 2]
            # percentile_cont(0.5): a + (b - a) * 0.5, to the last bit
            out[u] = (a_val + (b_val - a_val) * 0.5, n)
        return out

    def judge(self, raws: dict[tuple[str, str], dict[str, Raw]]) -> list[Change]:
        """Judge against targets and return what differs from what was last emitted (and
        remember it as emitted)."""
        changed: list[Change] = []
        for (unit, window), values in raws.items():
            for kpi_id, raw in values.items():
                target = self.targets[(unit, kpi_id)][0]
                j: Judged = (
                    kpi_id,
                    raw.value,
                    raw.numerator,
                    raw.denominator,
                    target,
                    status_of(CATALOGUE[kpi_id], raw.value, target, self.margin),
                )
                key = (unit, window, kpi_id)
                if self.current.get(key) != j:
                    self.current[key] = j
                    changed.append((unit, window, j))
        return changed


# --- loading --------------------------------------------------------------------------------


async def _rows(session: AsyncSession, sql: str, **params: object) -> list[Any]:
    return list(await session.execute(text(sql), params))


async def load(
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
    horizon = horizon_of(today)
    # the grouping below sorts or hashes a year of responses (spilled at the default 4 MB)
    await session.execute(text("SET LOCAL work_mem = '64MB'"))
    closure = await _rows(
        session, "SELECT ancestor_code, descendant_code FROM unit_closure ORDER BY depth"
    )
    units = sorted({a for a, _ in closure} | {d for _, d in closure})
    index = {u: i for i, u in enumerate(units)}
    ancestors: dict[str, list[str]] = defaultdict(list)
    descendants: dict[str, list[str]] = defaultdict(list)
    for a, d in closure:
        ancestors[d].append(a)
        descendants[a].append(d)
    # pre-order: each unit right before its subtree (paths from the root sort that way)
    order = sorted(units, key=lambda u: tuple(reversed(ancestors[u])))
    position = {u: i for i, u in enumerate(order)}
    spans = {}
    for u in units:
        start, size = position[u], len(descendants[u])
        if {position[d] for d in descendants[u]} == set(range(start, start + size)):
            spans[u] = (start, start + size)
    # Responses are read as one array per unit and converted by numpy: a province's year is
    # ~350k responses, 1.5 s through row objects, ~0.2 s this way. The event loop (the API
    # shares it) gets a turn after every unit.
    firsts = [window_days(w, today)[0].toordinal() for w in WINDOWS]
    counts = np.zeros((len(units), len(WINDOWS), _NCOLS), dtype=np.int64)
    for (unit, window), values in (await window_counts(session, units, WINDOWS, today)).items():
        counts[index[unit], WINDOWS.index(window)] = [values[c] for c in COUNT_COLUMNS]
    resp: dict[str, Responses] = {}
    for unit, ids, offsets, secs in await _rows(
        session,
        """
        SELECT unit_code, array_agg(report_id), array_agg(recv_day - CAST(:h AS date)),
               array_agg(resp_seconds)
        FROM kpi_report_proj WHERE resp_seconds IS NOT NULL AND recv_day >= :h
        GROUP BY unit_code
        """,
        h=horizon,
    ):
        # (the aggregates of one group see its rows in one order)
        resp[unit] = Responses.of(
            np.array(offsets, dtype=np.int32) + np.int32(horizon.toordinal()),
            np.array(secs, dtype=np.float64),
            np.array(ids, dtype=np.int64),
        )
        await asyncio.sleep(0)
    overdue = {
        (u, f): int(n)
        for u, f, n in await _rows(
            session,
            "SELECT unit_code, feed, sum(n)::bigint FROM kpi_open WHERE due_at < :m GROUP BY 1, 2",
            m=moment,
        )
    }
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
    services = {
        (u, p): (bool(o), d)
        for u, p, o, d in await _rows(
            session, "SELECT unit_code, procedure_code, offered, last_day FROM kpi_service"
        )
    }
    usage: dict[str, dict[date, int]] = defaultdict(dict)
    for u, d, n in await _rows(session, "SELECT unit_code, last_day, n FROM kpi_service_usage"):
        # '-infinity' arrives as date.min (asyncpg) or a string, depending on the codec
        usage[u][d if isinstance(d, date) else _NEVER] = int(n)
    current = await current_of(session)
    return EngineMemory(
        cursor=cursor,
        generation=generation,
        moment=moment,
        today=today,
        horizon=horizon,
        units=units,
        index=index,
        ancestors=dict(ancestors),
        descendants=dict(descendants),
        order=order,
        spans=spans,
        counts=counts,
        firsts=firsts,
        resp=resp,
        overdue=overdue,
        due_heap=heap,
        services=services,
        usage=dict(usage),
        targets=targets,
        margin=margin,
        current=current,
    )
