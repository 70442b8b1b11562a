"""Federation: this `ioc` mirroring an upstream `ioc` (a district mirroring its province).

The upstream's feed arrives, signed, at the inbox; its KPI values are kept and, under
`IOC_FEDERATION_KPIS=upstream`, overlay the local ones wherever they are shown. Other rooms
use `overlay_upstream()` (the screens' snapshot, `GET /api/v1/kpis`) and `UPSTREAM` (the
`source` mark of a mirrored value); the app composes `router` and `register_cli`.
"""

from ioc.federation import tables as _tables  # noqa: F401  (puts the room's tables on ioc.db.metadata)
from ioc.federation.cli import register_cli
from ioc.federation.overlay import UPSTREAM, overlay_upstream
from ioc.federation.views import router

__all__ = ["UPSTREAM", "overlay_upstream", "register_cli", "router"]
