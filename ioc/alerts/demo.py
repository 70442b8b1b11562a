"""The demo province's alert rules: what a province would set up on its first day, so the
wall's ticker shows real alerts in `ioc demo`. Created once (the first `ioc demo` on a
database) and never again: a rule an operator deleted or edited stays as they left it."""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from ioc.alerts.models import RuleIn
from ioc.alerts.rules import create_rule

DEMO_BY = "demo"

DEMO_RULES: list[RuleIn] = [
    RuleIn(
        name="Hồ sơ quá hạn chưa giải quyết (cấp huyện)",
        kpi="dossier_overdue_open",
        unit="70",
        each_child=True,
        op=">=",
        threshold=5,
        clear_threshold=2,
        severity="critical",
    ),
    RuleIn(
        name="Tỷ lệ hồ sơ giải quyết đúng hạn dưới 90% (cấp huyện)",
        kpi="dossier_ontime_rate",
        unit="70",
        each_child=True,
        window="7d",
        op="<",
        threshold=0.9,
        clear_threshold=0.92,
        severity="warning",
    ),
    RuleIn(
        name="Tỷ lệ hồ sơ trực tuyến của tỉnh dưới 50%",
        kpi="dossier_online_rate",
        unit="70",
        window="7d",
        op="<",
        threshold=0.5,
        clear_threshold=0.52,
        severity="warning",
    ),
    RuleIn(
        name="Phản ánh 1022 quá hạn xử lý",
        kpi="report_overdue_open",
        unit="70",
        op=">=",
        threshold=3,
        clear_threshold=1,
        severity="critical",
    ),
    RuleIn(
        name="Tỷ lệ văn bản điện tử của tỉnh dưới 98%",
        kpi="document_electronic_rate",
        unit="70",
        window="7d",
        op="<",
        threshold=0.98,
        severity="info",
    ),
]


async def ensure_demo_rules(session: AsyncSession) -> int:
    """Create the demo rules unless the demo ever created any on this database (deleted ones
    included); returns how many were created now. The caller commits."""
    done = (
        await session.execute(
            text("SELECT 1 FROM alert_rules WHERE created_by = :by LIMIT 1"), {"by": DEMO_BY}
        )
    ).first()
    if done is not None:
        return 0
    for rule in DEMO_RULES:
        await create_rule(session, rule, scope_unit=None, created_by=DEMO_BY, allow_private=False)
    return len(DEMO_RULES)
