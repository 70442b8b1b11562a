"""The weekly digest to department heads (docs/digest.md): every Monday morning, one e-mail
per recipient with their unit's week — the 766 score and its change, KPIs against target with
charts, the children furthest off target, alerts, what is overdue — sent once per week."""

from ioc.digest import tables as _tables  # noqa: F401  (puts the room's tables on ioc.db.metadata)
from ioc.digest.cli import register_cli
from ioc.digest.loops import build_services

__all__ = ["build_services", "register_cli"]
