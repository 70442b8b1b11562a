"""A KPI's value from its terms, and its status — one definition, over arrays.

Every path that produces values goes through `kpi_values`: the engine's memory (terms as
[unit, window] arrays), the readers that recompute from the aggregates (`compute.py`: terms
per (unit, window) pair) and the series (terms per period). What each KPI is made of is its
catalogue entry's `terms` (`Kpi.terms`); how a kind turns terms into value, numerator and
denominator is written once, here. Statuses over arrays (`statuses`) are `status_of` with the
same float operations (tests/kpis/test_values.py checks it on every edge).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np
import numpy.typing as npt

from ioc.kpis.catalogue import CATALOGUE, Status
from ioc.kpis.contributions import COUNT_COLUMNS, OPEN_FEEDS

Floats = npt.NDArray[np.float64]

# Every term a KPI can be made of: the counters, the overdue counts per open feed, the
# online services (used in the window, offered now), and the response-time median.
OVERDUE_TERMS: tuple[str, ...] = tuple(f"overdue_{feed}" for feed in OPEN_FEEDS)
TERMS: tuple[str, ...] = (
    *COUNT_COLUMNS,
    *OVERDUE_TERMS,
    "services_used",
    "services_offered",
    "response_median_seconds",
    "responses",
)

KPI_IDS: list[str] = list(CATALOGUE)
KPI_INDEX: dict[str, int] = {k: i for i, k in enumerate(KPI_IDS)}
STATUSES: tuple[Status, ...] = ("ok", "warn", "bad", "no_data")

for _kpi in CATALOGUE.values():  # a typo in the catalogue fails at import, not in a round
    if not _kpi.terms or any(t not in TERMS for t in _kpi.terms):
        raise ValueError(f"{_kpi.id}: unknown terms {_kpi.terms}; known: {', '.join(TERMS)}")


@dataclass(frozen=True, slots=True)
class Raw:
    """A KPI before targets: value with its numerator and denominator."""

    value: float | None
    numerator: float | None
    denominator: float | None


class Judged(NamedTuple):
    """A KPI value with its target and status (the engine handles thousands per round; the
    API gets `KpiValue` models of the same fields)."""

    id: str
    value: float | None
    numerator: float | None
    denominator: float | None
    target: float | None
    status: Status


class Change(NamedTuple):
    """A changed value of one (unit, window)."""

    unit: str
    window: str
    value: Judged


def kpi_values(terms: Mapping[str, Floats]) -> tuple[Floats, Floats, Floats]:
    """Value, numerator and denominator of every KPI (catalogue order, last axis) from its
    terms (arrays of one shape, float64; NaN = null in the results). Int counts converted to
    float, then one IEEE division: equal to the bit whatever the shape."""
    shape = (*np.broadcast_shapes(*(np.shape(a) for a in terms.values())), len(KPI_IDS))
    value, numerator, denominator = (np.full(shape, np.nan) for _ in range(3))
    for i, kpi in enumerate(CATALOGUE.values()):
        first = terms[kpi.terms[0]]
        if kpi.kind in ("count", "overdue"):
            value[..., i] = numerator[..., i] = first
        elif kpi.kind in ("rate", "now_rate", "open_rate"):
            num, den = first, terms[kpi.terms[1]]
            if kpi.kind == "open_rate":  # + open within their deadline; + every open one
                opened, late = terms[kpi.terms[2]], terms[kpi.terms[3]]
                num, den = num + (opened - late), den + opened
            numerator[..., i] = num
            denominator[..., i] = den
            with np.errstate(divide="ignore", invalid="ignore"):
                value[..., i] = np.where(den != 0, num / den, np.nan)
        else:  # median: seconds of the middle, in hours; how many values, no numerator
            n = terms[kpi.terms[1]]
            value[..., i] = np.where(n > 0, first / 3600.0, np.nan)
            denominator[..., i] = n
    return value, numerator, denominator


_HIGHER = np.array([CATALOGUE[k].direction == "higher" for k in KPI_IDS])
# the best possible value, never `warn` (`status_of`): a rate of 1 when higher is better, 0
# when lower is better; NaN (no such value) otherwise
_BEST = np.array(
    [
        (1.0 if CATALOGUE[k].unit == "ratio" else np.nan)
        if CATALOGUE[k].direction == "higher"
        else 0.0
        for k in KPI_IDS
    ]
)


def statuses(value: Floats, target: Floats, margin: float) -> npt.NDArray[np.int8]:
    """`catalogue.status_of` over arrays [..., kpi] (codes index `STATUSES`), with the same
    float operations so the same edge cases fall the same way."""
    with np.errstate(invalid="ignore"):
        band = np.where(target != 0, margin * np.abs(target), margin)
        bad = np.where(_HIGHER, value < target, value > target)
        near = np.where(_HIGHER, value < target + band, value > target - band)
        warn = near & ~(value == _BEST)
    status = np.where(bad, 2, np.where(warn, 1, 0))
    status = np.where(np.isnan(target), 0, status)
    return np.where(np.isnan(value), 3, status).astype(np.int8)


def nulls(a: Floats) -> Any:
    """As Python values (nested lists), NaN as None."""
    return np.where(np.isnan(a), np.array(None), a).tolist()


def raws(terms: Mapping[str, Floats], keys: list[Any]) -> dict[Any, dict[str, Raw]]:
    """`kpi_values` as `Raw`s per key, for terms that are 1-d arrays indexed like `keys`."""
    value, numerator, denominator = (nulls(a) for a in kpi_values(terms))
    return {
        key: {
            k: Raw(value[p][i], numerator[p][i], denominator[p][i]) for i, k in enumerate(KPI_IDS)
        }
        for p, key in enumerate(keys)
    }
