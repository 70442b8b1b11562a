"""The one definition of values and statuses over arrays (`ioc.kpis.values`): statuses equal
`status_of` for every KPI on band edges, best values and zero targets; every catalogue entry
is made of known terms."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from ioc.kpis.catalogue import CATALOGUE, status_of
from ioc.kpis.values import KPI_IDS, STATUSES, TERMS, kpi_values, statuses

edges = st.sampled_from([0.0, 1.0, 0.5, 0.95, 0.9025, 0.9975, 24.0, 25.2, 22.8, 2.0, 1e-9])
numbers = st.one_of(edges, st.floats(-10, 100, allow_nan=False))


@settings(max_examples=300, deadline=None)
@given(
    value=st.none() | numbers,
    target=st.none() | numbers,
    margin=st.sampled_from([0.05, 0.0, 0.1, 0.5]),
)
def test_statuses_equal_status_of(value: float | None, target: float | None, margin: float) -> None:
    """The engine judges arrays (`statuses`); readers judge one value (`status_of`): the
    same for every KPI, on band edges, best values and zero targets too."""
    n = len(KPI_IDS)
    values = np.full((1, 1, n), np.nan if value is None else value)
    targets = np.full((1, 1, n), np.nan if target is None else target)
    codes = statuses(values, targets, margin)[0, 0].tolist()
    for i, kpi_id in enumerate(KPI_IDS):
        assert STATUSES[codes[i]] == status_of(CATALOGUE[kpi_id], value, target, margin), kpi_id


def test_every_kind_from_its_terms() -> None:
    """A count, a rate (and its zero denominator), the median in hours, as the catalogue
    says they are made of."""
    terms = {t: np.zeros(2) for t in TERMS}
    terms["d_received"] = np.array([7.0, 0.0])
    terms["d_online"] = np.array([3.0, 0.0])
    terms["response_median_seconds"] = np.array([28800.0, 0.0])
    terms["responses"] = np.array([3.0, 0.0])
    value, numerator, denominator = kpi_values(terms)
    at = {k: i for i, k in enumerate(KPI_IDS)}
    rate, count, hours = (
        at["dossier_online_rate"],
        at["dossier_received"],
        at["report_response_p50_hours"],
    )
    assert (value[0, rate], numerator[0, rate], denominator[0, rate]) == (3 / 7, 3.0, 7.0)
    assert np.isnan(value[1, rate]) and denominator[1, rate] == 0.0
    assert (value[0, count], numerator[0, count]) == (7.0, 7.0)
    assert np.isnan(denominator[0, count])
    assert (value[0, hours], denominator[0, hours]) == (8.0, 3.0)
    assert np.isnan(numerator[0, hours]) and np.isnan(value[1, hours])
