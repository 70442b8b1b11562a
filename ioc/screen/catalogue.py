"""The KPI catalogue as the screen needs it: id, Vietnamese (and English) name, kind, target.

The catalogue itself belongs to `ioc.kpis`; this module only reshapes it for the browser.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterable, Mapping
from typing import Any


def _field(entry: Any, *names: str) -> Any:
    for name in names:
        value = entry.get(name) if isinstance(entry, Mapping) else getattr(entry, name, None)
        if value is not None:
            return value
    return None


def _entries(catalogue: Any) -> Iterable[Any]:
    if isinstance(catalogue, Mapping):
        return catalogue.values()
    if isinstance(catalogue, Iterable):
        return catalogue
    return []


def _kind(kpi_id: str, entry: Any) -> str:
    kind = _field(entry, "kind", "unit_kind")
    if isinstance(kind, str) and kind in {"rate", "count", "hours"}:
        return kind
    if kpi_id.endswith("_rate"):
        return "rate"
    if kpi_id.endswith("_hours"):
        return "hours"
    return "count"


def screen_catalogue() -> dict[str, list[dict[str, Any]]]:
    """`{"kpis": [{"id", "name_vi", "name_en", "kind", "op", "target"}]}` in catalogue order."""
    # Imported on demand: the screen must keep serving while the KPI room changes shape.
    kpis_module = importlib.import_module("ioc.kpis")
    catalogue = getattr(kpis_module, "CATALOGUE", None)
    out: list[dict[str, Any]] = []
    for entry in _entries(catalogue):
        kpi_id = _field(entry, "id", "kpi_id")
        if not isinstance(kpi_id, str):
            continue
        op = _field(entry, "op", "target_op", "direction", "comparator")
        out.append(
            {
                "id": kpi_id,
                "name_vi": _field(entry, "name_vi", "name", "title", "label"),
                "name_en": _field(entry, "name_en", "title_en", "english"),
                "kind": _kind(kpi_id, entry),
                "op": op if op in {">=", "<=", ">", "<"} else None,
                "target": _field(entry, "target", "default_target"),
            }
        )
    return {"kpis": out}
