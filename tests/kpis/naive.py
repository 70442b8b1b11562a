"""The KPIs computed the naive way: one GROUP BY over the raw source tables per family.

Not part of the package: the independent oracle of the tests (incremental aggregates must
agree with it) and the baseline `benchmarks/kpis.py` measures the engine against. It states
every formula again on purpose, in SQL over the raw records, sharing nothing with the engine
but the catalogue's ids and windows.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from ioc.kpis.catalogue import CATALOGUE, window_days
from ioc.kpis.values import Raw
from ioc.localtime import LOCAL_TZ_NAME, local_date

TZ = LOCAL_TZ_NAME


def _rate(n: int, d: int) -> Raw:
    return Raw(n / d if d else None, float(n), float(d))


async def naive_values(
    session: AsyncSession, units: list[str], window: str, now: datetime
) -> dict[str, dict[str, Raw]]:
    """unit → kpi id → value, straight from dossiers, reports, documents, procedures and
    reports of agencies."""
    lo, hi = window_days(window, local_date(now))
    p = {"units": units, "lo": lo, "hi": hi, "now": now}
    day = f"AT TIME ZONE '{TZ}')::date BETWEEN :lo AND :hi"
    dossiers = {
        r[0]: r[1:]
        for r in await session.execute(
            text(
                f"""
                SELECT c.ancestor_code,
                  count(*) FILTER (WHERE (d.received_at {day}),
                  count(*) FILTER (WHERE (d.received_at {day} AND d.channel = 2),
                  count(*) FILTER (WHERE (d.received_at {day} AND d.digitized),
                  count(*) FILTER (WHERE (d.received_at {day} AND d.channel = 2
                                   AND d.paid_online),
                  count(*) FILTER (WHERE d.finished_at IS NOT NULL
                                   AND d.status NOT IN (3, 7, 8) AND (d.finished_at {day}),
                  count(*) FILTER (WHERE d.finished_at IS NOT NULL
                                   AND d.status NOT IN (3, 7, 8) AND (d.finished_at {day}
                                   AND (d.due_at IS NULL OR d.finished_at <= d.due_at)),
                  count(*) FILTER (WHERE d.finished_at IS NULL
                                   AND d.status NOT IN (3, 5, 7, 8)
                                   AND coalesce(d.due_moved_at, d.due_at
                                       + make_interval(secs => d.supplement_seconds)) < :now)
                FROM dossiers d JOIN unit_closure c ON c.descendant_code = d.unit_code
                WHERE c.ancestor_code = ANY(:units)
                GROUP BY 1
                """
            ),
            p,
        )
    }
    reports = {
        r[0]: r[1:]
        for r in await session.execute(
            text(
                f"""
                SELECT c.ancestor_code,
                  count(*) FILTER (WHERE (r.received_at {day}),
                  count(*) FILTER (WHERE r.resolved_at IS NOT NULL AND r.status <> 'rejected'
                                   AND (r.resolved_at {day}),
                  count(*) FILTER (WHERE r.resolved_at IS NOT NULL AND r.status <> 'rejected'
                                   AND (r.resolved_at {day}
                                   AND (r.due_at IS NULL OR r.resolved_at <= r.due_at)),
                  count(*) FILTER (WHERE r.resolved_at IS NULL AND r.status <> 'rejected'
                                   AND r.due_at < :now),
                  percentile_cont(0.5) WITHIN GROUP (ORDER BY
                      extract(epoch FROM r.first_response_at - r.received_at))
                      FILTER (WHERE (r.received_at {day} AND r.first_response_at IS NOT NULL),
                  count(*) FILTER (WHERE (r.received_at {day}
                                   AND r.first_response_at IS NOT NULL)
                FROM reports r JOIN unit_closure c ON c.descendant_code = r.unit_code
                WHERE c.ancestor_code = ANY(:units)
                GROUP BY 1
                """
            ),
            p,
        )
    }
    documents = {
        r[0]: r[1:]
        for r in await session.execute(
            text(
                f"""
                WITH involved AS (
                    SELECT d.id, d.unit_code AS u FROM documents d WHERE d.unit_code IS NOT NULL
                    UNION
                    SELECT r.document_pk, r.unit_code FROM document_recipients r
                    WHERE r.unit_code IS NOT NULL
                ), open_at AS (
                    SELECT r.document_pk AS id, r.unit_code AS u
                    FROM document_recipients r JOIN documents d ON d.id = r.document_pk
                    WHERE r.unit_code IS NOT NULL AND r.completed_at IS NULL
                      AND d.completed_at IS NULL
                    UNION
                    SELECT d.id, d.unit_code FROM documents d
                    WHERE d.completed_at IS NULL AND d.unit_code IS NOT NULL
                      AND NOT EXISTS (SELECT 1 FROM document_recipients r
                                      WHERE r.document_pk = d.id AND r.unit_code IS NOT NULL)
                )
                SELECT c.ancestor_code,
                  count(DISTINCT d.id) FILTER (WHERE (d.sent_at {day}),
                  count(DISTINCT d.id) FILTER (WHERE (d.sent_at {day} AND d.electronic),
                  (SELECT count(DISTINCT o.id) FROM open_at o
                   JOIN unit_closure c2 ON c2.descendant_code = o.u
                   JOIN documents d2 ON d2.id = o.id
                   WHERE c2.ancestor_code = c.ancestor_code AND d2.due_on IS NOT NULL
                     AND ((d2.due_on + 1)::timestamp AT TIME ZONE '{TZ}') < :now)
                FROM involved i JOIN documents d ON d.id = i.id
                JOIN unit_closure c ON c.descendant_code = i.u
                WHERE c.ancestor_code = ANY(:units)
                GROUP BY 1
                """
            ),
            p,
        )
    }
    services = {
        r[0]: r[1:]
        for r in await session.execute(
            text(
                f"""
                SELECT c.ancestor_code, count(*) FILTER (WHERE EXISTS (
                           SELECT 1 FROM dossiers d WHERE d.unit_code = s.unit_code
                           AND d.procedure_code = s.code AND d.channel = 2
                           AND (d.received_at {day})),
                       count(*)
                FROM (SELECT unit_code, code FROM procedures GROUP BY 1, 2
                      HAVING bool_or(online)) s
                JOIN unit_closure c ON c.descendant_code = s.unit_code
                WHERE c.ancestor_code = ANY(:units)
                GROUP BY 1
                """
            ),
            p,
        )
    }
    agency = {
        r[0]: r[1:]
        for r in await session.execute(
            text(
                f"""
                SELECT c.ancestor_code,
                  count(*) FILTER (WHERE a.filed_at IS NOT NULL AND (a.filed_at {day}),
                  count(*) FILTER (WHERE a.filed_at IS NOT NULL AND (a.filed_at {day}
                                   AND a.channel = 'online'),
                  count(*) FILTER (WHERE (a.due_at {day}),
                  count(*) FILTER (WHERE (a.due_at {day} AND a.filed_at <= a.due_at),
                  count(*) FILTER (WHERE a.filed_at IS NULL AND a.due_at < :now)
                FROM agency_reports a JOIN unit_closure c ON c.descendant_code = a.unit_code
                WHERE c.ancestor_code = ANY(:units) AND a.status <> 'cancelled'
                GROUP BY 1
                """
            ),
            p,
        )
    }
    i766 = await _naive_766(session, units, day, p)
    out: dict[str, dict[str, Raw]] = {}
    for unit in units:
        d = dossiers.get(unit, (0,) * 7)
        r = reports.get(unit, (0, 0, 0, 0, None, 0))
        doc = documents.get(unit, (0, 0, 0))
        sv = services.get(unit, (0, 0))
        ar = agency.get(unit, (0,) * 5)
        values = {
            "dossier_received": Raw(float(d[0]), float(d[0]), None),
            "dossier_online_rate": _rate(d[1], d[0]),
            "dossier_ontime_rate": _rate(d[5], d[4]),
            "dossier_overdue_open": Raw(float(d[6]), float(d[6]), None),
            "dossier_digitized_rate": _rate(d[2], d[0]),
            "dossier_online_payment_rate": _rate(d[3], d[1]),
            "online_service_usage_rate": _rate(sv[0], sv[1]),
            "report_received": Raw(float(r[0]), float(r[0]), None),
            "report_ontime_rate": _rate(r[2], r[1]),
            "report_overdue_open": Raw(float(r[3]), float(r[3]), None),
            "report_response_p50_hours": Raw(
                float(r[4]) / 3600.0 if r[5] else None, None, float(r[5])
            ),
            "document_electronic_rate": _rate(doc[1], doc[0]),
            "document_overdue_open": Raw(float(doc[2]), float(doc[2]), None),
            "agency_report_online_rate": _rate(ar[1], ar[0]),
            "agency_report_ontime_rate": _rate(ar[3], ar[2]),
            "agency_report_overdue_open": Raw(float(ar[4]), float(ar[4]), None),
        }
        values.update(i766[unit])
        values["i766_3_2"] = _rate(sv[0], sv[1])
        out[unit] = {k: values[k] for k in CATALOGUE}
    return out


# The end of the n-th working day after a local day, counted through the calendar's working
# days one by one (not through its running numbers, as the engine does).
def _nth_working_day_end(day: str, n: str) -> str:
    return f"""(CASE WHEN ({n}) IS NULL THEN NULL
        WHEN ({n}) = 0 THEN (SELECT (max(z.day) + 1)::timestamp AT TIME ZONE '{TZ}'
                            FROM work_calendar z WHERE z.working AND z.day <= {day})
        ELSE (SELECT (v.day + 1)::timestamp AT TIME ZONE '{TZ}' FROM work_calendar v
              WHERE v.working AND v.day > {day}
              ORDER BY v.day OFFSET ({n}) - 1 LIMIT 1) END)"""


async def _naive_766(
    session: AsyncSession, units: list[str], day: str, p: dict[str, object]
) -> dict[str, dict[str, Raw]]:
    """The Decision 766 indicators straight from the records (docs/indicators-766.md)."""
    recv = f"(d.received_at AT TIME ZONE '{TZ}')::date"
    legal = _nth_working_day_end(
        recv,
        "(SELECT ceil(max(pr.legal_days))::int FROM procedures pr "
        "WHERE pr.code = d.procedure_code)",
    )
    dossiers = {
        r[0]: r[1:]
        for r in await session.execute(
            text(
                f"""
                WITH x AS (
                    SELECT d.*,
                           CASE WHEN d.status = 7 AND NOT d.accepted THEN NULL
                                WHEN d.status IN (3, 7, 8)
                                    THEN coalesce(d.closed_at, d.refused_at)
                                WHEN d.finished_at IS NOT NULL THEN d.finished_at
                                WHEN d.status = 5 THEN d.supplement_requested_at
                           END AS end_at,
                           (d.status = 7 AND NOT d.accepted) OR (d.status IN (3, 7, 8)
                               AND d.closed_at IS NULL AND d.refused_at IS NULL) AS excluded,
                           CASE WHEN d.due_at IS NOT NULL THEN d.due_at ELSE {legal} END
                               AS deadline,
                           make_interval(secs => d.supplement_seconds) AS pause,
                           d.result_files = 0 OR d.e_result AS result_ok
                    FROM dossiers d
                )
                SELECT c.ancestor_code,
                  count(*) FILTER (WHERE NOT excluded AND (end_at {day}),
                  count(*) FILTER (WHERE NOT excluded AND (end_at {day}
                                   AND supplement_count < 2
                                   AND (deadline IS NULL OR end_at - pause <= deadline)),
                  count(*) FILTER (WHERE NOT excluded AND end_at IS NULL),
                  count(*) FILTER (WHERE NOT excluded AND end_at IS NULL
                                   AND (supplement_count >= 2 OR deadline + pause < :now)),
                  count(*) FILTER (WHERE (received_at {day}),
                  count(*) FILTER (WHERE (received_at {day} AND channel = 2 AND result_ok),
                  count(*) FILTER (WHERE (received_at {day} AND paid_online),
                  count(*) FILTER (WHERE (received_at {day}
                                   AND (fee_total > 0 OR paid_online)),
                  count(*) FILTER (WHERE (received_at {day} AND digitized AND result_ok),
                  count(*) FILTER (WHERE (received_at {day} AND data_reused),
                  count(*) FILTER (WHERE (received_at {day}
                                   AND (vneid_verified OR national_db_used)),
                  count(*) FILTER (WHERE finished_at IS NOT NULL AND status NOT IN (3, 7, 8)
                                   AND (finished_at {day} AND result_files > 0),
                  count(*) FILTER (WHERE finished_at IS NOT NULL AND status NOT IN (3, 7, 8)
                                   AND (finished_at {day} AND result_files > 0 AND e_result)
                FROM x d JOIN unit_closure c ON c.descendant_code = d.unit_code
                WHERE c.ancestor_code = ANY(:units)
                GROUP BY 1
                """
            ),
            p,
        )
    }
    rrecv = f"(r.received_at AT TIME ZONE '{TZ}')::date"
    reports = {
        r[0]: r[1:]
        for r in await session.execute(
            text(
                f"""
                WITH x AS (
                    SELECT r.*,
                           CASE WHEN r.status = 'rejected' THEN r.rejected_at
                                ELSE r.resolved_at END AS end_at,
                           r.status <> 'rejected' AND r.resolved_at IS NULL AS open,
                           CASE WHEN r.status = 'rejected' THEN {_nth_working_day_end(rrecv, "2")}
                                ELSE {_nth_working_day_end(rrecv, "15")} END AS deadline
                    FROM reports r
                )
                SELECT c.ancestor_code,
                  count(*) FILTER (WHERE (end_at {day}),
                  count(*) FILTER (WHERE (end_at {day} AND end_at <= deadline),
                  count(*) FILTER (WHERE open),
                  count(*) FILTER (WHERE open AND deadline < :now),
                  count(*) FILTER (WHERE (received_at {day}),
                  count(*) FILTER (WHERE (received_at {day}
                                   AND (rating IS NULL OR rating <> 'dissatisfied')
                                   AND NOT (end_at IS NOT NULL AND end_at > deadline))
                FROM x r JOIN unit_closure c ON c.descendant_code = r.unit_code
                WHERE c.ancestor_code = ANY(:units)
                GROUP BY 1
                """
            ),
            p,
        )
    }
    catalogue = {
        r[0]: r[1:]
        for r in await session.execute(
            text(
                """
                SELECT c.ancestor_code, count(*) FILTER (WHERE s.online), count(*)
                FROM (SELECT unit_code, code, bool_or(online) AS online
                      FROM procedures GROUP BY 1, 2) s
                JOIN unit_closure c ON c.descendant_code = s.unit_code
                WHERE c.ancestor_code = ANY(:units)
                GROUP BY 1
                """
            ),
            p,
        )
    }
    out: dict[str, dict[str, Raw]] = {}
    for unit in units:
        d = dossiers.get(unit, (0,) * 13)
        r = reports.get(unit, (0,) * 6)
        cat = catalogue.get(unit, (0, 0))
        on_time = _rate(d[1] + d[2] - d[3], d[0] + d[2])
        out[unit] = {
            "i766_2_1": on_time,
            "i766_3_1": _rate(cat[0], cat[1]),
            "i766_3_3": _rate(d[5], d[4]),
            "i766_3_6": _rate(d[6], d[7]),
            "i766_4_1": _rate(d[12], d[11]),
            "i766_4_2": _rate(d[8], d[4]),
            "i766_4_3": _rate(d[9], d[4]),
            "i766_4_5": _rate(d[10], d[4]),
            "i766_5_2": _rate(r[1] + r[2] - r[3], r[0] + r[2]),
            "i766_5_3": _rate(r[5], r[4]),
            "i766_5_4": on_time,
        }
    return out
