"""Pydantic shapes of KPI values as the API and the event payloads carry them."""

from __future__ import annotations

from datetime import date, datetime

from pydantic import BaseModel, Field, FiniteFloat

from ioc.kpis.catalogue import Status


class KpiValue(BaseModel):
    """One KPI for one (unit, window): `value` is null and `status` `no_data` when there is
    nothing to measure. Counts carry numerator = the count and a null denominator; the
    median carries the number of reports it is the median of as denominator."""

    id: str
    value: float | None
    numerator: float | None
    denominator: float | None
    target: float | None
    status: Status


class KpiChild(BaseModel):
    unit: str
    name: str
    kpis: list[KpiValue]


class KpiSnapshot(BaseModel):
    """`GET /api/v1/kpis`."""

    unit: str
    window: str
    as_of: datetime
    kpis: list[KpiValue]
    children: list[KpiChild] = Field(default_factory=list)


class SeriesPoint(BaseModel):
    """One step of a series: the KPI over that local day (or month) alone."""

    period: date
    value: float | None
    numerator: float | None
    denominator: float | None


class KpiSeries(BaseModel):
    """`GET /api/v1/kpis/{id}/series`."""

    id: str
    unit: str
    step: str
    target: float | None
    points: list[SeriesPoint]


class TargetIn(BaseModel):
    """Set (number) or remove (null) a unit's own target for a KPI."""

    target: FiniteFloat | None


class TargetOut(BaseModel):
    kpi: str
    unit: str
    target: float | None
    source: str = Field(description="unit (set on this unit), inherited:<code>, config, catalogue")
