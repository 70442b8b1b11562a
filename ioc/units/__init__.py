"""Administrative units (GSO codes), their tree through reforms, and "every unit under X".

Other rooms use the tree (`get_unit`, `subtree`, `subtree_set`, `is_within`, the SQL
fragments `subtree_sql`/`within_sql`, the roll-up fragments `ancestors_join_sql` and
`ancestor_rows_sql`, `closure_pairs`, `tree_fingerprint`, and `scoped_unit` for a route's
scope check) and the loaders; the app composes `router` and `register_cli`. Only this room
reads `unit_closure`.
"""

from ioc.units import tables as _tables  # noqa: F401  (puts the room's tables on ioc.db.metadata)
from ioc.units.cli import register_cli
from ioc.units.service import (
    DEMO_FILES,
    DEMO_ORGANS,
    UnitsFileError,
    load_organs_csv,
    load_units_csv,
    rebuild_closure,
)
from ioc.units.tree import (
    Scoped,
    Unit,
    ancestor_rows_sql,
    ancestors,
    ancestors_join_sql,
    children,
    closure_pairs,
    get_unit,
    is_within,
    resolve_organ,
    scoped_unit,
    subtree,
    subtree_set,
    subtree_sql,
    tree_fingerprint,
    tree_fingerprint_sql,
    within_sql,
)
from ioc.units.views import router

__all__ = [
    "DEMO_FILES",
    "DEMO_ORGANS",
    "Scoped",
    "Unit",
    "UnitsFileError",
    "ancestor_rows_sql",
    "ancestors",
    "ancestors_join_sql",
    "children",
    "closure_pairs",
    "get_unit",
    "is_within",
    "load_organs_csv",
    "load_units_csv",
    "rebuild_closure",
    "register_cli",
    "resolve_organ",
    "router",
    "scoped_unit",
    "subtree",
    "subtree_set",
    "subtree_sql",
    "tree_fingerprint",
    "tree_fingerprint_sql",
    "within_sql",
]
