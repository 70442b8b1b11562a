"""What changed since the engine's cursor: the records a round takes (`next_hi`), their new
contributions beside their old ones as facts and as the journal's JSON (`read_changes`), and
what the memory cannot know about the services they touch (`service_inputs`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date

import orjson
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from ioc.kpis.contributions import (
    AGENCY_REPORTS,
    CHANGED_PROCEDURES,
    DOCUMENTS,
    DOSSIER_RELEGAL,
    DOSSIERS,
    EPOCH,
    PROJECTED_FEEDS,
    SOURCE_TABLES,
)
from ioc.kpis.facts import (
    Facts,
    FeedRows,
    OpenFact,
    agency_report_facts,
    document_facts,
    dossier_facts,
    report_facts,
)

_NEXT_HI = (
    "SELECT max(change_seq) FROM (SELECT change_seq FROM ("
    + " UNION ALL ".join(
        f"(SELECT change_seq FROM {table} WHERE change_seq > :c ORDER BY change_seq LIMIT :n)"
        for table in SOURCE_TABLES
    )
    + ") x ORDER BY change_seq LIMIT :n) y"
)


async def count_records(session: AsyncSession) -> int:
    """How many source records there are (every feed)."""
    sql = "SELECT " + " + ".join(f"(SELECT count(*) FROM {t})" for t in SOURCE_TABLES)
    return int((await session.execute(text(sql))).scalar_one())


async def next_hi(session: AsyncSession, cursor: int, limit: int) -> int:
    """The highest change_seq of the next `limit` changed records (or `cursor` if none)."""
    value = (await session.execute(text(_NEXT_HI), {"c": cursor, "n": limit})).scalar_one()
    return int(value) if value is not None else cursor


@dataclass
class Changes:
    """A round's records: their facts (for the memory), the journal's JSON per feed (for the
    fold), and how many records."""

    facts: Facts = field(default_factory=Facts)
    journal: dict[str, str] = field(default_factory=dict)
    records: int = 0


async def read_changes(
    session: AsyncSession, lo: int, hi: int, ancestors: dict[str, list[str]]
) -> Changes:
    """The records in (lo, hi]: each one's new contribution beside its old one (the
    projection), in one read per feed."""
    changes = Changes()
    procedures = [
        (str(r[0]), str(r[1]))
        for r in await session.execute(text(CHANGED_PROCEDURES), {"lo": lo, "hi": hi})
    ]
    for feed in PROJECTED_FEEDS:
        derive = feed.contribution
        if feed is DOSSIERS and procedures:  # their legal durations may have changed
            derive = f"{derive} UNION ALL {DOSSIER_RELEGAL}"
        found = await session.execute(
            text(
                f"SELECT n.*, p.* FROM ({derive}) n "
                f"LEFT JOIN {feed.projection} p ON p.{feed.key} = n.{feed.key}"
            ),
            {"lo": lo, "hi": hi},
        )
        width = len(found.keys()) // 2
        names = list(found.keys())[:width]
        pairs = [(tuple(r[:width]), tuple(r[width:])) for r in found]
        if not pairs:
            continue
        changes.records += len(pairs)
        # objects, as `jsonb_to_recordset` reads them back in the fold
        changes.journal[feed.feed] = orjson.dumps(
            [dict(zip(names, new, strict=True)) for new, _ in pairs]
        ).decode()
        rows = FeedRows(feed.feed, names)
        # a record seen for the first time has no projection yet (its columns all null)
        known = [(old if old[0] is not None else None, new) for new, old in pairs]
        if feed is DOSSIERS:
            dossier_facts(changes.facts, rows, known)
        elif feed is DOCUMENTS:
            document_facts(changes.facts, rows, known, ancestors)
        elif feed is AGENCY_REPORTS:
            agency_report_facts(changes.facts, rows, known)
        else:
            report_facts(changes.facts, rows, known)
    if procedures:
        changes.records += len(procedures)
        changes.journal["procedures"] = orjson.dumps(procedures).decode()
        changes.facts.procedures.update(procedures)
    return changes


ServiceKey = tuple[str, str]  # (filing unit, procedure code)


async def service_inputs(
    session: AsyncSession, facts: Facts
) -> tuple[dict[ServiceKey, bool], dict[ServiceKey, dict[date, int]]]:
    """What the memory cannot know about the services a round touched: whether a service whose
    catalogue rows changed is offered online now, and the online dossiers per day of a service
    that lost one (its last day may go back)."""
    offered: dict[ServiceKey, bool] = {}
    if facts.procedures:
        keys = sorted(facts.procedures)
        offered = dict.fromkeys(keys, False)
        rows = await session.execute(
            text(
                """
                SELECT p.unit_code, p.code, bool_or(p.online)
                FROM procedures p
                JOIN unnest(CAST(:u AS text[]), CAST(:c AS text[])) AS k(unit_code, code)
                    ON k.unit_code = p.unit_code AND k.code = p.code
                GROUP BY 1, 2
                """
            ),
            {"u": [k[0] for k in keys], "c": [k[1] for k in keys]},
        )
        offered.update({(u, c): bool(o) for u, c, o in rows})
        # 766 3.1: a (unit, procedure) the catalogue lists for the first time joins the open
        # set `catalogue` (ingest never deletes catalogue rows: a changed one is listed now).
        # The aggregates hold every earlier round here (a round folds what is journaled first).
        listed = await session.execute(
            text(
                """
                SELECT s.unit_code, s.procedure_code FROM kpi_service s
                JOIN unnest(CAST(:u AS text[]), CAST(:c AS text[])) AS k(unit_code, code)
                    ON k.unit_code = s.unit_code AND k.code = s.procedure_code
                WHERE s.listed
                """
            ),
            {"u": [k[0] for k in keys], "c": [k[1] for k in keys]},
        )
        known = {(str(u), str(c)) for u, c in listed}
        for unit, code in keys:
            if (unit, code) not in known:
                facts.opens.append(OpenFact(unit, "catalogue", EPOCH, 1, True))
                facts.units.add(unit)
    shrunk = sorted(k for k, days in facts.online.items() if any(n < 0 for n in days.values()))
    days: dict[ServiceKey, dict[date, int]] = {}
    if shrunk:
        rows = await session.execute(
            text(
                """
                SELECT d.unit_code, d.procedure_code, d.day, d.n
                FROM kpi_service_day d
                JOIN unnest(CAST(:u AS text[]), CAST(:c AS text[])) AS k(unit_code, code)
                    ON k.unit_code = d.unit_code AND k.code = d.procedure_code
                """
            ),
            {"u": [k[0] for k in shrunk], "c": [k[1] for k in shrunk]},
        )
        for u, c, d, n in rows:
            days.setdefault((u, c), {})[d] = int(n)
    return offered, days
