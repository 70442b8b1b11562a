"""The engine's working copy of the current windows, in memory.

A round must turn a committed ingest batch into its KPI events within 100 ms (issue #4). The
aggregates in PostgreSQL answer any day and window, but reading them back for 123 units x
5 windows costs hundreds of milliseconds per round (exact medians above all). So the engine
keeps, for the windows of its current local day only, what the values are made of:

- `counts`: the additive counters per (unit, window), already rolled up to every ancestor, as
  one int64 array (a fact moves every window of today that holds its day);
- `resp` / `resp_hist`: per window and *filing* unit, the response times of the reports
  received in the window as a sorted list; per window and unit (rolled up), their histogram
  by hour, so a subtree's exact median selects only among the middle hour's times;
- `overdue`: the count of open records already past due per (unit, feed), and a heap of the
  open records' future due moments (per unit), moved forward with the clock;
- `services`: each online service's state and, per unit, how many offered services have each
  last-used day;
- `emitted`: what was last emitted per (unit, window, kpi), as arrays, to tell what changed;
  a round computes and judges the affected units' values as arrays too (`judge`).

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
import itertools
import math
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
from ioc.kpis.catalogue import CATALOGUE, window_days
from ioc.kpis.compute import FEEDS, Raw, window_counts
from ioc.kpis.service import Change, Judged, Targets, current_of
from ioc.localtime import WINDOWS

_COL = {c: i for i, c in enumerate(COUNT_COLUMNS)}
_NCOLS = len(COUNT_COLUMNS)
# "Never used" in `kpi_service_usage` ('-infinity'): before every window.
_NEVER = date.min
_EMPTY_SECS: npt.NDArray[np.float64] = np.zeros(0, dtype=np.float64)


# Above this many values `_median_of` (a subtree whose units have several parents) counts per
# 1-hour bucket before selecting.
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


# Above this many times in a subtree's middle hour, the median is selected among the filing
# units' sorted slices in place (`_kth`) rather than copied out and partitioned.
_GATHERED = 20_000


def _kth(slices: list[tuple[list[float], int, int]], rank: int) -> float:
    """The `rank`-th smallest (from 0) of the union of sorted slices `secs[lo:hi]`.

    Each step splits every slice at the weighted median of the slices' middles, which puts
    at least a quarter of what is left on the wrong side of the rank: ~10 steps of two
    bisections per slice instead of copying tens of thousands of times."""
    bounds = [(secs, lo, hi) for secs, lo, hi in slices if hi > lo]
    while True:
        total = sum(hi - lo for _, lo, hi in bounds)
        if total <= 2 * len(bounds) + 64:
            rest = sorted(x for secs, lo, hi in bounds for x in secs[lo:hi])
            return rest[rank]
        middles = sorted((secs[(lo + hi) // 2], hi - lo) for secs, lo, hi in bounds)
        weights = list(itertools.accumulate(w for _, w in middles))
        pivot = middles[bisect.bisect_left(weights, (total + 1) // 2)][0]
        below = [bisect.bisect_left(secs, pivot, lo, hi) for secs, lo, hi in bounds]
        upto = [bisect.bisect_right(secs, pivot, lo, hi) for secs, lo, hi in bounds]
        n_below = sum(at - lo for at, (_, lo, _) in zip(below, bounds, strict=True))
        n_upto = sum(at - lo for at, (_, lo, _) in zip(upto, bounds, strict=True))
        if rank < n_below:
            bounds = [(s, lo, at) for (s, lo, _), at in zip(bounds, below, strict=True)]
        elif rank < n_upto:
            return pivot
        else:
            rank -= n_upto
            bounds = [(s, at, hi) for (s, _, hi), at in zip(bounds, upto, strict=True)]
        bounds = [b for b in bounds if b[2] > b[1]]


def _secs(responses: dict[str, Responses], unit: str) -> list[float]:
    r = responses.get(unit)
    return r.secs if r is not None else []


def horizon_of(today: date) -> date:
    """The first local day any window of `today` can include (7d reaches back into the old
    year during the first days of January)."""
    return min(today.replace(month=1, day=1), today - timedelta(days=6))


# Hour bins of response times for the medians of larger subtrees: bin 0 below 0 h (responses
# stamped before reception), bin j for [j - 1, j) h up to 48 h, the last for 48 h and more.
# Defined by comparisons with these edges (not by dividing), so a bin's times are exactly one
# bisect range of a sorted list.
_EDGES = [3600.0 * h for h in range(49)]
_BINS = len(_EDGES) + 1


def _bin(seconds: float) -> int:
    return bisect.bisect_right(_EDGES, seconds)


_EDGE_ARRAY = np.array(_EDGES)


@dataclass
class Responses:
    """The response times of one filing unit's reports received in one window, sorted (a
    multiset: which report a time belongs to does not matter to a median). A plain list: a
    round puts a few times in each of ~500 of them, one C-level insertion each."""

    secs: list[float] = field(default_factory=list)

    def move(self, removed: list[float], added: list[float]) -> None:
        for value in removed:  # rare: a response time corrected, a report moved
            at = bisect.bisect_left(self.secs, value)
            if at < len(self.secs) and self.secs[at] == value:
                del self.secs[at]
        for value in added:
            bisect.insort(self.secs, value)


@dataclass
class Facts:
    """One round's changes, as the engine folds them into memory."""

    # (filing unit, day ordinal) -> signed counter deltas (COUNT_COLUMNS order); documents
    # come already at each distinct ancestor (`at_ancestors`).
    counts: dict[tuple[str, int], list[int]] = field(default_factory=dict)
    doc_counts: dict[tuple[str, int], list[int]] = field(default_factory=dict)
    # (unit, feed, due moment, +-1); `ancestors` says whether it still fans out
    opens: list[tuple[str, str, datetime, int, bool]] = field(default_factory=list)
    # filing unit -> response times taken out / put in, as (day ordinal, seconds)
    removed: dict[str, list[tuple[int, float]]] = field(default_factory=lambda: defaultdict(list))
    added: dict[str, list[tuple[int, float]]] = field(default_factory=lambda: defaultdict(list))
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
            facts.removed[before[0]].append((before[1].toordinal(), float(before[2])))
            facts.median_units.add(before[0])
        if after is not None and new is not None:
            facts.added[after[0]].append((after[1].toordinal(), float(after[2])))
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
    units: list[str]
    index: dict[str, int]
    ancestors: dict[str, list[str]]
    descendants: dict[str, list[str]]
    # the units in tree pre-order, and each unit's subtree as a range of it (when contiguous)
    order: list[str]
    spans: dict[str, tuple[int, int]]
    counts: npt.NDArray[np.int64]  # [unit, window (WINDOWS order), column]
    firsts: list[int]  # each window's first day (ordinal), WINDOWS order
    resp: list[dict[str, Responses]]  # per window (WINDOWS order), per filing unit
    resp_hist: list[dict[str, list[int]]]  # per window, per unit (its subtree): hour bins
    overdue: dict[tuple[str, str], int]
    due_heap: list[tuple[datetime, str, str, int]]
    services: dict[tuple[str, str], tuple[bool, date | None]]
    usage: dict[str, dict[date, int]]
    targets: Targets
    margin: float
    # what was last emitted: value, numerator, denominator, target [unit, window, kpi] (NaN
    # = null) and the status codes (index of `_STATUSES`, -1 = nothing emitted yet)
    emitted: tuple[npt.NDArray[np.float64], ...] = field(default_factory=tuple)
    emitted_status: npt.NDArray[np.int8] = field(default_factory=lambda: np.zeros(0, np.int8))
    target_array: npt.NDArray[np.float64] = field(default_factory=lambda: _EMPTY_SECS)
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
            removed, added = facts.removed.get(unit, []), facts.added.get(unit, [])
            for w, first in enumerate(self.firsts):
                out = [v for d, v in removed if first <= d <= hi]
                into = [v for d, v in added if first <= d <= hi]
                if not (out or into):
                    continue
                self.resp[w].setdefault(unit, Responses()).move(out, into)
                for a in self.ancestors.get(unit, ()):
                    histogram = self.resp_hist[w].setdefault(a, [0] * _BINS)
                    for v in out:
                        histogram[_bin(v)] -= 1
                    for v in into:
                        histogram[_bin(v)] += 1
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

    def values(
        self, units: list[str]
    ) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64], npt.NDArray[np.float64]]:
        """Value, numerator and denominator of every KPI (CATALOGUE order) for every window
        of `units` (known units only): arrays [unit, window, kpi], NaN for null. Computed the
        way `compute.raw_values` does (int counts to float, then one IEEE division), so equal
        to the bit."""
        m = len(units)
        counts = self.counts[[self.index[u] for u in units]].astype(np.float64)  # [m, 5, 11]
        c = {name: counts[:, :, i] for i, name in enumerate(COUNT_COLUMNS)}
        overdue = np.array(
            [[self.overdue.get((u, f), 0) for f in FEEDS] for u in units], dtype=np.float64
        ).reshape(m, len(FEEDS))
        today = self.today.toordinal()
        used = np.zeros((m, len(WINDOWS)))
        offered = np.zeros((m, 1))
        secs = np.zeros((m, len(WINDOWS)))
        responses = np.zeros((m, len(WINDOWS)))
        for r, u in enumerate(units):
            days, running = self._usage_index(u)
            offered[r, 0] = running[-1]
            for w, first in enumerate(self.firsts):
                used[r, w] = (
                    running[bisect.bisect_right(days, today)]
                    - running[bisect.bisect_left(days, first)]
                )
        for w in range(len(WINDOWS)):
            for r, (median, n) in enumerate(self._medians(units, w).values()):
                secs[r, w], responses[r, w] = median, n
        shape = (m, len(WINDOWS), len(_KPI_IDS))
        value, numerator, denominator = (
            np.full(shape, np.nan),
            np.full(shape, np.nan),
            np.full(shape, np.nan),
        )

        def count(k: str, n: npt.NDArray[np.float64]) -> None:
            i = _KPI_INDEX[k]
            value[:, :, i] = numerator[:, :, i] = n

        def rate(k: str, num: npt.NDArray[np.float64], den: npt.NDArray[np.float64]) -> None:
            i = _KPI_INDEX[k]
            numerator[:, :, i] = num
            denominator[:, :, i] = den
            with np.errstate(divide="ignore", invalid="ignore"):
                value[:, :, i] = np.where(den != 0, num / den, np.nan)

        window = (m, len(WINDOWS))
        count("dossier_received", c["d_received"])
        rate("dossier_online_rate", c["d_online"], c["d_received"])
        rate("dossier_ontime_rate", c["d_ontime"], c["d_finished"])
        count("dossier_overdue_open", np.broadcast_to(overdue[:, [0]], window))
        rate("dossier_digitized_rate", c["d_digitized"], c["d_received"])
        rate("dossier_online_payment_rate", c["d_paid"], c["d_online"])
        rate("online_service_usage_rate", used, np.broadcast_to(offered, window))
        count("report_received", c["r_received"])
        rate("report_ontime_rate", c["r_ontime"], c["r_resolved"])
        count("report_overdue_open", np.broadcast_to(overdue[:, [1]], window))
        i = _KPI_INDEX["report_response_p50_hours"]
        value[:, :, i] = np.where(responses > 0, secs / 3600.0, np.nan)
        denominator[:, :, i] = responses
        rate("document_electronic_rate", c["doc_electronic"], c["doc_sent"])
        count("document_overdue_open", np.broadcast_to(overdue[:, [2]], window))
        return value, numerator, denominator

    def raws(self, units: Iterable[str]) -> dict[tuple[str, str], dict[str, Raw]]:
        """Values before targets for every (unit, window) of `units` (as `compute.compute`
        gives them; for tests and tools)."""
        known = [u for u in units if u in self.index]
        if not known:
            return {}
        value, numerator, denominator = (_nulls(a) for a in self.values(known))
        return {
            (u, w): {
                k: Raw(value[r][wi][ki], numerator[r][wi][ki], denominator[r][wi][ki])
                for ki, k in enumerate(_KPI_IDS)
            }
            for r, u in enumerate(known)
            for wi, w in enumerate(WINDOWS)
        }

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

    def _medians(self, units: list[str], window: int) -> dict[str, tuple[float, int]]:
        """Exact medians of the response times in a window per unit's subtree.

        A unit that is one filing unit reads its middle value(s) from its sorted times. For a
        larger subtree (contiguous in the tree pre-order `order`), the subtree's hour
        histogram gives the bin(s) of the middle rank(s); each filing unit's times in that bin
        are one slice of its sorted times, and only they are selected from."""
        responses = self.resp[window]
        histograms = self.resp_hist[window]
        out: dict[str, tuple[float, int]] = {}
        for u in units:
            span = self.spans.get(u)
            if span is None:  # a unit whose subtree is not contiguous (several parents)
                every = [x for f in self.descendants.get(u, ()) for x in _secs(responses, f)]
                out[u] = _median_of(np.array(every, dtype=np.float64))
                continue
            start, end = span
            if end - start == 1:
                secs = _secs(responses, u)
                n = len(secs)
                if n == 0:
                    out[u] = (0.0, 0)
                    continue
                a, b = secs[(n - 1) // 2], secs[n // 2]
                out[u] = (a + (b - a) * 0.5, n)
                continue
            hist = histograms.get(u)
            n = sum(hist) if hist else 0
            if not hist or n == 0:
                out[u] = (0.0, 0)
                continue
            running = list(itertools.accumulate(hist))
            ranks = sorted({(n - 1) // 2, n // 2})
            bin_of = {k: bisect.bisect_right(running, k) for k in ranks}
            picked: dict[int, float] = {}
            for b in sorted(set(bin_of.values())):
                before = running[b - 1] if b else 0
                low = _EDGES[b - 1] if b else -math.inf
                high = _EDGES[b] if b < len(_EDGES) else math.inf
                slices = []
                for f in self.order[start:end]:
                    secs = _secs(responses, f)
                    if secs:
                        lo, hi = bisect.bisect_left(secs, low), bisect.bisect_left(secs, high)
                        if hi > lo:
                            slices.append((secs, lo, hi))
                at = [k - before for k in ranks if bin_of[k] == b]
                smallest = min(secs[lo] for secs, lo, _ in slices)
                if smallest == max(secs[hi - 1] for secs, _, hi in slices):
                    # one value throughout the hour (ties: times stamped by a machine)
                    picked.update({k: smallest for k in ranks if bin_of[k] == b})
                    continue
                if hist[b] > _GATHERED:
                    picked.update({k: _kth(slices, k - before) for k in ranks if bin_of[k] == b})
                    continue
                gathered: list[float] = []
                for secs, lo, hi in slices:
                    gathered += secs[lo:hi]
                selected = np.partition(np.array(gathered, dtype=np.float64), at)
                picked.update({k: float(selected[k - before]) for k in ranks if bin_of[k] == b})
            a_val, b_val = picked[(n - 1) // 2], picked[n // 2]
            # percentile_cont(0.5): a + (b - a) * 0.5, to the last bit
            out[u] = (a_val + (b_val - a_val) * 0.5, n)
        return out

    def judge(
        self, units: Iterable[str]
    ) -> tuple[list[Change], dict[tuple[str, str], list[Judged]]]:
        """Compute, judge (targets, statuses, as `catalogue.status_of` does) and compare with
        what was last emitted, for every window of `units`; remember the new values as
        emitted. Returns the changed values, and the whole row of every (unit, window) with a
        change (what `kpi_current` stores)."""
        known = [u for u in units if u in self.index]
        if not known:
            return [], {}
        rows = [self.index[u] for u in known]
        value, numerator, denominator = self.values(known)
        target = np.broadcast_to(self.target_array[rows][:, None, :], value.shape)
        status = _statuses(value, target, self.margin)
        same = (
            _same(value, self.emitted[0][rows])
            & _same(numerator, self.emitted[1][rows])
            & _same(denominator, self.emitted[2][rows])
            & _same(target, self.emitted[3][rows])
            & (status == self.emitted_status[rows])
        )
        for i, a in enumerate((value, numerator, denominator, target)):
            self.emitted[i][rows] = a
        self.emitted_status[rows] = status
        differs = ~same
        rs, ws = np.nonzero(differs.any(axis=2))
        if not len(rs):
            return [], {}
        # the whole rows of the changed (unit, window) pairs, as Python values
        v, n, d, t = (_nulls(a[rs, ws]) for a in (value, numerator, denominator, target))
        names = _STATUS_NAMES[status[rs, ws]].tolist()
        flags = differs[rs, ws].tolist()
        full: dict[tuple[str, str], list[Judged]] = {}
        changes: list[Change] = []
        for p, (r, w) in enumerate(zip(rs.tolist(), ws.tolist(), strict=True)):
            unit, window = known[r], WINDOWS[w]
            row = list(zip(_KPI_IDS, v[p], n[p], d[p], t[p], names[p], strict=True))
            full[(unit, window)] = row
            changes.extend((unit, window, j) for j, f in zip(row, flags[p], strict=True) if f)
        return changes, full

    def emitted_values(self) -> dict[tuple[str, str, str], Judged]:
        """What was last emitted, per (unit, window, kpi) (as `service.current_of` reads it)."""
        out: dict[tuple[str, str, str], Judged] = {}
        v, n, d, t = (_nulls(a) for a in self.emitted)
        st = self.emitted_status.tolist()
        for r, u in enumerate(self.units):
            for wi, w in enumerate(WINDOWS):
                for ki, k in enumerate(_KPI_IDS):
                    if st[r][wi][ki] >= 0:
                        out[(u, w, k)] = (
                            k,
                            v[r][wi][ki],
                            n[r][wi][ki],
                            d[r][wi][ki],
                            t[r][wi][ki],
                            _STATUSES[st[r][wi][ki]],
                        )
        return out

    def set_emitted(self, current: dict[tuple[str, str, str], Judged], targets: Targets) -> None:
        """Take targets and what was last emitted (at load; after a target change)."""
        self.targets = targets
        shape = (len(self.units), len(WINDOWS), len(_KPI_IDS))
        self.emitted = tuple(np.full(shape, np.nan) for _ in range(4))
        self.emitted_status = np.full(shape, -1, dtype=np.int8)
        for (u, w, k), j in current.items():
            if u in self.index and w in WINDOWS and k in _KPI_INDEX:
                at = (self.index[u], WINDOWS.index(w), _KPI_INDEX[k])
                for i in range(4):
                    self.emitted[i][at] = np.nan if j[1 + i] is None else j[1 + i]
                self.emitted_status[at] = _STATUSES.index(j[5]) if j[5] in _STATUSES else -1
        self.target_array = np.array(
            [
                [np.nan if (t := targets[(u, k)][0]) is None else t for k in _KPI_IDS]
                for u in self.units
            ],
            dtype=np.float64,
        ).reshape(len(self.units), len(_KPI_IDS))


_KPI_IDS = list(CATALOGUE)
_KPI_INDEX = {k: i for i, k in enumerate(_KPI_IDS)}
_STATUSES = ("ok", "warn", "bad", "no_data")
_STATUS_NAMES = np.array(_STATUSES, dtype=object)
_HIGHER = np.array([CATALOGUE[k].direction == "higher" for k in _KPI_IDS])
# the best possible value, never `warn` (`status_of`): a rate of 1 when higher is better, 0
# when lower is better; NaN (no such value) otherwise
_BEST = np.array(
    [
        (1.0 if CATALOGUE[k].unit == "ratio" else np.nan)
        if CATALOGUE[k].direction == "higher"
        else 0.0
        for k in _KPI_IDS
    ]
)


def _statuses(
    value: npt.NDArray[np.float64], target: npt.NDArray[np.float64], margin: float
) -> npt.NDArray[np.int8]:
    """`catalogue.status_of` over arrays (codes index `_STATUSES`), with the same float
    operations so the same edge cases fall the same way."""
    with np.errstate(invalid="ignore"):
        band = np.where(target != 0, margin * np.abs(target), margin)
        bad = np.where(_HIGHER, value < target, value > target)
        near = np.where(_HIGHER, value < target + band, value > target - band)
        warn = near & ~(value == _BEST)
    status = np.where(bad, 2, np.where(warn, 1, 0))
    status = np.where(np.isnan(target), 0, status)
    return np.where(np.isnan(value), 3, status).astype(np.int8)


def _same(a: npt.NDArray[np.float64], b: npt.NDArray[np.float64]) -> npt.NDArray[np.bool_]:
    same: npt.NDArray[np.bool_] = (a == b) | (np.isnan(a) & np.isnan(b))
    return same


def _nulls(a: npt.NDArray[np.float64]) -> Any:
    """As Python values (nested lists), NaN as None."""
    return np.where(np.isnan(a), np.array(None), a).tolist()


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
    resp: list[dict[str, Responses]] = [{} for _ in WINDOWS]
    bins: list[dict[str, list[int]]] = [{} for _ in WINDOWS]
    for unit, offsets, seconds in await _rows(
        session,
        """
        SELECT unit_code, array_agg(recv_day - CAST(:h AS date)), array_agg(resp_seconds)
        FROM kpi_report_proj
        WHERE resp_seconds IS NOT NULL AND recv_day BETWEEN :h AND :t
        GROUP BY unit_code
        """,
        h=horizon,
        t=today,
    ):
        # (the aggregates of one group see its rows in one order)
        received = np.array(offsets, dtype=np.int32) + np.int32(horizon.toordinal())
        times = np.array(seconds, dtype=np.float64)
        by_time = np.argsort(times, kind="stable")
        received, times = received[by_time], times[by_time]
        for w, first in enumerate(firsts):
            inside = times[received >= first]
            if len(inside):
                resp[w][unit] = Responses(inside.tolist())
                bins[w][unit] = np.bincount(
                    np.searchsorted(_EDGE_ARRAY, inside, side="right"), minlength=_BINS
                ).tolist()
        await asyncio.sleep(0)
    resp_hist: list[dict[str, list[int]]] = [{} for _ in WINDOWS]
    for w in range(len(WINDOWS)):
        for unit, histogram in bins[w].items():
            for a in ancestors.get(unit, ()):
                rolled = resp_hist[w].setdefault(a, [0] * _BINS)
                for i, count in enumerate(histogram):
                    rolled[i] += count
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
    memory = EngineMemory(
        cursor=cursor,
        generation=generation,
        moment=moment,
        today=today,
        units=units,
        index=index,
        ancestors=dict(ancestors),
        descendants=dict(descendants),
        order=order,
        spans=spans,
        counts=counts,
        firsts=firsts,
        resp=resp,
        resp_hist=resp_hist,
        overdue=overdue,
        due_heap=heap,
        services=services,
        usage=dict(usage),
        targets=targets,
        margin=margin,
    )
    memory.set_emitted(current, targets)
    return memory
