"""The online-service usage aggregates, folded set-based in the caller's transaction (the
`online_service_usage_rate` KPI): online dossiers per (filing unit, procedure, day)
(`kpi_service_day`), each service's state (offered online, last day used: `kpi_service`),
and, rolled up to every ancestor, how many offered services have each last day
(`kpi_service_usage`; '-infinity' = never used). Each service also records whether the
catalogue lists it (`listed`, the 766 indicator 3.1's denominator, as the open set
`catalogue`).
"""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from ioc.kpis.contributions import EPOCH_SQL, ProjectedFeed
from ioc.units import ancestors_join_sql


async def _exec(session: AsyncSession, sql: str) -> None:
    await session.execute(text(sql))


async def fold_service_days(session: AsyncSession, dossiers: ProjectedFeed) -> None:
    """Move the online dossiers per (filing unit, procedure, day) by the round's dossier
    facts; note the services they touch in `ks`."""
    new, old = f"{dossiers.temp}_new", f"{dossiers.temp}_old"
    await _exec(
        session,
        f"""
        INSERT INTO kpi_service_day AS t (unit_code, procedure_code, day, n)
        SELECT unit_code, procedure_code, recv_day, sum(s)
        FROM {dossiers.signed} f
        WHERE online
        GROUP BY 1, 2, 3 HAVING sum(s) <> 0
        ON CONFLICT (unit_code, procedure_code, day) DO UPDATE SET n = t.n + EXCLUDED.n
        """,
    )
    await _exec(
        session,
        f"""
        INSERT INTO ks (unit_code, procedure_code)
        SELECT unit_code, procedure_code FROM {new} WHERE online
        UNION SELECT unit_code, procedure_code FROM {old} WHERE online
        """,
    )
    await _exec(
        session,
        f"""
        DELETE FROM kpi_service_day t USING (
            SELECT unit_code, procedure_code, recv_day FROM {new} WHERE online
            UNION SELECT unit_code, procedure_code, recv_day FROM {old} WHERE online
        ) x
        WHERE t.unit_code = x.unit_code AND t.procedure_code = x.procedure_code
          AND t.day = x.recv_day AND t.n = 0
        """,
    )


async def fold_services(session: AsyncSession) -> None:
    """Recompute the state of every touched (unit, procedure) service (`ks`) and roll the
    change of its (offered, last online day) into `kpi_service_usage`."""
    await _service_states(session)
    await _roll_usage(session)


async def _service_states(session: AsyncSession) -> None:
    """`ksv`: each touched service's state now (offered online, last day with an online
    dossier) beside the one stored."""
    await _exec(
        session,
        """
        CREATE TEMP TABLE ksv ON COMMIT DROP AS
        WITH t AS (SELECT DISTINCT unit_code, procedure_code FROM ks)
        SELECT t.unit_code, t.procedure_code, coalesce(p.offered, false) AS offered,
               d.last_day, o.offered AS old_offered, o.last_day AS old_last_day,
               p.code IS NOT NULL AS listed, coalesce(o.listed, false) AS old_listed
        FROM t
        LEFT JOIN (
            SELECT pr.unit_code, pr.code, bool_or(pr.online) AS offered
            FROM procedures pr JOIN t ON t.unit_code = pr.unit_code AND t.procedure_code = pr.code
            GROUP BY 1, 2
        ) p ON p.unit_code = t.unit_code AND p.code = t.procedure_code
        -- the last day by one backward probe of the key per service, not all its days
        LEFT JOIN LATERAL (
            SELECT sd.day AS last_day FROM kpi_service_day sd
            WHERE sd.unit_code = t.unit_code AND sd.procedure_code = t.procedure_code
            ORDER BY sd.day DESC LIMIT 1
        ) d ON true
        LEFT JOIN kpi_service o
            ON o.unit_code = t.unit_code AND o.procedure_code = t.procedure_code
        """,
    )


async def _roll_usage(session: AsyncSession) -> None:
    """Count each touched service out of its old last day and into its new one, at every
    ancestor; store the new states."""
    await _exec(
        session,
        f"""
        INSERT INTO kpi_service_usage AS u (unit_code, last_day, n)
        SELECT c.ancestor_code, f.last_day, sum(f.s)
        FROM (
            SELECT unit_code, coalesce(last_day, '-infinity') AS last_day, 1 AS s
            FROM ksv WHERE offered
            UNION ALL
            SELECT unit_code, coalesce(old_last_day, '-infinity'), -1
            FROM ksv WHERE old_offered
        ) f {ancestors_join_sql("f.unit_code", "c")}
        GROUP BY 1, 2 HAVING sum(f.s) <> 0
        ON CONFLICT (unit_code, last_day) DO UPDATE SET n = u.n + EXCLUDED.n
        """,
    )
    await _exec(session, "DELETE FROM kpi_service_usage WHERE n = 0")
    # 766 3.1: the catalogue's distinct (unit, procedure) as the open set `catalogue` at a
    # past moment (its "overdue" count is the number listed); ingest never deletes them.
    await _exec(
        session,
        f"""
        INSERT INTO ko (unit_code, feed, due_at, n)
        SELECT c.ancestor_code, 'catalogue', {EPOCH_SQL}, f.s
        FROM (SELECT unit_code, listed::int - old_listed::int AS s FROM ksv
              WHERE listed <> old_listed) f
        {ancestors_join_sql("f.unit_code", "c")}
        """,
    )
    await _exec(
        session,
        """
        INSERT INTO kpi_service AS s (unit_code, procedure_code, offered, last_day, listed)
        SELECT unit_code, procedure_code, offered, last_day, listed FROM ksv
        ON CONFLICT (unit_code, procedure_code) DO UPDATE
            SET offered = EXCLUDED.offered, last_day = EXCLUDED.last_day,
                listed = EXCLUDED.listed
        """,
    )
    await _exec(
        session,
        """
        DELETE FROM kpi_service s USING ksv
        WHERE s.unit_code = ksv.unit_code AND s.procedure_code = ksv.procedure_code
          AND NOT ksv.offered AND ksv.last_day IS NULL AND NOT ksv.listed
        """,
    )
    await _exec(session, "DROP TABLE ksv")
