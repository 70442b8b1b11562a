"""Alert rules: the typed row, validation, and CRUD (docs/api.md §6). Scope: a rule belongs to
its unit; callers check the principal's scope with `ioc.units.is_within`."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from ioc.alerts.models import Recipient, RuleIn, RulePatch
from ioc.alerts.readings import known_kpis
from ioc.alerts.service import alert_dicts, alert_event, record_transition
from ioc.alerts.state import Condition, clear_on_right_side
from ioc.errors import Invalid, NotFound, OutOfScope
from ioc.events import publish
from ioc.localtime import WINDOWS
from ioc.units import is_within, subtree_sql
from ioc.webhooks import new_secret, validate_target_url

RULE_COLUMNS = (
    "id, name, kpi, unit_code, each_child, time_window, op, threshold, clear_threshold, "
    "for_seconds, severity, recipients, repeat_seconds, no_data_fires, created_by, "
    "created_at, updated_at"
)


# The units a rule `r` is evaluated for: its own unit, or (each_child) every current direct
# child. A unit whose children all ended in a reform (a district after the 2025 reform,
# which abolished districts) has none: its rules follow what the former children became —
# the child itself where its code was kept, else its successor — instead of falling silent.
_CURRENT = "({u}.valid_to IS NULL OR {u}.valid_to >= current_date)"
RULE_TARGETS_SQL = f"""
    SELECT r.unit_code AS target_unit WHERE NOT r.each_child
    UNION ALL
    SELECT u.code FROM units u
    WHERE r.each_child AND u.parent_code = r.unit_code AND {_CURRENT.format(u="u")}
    UNION
    SELECT CASE WHEN {_CURRENT.format(u="c")} THEN c.code ELSE c.successor_code END
    FROM unit_links l JOIN units c ON c.code = l.child_code
    WHERE r.each_child AND l.kind = 'parent' AND l.parent_code = r.unit_code
      AND ({_CURRENT.format(u="c")} OR c.successor_code IS NOT NULL)
      AND NOT EXISTS (
          SELECT 1 FROM units k WHERE k.parent_code = r.unit_code AND {_CURRENT.format(u="k")})
"""


@dataclass(frozen=True, slots=True)
class Rule:
    id: int
    name: str
    kpi: str
    unit_code: str
    each_child: bool
    window: str
    op: str
    threshold: float
    clear_threshold: float | None
    for_seconds: int
    severity: str
    recipients: list[dict[str, str]]
    repeat_seconds: int
    no_data_fires: bool
    created_by: str
    created_at: datetime
    updated_at: datetime

    @property
    def condition(self) -> Condition:
        clear = self.threshold if self.clear_threshold is None else self.clear_threshold
        return Condition(self.op, self.threshold, clear, self.for_seconds, self.no_data_fires)

    def as_dict(self) -> dict[str, Any]:
        """The rule as the API shows it (docs/api.md §6 field names)."""
        return {
            "id": self.id,
            "name": self.name,
            "kpi": self.kpi,
            "unit": self.unit_code,
            "each_child": self.each_child,
            "window": self.window,
            "op": self.op,
            "threshold": self.threshold,
            "clear_threshold": self.clear_threshold,
            "for_seconds": self.for_seconds,
            "severity": self.severity,
            "recipients": self.recipients,
            "repeat_seconds": self.repeat_seconds,
            "no_data_fires": self.no_data_fires,
            "created_by": self.created_by,
            "created_at": self.created_at.isoformat(),
            "updated_at": self.updated_at.isoformat(),
        }


def rule_from_row(row: Any) -> Rule:
    m = row._mapping
    return Rule(
        id=m["id"],
        name=m["name"],
        kpi=m["kpi"],
        unit_code=m["unit_code"],
        each_child=m["each_child"],
        window=m["time_window"],
        op=m["op"],
        threshold=m["threshold"],
        clear_threshold=m["clear_threshold"],
        for_seconds=m["for_seconds"],
        severity=m["severity"],
        recipients=list(m["recipients"]),
        repeat_seconds=m["repeat_seconds"],
        no_data_fires=m["no_data_fires"],
        created_by=m["created_by"],
        created_at=m["created_at"],
        updated_at=m["updated_at"],
    )


async def _validate(
    session: AsyncSession,
    scope_unit: str | None,
    data: dict[str, Any],
    *,
    allow_private: bool,
) -> None:
    """A unit outside the token's subtree is refused first with 403 (docs/api.md §3: asking for
    another unit is an authorisation answer, whatever else is wrong with the rule). Then
    collect every field error (unknown KPI or unit, clear threshold on the wrong side, bad
    recipients) and raise one 422 naming them all."""
    errors: list[dict[str, object]] = []
    if data["kpi"] not in known_kpis():
        errors.append(
            {
                "field": "kpi",
                "message": f"unknown KPI {data['kpi']!r}; "
                "GET /api/v1/kpis/catalogue lists the KPI ids",
            }
        )
    if data["window"] not in WINDOWS:
        errors.append({"field": "window", "message": f"window must be one of {WINDOWS}"})
    unit = data["unit"]
    known = (
        await session.execute(text("SELECT 1 FROM units WHERE code = :c"), {"c": unit})
    ).first()
    if known is None:
        errors.append({"field": "unit", "message": f"unit {unit!r} is not a known GSO code"})
    elif scope_unit is not None and not await is_within(session, scope_unit, unit):
        raise OutOfScope(f"unit {unit} is outside this token's unit {scope_unit}")
    clear = data.get("clear_threshold")
    if clear is not None and not clear_on_right_side(data["op"], data["threshold"], clear):
        side = "≥" if data["op"] in ("<", "<=") else "≤"
        errors.append(
            {
                "field": "clear_threshold",
                "message": f"with op {data['op']!r} the clear threshold must be {side} the "
                f"threshold {data['threshold']} (it is where the alert resolves)",
            }
        )
    for i, recipient in enumerate(data["recipients"]):
        if recipient["channel"] == "webhook":
            try:
                validate_target_url(recipient["url"], allow_private=allow_private)
            except Invalid as exc:
                errors.append({"field": f"recipients.{i}.url", "message": exc.detail})
    if errors:
        raise Invalid(f"the rule has {len(errors)} invalid field(s)", errors=errors)


def _recipients_json(recipients: list[Recipient]) -> list[dict[str, str]]:
    return [r.model_dump(exclude_none=True) for r in recipients]


async def create_rule(
    session: AsyncSession,
    body: RuleIn,
    *,
    scope_unit: str | None,
    created_by: str,
    allow_private: bool,
) -> tuple[Rule, str]:
    """Validate and store a rule; return it and its webhook signing secret (shown once)."""
    data = body.model_dump()
    data["recipients"] = _recipients_json(body.recipients)
    await _validate(session, scope_unit, data, allow_private=allow_private)
    secret = new_secret()
    row = (
        await session.execute(
            text(
                f"""
                INSERT INTO alert_rules (name, kpi, unit_code, each_child, time_window, op,
                    threshold, clear_threshold, for_seconds, severity, recipients,
                    repeat_seconds, no_data_fires, webhook_secret, created_by)
                VALUES (:name, :kpi, :unit, :each_child, :window, :op, :threshold,
                    :clear_threshold, :for_seconds, :severity, CAST(:recipients AS jsonb),
                    :repeat_seconds, :no_data_fires, :secret, :by)
                RETURNING {RULE_COLUMNS}
                """
            ),
            {
                **data,
                "recipients": json.dumps(data["recipients"], ensure_ascii=False),
                "secret": secret,
                "by": created_by,
            },
        )
    ).one()
    return rule_from_row(row), secret


async def count_email_rules(session: AsyncSession) -> int:
    """How many rules (not deleted) have at least one e-mail recipient."""
    found = await session.execute(
        text(
            "SELECT count(*) FROM alert_rules WHERE deleted_at IS NULL "
            """AND recipients @> '[{"channel": "email"}]'"""
        )
    )
    return int(found.scalar_one())


async def rule_targets(session: AsyncSession, rule: Rule) -> tuple[list[str], list[str]]:
    """The units `rule` is evaluated for now, and notes saying why when that is not plain
    (an each_child rule whose unit has no current children)."""
    rows = await session.execute(
        text(
            f"SELECT t.target_unit FROM alert_rules r CROSS JOIN LATERAL ({RULE_TARGETS_SQL}) t "
            "WHERE r.id = :id ORDER BY 1"
        ),
        {"id": rule.id},
    )
    units = [row.target_unit for row in rows]
    if not rule.each_child:
        return units, []
    current = await session.execute(
        text(
            "SELECT 1 FROM units k WHERE k.parent_code = :unit AND "
            f"{_CURRENT.format(u='k')} LIMIT 1"
        ),
        {"unit": rule.unit_code},
    )
    if current.first() is not None:
        return units, []
    if units:
        return units, [
            f"{rule.unit_code} has no current child units (they ended in a reform): the rule "
            f"follows what they became, {len(units)} unit(s): {', '.join(units[:20])}"
            + ("…" if len(units) > 20 else "")
        ]
    return units, [
        f"{rule.unit_code} has no child units, now or before a reform: this each_child rule "
        "evaluates nothing; set each_child to false to watch the unit itself"
    ]


async def get_rule(session: AsyncSession, rule_id: int, *, for_update: bool = False) -> Rule:
    """A rule that is not deleted, or `NotFound`."""
    lock = " FOR UPDATE" if for_update else ""
    row = (
        await session.execute(
            text(
                f"SELECT {RULE_COLUMNS} FROM alert_rules WHERE id = :id AND deleted_at IS NULL"
                + lock
            ),
            {"id": rule_id},
        )
    ).first()
    if row is None:
        raise NotFound(f"alert rule {rule_id} does not exist")
    return rule_from_row(row)


async def list_rules(session: AsyncSession, scope_unit: str | None) -> list[Rule]:
    """Rules whose unit is in the scope's subtree (all rules when the scope is None)."""
    rows = await session.execute(
        text(
            f"""
            SELECT {RULE_COLUMNS} FROM alert_rules r
            WHERE deleted_at IS NULL AND (CAST(:scope AS text) IS NULL OR unit_code IN
                {subtree_sql(":scope")})
            ORDER BY id
            """
        ),
        {"scope": scope_unit},
    )
    return [rule_from_row(r) for r in rows]


async def update_rule(
    session: AsyncSession,
    rule_id: int,
    patch: RulePatch,
    *,
    scope_unit: str | None,
    allow_private: bool,
) -> Rule:
    """Change some fields; re-validated as a whole. Moving the rule (KPI, unit, window,
    each_child) closes its current alerts: they described another condition."""
    rule = await get_rule(session, rule_id, for_update=True)
    current = rule.as_dict()
    changes = patch.model_dump(exclude_unset=True)
    if "recipients" in changes and patch.recipients is not None:
        changes["recipients"] = _recipients_json(patch.recipients)
    merged = {**current, **changes}
    await _validate(session, scope_unit, merged, allow_private=allow_private)
    moved = any(merged[k] != current[k] for k in ("kpi", "unit", "window", "each_child"))
    row = (
        await session.execute(
            text(
                f"""
                UPDATE alert_rules SET name = :name, kpi = :kpi, unit_code = :unit,
                    each_child = :each_child, time_window = :window, op = :op,
                    threshold = :threshold, clear_threshold = :clear_threshold,
                    for_seconds = :for_seconds, severity = :severity,
                    recipients = CAST(:recipients AS jsonb), repeat_seconds = :repeat_seconds,
                    no_data_fires = :no_data_fires, updated_at = now()
                WHERE id = :id
                RETURNING {RULE_COLUMNS}
                """
            ),
            {**merged, "recipients": json.dumps(merged["recipients"], ensure_ascii=False)},
        )
    ).one()
    if moved:
        await close_alerts(session, rule_id, reason="rule changed")
    return rule_from_row(row)


async def delete_rule(session: AsyncSession, rule_id: int, *, by: str) -> None:
    """Soft-delete: evaluation stops, open alerts are closed, history and outbox stay."""
    await get_rule(session, rule_id, for_update=True)
    await session.execute(
        text("UPDATE alert_rules SET deleted_at = now(), updated_at = now() WHERE id = :id"),
        {"id": rule_id},
    )
    await close_alerts(session, rule_id, reason=f"rule deleted by {by}")


async def close_alerts(session: AsyncSession, rule_id: int, *, reason: str) -> None:
    """Put every non-closed alert of a rule in `closed` (no notification), announcing it live."""
    rows = (
        await session.execute(
            text(
                """
                UPDATE alerts a SET state = 'closed', since = now(), pending_since = NULL
                FROM (SELECT id, state FROM alerts WHERE rule_id = :id AND state <> 'closed'
                      FOR UPDATE) old
                WHERE a.id = old.id
                RETURNING a.id, old.state AS from_state, a.value, a.episode
                """
            ),
            {"id": rule_id},
        )
    ).all()
    if not rows:
        return
    now = datetime.now().astimezone()
    for r in rows:
        await record_transition(
            session,
            r.id,
            r.from_state,
            "closed",
            value=r.value,
            episode=r.episode,
            at=now,
            comment=reason,
        )
    closed = await alert_dicts(session, "a.id = ANY(:ids)", {"ids": [r.id for r in rows]})
    await publish(session, [alert_event(a) for a in closed])
