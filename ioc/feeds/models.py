"""Schemas of the feeds room: subscriptions in and out, delivery log rows, federated KPIs."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from ioc.errors import Invalid
from ioc.webhooks import check_secret

Topic = Literal["kpi", "alert", "dossier", "report", "document", "scorecard"]
Severity = Literal["info", "warning", "critical"]
Status = Literal["active", "paused", "failing"]
TOPICS: tuple[str, ...] = ("kpi", "alert", "dossier", "report", "document", "scorecard")


class Filters(BaseModel):
    """Optional narrowing: only these KPI ids (kpi topic), only these severities (alert topic)."""

    model_config = ConfigDict(extra="forbid")

    kpis: list[str] | None = Field(default=None, min_length=1, max_length=100)
    severities: list[Severity] | None = Field(default=None, min_length=1)


class SubscriptionCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    url: str = Field(min_length=8, max_length=2000)
    unit: str = Field(pattern=r"^[0-9]{2}([0-9]|[0-9]{3})?$")
    topics: list[Topic] = Field(min_length=1, max_length=5)
    filters: Filters = Field(default_factory=Filters)
    contact_email: str | None = Field(
        default=None, max_length=320, pattern=r"^[^@ \t\n\r\f\v]+@[^@ \t\n\r\f\v]+$"
    )
    description: str | None = Field(default=None, max_length=500)
    secret: str | None = Field(
        default=None,
        pattern=r"^whsec_[A-Za-z0-9+/=]{32,}$",
        description="Bring your own whsec_ secret (base64 of 24–64 bytes, as Standard Webhooks "
        "defines; e.g. the one a federated ioc is configured with); omitted → one is generated "
        "and returned once.",
    )
    since: int | None = Field(
        default=None, ge=0, description="Start after this event seq; omitted → from now on."
    )

    @field_validator("secret")
    @classmethod
    def _verifiable(cls, secret: str | None) -> str | None:
        try:
            return None if secret is None else check_secret(secret)
        except Invalid as exc:
            raise ValueError(str(exc)) from None


class SubscriptionUpdate(BaseModel):
    """Fields to change; `status: active` resumes a paused or failing subscription."""

    model_config = ConfigDict(extra="forbid")

    url: str | None = Field(default=None, min_length=8, max_length=2000)
    topics: list[Topic] | None = Field(default=None, min_length=1, max_length=5)
    filters: Filters | None = None
    contact_email: str | None = Field(
        default=None, max_length=320, pattern=r"^[^@ \t\n\r\f\v]+@[^@ \t\n\r\f\v]+$"
    )
    description: str | None = Field(default=None, max_length=500)
    status: Literal["active", "paused"] | None = None


class SubscriptionOut(BaseModel):
    id: uuid.UUID
    url: str
    unit: str
    topics: list[str]
    filters: Filters
    contact_email: str | None
    description: str | None
    status: Status
    status_reason: str | None = Field(description="Why the subscription is failing or paused.")
    status_changed_at: datetime
    cursor: int = Field(description="Last event seq delivered with a 2xx (or skipped).")
    attempts: int = Field(description="Failed attempts of the event at the head of the queue.")
    first_failure_at: datetime | None
    next_attempt_at: datetime | None
    last_success_at: datetime | None
    last_error: str | None
    previous_secret_expires_at: datetime | None = Field(
        description="Until then deliveries carry a second signature made with the old secret."
    )
    created_by: str
    created_at: datetime
    updated_at: datetime


class SubscriptionWithSecret(SubscriptionOut):
    secret: str = Field(description="Signing secret; shown only in this response.")


class DeliveryOut(BaseModel):
    id: int
    seq: int
    webhook_id: str
    attempt: int
    status_code: int | None
    error: str | None
    latency_ms: float
    ok: bool
    at: datetime


class ReplayOut(BaseModel):
    id: uuid.UUID
    since: int
    replay_epoch: int = Field(description="Replayed deliveries carry webhook ids ending _r<n>.")


@dataclass(slots=True)
class DeliveryTarget:
    """What a delivery worker needs of a subscription: read at start and after each change
    (NOTIFY ioc_feeds) or every few seconds, then kept up to date by the worker itself."""

    id: uuid.UUID
    unit_code: str
    units: frozenset[str]  # the unit's subtree, for matching events in memory
    url: str
    topics: frozenset[str]
    kpi_ids: frozenset[str] | None
    severities: frozenset[str] | None
    contact_email: str | None
    secret: str
    previous_secret: str | None
    previous_expires_at: datetime | None
    status: str
    cursor_seq: int
    replay_epoch: int
    attempts: int
    first_failure_at: datetime | None
    next_attempt_at: datetime | None

    def secrets(self, now: datetime) -> list[str]:
        """The current secret, plus the previous one during its grace period (rotation)."""
        if self.previous_secret and self.previous_expires_at and self.previous_expires_at > now:
            return [self.secret, self.previous_secret]
        return [self.secret]

    def same_selection(self, other: DeliveryTarget) -> bool:
        """True when `other` selects the same events from the same position."""
        return (
            self.units == other.units
            and self.topics == other.topics
            and self.kpi_ids == other.kpi_ids
            and self.severities == other.severities
            and self.replay_epoch == other.replay_epoch
        )
