"""Reports of agencies in their wire shape (docs/collectors.md, "Reports of agencies")."""

from __future__ import annotations

from typing import Any


def agency_report(
    source_id: str,
    unit: str = "25195",
    requested_at: str = "2026-03-01T08:00:00+07:00",
    due_at: str = "2026-03-10",
    status: str = "requested",
    **fields: Any,
) -> dict[str, Any]:
    base: dict[str, Any] = {
        "id": source_id,
        "unit": unit,
        "regime": "BC-KTXH-THANG",
        "title": "Báo cáo tình hình kinh tế - xã hội tháng 3/2026",
        "period": "2026-03",
        "frequency": "monthly",
        "receiver": "689",
        "requested_at": requested_at,
        "due_at": due_at,
        "status": status,
    }
    base.update(fields)
    return base


def filed(
    source_id: str, at: str, channel: str, status: str = "filed", **fields: Any
) -> dict[str, Any]:
    return agency_report(source_id, status=status, filed_at=at, channel=channel, **fields)
