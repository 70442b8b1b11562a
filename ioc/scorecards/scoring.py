"""Scoring a unit's scorecard: each indicator's score from its value (computed or entered),
points and threshold, the shares and exclusions of the METRICS table, group subtotals."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from ioc.kpis import Raw
from ioc.scorecards.definition import Definition, Indicator
from ioc.scorecards.models import EnteredOut, GroupScore, IndicatorScore, Source
from ioc.units import Unit


@dataclass(frozen=True)
class Entered:
    value: float
    period: str
    by: str
    at: datetime
    note: str | None
    source: str


def score_of(value: float | None, points: float, threshold: float) -> float | None:
    """Full points at or above the threshold, else value × points / threshold."""
    if value is None:
        return None
    return points if value >= threshold else value * points / threshold


def score_unit(
    definition: Definition,
    unit: Unit,
    computed: dict[str, Raw],
    entered: dict[str, Entered],
) -> tuple[float, float, list[GroupScore]]:
    """(total, max, groups) of one unit from its computed KPI values and entered values."""
    indicators = definition.indicators
    below_province = unit.level != "province"

    def has_value(ind: Indicator) -> bool:
        if ind.id in entered:
            return True
        return (
            ind.kpi is not None and computed.get(ind.kpi, Raw(None, None, None)).value is not None
        )

    # A computed indicator with nothing to judge gives its points to others where the
    # METRICS table says so (5.3 without reports: to 5.2 and 5.4), else they leave `max`.
    points = {i.id: i.points for i in indicators.values()}
    for ind in indicators.values():
        if ind.share_when_no_data and ind.kpi is not None and not has_value(ind):
            for other in ind.share_when_no_data:
                points[other] += ind.points / len(ind.share_when_no_data)
            points[ind.id] = 0.0
    groups: list[GroupScore] = []
    for group in definition.groups:
        scored: list[IndicatorScore] = []
        for ind in group.indicators:
            raw = computed.get(ind.kpi, Raw(None, None, None)) if ind.kpi else Raw(None, None, None)
            given = entered.get(ind.id)
            value, numerator, denominator = raw.value, raw.numerator, raw.denominator
            source: Source
            if given is not None:
                value, numerator, denominator, source = given.value, None, None, "entered"
            elif ind.kpi is not None:
                source = "computed"
            else:
                source = "missing"
            if below_province and ind.scope == "province":
                score: float | None = points[ind.id]  # METRICS: commune not applicable → max
                source = "not_applicable"
            elif source == "missing":
                score = 0.0  # awaited: counts against the unit until entered
            else:
                score = score_of(value, points[ind.id], ind.threshold)
            scored.append(
                IndicatorScore(
                    id=ind.id,
                    name=ind.name,
                    name_en=ind.name_en,
                    kpi=ind.kpi,
                    value=value,
                    numerator=numerator,
                    denominator=denominator,
                    points=points[ind.id],
                    threshold=ind.threshold,
                    score=score,
                    source=source,
                    entered=(
                        EnteredOut(
                            period=given.period,
                            by=given.by,
                            at=given.at,
                            note=given.note,
                            source=given.source,
                        )
                        if given is not None
                        else None
                    ),
                )
            )
        groups.append(
            GroupScore(
                id=group.id,
                name=group.name,
                name_en=group.name_en,
                score=sum(s.score or 0.0 for s in scored),
                max=sum(s.points for s in scored if s.score is not None),
                indicators=scored,
            )
        )
    return sum(g.score for g in groups), sum(g.max for g in groups), groups
