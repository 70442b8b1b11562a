"""Small factories for source records in their wire shapes."""

from __future__ import annotations

import uuid
from typing import Any

from ioc.db import Database


def dossier(source_id: str, **fields: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "MaHoSo": source_id,
        "MaTTHC": "1.001612.000.00.00.H10",
        "TenTTHC": "Đăng ký thành lập hộ kinh doanh",
        "KenhThucHien": 2,
        "MaDonVi": "689",
        "NgayTiepNhan": "20260315083000",
        "NgayHenTra": "20260318170000",
        "TrangThaiHoSo": 2,
        "DaSoHoa": True,
        "ChuHoSo": "Nguyễn Thị Hồng Nhung",
    }
    base.update(fields)
    return base


def report(source_id: str, **fields: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "id": source_id,
        "received_at": "2026-03-15T08:00:00+07:00",
        "channel": "phone",
        "category": "traffic",
        "unit": "25195",
        "status": "received",
        "due_at": "2026-03-20T17:00:00+07:00",
        "title": "Ổ gà trên Quốc lộ 14",
    }
    base.update(fields)
    return base


def new_source() -> str:
    return f"test-{uuid.uuid4().hex[:8]}"


async def fetch(db: Database, sql: str, *args: Any) -> list[Any]:
    conn = await db.connect_raw()
    try:
        return list(await conn.fetch(sql, *args))
    finally:
        await conn.close()


async def value(db: Database, sql: str, *args: Any) -> Any:
    conn = await db.connect_raw()
    try:
        return await conn.fetchval(sql, *args)
    finally:
        await conn.close()
