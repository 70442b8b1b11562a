"""The KPI catalogue as the screen needs it: names in both languages, kind, target direction.

The catalogue itself belongs to `ioc.kpis`; this module only reshapes it for the browser,
so the page never carries its own copy of the names.
"""

from __future__ import annotations

from typing import Any

from ioc.kpis.catalogue import CATALOGUE, Kpi

# Catalogue units → how the screen formats a value (91,03% · 1.441 · 12,5 giờ).
_KIND = {"ratio": "rate", "count": "count", "hours": "hours"}
_OP = {"higher": ">=", "lower": "<="}


def _entry(kpi: Kpi) -> dict[str, Any]:
    return {
        "id": kpi.id,
        "name_vi": kpi.name_vi,
        "name_en": kpi.name_en,
        "kind": _KIND[kpi.unit],
        "op": _OP[kpi.direction],
        "target": kpi.target,
    }


def screen_catalogue() -> dict[str, list[dict[str, Any]]]:
    """`{"kpis": [{"id", "name_vi", "name_en", "kind", "op", "target"}]}` in catalogue order."""
    return {"kpis": [_entry(kpi) for kpi in CATALOGUE.values()]}
