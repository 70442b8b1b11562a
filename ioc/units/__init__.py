"""Administrative units (GSO codes), their tree through reforms, and subtree queries."""

from ioc.units.service import (
    DEMO_FILES,
    DEMO_ORGANS,
    UnitsFileError,
    ancestors,
    children,
    get_unit,
    is_within,
    load_organs_csv,
    load_units_csv,
    resolve_organ,
    subtree,
)

__all__ = [
    "DEMO_FILES",
    "DEMO_ORGANS",
    "UnitsFileError",
    "ancestors",
    "children",
    "get_unit",
    "is_within",
    "load_organs_csv",
    "load_units_csv",
    "resolve_organ",
    "subtree",
]
