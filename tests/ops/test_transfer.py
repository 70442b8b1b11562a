"""`ioc export` / `ioc import`: the configuration survives a round trip into an empty database."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from datetime import date
from pathlib import Path

import asyncpg
import pytest

from ioc.db import Database, script_heads
from ioc.db.engine import asyncpg_dsn
from ioc.ops import BundleError, export_to, import_from
from ioc.units import load_units_csv
from tests.conftest import DatabaseFactory

DATA = Path(__file__).resolve().parents[2] / "ioc" / "units" / "data"

# Every configured table, read in a stable order, as the test's notion of "the same state".
SNAPSHOT_SQL = {
    "units": "SELECT jsonb_agg(to_jsonb(t) ORDER BY code) FROM units t",
    "unit_links": "SELECT jsonb_agg(to_jsonb(t) ORDER BY child_code, parent_code, kind) "
    "FROM unit_links t",
    "unit_closure": "SELECT jsonb_agg(to_jsonb(t) ORDER BY ancestor_code, descendant_code) "
    "FROM unit_closure t",
    "organs": "SELECT jsonb_agg(to_jsonb(t) ORDER BY organ_id) FROM organs t",
}


@pytest.fixture(scope="module")
async def demo_source(databases: DatabaseFactory) -> str:
    """A database with the demo province that these tests only read (export from)."""
    return await databases.create()


@pytest.fixture(scope="module")
async def refusing_target(databases: DatabaseFactory) -> str:
    """An empty migrated database for the tests whose imports must write nothing."""
    return await databases.create(demo_units=False)


async def snapshot(url: str) -> dict[str, object]:
    conn = await asyncpg.connect(asyncpg_dsn(url))
    try:
        return {name: json.loads(await conn.fetchval(sql)) for name, sql in SNAPSHOT_SQL.items()}
    finally:
        await conn.close()


async def scalar(url: str, sql: str) -> object:
    conn = await asyncpg.connect(asyncpg_dsn(url))
    try:
        return await conn.fetchval(sql)
    finally:
        await conn.close()


async def test_round_trip_into_an_empty_database(
    databases: DatabaseFactory, demo_source: str, tmp_path: Path
) -> None:
    source = demo_source
    manifest = await export_to(source, tmp_path / "bundle")
    counts = {f["kind"]: f["rows"] for f in manifest["files"]}
    assert counts["units"] == 123
    assert counts["unit_links"] == 122
    assert counts["organs"] == 4
    assert manifest["format"] == "ioc-export"
    assert manifest["migrations"] == sorted(script_heads())
    # Secrets may live in these files (subscriptions): owner-only.
    for entry in manifest["files"]:
        assert (tmp_path / "bundle" / entry["file"]).stat().st_mode & 0o777 == 0o600

    target = await databases.create(demo_units=False)
    assert await scalar(target, "SELECT count(*) FROM units") == 0
    imported = await import_from(target, tmp_path / "bundle")
    assert imported["units"] == 123
    assert imported["organs"] == 4
    assert await snapshot(target) == await snapshot(source)
    assert (
        await scalar(target, "SELECT count(*) FROM unit_closure WHERE ancestor_code = '689'") == 9
    )


async def test_reform_links_and_successors_survive(
    databases: DatabaseFactory, tmp_path: Path
) -> None:
    source = await databases.create()
    db = Database(source, pool_size=1)
    try:
        async with db.session() as session:
            await load_units_csv(
                session, DATA / "units-75-dongnai-2025.csv", valid_from=date(2025, 7, 1)
            )
            await load_units_csv(session, DATA / "units-70-to-75-2025-mapping.csv")
    finally:
        await db.close()
    await export_to(source, tmp_path)
    target = await databases.create(migrate=True, demo_units=False)
    await import_from(target, tmp_path)
    restored = await snapshot(target)
    assert restored == await snapshot(source)
    # A commune of the old province 70 still rolls up to the new province 75 after restore.
    assert (
        await scalar(
            target,
            "SELECT count(*) FROM unit_closure WHERE ancestor_code = '75' "
            "AND descendant_code = '25198'",
        )
        == 1
    )


async def test_import_merges_and_is_idempotent(
    databases: DatabaseFactory, demo_source: str, tmp_path: Path
) -> None:
    source = demo_source
    await export_to(source, tmp_path)
    target = await databases.create()
    conn = await asyncpg.connect(asyncpg_dsn(target))
    try:
        await conn.execute("UPDATE units SET name = 'đổi tên' WHERE code = '689'")
        await conn.execute(
            "INSERT INTO organs (organ_id, unit_code, name) VALUES ('000.99.99.H10', '688', 'x')"
        )
    finally:
        await conn.close()
    await import_from(target, tmp_path)
    first = await snapshot(target)
    await import_from(target, tmp_path)
    assert await snapshot(target) == first
    assert await scalar(target, "SELECT name FROM units WHERE code = '689'") == (
        "Thành phố Đồng Xoài"
    )
    # Rows that are not in the bundle are kept: an import merges, it does not wipe.
    assert await scalar(target, "SELECT count(*) FROM organs") == 5


async def test_edited_or_inconsistent_bundle_changes_nothing(
    demo_source: str, refusing_target: str, tmp_path: Path
) -> None:
    source = demo_source
    await export_to(source, tmp_path)
    units_file = tmp_path / "units.json"
    units = json.loads(units_file.read_text())
    for unit in units:
        if unit["code"] == "689":
            unit["parent_code"] = "99"  # a province that does not exist
    units_file.write_text(json.dumps(units, ensure_ascii=False))

    target = refusing_target
    with pytest.raises(BundleError, match="changed after export"):
        await import_from(target, tmp_path)
    with pytest.raises(BundleError, match="units"):
        await import_from(target, tmp_path, verify=False)
    assert await scalar(target, "SELECT count(*) FROM units") == 0
    assert await scalar(target, "SELECT count(*) FROM organs") == 0

    (tmp_path / "manifest.json").unlink()
    with pytest.raises(BundleError, match="not an `ioc export` directory"):
        await import_from(target, tmp_path)


async def test_unknown_columns_are_refused(
    demo_source: str, refusing_target: str, tmp_path: Path
) -> None:
    source = demo_source
    await export_to(source, tmp_path)
    organs_file = tmp_path / "organs.json"
    organs = json.loads(organs_file.read_text())
    organs[0]["colour"] = "red"
    organs_file.write_text(json.dumps(organs))
    target = refusing_target
    with pytest.raises(BundleError, match="unknown columns: colour"):
        await import_from(target, tmp_path, verify=False)
    assert await scalar(target, "SELECT count(*) FROM units") == 0


def ioc(*args: str, url: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "IOC_DATABASE_URL": url}
    return subprocess.run(
        [sys.executable, "-m", "ioc", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


async def test_cli_export_and_import(
    databases: DatabaseFactory, demo_source: str, tmp_path: Path
) -> None:
    source = demo_source
    out = ioc("export", str(tmp_path / "b"), url=source)
    assert out.returncode == 0, out.stderr
    assert any(line.split()[:2] == ["units", "123"] for line in out.stdout.splitlines())
    target = await databases.create(demo_units=False)
    back = ioc("import", str(tmp_path / "b"), url=target)
    assert back.returncode == 0, back.stderr
    assert "organs" in back.stdout
    # progress on stderr, as plain lines when not on a terminal (issue 19)
    assert re.search(r"^import: importing \d+/\d+ \(100%\)$", back.stderr, re.M), back.stderr
    assert await snapshot(target) == await snapshot(source)
    (tmp_path / "b" / "organs.json").write_text("[]\n")
    refused = ioc("import", str(tmp_path / "b"), url=target)
    assert refused.returncode == 1
    assert "organs.json was changed after export" in refused.stderr
    assert "Traceback" not in refused.stderr


CONFIG_SQL = """
INSERT INTO alert_rules (name, kpi, unit_code, time_window, op, threshold, clear_threshold,
    severity, recipients, webhook_secret, created_by, deleted_at)
VALUES
 ('Tỷ lệ đúng hạn thấp', 'dossier_ontime_rate', '689', 'month', '<', 0.95, 0.97, 'critical',
  '[{"channel": "email", "to": "sotttt@binhphuoc.gov.vn"}]', 'whsec_rule1', 'admin', NULL),
 ('old', 'report_overdue_open', '70', 'today', '>', 0, NULL, 'info', '[]', 'whsec_rule2',
  'admin', '2026-11-01T00:00:00Z');
INSERT INTO alert_silences (rule_id, unit_code, ends_at, reason, created_by)
SELECT id, '689', '2026-12-01T00:00:00Z', 'bảo trì', 'admin' FROM alert_rules WHERE name = 'old';
INSERT INTO kpi_targets (unit_code, kpi_id, target, updated_by)
VALUES ('689', 'dossier_online_rate', 0.6, 'admin'), ('70', 'report_ontime_rate', 0.92, 'admin');
INSERT INTO feed_subscriptions (id, unit_code, url, topics, secret, cursor_seq, attempts,
    last_error, created_by, status)
VALUES ('6f1c2d8e-0b5a-4c1e-9d7e-2a1b3c4d5e6f', '689', 'https://ioc.dongxoai.example/inbox',
    ARRAY['kpi', 'alert'], 'whsec_sub', 500, 3, 'timeout', 'district-689', 'active');
"""

CONFIG_SNAPSHOT = {
    "targets": "SELECT jsonb_agg(to_jsonb(t) ORDER BY unit_code, kpi_id) FROM kpi_targets t",
    "rules": "SELECT jsonb_agg(to_jsonb(t) ORDER BY id) FROM alert_rules t",
    "silences": "SELECT jsonb_agg(to_jsonb(t) ORDER BY id) FROM alert_silences t",
    "subscriptions": "SELECT jsonb_agg(to_jsonb(t) - ARRAY['cursor_seq', 'attempts', "
    "'last_error', 'status_changed_at'] ORDER BY id) FROM feed_subscriptions t",
}


async def test_targets_rules_silences_and_subscriptions_round_trip(
    databases: DatabaseFactory, tmp_path: Path
) -> None:
    source = await databases.create()
    conn = await asyncpg.connect(asyncpg_dsn(source))
    try:
        await conn.execute(CONFIG_SQL)
        expected = {k: json.loads(await conn.fetchval(sql)) for k, sql in CONFIG_SNAPSHOT.items()}
    finally:
        await conn.close()
    manifest = await export_to(source, tmp_path)
    counts = {f["kind"]: f["rows"] for f in manifest["files"]}
    assert counts["kpi_targets"] == 2
    assert (counts["alert_rules"], counts["alert_silences"], counts["feed_subscriptions"]) == (
        2,
        1,
        1,
    )
    exported = json.loads((tmp_path / "feed_subscriptions.json").read_text())
    assert "cursor_seq" not in exported[0]  # delivery progress is state, not configuration
    assert exported[0]["secret"] == "whsec_sub"

    target = await databases.create()
    conn = await asyncpg.connect(asyncpg_dsn(target))
    try:
        await conn.execute(
            "INSERT INTO events (seq, type, payload) VALUES (1, 'kpi', '{}'), (2, 'kpi', '{}')"
        )
        await import_from(target, tmp_path)
        got = {k: json.loads(await conn.fetchval(sql)) for k, sql in CONFIG_SNAPSHOT.items()}
        assert got == expected
        # A restored subscription starts at the target's log head, with no failure state.
        row = await conn.fetchrow("SELECT cursor_seq, attempts, last_error FROM feed_subscriptions")
        assert tuple(row) == (2, 0, None)
        # Ids came with the rules: the identity moved past them.
        new_id = await conn.fetchval(
            "INSERT INTO alert_rules (name, kpi, unit_code, time_window, op, threshold, "
            "severity, webhook_secret, created_by) VALUES ('n', 'dossier_received', '70', "
            "'today', '<', 1, 'info', 's', 'admin') RETURNING id"
        )
        assert new_id == 3
        # Importing again keeps the delivery progress of an existing subscription.
        await conn.execute("UPDATE feed_subscriptions SET cursor_seq = 1, attempts = 1")
        await import_from(target, tmp_path)
        row = await conn.fetchrow("SELECT cursor_seq, attempts FROM feed_subscriptions")
        assert tuple(row) == (1, 1)
    finally:
        await conn.close()
