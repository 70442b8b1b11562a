"""The exact median of response times: one routine for every path that needs one.

The values are held as sorted lists (one per filing unit and window); a median is asked of
the union of some of them (a unit's subtree). `median` gives `percentile_cont(0.5)` of that
union to the last bit: the two middle values a <= b give a + (b - a) * 0.5 (a = b for an odd
count), as PostgreSQL computes it.

Each middle value is selected by `kth` among sorted slices, in place: nothing is copied or
merged. When the caller keeps the union's histogram by hour (`HourBins`: the engine's memory
does), the slices are first narrowed to the hour holding the rank, so a province's median
looks at one hour of each commune's times instead of a year of them.
"""

from __future__ import annotations

import bisect
import itertools
import math
from collections.abc import Sequence

# Hour bins of response times: bin 0 below 0 h (responses stamped before reception), bin j
# for [j - 1, j) h up to 48 h, the last for 48 h and more. Defined by comparisons with these
# edges (not by dividing), so a bin's times are exactly one bisect range of a sorted list.
EDGES: list[float] = [3600.0 * h for h in range(49)]
BINS = len(EDGES) + 1
_BOUNDS = [-math.inf, *EDGES, math.inf]  # bin j holds [_BOUNDS[j], _BOUNDS[j + 1])

Slice = tuple[list[float], int, int]  # sorted values, and the range [lo, hi) of them meant


def bin_of(seconds: float) -> int:
    """The hour bin of one response time."""
    return bisect.bisect_right(EDGES, seconds)


def kth(slices: Sequence[Slice], rank: int) -> float:
    """The `rank`-th smallest (from 0) of the union of sorted slices `values[lo:hi]`.

    One slice is indexed directly. Otherwise each step splits every slice at the weighted
    median of the slices' middles (two bisections per slice), which puts at least a quarter
    of what is left on the wrong side of the rank; a pivot repeated across the rank (ties:
    times stamped by a machine) ends it at once; a few values left are sorted."""
    bounds = [(values, lo, hi) for values, lo, hi in slices if hi > lo]
    while True:
        if len(bounds) == 1:
            values, lo, _ = bounds[0]
            return values[lo + rank]
        total = sum(hi - lo for _, lo, hi in bounds)
        if total <= 2 * len(bounds) + 64:
            return sorted(x for values, lo, hi in bounds for x in values[lo:hi])[rank]
        middles = sorted((values[(lo + hi) // 2], hi - lo) for values, lo, hi in bounds)
        weights = list(itertools.accumulate(w for _, w in middles))
        pivot = middles[bisect.bisect_left(weights, (total + 1) // 2)][0]
        below = [bisect.bisect_left(values, pivot, lo, hi) for values, lo, hi in bounds]
        upto = [bisect.bisect_right(values, pivot, lo, hi) for values, lo, hi in bounds]
        n_below = sum(at - lo for at, (_, lo, _) in zip(below, bounds, strict=True))
        n_upto = sum(at - lo for at, (_, lo, _) in zip(upto, bounds, strict=True))
        if rank < n_below:
            bounds = [(v, lo, at) for (v, lo, _), at in zip(bounds, below, strict=True)]
        elif rank < n_upto:
            return pivot
        else:
            rank -= n_upto
            bounds = [(v, at, hi) for (v, _, hi), at in zip(bounds, upto, strict=True)]
        bounds = [b for b in bounds if b[2] > b[1]]


def _in_hour(
    lists: Sequence[list[float]], running: list[int], rank: int
) -> tuple[list[Slice], int]:
    """The slices of `lists` inside the hour bin holding `rank` (`running`: the union's
    counts before each hour bin, and the total last), and the rank inside that bin."""
    b = bisect.bisect_right(running, rank) - 1
    low, high = _BOUNDS[b], _BOUNDS[b + 1]
    slices = [(v, bisect.bisect_left(v, low), bisect.bisect_left(v, high)) for v in lists]
    return slices, rank - running[b]


def median(lists: Sequence[list[float]], hours: list[int] | None = None) -> tuple[float, int]:
    """`percentile_cont(0.5)` of the union of sorted `lists`, and how many values (0.0, 0
    when none). `hours`, when given, is the union's histogram by `bin_of`: with more than one
    list, each middle value is then selected inside its hour only."""
    n = sum(len(v) for v in lists)
    if n == 0:
        return 0.0, 0
    running = [0, *itertools.accumulate(hours)] if hours is not None and len(lists) > 1 else []
    picked: dict[int, float] = {}
    for rank in {(n - 1) // 2, n // 2}:  # one rank for an odd count
        if running:
            picked[rank] = kth(*_in_hour(lists, running, rank))
        else:
            picked[rank] = kth([(v, 0, len(v)) for v in lists], rank)
    a, b = picked[(n - 1) // 2], picked[n // 2]
    return a + (b - a) * 0.5, n
