"""Request and response schemas of the alert API (docs/api.md §6)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, FiniteFloat, model_validator

from ioc.api import Instant

Op = Literal["<", "<=", ">", ">="]
Severity = Literal["info", "warning", "critical"]
# ASCII whitespace spelled out: `\s` means other characters in Python, Rust (pydantic) and
# ECMAScript (the OpenAPI description's readers), so a schema-valid address could be refused.
EMAIL_PATTERN = r"^[^@ \t\n\r\f\v]+@[^@ \t\n\r\f\v]+\.[^@ \t\n\r\f\v]+$"


class Recipient(BaseModel):
    """`{"channel": "email", "to": "..."}` or `{"channel": "webhook", "url": "..."}`."""

    model_config = ConfigDict(extra="forbid")

    channel: Literal["email", "webhook"]
    to: str | None = Field(default=None, pattern=EMAIL_PATTERN, max_length=254)
    url: str | None = Field(default=None, max_length=2000)

    @model_validator(mode="after")
    def _address(self) -> Recipient:
        if self.channel == "email" and not self.to:
            raise ValueError("an email recipient needs `to` (an email address)")
        if self.channel == "webhook" and not self.url:
            raise ValueError("a webhook recipient needs `url`")
        return self


class RuleIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=200)
    kpi: str = Field(min_length=1, max_length=100)
    unit: str = Field(min_length=2, max_length=5)
    each_child: bool = Field(
        default=False, description="Evaluate separately for each direct child of `unit`."
    )
    window: str = "today"
    op: Op
    threshold: FiniteFloat
    clear_threshold: FiniteFloat | None = Field(
        default=None, description="Where a firing alert resolves (hysteresis); default threshold."
    )
    for_seconds: int = Field(default=0, ge=0, le=30 * 86400)
    severity: Severity = "warning"
    recipients: list[Recipient] = Field(default_factory=list, max_length=50)
    repeat_seconds: int = Field(
        default=3600, ge=0, le=30 * 86400, description="Reminder interval; 0 = no reminders."
    )
    no_data_fires: bool = Field(
        default=False, description="Whether a KPI without data counts as breaching."
    )


class RulePatch(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(default=None, min_length=1, max_length=200)
    kpi: str | None = None
    unit: str | None = None
    each_child: bool | None = None
    window: str | None = None
    op: Op | None = None
    threshold: FiniteFloat | None = None
    clear_threshold: FiniteFloat | None = None
    for_seconds: int | None = Field(default=None, ge=0, le=30 * 86400)
    severity: Severity | None = None
    recipients: list[Recipient] | None = Field(default=None, max_length=50)
    repeat_seconds: int | None = Field(default=None, ge=0, le=30 * 86400)
    no_data_fires: bool | None = None


class AckIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    comment: str | None = Field(default=None, max_length=2000)


class SilenceIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    rule: int | None = None
    unit: str | None = None
    until: Instant
    reason: str = Field(min_length=1, max_length=2000)

    @model_validator(mode="after")
    def _matcher(self) -> SilenceIn:
        if self.rule is None and self.unit is None:
            raise ValueError("a silence needs `rule`, `unit` or both")
        if self.until.tzinfo is None:
            raise ValueError("`until` needs an offset, e.g. 2026-11-27T18:00:00+07:00")
        return self
