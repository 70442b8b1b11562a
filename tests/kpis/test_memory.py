"""The engine's in-memory judging (`_statuses` against `status_of`) and exact median
(`ioc.kpis.memory._median_of`) against the definition
(`percentile_cont(0.5)`: the two middle values of the sorted list a <= b give a + (b - a) *
0.5), on both of its paths: direct selection and, for large runs, counting per 1-hour bucket
first. The property test (`test_property.py`) covers the engine end to end on small data."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from ioc.kpis.catalogue import CATALOGUE, status_of
from ioc.kpis.memory import _BUCKETED, _KPI_IDS, _STATUSES, _kth, _median_of, _statuses


def _definition(values: list[float]) -> float:
    ordered = sorted(values)
    n = len(ordered)
    a, b = ordered[(n - 1) // 2], ordered[n // 2]
    return a + (b - a) * 0.5


@settings(max_examples=60, deadline=None)
@given(
    size=st.integers(1, 3 * _BUCKETED),
    seed=st.integers(0, 2**32 - 1),
    spread_hours=st.sampled_from([0.001, 1, 48, 24 * 400]),
    ties=st.booleans(),
)
def test_median_of_equals_the_definition(
    size: int, seed: int, spread_hours: float, ties: bool
) -> None:
    rng = np.random.default_rng(seed)
    # responses before reception (bad source data) give negative times: buckets below 0
    values = (rng.random(size) - 0.1) * spread_hours * 3600.0
    if ties:
        values = np.round(values / 3600.0) * 3600.0  # many equal values, on bucket edges
    median, n = _median_of(values.copy())
    assert n == size
    assert median == _definition(values.tolist())


def test_median_of_nothing() -> None:
    assert _median_of(np.zeros(0)) == (0.0, 0)


edges = st.sampled_from([0.0, 1.0, 0.5, 0.95, 0.9025, 0.9975, 24.0, 25.2, 22.8, 2.0, 1e-9])
numbers = st.one_of(edges, st.floats(-10, 100, allow_nan=False))


@settings(max_examples=300, deadline=None)
@given(
    value=st.none() | numbers,
    target=st.none() | numbers,
    margin=st.sampled_from([0.05, 0.0, 0.1, 0.5]),
)
def test_statuses_equal_status_of(value: float | None, target: float | None, margin: float) -> None:
    """The engine judges arrays (`_statuses`); readers judge one value (`status_of`): the
    same for every KPI, on band edges, best values and zero targets too."""
    n = len(_KPI_IDS)
    values = np.full((1, 1, n), np.nan if value is None else value)
    targets = np.full((1, 1, n), np.nan if target is None else target)
    codes = _statuses(values, targets, margin)[0, 0].tolist()
    for i, kpi_id in enumerate(_KPI_IDS):
        assert _STATUSES[codes[i]] == status_of(CATALOGUE[kpi_id], value, target, margin), kpi_id


@settings(max_examples=200, deadline=None)
@given(
    lists=st.lists(
        st.lists(
            st.sampled_from([0.0, 1.5, 3600.0, 3600.0, 7199.9]) | st.floats(-10, 1e5), max_size=400
        ),
        min_size=1,
        max_size=12,
    ),
    data=st.data(),
)
def test_kth_of_sorted_slices(lists: list[list[float]], data: st.DataObject) -> None:
    """A subtree's median in a crowded hour is selected among the slices in place (`_kth`):
    the same value as sorting their union, with ties and empty slices."""
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
    assert _kth(slices, rank) == union[rank]
