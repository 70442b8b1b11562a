"""Long KPI work shows its progress (issue 19: `ioc kpis rebuild` printed one line after five
minutes): a rebuild folds records in chunks and computes units in batches, reporting each,
with the same aggregates as in one piece."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

from sqlalchemy import text
from typer.testing import CliRunner

from ioc.cli import app
from ioc.db import Database
from ioc.kpis.rounds import rebuild_aggregates

from .conftest import add_dossier, add_report, update_dossier

AGGREGATES = (
    "kpi_dossier_proj", "kpi_report_proj", "kpi_counts", "kpi_open", "kpi_service_day",
    "kpi_service", "kpi_service_usage",
)  # fmt: skip


async def _digest(session: object) -> dict[str, str]:
    out = {}
    for table in AGGREGATES:
        sql = f"SELECT md5(coalesce(string_agg(t::text, ',' ORDER BY t::text), '')) FROM {table} t"
        out[table] = (await session.execute(text(sql))).scalar_one()  # type: ignore[attr-defined]
    return out


async def test_a_rebuild_in_chunks_folds_what_one_piece_folds(own_db: Database) -> None:
    now = datetime.now(UTC)
    async with own_db.sessionmaker() as session, session.begin():
        for i in range(30):
            pk = await add_dossier(
                session, "25450", now - timedelta(days=i % 9), due_at=now + timedelta(days=3)
            )
            if i % 4 == 0:
                await update_dossier(session, pk, finished_at=now, status=9)
            await add_report(session, "25453", now - timedelta(hours=i))
        whole = await rebuild_aggregates(session)
        in_one_piece = await _digest(session)
        steps: list[tuple[str, int, int | None]] = []
        chunked = await rebuild_aggregates(
            session, chunk=7, progress=lambda *step: steps.append(step)
        )
        assert chunked == whole == 60
        assert await _digest(session) == in_one_piece
        assert len(steps) >= 60 // 7 and steps[-1] == ("folding records", 60, 60)
        assert all(total == 60 for _, _, total in steps)
        await session.rollback()


def test_the_cli_rebuild_reports_its_progress_on_stderr(live_db: Database) -> None:
    result = CliRunner().invoke(app, ["kpis", "rebuild"], env={"IOC_DATABASE_URL": live_db.url})
    assert result.exit_code == 0, result.output
    assert re.fullmatch(r"rebuilt from \d+ records; \d+ values changed\n", result.stdout)
    lines = result.stderr.splitlines()
    assert any(re.fullmatch(r"kpis rebuild: folding records \d+/\d+ \(100%\)", x) for x in lines)
    computing = [x for x in lines if x.startswith("kpis rebuild: computing KPIs of units")]
    assert computing[-1].endswith("(100%)"), lines
