"""HTTP routes of the alert room (docs/api.md §6). Thin: validate, check scope, call a service."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Response
from pydantic import BaseModel, Field

from ioc.alerts import service, silences
from ioc.alerts.models import AckIn, RuleIn, RulePatch, SilenceIn
from ioc.alerts.notify import email_warnings
from ioc.alerts.rules import (
    Rule,
    create_rule,
    delete_rule,
    get_rule,
    list_rules,
    rule_targets,
    update_rule,
)
from ioc.api import Instant, SessionDep, get_ctx
from ioc.auth import Principal, authenticate, require
from ioc.errors import OutOfScope
from ioc.units import is_within, scoped_unit

router = APIRouter(prefix="/api/v1", tags=["alerts"], dependencies=[Depends(authenticate)])

Reader = Annotated[Principal, Depends(require("operator"))]
Manager = Annotated[Principal, Depends(require("department_head"))]
StateName = Literal[
    "ok", "pending", "firing", "acknowledged", "resolved", "no_data", "closed", "open"
]


class RuleCreated(BaseModel):
    rule: dict[str, Any]
    webhook_secret: str
    evaluated_for: list[str] = Field(description="The units the rule is evaluated for now.")
    notes: list[str] = Field(
        default_factory=list,
        description="What is not plain about the rule (e.g. a unit whose children ended in a "
        "reform: the successors it follows instead).",
    )
    warnings: list[str] = Field(
        default_factory=list,
        description="What will not work as the rule asks until the server is configured "
        "(e-mail recipients while IOC_SMTP_HOST is unset).",
    )


async def _rule_in_scope(session: SessionDep, principal: Principal, rule_id: int) -> Rule:
    rule = await get_rule(session, rule_id)
    if principal.unit_code is not None and not await is_within(
        session, principal.unit_code, rule.unit_code
    ):
        raise OutOfScope(f"alert rule {rule_id} belongs to a unit outside yours")
    return rule


async def _alert_in_scope(
    session: SessionDep, principal: Principal, alert_id: int
) -> dict[str, Any]:
    alert = await service.get_alert(session, alert_id)
    if principal.unit_code is not None and not await is_within(
        session, principal.unit_code, alert["unit"]
    ):
        raise OutOfScope(f"alert {alert_id} belongs to a unit outside yours")
    return alert


# --- rules


@router.post(
    "/alert-rules",
    status_code=201,
    response_model=RuleCreated,
    summary="Create a rule; the webhook signing secret is shown only here",
    description=(
        "Creates an alert rule: when a unit's KPI crosses a threshold for long enough, its "
        "recipients are told by e-mail or webhook. Department heads within their unit, and "
        "administrators."
    ),
)
async def post_rule(
    body: RuleIn, session: SessionDep, principal: Manager, request_ctx: Any = Depends(get_ctx)
) -> RuleCreated:
    rule, secret = await create_rule(
        session,
        body,
        scope_unit=principal.unit_code,
        created_by=principal.name,
        allow_private=request_ctx.settings.webhooks_allow_private,
    )
    units, notes = await rule_targets(session, rule)
    channels = [r.channel for r in body.recipients]
    return RuleCreated(
        rule=rule.as_dict(),
        webhook_secret=secret,
        evaluated_for=units,
        notes=notes,
        warnings=email_warnings(request_ctx.settings, channels),
    )


@router.get(
    "/alert-rules",
    summary="Rules of units in your subtree",
    description=(
        "The alert rules of the token's unit and the units below it (or of one of them). Any "
        "reading role."
    ),
)
async def get_rules(
    session: SessionDep, principal: Reader, unit: str | None = None
) -> list[dict[str, Any]]:
    scope = principal.unit_code if unit is None else await scoped_unit(session, principal, unit)
    return [r.as_dict() for r in await list_rules(session, scope)]


@router.get(
    "/alert-rules/{rule_id}",
    summary="One rule",
    description=(
        "One alert rule, with the units it is evaluated for. Any reading role, within its token's "
        "unit."
    ),
)
async def get_one_rule(rule_id: int, session: SessionDep, principal: Reader) -> dict[str, Any]:
    rule = await _rule_in_scope(session, principal, rule_id)
    units, notes = await rule_targets(session, rule)
    return {**rule.as_dict(), "evaluated_for": units, "notes": notes}


@router.patch(
    "/alert-rules/{rule_id}",
    summary="Change some fields of a rule",
    description=(
        "Changes some fields of an alert rule; the rule is checked again as a whole. Department "
        "heads within their unit, and administrators."
    ),
)
async def patch_rule(
    rule_id: int,
    body: RulePatch,
    session: SessionDep,
    principal: Manager,
    request_ctx: Any = Depends(get_ctx),
) -> dict[str, Any]:
    await _rule_in_scope(session, principal, rule_id)
    rule = await update_rule(
        session,
        rule_id,
        body,
        scope_unit=principal.unit_code,
        allow_private=request_ctx.settings.webhooks_allow_private,
    )
    return rule.as_dict()


@router.delete(
    "/alert-rules/{rule_id}",
    status_code=204,
    summary="Delete a rule",
    description=(
        "Deletes an alert rule; its open alerts are closed and their history kept. Department heads"
        " within their unit, and administrators."
    ),
)
async def remove_rule(rule_id: int, session: SessionDep, principal: Manager) -> Response:
    await _rule_in_scope(session, principal, rule_id)
    await delete_rule(session, rule_id, by=principal.name)
    return Response(status_code=204)


# --- alerts


@router.get(
    "/alerts",
    summary="Alerts in your subtree, filtered",
    description=(
        "The alerts of the token's unit and the units below it, most severe first, filtered by "
        "state, unit, severity, rule or time. Any reading role."
    ),
)
async def get_alerts(
    session: SessionDep,
    principal: Reader,
    state: Annotated[list[StateName] | None, Query()] = None,
    unit: str | None = None,
    severity: Literal["info", "warning", "critical"] | None = None,
    rule: int | None = None,
    since: Instant | None = None,
    until: Instant | None = None,
    limit: Annotated[int, Query(ge=1, le=5000)] = 500,
) -> list[dict[str, Any]]:
    scope = principal.unit_code if unit is None else await scoped_unit(session, principal, unit)
    states: list[str] | None = None
    if state:
        states = []
        for s in state:
            states.extend(["pending", "firing", "acknowledged", "no_data"] if s == "open" else [s])
    return await service.list_alerts(
        session,
        scope,
        states=states,
        severity=severity,
        rule_id=rule,
        since=since,
        until=until,
        limit=limit,
    )


@router.get(
    "/alerts/history",
    summary="Every transition of alerts in a unit's subtree",
    description=(
        "Every change of state of the alerts of a unit and the units below it over a period. Any "
        "reading role, within its token's unit."
    ),
)
async def get_history(
    session: SessionDep,
    principal: Reader,
    unit: str | None = None,
    since: Instant | None = None,
    until: Instant | None = None,
    limit: Annotated[int, Query(ge=1, le=5000)] = 500,
) -> list[dict[str, Any]]:
    code = principal.unit_code if unit is None else await scoped_unit(session, principal, unit)
    return await service.unit_history(session, code, since=since, until=until, limit=limit)


@router.get(
    "/alerts/{alert_id}",
    summary="One alert with its transitions and deliveries",
    description=(
        "One alert with every change of state and every notification sent. Any reading role, within"
        " its token's unit."
    ),
)
async def get_one_alert(alert_id: int, session: SessionDep, principal: Reader) -> dict[str, Any]:
    await _alert_in_scope(session, principal, alert_id)
    return await service.alert_history(session, alert_id)


@router.post(
    "/alerts/{alert_id}/ack",
    summary="Acknowledge a firing alert: reminders stop",
    description=(
        "A department head takes charge of a firing alert: it is marked acknowledged (who, when, "
        "comment) and reminders stop. Answers 409 if the alert is not firing. Department heads "
        "within their unit, and administrators."
    ),
    responses={409: {"description": "The alert is not firing (`/problems/conflict`)."}},
)
async def ack_alert(
    alert_id: int, session: SessionDep, principal: Manager, body: AckIn | None = None
) -> dict[str, Any]:
    await _alert_in_scope(session, principal, alert_id)
    comment = body.comment if body is not None else None
    return await service.acknowledge(session, alert_id, by=principal.name, comment=comment)


# --- silences


@router.post(
    "/silences",
    status_code=201,
    summary="Silence a rule and/or a unit until a time",
    description=(
        "Mutes the notifications of a rule, of a unit's alerts, or both, until a time (the alerts "
        "stay visible on screens). Department heads within their unit, and administrators."
    ),
    responses={404: {"description": "The `rule` does not exist (`/problems/not-found`)."}},
)
async def post_silence(body: SilenceIn, session: SessionDep, principal: Manager) -> dict[str, Any]:
    if body.unit is not None:
        await scoped_unit(session, principal, body.unit)
    if body.rule is not None:
        await _rule_in_scope(session, principal, body.rule)
    if body.unit is None and body.rule is None:  # pragma: no cover - the schema refuses it
        raise OutOfScope("a silence needs a rule or a unit")
    return await silences.create_silence(session, body, by=principal.name)


@router.get(
    "/silences",
    summary="Silences in your subtree (active ones unless all=true)",
    description=(
        "The active silences (or all of them) of the token's unit and the units below it. Any "
        "reading role."
    ),
)
async def get_silences(
    session: SessionDep, principal: Reader, all: bool = False
) -> list[dict[str, Any]]:
    return await silences.list_silences(session, principal.unit_code, include_expired=all)


@router.delete(
    "/silences/{silence_id}",
    summary="Expire a silence now (kept in the list)",
    description=(
        "Ends a silence now; it stays in the list as expired. Department heads within their unit, "
        "and administrators."
    ),
)
async def expire_silence(
    silence_id: int, session: SessionDep, principal: Manager
) -> dict[str, Any]:
    silence = await silences.get_silence(session, silence_id)
    if principal.unit_code is not None and not await is_within(
        session, principal.unit_code, silence["scope_unit"]
    ):
        raise OutOfScope(f"silence {silence_id} belongs to a unit outside yours")
    return await silences.expire_silence(session, silence_id, by=principal.name)
