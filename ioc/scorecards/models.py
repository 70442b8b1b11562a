"""Pydantic shapes of scorecards and entered indicator values (CONTRACT §4.1)."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any, Literal

from pydantic import BaseModel, Field, FiniteFloat

Source = Literal["computed", "entered", "missing", "not_applicable"]


class EnteredOut(BaseModel):
    """Who entered the value used, for which period, when and why."""

    period: str
    by: str
    at: datetime
    note: str | None
    source: str


class IndicatorScore(BaseModel):
    id: str
    name: str
    name_en: str
    kpi: str | None
    value: float | None
    numerator: float | None
    denominator: float | None
    points: float  # the points it may earn this period (after any share of another's)
    threshold: float
    score: float | None  # None: nothing to judge this period (its points leave `max`)
    source: Source
    entered: EnteredOut | None = None


class GroupScore(BaseModel):
    id: str
    name: str
    name_en: str
    score: float
    max: float
    indicators: list[IndicatorScore]


class RankedChild(BaseModel):
    rank: int
    unit: str
    name: str
    total: float
    max: float


class Scorecard(BaseModel):
    """`GET /api/v1/scorecards/766`: `total` out of `max` (100 less the points of computed
    indicators with nothing to judge in the period), groups, and the children ranked."""

    scorecard: str = "766"
    unit: str
    name: str
    period: str
    kind: str
    from_: date = Field(alias="from", serialization_alias="from")
    to: date
    closed: bool
    version: int | None = None
    computed_at: datetime
    total: float
    max: float
    groups: list[GroupScore]
    children: list[RankedChild] = Field(default_factory=list)

    model_config = {"populate_by_name": True}


class IndicatorValueIn(BaseModel):
    """`POST /api/v1/indicator-values`: a value ioc cannot compute, for a unit and period."""

    indicator: str
    unit: str
    period: str
    value: FiniteFloat = Field(ge=0)
    note: str | None = Field(default=None, max_length=2000)


class IndicatorValueOut(BaseModel):
    id: int
    indicator: str
    unit: str
    period: str
    value: float
    note: str | None
    source: str
    entered_by: str
    entered_at: datetime


class IndicatorOut(BaseModel):
    """An indicator of `GET /api/v1/indicators`: how its value comes, and for which period."""

    id: str
    name: str
    name_en: str
    source: Literal["computed", "entered"]
    kpi: str | None
    period: str
    scale: str
    max: float
    scorecard: str | None
    group: str | None
    points: float | None
    threshold: float | None
    scope: str


class RecomputeOut(BaseModel):
    """What a recompute of a closed period changed."""

    unit: str
    period: str
    previous_total: float | None
    total: float
    version: int
    changed: list[dict[str, Any]]
