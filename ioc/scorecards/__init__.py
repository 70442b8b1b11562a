"""The Decision 766 scorecard (docs/scorecards.md): points per group out of 100 per unit and
period, children ranked, closed periods stored once; values entered for what ioc cannot
compute (766 group 1, DTI, PAR Index, SIPAS, PCI/DDCI). Other rooms use only what is
exported here; the app composes `router`, `build_services(ctx)` and `register_cli`."""

from ioc.scorecards import tables as _tables  # noqa: F401  (puts the room's tables on ioc.db.metadata)
from ioc.scorecards.cli import register_cli
from ioc.scorecards.definition import DECISION_766
from ioc.scorecards.demo import ensure_demo_values
from ioc.scorecards.loops import build_services
from ioc.scorecards.models import Scorecard
from ioc.scorecards.service import read_scorecard
from ioc.scorecards.views import router

__all__ = [
    "DECISION_766",
    "Scorecard",
    "build_services",
    "ensure_demo_values",
    "read_scorecard",
    "register_cli",
    "router",
]
