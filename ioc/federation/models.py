"""What the federation routes answer: the mirrored upstream values and the inbox's verdict."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel


class FederatedKpi(BaseModel):
    unit: str
    window: str
    id: str
    value: float | None
    numerator: float | None
    denominator: float | None
    target: float | None
    status: str | None
    as_of: datetime | None
    upstream_seq: int
    received_at: datetime


class FederatedKpis(BaseModel):
    unit: str
    kpis: list[FederatedKpi]


class InboxOut(BaseModel):
    accepted: bool
    duplicate: bool
    seq: int | None
