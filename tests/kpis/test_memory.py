"""The engine's in-memory exact median (`ioc.kpis.memory._median_of`) against the definition
(`percentile_cont(0.5)`: the two middle values of the sorted list a <= b give a + (b - a) *
0.5), on both of its paths: direct selection and, for large runs, counting per 1-hour bucket
first. The property test (`test_property.py`) covers the engine end to end on small data."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from ioc.kpis.memory import _BUCKETED, _median_of


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
