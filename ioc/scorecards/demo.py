"""The demo province's entered values: what a province's IT staff would have entered (766
group 1, online payment, DTI…), so the demo's scorecard and wall show a whole score. Marked
as simulated in their note; created once, never over real entries."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from ioc.localtime import local_date
from ioc.scorecards.models import IndicatorValueIn
from ioc.scorecards.service import enter_value
from ioc.scorecards.tables import indicator_values
from ioc.units import children

DEMO_PROVINCE = "70"
NOTE = "Số liệu mô phỏng (ioc demo)"
# indicator → the province's value; each district's is near it (a stable per-unit spread)
_THIS_YEAR = {
    "i766_1_1": 0.96, "i766_1_2": 0.92, "i766_1_3": 1.0, "i766_1_4": 0.88,
    "i766_3_5": 0.74, "i766_3_5b": 0.81, "i766_4_c": 0.67, "i766_4_4": 0.58, "i766_4_5a": 0.9,
}  # fmt: skip
_LAST_YEAR = {"dti": 0.52, "par_index": 0.87, "sipas": 0.83, "pci": 66.4}


def _near(value: float, unit: str, indicator: str, top: float) -> float:
    spread = int(hashlib.sha256(f"{unit}:{indicator}".encode()).hexdigest()[:4], 16) / 0xFFFF
    return round(min(top, max(0.0, value * (0.85 + 0.3 * spread))), 3)


async def ensure_demo_values(session: AsyncSession) -> int:
    """Enter the demo's values once (nothing when any value was ever entered)."""
    if (await session.execute(select(func.count()).select_from(indicator_values))).scalar_one():
        return 0
    year = local_date(datetime.now(UTC)).year
    units = [DEMO_PROVINCE, *(u.code for u in await children(session, DEMO_PROVINCE))]
    entered = 0
    for unit in units:
        for indicator, value in _THIS_YEAR.items():
            near = value if unit == DEMO_PROVINCE else _near(value, unit, indicator, 1.0)
            body = IndicatorValueIn(
                indicator=indicator, unit=unit, period=str(year), value=near, note=NOTE
            )
            await enter_value(session, body, by="ioc demo", source="demo")
            entered += 1
    for indicator, value in _LAST_YEAR.items():
        body = IndicatorValueIn(
            indicator=indicator, unit=DEMO_PROVINCE, period=str(year - 1), value=value, note=NOTE
        )
        await enter_value(session, body, by="ioc demo", source="demo")
        entered += 1
    return entered
