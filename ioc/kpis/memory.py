"""The engine's working copy of the current windows, in memory.

A round must turn a committed ingest batch into its KPI events within 100 ms (issue #4). The
aggregates in PostgreSQL answer any day and window, but reading them back for 123 units x
5 windows costs hundreds of milliseconds per round (exact medians above all). So the engine
keeps, for the windows of its current local day only, what the values are made of:

- `counts`: the additive counters per (unit, window), already rolled up to every ancestor, as
  one int64 array (a fact moves every window of today that holds its day);
- `resp` / `resp_hist`: per window and *filing* unit, the response times of the reports
  received in the window as a sorted list; per window and unit (rolled up), their histogram
  by hour, so a subtree's exact median (`median.median`) selects only inside the middle hour;
- `overdue`: the count of open records already past due per (unit, feed), and a heap of the
  open records' future due moments (per unit), moved forward with the clock;
- `services`: each online service's state and, per unit, how many offered services have each
  last-used day;
- `emitted`: what was last emitted per (unit, window, kpi), as arrays, to tell what changed;
  a round computes (`values.kpi_values`) and judges the affected units' values as arrays.

It is loaded from the aggregates (`load.load_memory`) and moved by the same old/new
contributions that the fold later writes there (`fold`), so after each round it equals a fresh
load: the property test checks that, and that the values equal a recomputation from the
aggregates. It is only a cache: the engine reloads it when the state it describes is not the
database's (another replica ran rounds, `ioc kpis rebuild`, a target changed, a new local
day, the clock went back).
"""

from __future__ import annotations

import bisect
import functools
import heapq
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime

import numpy as np
import numpy.typing as npt

from ioc.kpis.contributions import COUNT_COLUMNS, OPEN_FEEDS
from ioc.kpis.facts import Facts
from ioc.kpis.median import BINS, bin_of, median
from ioc.kpis.targets import Targets
from ioc.kpis.values import (
    KPI_IDS,
    KPI_INDEX,
    OVERDUE_TERMS,
    STATUSES,
    Change,
    Floats,
    Judged,
    Raw,
    kpi_values,
    nulls,
    statuses,
)
from ioc.localtime import WINDOWS

# "Never used" in `kpi_service_usage` ('-infinity'): before every window.
NEVER = date.min
_NO_FLOATS: Floats = np.zeros(0, dtype=np.float64)
_STATUS_NAMES = np.array(STATUSES, dtype=object)
# Named tuples built from plain ones at C speed (a round builds ~8,000 of them; the named
# tuples' own constructors are Python functions)
_judged = functools.partial(tuple.__new__, Judged)
_change = functools.partial(tuple.__new__, Change)


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
class EngineMemory:
    """See the module docstring. Built by `load.load_memory`; moved by `fold`; read by
    `judge`."""

    # What this copy describes: the engine's cursor, clock and generation it was built at.
    cursor: int
    generation: int
    moment: datetime
    today: date
    units: list[str]
    index: dict[str, int]
    ancestors: dict[str, list[str]]
    descendants: dict[str, list[str]]
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
    # = null) and the status codes (index of `STATUSES`, -1 = nothing emitted yet)
    emitted: tuple[Floats, ...] = field(default_factory=tuple)
    emitted_status: npt.NDArray[np.int8] = field(default_factory=lambda: np.zeros(0, np.int8))
    target_array: Floats = field(default_factory=lambda: _NO_FLOATS)
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
        self._fold_counts(facts)
        for unit in facts.units:
            touched.update(self.ancestors.get(unit, ()))
        self._fold_opens(facts, moment, touched)
        self._fold_responses(facts)
        self._fold_services(facts, offered, service_days, touched)
        self.moment = moment
        return touched

    def _fold_counts(self, facts: Facts) -> None:
        """Add each (unit, day)'s counter deltas to every window of today holding the day, at
        every ancestor (documents' counts come at their ancestors already)."""
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

    def _fold_opens(self, facts: Facts, moment: datetime, touched: set[str]) -> None:
        """Open facts due before `moment` move the overdue counts, later ones go on the heap;
        then the heap's entries the clock passed move the counts."""
        opens: dict[tuple[str, str, datetime], int] = defaultdict(int)
        for fact in facts.opens:
            for a in self.ancestors.get(fact.unit, ()) if fact.fan_out else (fact.unit,):
                opens[(a, fact.feed, fact.due)] += fact.n
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

    def _fold_responses(self, facts: Facts) -> None:
        """Move each window's sorted response times (filing unit) and hour bins (ancestors)."""
        hi = self.today.toordinal()
        for unit in facts.median_units:
            removed, added = facts.removed.get(unit, []), facts.added.get(unit, [])
            for w, first in enumerate(self.firsts):
                out = [v for d, v in removed if first <= d <= hi]
                into = [v for d, v in added if first <= d <= hi]
                if not (out or into):
                    continue
                self.resp[w].setdefault(unit, Responses()).move(out, into)
                for a in self.ancestors.get(unit, ()):
                    histogram = self.resp_hist[w].setdefault(a, [0] * BINS)
                    for v in out:
                        histogram[bin_of(v)] -= 1
                    for v in into:
                        histogram[bin_of(v)] += 1

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
            for a in self.ancestors.get(key[0], ()):
                self._move_usage(a, (was_offered, was_last), (now_offered, last))
                touched.add(a)
            if now_offered or last is not None:
                self.services[key] = (now_offered, last)
            else:
                self.services.pop(key, None)

    def _move_usage(
        self, unit: str, was: tuple[bool, date | None], now: tuple[bool, date | None]
    ) -> None:
        """A service under `unit` went from (offered, last day) `was` to `now`."""
        self._usage_cache.pop(unit, None)
        usage = self.usage.setdefault(unit, {})
        if was[0]:
            k = was[1] or NEVER
            usage[k] -= 1
            if not usage[k]:
                del usage[k]
        if now[0]:
            k = now[1] or NEVER
            usage[k] = usage.get(k, 0) + 1

    # --- values -----------------------------------------------------------------------------

    def terms(self, units: list[str]) -> dict[str, Floats]:
        """Every term of every window of `units` (known units only), as [unit, window]
        arrays (`values.TERMS`)."""
        m, shape = len(units), (len(units), len(WINDOWS))
        counts = self.counts[[self.index[u] for u in units]].astype(np.float64)
        terms = {name: counts[:, :, i] for i, name in enumerate(COUNT_COLUMNS)}
        for feed, term in zip(OPEN_FEEDS, OVERDUE_TERMS, strict=True):
            n = np.array([self.overdue.get((u, feed), 0) for u in units], np.float64)
            terms[term] = np.broadcast_to(n.reshape(m, 1), shape)
        used, offered = np.zeros(shape), np.zeros((m, 1))
        secs, responses = np.zeros(shape), np.zeros(shape)
        today = self.today.toordinal()
        for r, u in enumerate(units):
            days, running = self._usage_index(u)
            offered[r, 0] = running[-1]
            for w, first in enumerate(self.firsts):
                used[r, w] = (
                    running[bisect.bisect_right(days, today)]
                    - running[bisect.bisect_left(days, first)]
                )
                secs[r, w], responses[r, w] = median(*self._times(u, w))
        terms["services_used"] = used
        terms["services_offered"] = np.broadcast_to(offered, shape)
        terms["response_median_seconds"] = secs
        terms["responses"] = responses
        return terms

    def _times(self, unit: str, window: int) -> tuple[list[list[float]], list[int]]:
        """The sorted response times of `unit`'s subtree in a window, one list per filing
        unit, and their hour bins."""
        responses = self.resp[window]
        lists = [r.secs for f in self.descendants.get(unit, ()) if (r := responses.get(f))]
        return lists, self.resp_hist[window].get(unit, [])

    def raws(self, units: Iterable[str]) -> dict[tuple[str, str], dict[str, Raw]]:
        """Values before targets for every (unit, window) of `units` (as `compute.compute`
        gives them; for tests and tools)."""
        known = [u for u in units if u in self.index]
        if not known:
            return {}
        value, numerator, denominator = (nulls(a) for a in kpi_values(self.terms(known)))
        return {
            (u, w): {
                k: Raw(value[r][wi][ki], numerator[r][wi][ki], denominator[r][wi][ki])
                for ki, k in enumerate(KPI_IDS)
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

    # --- judging ----------------------------------------------------------------------------

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
        value, numerator, denominator = kpi_values(self.terms(known))
        target = np.broadcast_to(self.target_array[rows][:, None, :], value.shape)
        status = statuses(value, target, self.margin)
        new = (value, numerator, denominator, target)
        differs = ~np.logical_and.reduce(
            [_same(a, self.emitted[i][rows]) for i, a in enumerate(new)]
            + [status == self.emitted_status[rows]]
        )
        for i, a in enumerate(new):
            self.emitted[i][rows] = a
        self.emitted_status[rows] = status
        rs, ws = np.nonzero(differs.any(axis=2))
        if not len(rs):
            return [], {}
        # the whole rows of the changed (unit, window) pairs, as Python values
        v, n, d, t = (nulls(a[rs, ws]) for a in new)
        names = _STATUS_NAMES[status[rs, ws]].tolist()
        flags = differs[rs, ws].tolist()
        full: dict[tuple[str, str], list[Judged]] = {}
        changes: list[Change] = []
        for p, (r, w) in enumerate(zip(rs.tolist(), ws.tolist(), strict=True)):
            unit, window = known[r], WINDOWS[w]
            row = list(map(_judged, zip(KPI_IDS, v[p], n[p], d[p], t[p], names[p], strict=True)))
            full[(unit, window)] = row
            changes += [_change((unit, window, j)) for j, f in zip(row, flags[p], strict=True) if f]
        return changes, full

    def emitted_values(self) -> dict[tuple[str, str, str], Judged]:
        """What was last emitted, per (unit, window, kpi) (as `current.current_of` reads it)."""
        out: dict[tuple[str, str, str], Judged] = {}
        v, n, d, t = (nulls(a) for a in self.emitted)
        st = self.emitted_status.tolist()
        for r, u in enumerate(self.units):
            for wi, w in enumerate(WINDOWS):
                for ki, k in enumerate(KPI_IDS):
                    if st[r][wi][ki] >= 0:
                        out[(u, w, k)] = Judged(
                            k, v[r][wi][ki], n[r][wi][ki], d[r][wi][ki], t[r][wi][ki],
                            STATUSES[st[r][wi][ki]],
                        )  # fmt: skip
        return out

    def set_emitted(self, current: dict[tuple[str, str, str], Judged], targets: Targets) -> None:
        """Take targets and what was last emitted (at load; after a target change)."""
        self.targets = targets
        shape = (len(self.units), len(WINDOWS), len(KPI_IDS))
        self.emitted = tuple(np.full(shape, np.nan) for _ in range(4))
        self.emitted_status = np.full(shape, -1, dtype=np.int8)
        for (u, w, k), j in current.items():
            if u in self.index and w in WINDOWS and k in KPI_INDEX:
                at = (self.index[u], WINDOWS.index(w), KPI_INDEX[k])
                for i, x in enumerate((j.value, j.numerator, j.denominator, j.target)):
                    self.emitted[i][at] = np.nan if x is None else x
                self.emitted_status[at] = STATUSES.index(j.status) if j.status in STATUSES else -1
        self.target_array = np.array(
            [
                [np.nan if (t := targets[(u, k)][0]) is None else t for k in KPI_IDS]
                for u in self.units
            ],
            dtype=np.float64,
        ).reshape(len(self.units), len(KPI_IDS))


def _same(a: Floats, b: Floats) -> npt.NDArray[np.bool_]:
    same: npt.NDArray[np.bool_] = (a == b) | (np.isnan(a) & np.isnan(b))
    return same
