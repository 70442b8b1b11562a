"""The one median routine (`ioc.kpis.median`) against the definition (`percentile_cont(0.5)`:
the two middle values of the sorted union a <= b give a + (b - a) * 0.5), on sorted lists
with ties, empty lists and negative times, with and without the hour histogram. (The engine
reaches every branch on realistic data in `test_median_engine.py`.)"""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from ioc.kpis.median import BINS, bin_of, kth, median


def _definition(values: list[float]) -> float:
    ordered = sorted(values)
    n = len(ordered)
    a, b = ordered[(n - 1) // 2], ordered[n // 2]
    return a + (b - a) * 0.5


times = st.sampled_from([0.0, 1.5, 3600.0, 3600.0, 7199.9, -60.0, 200_000.0]) | st.floats(-1e3, 2e5)


@settings(max_examples=200, deadline=None)
@given(lists=st.lists(st.lists(times, max_size=300), min_size=1, max_size=12))
def test_median_equals_the_definition(lists: list[list[float]]) -> None:
    for values in lists:
        values.sort()
    union = [x for values in lists for x in values]
    hours = [0] * BINS
    for x in union:
        hours[bin_of(x)] += 1
    if not union:
        assert median(lists) == (0.0, 0) == median(lists, hours)
        return
    assert median(lists) == (_definition(union), len(union))
    assert median(lists, hours) == (_definition(union), len(union))


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), size=st.integers(1, 20_000), units=st.integers(1, 120))
def test_median_of_many_spread_times(seed: int, size: int, units: int) -> None:
    """Thousands of times spread over two days in up to 120 lists, as a province's are."""
    rng = np.random.default_rng(seed)
    values = np.round(rng.gamma(1.5, 4 * 3600.0, size), 0)
    lists = [sorted(part.tolist()) for part in np.array_split(values, units)]
    assert median(lists) == (_definition(values.tolist()), size)


@settings(max_examples=200, deadline=None)
@given(
    lists=st.lists(st.lists(times, max_size=400), min_size=1, max_size=12),
    data=st.data(),
)
def test_kth_of_sorted_slices(lists: list[list[float]], data: st.DataObject) -> None:
    """Selection among slices in place: the same value as sorting their union."""
    slices = []
    for values in lists:
        values.sort()
        lo = data.draw(st.integers(0, len(values)))
        hi = data.draw(st.integers(lo, len(values)))
        slices.append((values, lo, hi))
    union = sorted(x for values, lo, hi in slices for x in values[lo:hi])
    if not union:
        return
    rank = data.draw(st.integers(0, len(union) - 1))
    assert kth(slices, rank) == union[rank]
