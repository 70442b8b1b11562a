"""`ioc export` / `ioc import`: the configuration of a deployment as files.

What is exported is what people *configured* — units and their reform links, the organ
mapping, KPI targets, alert rules, feed subscriptions — not data the system derives or
receives (records, events, alert states, deliveries: those are in `pg_dump`, see
docs/operations.md). One JSON file per kind plus a `manifest.json` with row counts and
SHA-256 digests, so a bundle can be checked, diffed and kept in git.

Each kind is a table read with `to_jsonb(row)` and written back with
`jsonb_populate_recordset` + `INSERT … ON CONFLICT (key) DO UPDATE`: an import *merges*
(rows of the bundle are created or overwritten, other rows are kept), is idempotent, and
runs in the caller's single transaction (all or nothing). A kind whose table does not exist
in the database (its room's migration is not shipped) is skipped on export; importing it
into such a database is an error rather than a silent loss.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from ioc import __version__
from ioc.errors import Invalid
from ioc.events import last_seq

FORMAT = "ioc-export"
FORMAT_VERSION = 1
MANIFEST = "manifest.json"


class BundleError(Invalid):
    """An export bundle is unreadable or does not fit this database; nothing was imported."""

    title = "Invalid export bundle"


@dataclass(frozen=True, slots=True)
class Kind:
    """One exported table: file name, table, conflict key and columns that are runtime state."""

    name: str
    table: str
    key: tuple[str, ...]
    # Columns that describe what happened at run time rather than what was configured
    # (counters, cursors, failure state): not exported, kept as they are on import.
    state_columns: frozenset[str] = frozenset()
    # State columns of rows the import creates, as (column, SQL type, value read from the
    # target database): a restored subscription starts from the target's current event
    # log, not from a seq of another database's log.
    insert_defaults: tuple[tuple[str, str, Callable[[AsyncSession], Awaitable[object]]], ...] = ()


# Import order matters: units before anything that references a unit.
KINDS: tuple[Kind, ...] = (
    Kind("units", "units", ("code",)),
    Kind("unit_links", "unit_links", ("child_code", "parent_code", "kind")),
    Kind("organs", "organs", ("organ_id",)),
    # ioc.kpis (0003): per-unit target overrides (the defaults are in Settings.kpi_targets).
    Kind("kpi_targets", "kpi_targets", ("unit_code", "kpi_id")),
    # ioc.alerts (0005): rules (soft-deleted ones too, so history keeps its names) and
    # silences. Alert states, transitions and the outbox are run-time data: pg_dump.
    Kind("alert_rules", "alert_rules", ("id",)),
    Kind("alert_silences", "alert_silences", ("id",)),
    # ioc.feeds (0006): subscriptions with their secrets; delivery progress is state.
    Kind(
        "feed_subscriptions",
        "feed_subscriptions",
        ("id",),
        state_columns=frozenset(
            {
                "status_reason",
                "status_changed_at",
                "cursor_seq",
                "replay_epoch",
                "attempts",
                "first_failure_at",
                "next_attempt_at",
                "last_success_at",
                "last_error",
            }
        ),
        insert_defaults=(("cursor_seq", "bigint", last_seq),),
    ),
)
_UNIT_KINDS = {"units", "unit_links"}


@dataclass
class Bundle:
    """The content of an export: rows per kind, plus where it came from."""

    rows: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    exported_at: str = ""
    ioc_version: str = __version__
    migrations: list[str] = field(default_factory=list)


def _q(name: str) -> str:
    """Quote an identifier read from the catalogue (never from the bundle)."""
    return '"' + name.replace('"', '""') + '"'


async def _table_exists(session: AsyncSession, table: str) -> bool:
    found = await session.scalar(text("SELECT to_regclass(:t) IS NOT NULL"), {"t": table})
    return bool(found)


@dataclass(frozen=True, slots=True)
class _Columns:
    writable: list[str]
    identity: list[str]


async def _columns(session: AsyncSession, table: str) -> _Columns:
    rows = await session.execute(
        text(
            """
            SELECT column_name, is_generated = 'ALWAYS' AS generated,
                   is_identity = 'YES' OR column_default LIKE 'nextval(%' AS serial
            FROM information_schema.columns
            WHERE table_schema = current_schema() AND table_name = :t
            ORDER BY ordinal_position
            """
        ),
        {"t": table},
    )
    writable, identity = [], []
    for name, generated, serial in rows:
        if generated:
            continue
        writable.append(name)
        if serial:
            identity.append(name)
    return _Columns(writable, identity)


async def dump(session: AsyncSession, kinds: tuple[Kind, ...] = KINDS) -> Bundle:
    """Read every exportable kind present in the database, in one consistent snapshot.

    Call it first in a fresh transaction: it sets REPEATABLE READ so that all files
    describe the same moment."""
    await session.execute(text("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY"))
    bundle = Bundle(exported_at=datetime.now(UTC).isoformat(timespec="seconds"))
    if await _table_exists(session, "alembic_version"):
        result = await session.execute(text("SELECT version_num FROM alembic_version"))
        bundle.migrations = sorted(r[0] for r in result)
    for kind in kinds:
        if not await _table_exists(session, kind.table):
            continue
        order = ", ".join(f"t.{_q(k)}" for k in kind.key)
        raw = await session.scalar(
            text(
                f"SELECT coalesce(jsonb_agg(to_jsonb(t) - CAST(:state AS text[]) "
                f"ORDER BY {order}), '[]'::jsonb)::text FROM {_q(kind.table)} t"
            ),
            {"state": sorted(kind.state_columns)},
        )
        bundle.rows[kind.name] = json.loads(raw or "[]")
    return bundle


async def load(
    session: AsyncSession,
    bundle: Bundle,
    kinds: tuple[Kind, ...] = KINDS,
    *,
    progress: Callable[[str, int, int | None], None] | None = None,
) -> dict[str, int]:
    """Merge the bundle into the database in the caller's transaction; rows per kind.
    `progress("importing", rows done, rows)` hears of each kind merged.

    Raises `BundleError` (before or instead of writing) when a kind is unknown, its table is
    missing, or its rows carry columns this database does not have."""
    by_name = {k.name: k for k in kinds}
    unknown = sorted(set(bundle.rows) - set(by_name))
    if unknown:
        raise BundleError(
            f"the bundle has kinds this ioc does not know: {', '.join(unknown)}",
            errors=[{"kind": k, "errors": ["unknown kind"]} for k in unknown],
        )
    plan: list[tuple[Kind, list[str], _Columns]] = []
    errors: list[dict[str, object]] = []
    for kind in kinds:
        rows = bundle.rows.get(kind.name)
        if rows is None:
            continue
        if not await _table_exists(session, kind.table):
            errors.append({"kind": kind.name, "errors": [f"table {kind.table} does not exist"]})
            continue
        cols = await _columns(session, kind.table)
        present = {c for row in rows for c in row}
        extra = sorted(present - set(cols.writable) - kind.state_columns)
        if extra:
            errors.append({"kind": kind.name, "errors": [f"unknown columns: {', '.join(extra)}"]})
        missing_key = [k for k in kind.key if rows and k not in present]
        if missing_key:
            errors.append({"kind": kind.name, "errors": [f"missing key {', '.join(missing_key)}"]})
        used = [c for c in cols.writable if c in present and c not in kind.state_columns]
        plan.append((kind, used, cols))
    if errors:
        first = errors[0]
        raise BundleError(
            f"the bundle does not fit this database ({first['kind']}: "
            f"{'; '.join(first['errors'])}); upgrade ioc or export again",  # type: ignore[arg-type]
            errors=errors,
        )
    counts: dict[str, int] = {}
    total = sum(len(bundle.rows[kind.name]) for kind, _, _ in plan)
    done = 0
    for kind, used, cols in plan:
        counts[kind.name] = await _upsert(session, kind, used, cols, bundle.rows[kind.name])
        done += len(bundle.rows[kind.name])
        if progress:
            progress("importing", done, total)
    if any(name in _UNIT_KINDS for name in counts):
        from ioc.units import rebuild_closure

        await rebuild_closure(session)
    # Surface deferred foreign-key violations (units → parent) here, as a BundleError,
    # rather than as a failed commit after the caller thinks the import succeeded.
    try:
        await session.execute(text("SET CONSTRAINTS ALL IMMEDIATE"))
    except Exception as exc:  # IntegrityError from the database: name it, roll back
        raise BundleError(f"the bundle is inconsistent: {_reason(exc)}") from None
    return counts


def _reason(exc: Exception) -> str:
    orig = getattr(exc, "orig", None)
    return str(orig or exc).splitlines()[0]


async def _upsert(
    session: AsyncSession, kind: Kind, used: list[str], cols: _Columns, rows: list[dict[str, Any]]
) -> int:
    if not rows:
        return 0
    names = ", ".join(_q(c) for c in used)
    defaults = [
        (c, sql_type, await value(session))
        for c, sql_type, value in kind.insert_defaults
        if c in cols.writable and c not in used
    ]
    insert_names = ", ".join([names, *(_q(c) for c, _, _ in defaults)])
    select = ", ".join([names, *(f"CAST(:default_{c} AS {t})" for c, t, _ in defaults)])
    params = {f"default_{c}": value for c, _, value in defaults}
    updates = [c for c in used if c not in kind.key]
    action = (
        "DO UPDATE SET " + ", ".join(f"{_q(c)} = EXCLUDED.{_q(c)}" for c in updates)
        if updates
        else "DO NOTHING"
    )
    sql = (
        f"INSERT INTO {_q(kind.table)} ({insert_names}) OVERRIDING SYSTEM VALUE "
        f"SELECT {select} FROM jsonb_populate_recordset(NULL::{_q(kind.table)}, "
        f"CAST(:rows AS jsonb)) ON CONFLICT ({', '.join(_q(k) for k in kind.key)}) {action}"
    )
    try:
        async with session.begin_nested():
            await session.execute(
                text(sql), {"rows": json.dumps(rows, ensure_ascii=False), **params}
            )
    except Exception as exc:  # a constraint or type error of the database: say which kind
        raise BundleError(f"{kind.name}: {_reason(exc)}") from None
    # Rows came with their ids: move identity sequences past them so new rows don't collide.
    for col in cols.identity:
        if col in used:
            await session.execute(
                text(
                    f"SELECT setval(pg_get_serial_sequence(:t, :c), "
                    f"greatest((SELECT max({_q(col)}) FROM {_q(kind.table)}), 1))"
                ),
                {"t": kind.table, "c": col},
            )
    return len(rows)


# --- files


def _digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def write_bundle(bundle: Bundle, directory: Path) -> dict[str, Any]:
    """Write one `<kind>.json` per kind and `manifest.json`; returns the manifest.

    Files are created readable by the owner only: subscriptions carry their signing
    secrets and rules carry recipients' addresses."""
    directory.mkdir(parents=True, exist_ok=True)
    files = []
    for name, rows in bundle.rows.items():
        data = (json.dumps(rows, ensure_ascii=False, indent=1) + "\n").encode()
        _write_private(directory / f"{name}.json", data)
        files.append(
            {"kind": name, "file": f"{name}.json", "rows": len(rows), "sha256": _digest(data)}
        )
    manifest = {
        "format": FORMAT,
        "version": FORMAT_VERSION,
        "ioc_version": bundle.ioc_version,
        "exported_at": bundle.exported_at,
        "migrations": bundle.migrations,
        "files": files,
    }
    _write_private(directory / MANIFEST, (json.dumps(manifest, indent=1) + "\n").encode())
    return manifest


def _write_private(path: Path, data: bytes) -> None:
    path.touch(mode=0o600, exist_ok=True)
    path.chmod(0o600)
    path.write_bytes(data)


def read_bundle(directory: Path, *, verify: bool = True) -> Bundle:
    """Read and check a bundle written by `write_bundle` (format, row counts and, unless
    `verify=False` for hand-edited files, the SHA-256 digests of the manifest)."""
    manifest_path = directory / MANIFEST
    try:
        manifest = json.loads(manifest_path.read_bytes())
    except FileNotFoundError:
        raise BundleError(
            f"{manifest_path} does not exist: not an `ioc export` directory"
        ) from None
    except ValueError as exc:
        raise BundleError(f"{manifest_path} is not JSON: {exc}") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise BundleError(f"{manifest_path} is not an ioc export manifest")
    if manifest.get("version") != FORMAT_VERSION:
        raise BundleError(
            f"{manifest_path}: format version {manifest.get('version')!r}, this ioc reads "
            f"{FORMAT_VERSION}"
        )
    bundle = Bundle(
        exported_at=str(manifest.get("exported_at", "")),
        ioc_version=str(manifest.get("ioc_version", "")),
        migrations=list(manifest.get("migrations", [])),
    )
    errors: list[dict[str, object]] = []
    for entry in manifest.get("files", []):
        kind, file = str(entry.get("kind")), str(entry.get("file"))
        path = directory / Path(file).name  # never outside the bundle directory
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            errors.append({"kind": kind, "errors": [f"{path.name} is missing"]})
            continue
        if verify and _digest(data) != entry.get("sha256"):
            errors.append(
                {
                    "kind": kind,
                    "errors": [f"{path.name} was changed after export (import --allow-edited)"],
                }
            )
            continue
        try:
            rows = json.loads(data)
        except ValueError as exc:
            errors.append({"kind": kind, "errors": [f"{path.name} is not JSON: {exc}"]})
            continue
        if not isinstance(rows, list) or not all(isinstance(r, dict) for r in rows):
            errors.append({"kind": kind, "errors": [f"{path.name} is not a list of rows"]})
            continue
        if verify and len(rows) != entry.get("rows"):
            errors.append({"kind": kind, "errors": [f"{path.name}: row count differs"]})
            continue
        bundle.rows[kind] = rows
    if errors:
        raise BundleError(
            f"{directory}: {len(errors)} bad file(s): "
            + "; ".join(f"{e['kind']}: {e['errors'][0]}" for e in errors),  # type: ignore[index]
            errors=errors,
        )
    return bundle
