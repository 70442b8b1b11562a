"""The 766 scorecard's groups, indicators, points and thresholds, and the other indicators a
province is judged on (DTI, PAR Index, SIPAS, PCI/DDCI…): data (`decision_766.json`, with its
sources), read once and checked at import — not constants scattered in code."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from ioc.kpis import CATALOGUE

_FILE = Path(__file__).with_name("decision_766.json")


@dataclass(frozen=True)
class Indicator:
    """One scored indicator: computed from a KPI of the catalogue, or entered."""

    id: str
    name: str
    name_en: str
    points: float
    threshold: float
    kpi: str | None  # the computed KPI; None = entered (POST /api/v1/indicator-values)
    group: str
    row: int | None  # the METRICS table's row
    share_when_no_data: tuple[str, ...] = ()
    scope: str = "all"  # "province": not applicable below the province (METRICS "Tỉnh")

    @property
    def source(self) -> str:
        return "computed" if self.kpi else "entered"


@dataclass(frozen=True)
class Group:
    id: str
    name: str
    name_en: str
    indicators: tuple[Indicator, ...]

    @property
    def max(self) -> float:
        return sum(i.points for i in self.indicators)


@dataclass(frozen=True)
class OtherIndicator:
    """An index ioc cannot compute (DTI, PAR Index…), entered per unit and period."""

    id: str
    name: str
    name_en: str
    period: str  # month | year: the period its values are given for
    scale: str  # fraction (0–1) | points
    max: float


@dataclass(frozen=True)
class Definition:
    id: str
    name: str
    name_en: str
    max: float
    source: str
    groups: tuple[Group, ...]
    others: tuple[OtherIndicator, ...]

    @property
    def indicators(self) -> dict[str, Indicator]:
        return {i.id: i for g in self.groups for i in g.indicators}


def _load() -> Definition:
    raw = json.loads(_FILE.read_text(encoding="utf-8"))
    groups = tuple(
        Group(
            g["id"],
            g["name"],
            g["name_en"],
            tuple(
                Indicator(
                    i["id"],
                    i["name"],
                    i["name_en"],
                    float(i["points"]),
                    float(i["threshold"]),
                    i.get("kpi"),
                    g["id"],
                    i.get("row"),
                    tuple(i.get("when_no_data_share_with", ())),
                    i.get("scope", "all"),
                )
                for i in g["indicators"]
            ),
        )
        for g in raw["groups"]
    )
    others = tuple(
        OtherIndicator(o["id"], o["name"], o["name_en"], o["period"], o["scale"], float(o["max"]))
        for o in raw["other_indicators"]
    )
    definition = Definition(
        raw["id"], raw["name"], raw["name_en"], float(raw["max"]), raw["source"], groups, others
    )
    # A wrong file fails at import, not in a leader's report.
    scored = definition.indicators
    if abs(sum(g.max for g in groups) - definition.max) > 1e-9:
        raise ValueError(f"{_FILE.name}: the points add up to {sum(g.max for g in groups)}")
    for ind in scored.values():
        if ind.kpi is not None and ind.kpi not in CATALOGUE:
            raise ValueError(f"{_FILE.name}: {ind.id} names an unknown KPI {ind.kpi}")
        if not 0 < ind.threshold <= 1:
            raise ValueError(f"{_FILE.name}: {ind.id}'s threshold must be in (0, 1]")
        if any(s not in scored for s in ind.share_when_no_data):
            raise ValueError(f"{_FILE.name}: {ind.id} shares its points with an unknown id")
    if set(scored) & {o.id for o in others}:
        raise ValueError(f"{_FILE.name}: an id is both scored and another indicator")
    return definition


DECISION_766 = _load()


def entered_ids() -> dict[str, str]:
    """Every indicator that takes entered values → the period kind its values are for."""
    ids = {i.id: "month" for i in DECISION_766.indicators.values()}
    ids.update({o.id: o.period for o in DECISION_766.others})
    return ids
