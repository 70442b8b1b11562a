"""Loading units, reform mappings and organs; rebuilding the closure (`tree.py` reads it).

How reforms are handled: a unit code is one row (its latest name and level). Its place in
the tree over time is kept in `unit_links`: `parent` edges (with validity dates) and
`successor` edges from a reform mapping (old code → new code; the default successor where a
unit was split). `unit_closure` holds every (ancestor, descendant) pair reachable through
either kind of edge, rebuilt in SQL after each load. So a record filed under an old code
rolls up to its old district *and* to its successor's new parents, and "every unit under X"
is one indexed lookup: `SELECT descendant_code FROM unit_closure WHERE ancestor_code = X`.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable
from datetime import date
from importlib import resources
from pathlib import Path
from typing import Any

from sqlalchemy import text

from ioc.errors import Invalid
from ioc.units.tree import Executor

_DATA = resources.files("ioc.units") / "data"
DEMO_FILES = [str(_DATA / "units-70-binhphuoc-2024.csv")]
DEMO_ORGANS = str(_DATA / "organs-70.csv")

UNIT_COLUMNS = ["code", "name", "level", "parent_code", "lat", "lon"]
MAPPING_COLUMNS = ["old_code", "new_code", "is_default"]
LEVEL_DIGITS = {"province": 2, "district": 3, "commune": 5}
LOAD_STEPS = 4  # a units file: read and parsed, parents checked, written, tree rebuilt


class UnitsFileError(Invalid):
    """A units/organs file is malformed; `errors` names each bad line. Nothing was loaded."""

    title = "Invalid units file"


def _read_csv(path: Path) -> tuple[list[str], list[tuple[int, dict[str, str]]]]:
    raw = path.read_bytes()
    try:
        content = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise UnitsFileError(f"{path}: not UTF-8 ({exc})") from None
    reader = csv.DictReader(io.StringIO(content))
    header = [h.strip() for h in (reader.fieldnames or [])]
    rows = [
        (i + 2, {k.strip(): (v or "").strip() for k, v in r.items() if k})
        for i, r in enumerate(reader)
    ]
    return header, rows


def _float(value: str) -> float | None:
    return float(value) if value else None


def _parse_units(path: Path, rows: list[tuple[int, dict[str, str]]]) -> list[dict[str, Any]]:
    errors: list[dict[str, object]] = []
    parsed: list[dict[str, Any]] = []
    seen: set[str] = set()
    for line, row in rows:
        code, level = row.get("code", ""), row.get("level", "")
        reasons = []
        if level not in LEVEL_DIGITS:
            reasons.append(f"level {level!r} is not province, district or commune")
        elif not (code.isdigit() and len(code) == LEVEL_DIGITS[level]):
            reasons.append(f"code {code!r} is not a {LEVEL_DIGITS[level]}-digit GSO {level} code")
        if not row.get("name"):
            reasons.append("name is empty")
        if code in seen:
            reasons.append(f"code {code} appears twice")
        parent = row.get("parent_code") or None
        if level != "province" and not parent:
            reasons.append("parent_code is empty for a non-province unit")
        try:
            lat, lon = _float(row.get("lat", "")), _float(row.get("lon", ""))
        except ValueError:
            reasons.append("lat/lon are not numbers")
            lat = lon = None
        if reasons:
            errors.append({"line": line, "code": code, "errors": reasons})
            continue
        seen.add(code)
        parsed.append(
            {
                "code": code,
                "name": row["name"],
                "level": level,
                "parent_code": parent,
                "lat": lat,
                "lon": lon,
            }
        )
    if errors:
        raise UnitsFileError(
            f"{path}: {len(errors)} bad line(s), first at line {errors[0]['line']}: "
            f"{'; '.join(errors[0]['errors'])}",  # type: ignore[arg-type]
            errors=errors,
        )
    return parsed


async def _check_parents(db: Executor, path: Path, parsed: list[dict[str, Any]]) -> None:
    in_file = {u["code"] for u in parsed}
    wanted = sorted({u["parent_code"] for u in parsed if u["parent_code"]} - in_file)
    if not wanted:
        return
    found = {
        r[0]
        for r in await db.execute(
            text("SELECT code FROM units WHERE code = ANY(:c)"), {"c": wanted}
        )
    }
    missing = [c for c in wanted if c not in found]
    if missing:
        raise UnitsFileError(
            f"{path}: parent unit(s) {', '.join(missing)} are neither in the file nor loaded",
            errors=[{"parent_code": c, "errors": ["unknown parent unit"]} for c in missing],
        )


async def load_units_csv(
    db: Executor,
    path: Path,
    *,
    valid_from: date | None = None,
    progress: Callable[[str, int, int | None], None] | None = None,
) -> int:
    """Load a units file or a reform mapping file (detected by its header), in the caller's
    transaction. Any bad line raises `UnitsFileError` before anything is written.
    `progress(step, done, total)` hears of each of the load's steps."""

    def step(done: int) -> None:  # read, checked, written, tree rebuilt
        if progress:
            progress(f"loading {path.name}", done, LOAD_STEPS)

    step(0)
    header, rows = _read_csv(path)
    if header[: len(MAPPING_COLUMNS)] == MAPPING_COLUMNS:
        loaded = await _load_mapping(db, path, rows, valid_from or date(2025, 7, 1))
        step(LOAD_STEPS)
        return loaded
    if header[: len(UNIT_COLUMNS)] != UNIT_COLUMNS:
        raise UnitsFileError(
            f"{path}: header must start with {','.join(UNIT_COLUMNS)} (units) or "
            f"{','.join(MAPPING_COLUMNS)} (reform mapping); got {','.join(header)}"
        )
    parsed = _parse_units(path, rows)
    step(1)
    await _check_parents(db, path, parsed)
    step(2)
    for unit in parsed:
        unit["valid_from"] = valid_from
    # A code that already exists under another parent (a code kept through a reform) keeps
    # its old parent edge, closed the day before the new one starts.
    await db.execute(
        text(
            """
            UPDATE unit_links l SET valid_to = CAST(:vf AS date) - 1
            FROM jsonb_to_recordset(CAST(:units AS jsonb)) AS u(code text, parent_code text)
            WHERE l.child_code = u.code AND l.kind = 'parent' AND l.valid_to IS NULL
              AND l.parent_code IS DISTINCT FROM u.parent_code AND CAST(:vf AS date) IS NOT NULL
            """
        ),
        {"units": _json(parsed), "vf": valid_from},
    )
    await db.execute(
        text(
            """
            INSERT INTO units (code, name, level, parent_code, lat, lon, valid_from)
            SELECT code, name, level, parent_code, lat, lon, valid_from
            FROM jsonb_to_recordset(CAST(:units AS jsonb)) AS u(
                code text, name text, level text, parent_code text, lat float8, lon float8,
                valid_from date)
            ON CONFLICT (code) DO UPDATE SET
                name = EXCLUDED.name, level = EXCLUDED.level, parent_code = EXCLUDED.parent_code,
                lat = coalesce(EXCLUDED.lat, units.lat), lon = coalesce(EXCLUDED.lon, units.lon),
                valid_from = coalesce(EXCLUDED.valid_from, units.valid_from),
                valid_to = NULL, updated_at = now()
            """
        ),
        {"units": _json(parsed)},
    )
    await db.execute(
        text(
            """
            INSERT INTO unit_links (child_code, parent_code, kind, valid_from)
            SELECT code, parent_code, 'parent', valid_from
            FROM jsonb_to_recordset(CAST(:units AS jsonb)) AS u(
                code text, parent_code text, valid_from date)
            WHERE parent_code IS NOT NULL
            ON CONFLICT (child_code, parent_code, kind) DO UPDATE SET valid_to = NULL
            """
        ),
        {"units": _json(parsed)},
    )
    step(3)
    await rebuild_closure(db)
    step(LOAD_STEPS)
    return len(parsed)


async def _load_mapping(
    db: Executor, path: Path, rows: list[tuple[int, dict[str, str]]], effective: date
) -> int:
    pairs: list[dict[str, Any]] = []
    errors: list[dict[str, object]] = []
    for line, row in rows:
        old, new, default = (
            row.get("old_code", ""),
            row.get("new_code", ""),
            row.get("is_default", "true").lower(),
        )
        reasons = []
        if not (old.isdigit() and new.isdigit()):
            reasons.append("old_code and new_code must be GSO codes")
        if default not in ("true", "false", "1", "0", ""):
            reasons.append(f"is_default {default!r} is not true/false")
        if reasons:
            errors.append({"line": line, "errors": reasons})
        else:
            pairs.append({"old": old, "new": new, "is_default": default in ("true", "1", "")})
    codes = sorted({p["old"] for p in pairs} | {p["new"] for p in pairs})
    known = {
        r[0]
        for r in await db.execute(text("SELECT code FROM units WHERE code = ANY(:c)"), {"c": codes})
    }
    for line, row in rows:
        for col in ("old_code", "new_code"):
            if row.get(col) and row[col].isdigit() and row[col] not in known:
                errors.append({"line": line, "errors": [f"{col} {row[col]} is not a loaded unit"]})
    if errors:
        raise UnitsFileError(
            f"{path}: {len(errors)} bad line(s), first at line {errors[0]['line']}: "
            f"{'; '.join(errors[0]['errors'])}; load both unit files before the mapping",  # type: ignore[arg-type]
            errors=errors,
        )
    moved = [p for p in pairs if p["old"] != p["new"]]
    await db.execute(
        text(
            """
            INSERT INTO unit_links (child_code, parent_code, kind, valid_from, is_default)
            SELECT old, new, 'successor', CAST(:eff AS date), is_default
            FROM jsonb_to_recordset(CAST(:pairs AS jsonb)) AS p(old text, new text,
                is_default boolean)
            ON CONFLICT (child_code, parent_code, kind) DO UPDATE
                SET is_default = EXCLUDED.is_default, valid_from = EXCLUDED.valid_from
            """
        ),
        {"pairs": _json(moved), "eff": effective},
    )
    await db.execute(
        text(
            """
            UPDATE units u SET successor_code = p.new, valid_to = CAST(:eff AS date) - 1,
                updated_at = now()
            FROM jsonb_to_recordset(CAST(:pairs AS jsonb)) AS p(old text, new text,
                is_default boolean)
            WHERE u.code = p.old AND p.is_default
            """
        ),
        {"pairs": _json(moved), "eff": effective},
    )
    await rebuild_closure(db)
    return len(pairs)


async def rebuild_closure(db: Executor) -> None:
    """Recompute `unit_closure` from all parent edges and default successor edges, in SQL."""
    await db.execute(text("DELETE FROM unit_closure"))
    await db.execute(
        text(
            """
            WITH RECURSIVE edges AS (
                SELECT child_code, parent_code FROM unit_links
                WHERE kind = 'parent' OR is_default
            ), walk(ancestor_code, descendant_code, depth, path) AS (
                SELECT code, code, 0, ARRAY[code] FROM units
                UNION ALL
                SELECT e.parent_code, w.descendant_code, w.depth + 1, w.path || e.parent_code
                FROM walk w JOIN edges e ON e.child_code = w.ancestor_code
                WHERE NOT e.parent_code = ANY(w.path)
            )
            INSERT INTO unit_closure (ancestor_code, descendant_code, depth)
            SELECT ancestor_code, descendant_code, min(depth) FROM walk
            GROUP BY ancestor_code, descendant_code
            """
        )
    )


async def load_organs_csv(db: Executor, path: Path) -> int:
    """Load an organ mapping (`organ_id,unit_code,name`), replacing rows of the same organ_id."""
    header, rows = _read_csv(path)
    if header[:2] != ["organ_id", "unit_code"]:
        raise UnitsFileError(f"{path}: header must be organ_id,unit_code,name; got {header}")
    organs = [
        {"organ_id": r["organ_id"], "unit_code": r["unit_code"], "name": r.get("name", "")}
        for _, r in rows
    ]
    errors: list[dict[str, object]] = [
        {"line": line, "errors": ["organ_id or unit_code is empty"]}
        for line, r in rows
        if not r.get("organ_id") or not r.get("unit_code")
    ]
    codes = sorted({o["unit_code"] for o in organs})
    known = {
        r[0]
        for r in await db.execute(text("SELECT code FROM units WHERE code = ANY(:c)"), {"c": codes})
    }
    errors += [
        {"line": line, "errors": [f"unit_code {r['unit_code']} is not a loaded unit"]}
        for line, r in rows
        if r.get("unit_code") and r["unit_code"] not in known
    ]
    if errors:
        raise UnitsFileError(
            f"{path}: {len(errors)} bad line(s), first at line {errors[0]['line']}", errors=errors
        )
    await db.execute(
        text(
            """
            INSERT INTO organs (organ_id, unit_code, name)
            SELECT organ_id, unit_code, name FROM jsonb_to_recordset(CAST(:o AS jsonb))
                AS o(organ_id text, unit_code text, name text)
            ON CONFLICT (organ_id) DO UPDATE SET unit_code = EXCLUDED.unit_code,
                name = EXCLUDED.name, updated_at = now()
            """
        ),
        {"o": _json(organs)},
    )
    return len(organs)


def _json(value: object) -> str:
    import json

    return json.dumps(value, ensure_ascii=False, default=str)
