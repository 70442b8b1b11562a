"""Field readers shared by the JSON parsers: strict for meaning, tolerant for the rest.

Each reader appends a precise reason to `errors` instead of raising, so one record reports
every problem at once (a dead-letter lists them all).
"""

from __future__ import annotations

import contextlib
import json
import math
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any, ClassVar, Protocol

import orjson

from ioc.collectors.timefmt import BadValue

MAX_ID = 200


def raw_json(obj: object) -> str:
    """Compact JSON of a record as received (kept verbatim for audit and replay).

    A lone surrogate (`"\\ud800"` is valid JSON, not valid UTF-8) is kept as its escape, so
    even a record PostgreSQL would refuse can be stored as a dead-letter's text payload.

    An object of strings, integers, booleans, nulls and nested lists/objects of those
    (every real dossier, step and report, lists included) is serialised by orjson, 3-8x
    faster than `json.dumps` and byte-for-byte the same text for such values; anything else
    (a float anywhere, which orjson would print as `null` when it is NaN, a lone surrogate,
    an integer beyond 64 bits, a non-string key) takes `json.dumps`."""
    if type(obj) is dict and not _has_float(obj):
        try:
            return orjson.dumps(obj).decode()
        except TypeError:  # a lone surrogate, a non-string key, an int beyond 64 bits
            pass
    text = json.dumps(obj, ensure_ascii=False, separators=(",", ":"), default=str)
    if not text.isascii():
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:
            text = json.dumps(obj, ensure_ascii=True, separators=(",", ":"), default=str)
    return text


def _has_float(value: object) -> bool:
    """Whether a float is anywhere in a JSON value (orjson would print NaN as `null`, hiding
    it from `suspicious`; such records take `json.dumps`)."""
    stack = [value]
    while stack:
        item = stack.pop()
        kind = type(item)
        if kind is dict:
            stack.extend(item.values())  # type: ignore[attr-defined]
        elif kind is list:
            stack.extend(item)  # type: ignore[arg-type]
        elif kind is float:
            return True
    return False


def plain_raw(obj: dict[str, Any]) -> str | None:
    """`raw_json(obj)` for a flat record of strings, integers, booleans and nulls that
    PostgreSQL can store as it is; None for any other record (→ `raw_json` and the checks).

    orjson refuses lone surrogates and prints no NaN (there are no floats here), so the only
    unstorable value left to look for is NUL, always escaped as \\u0000: a search of the
    bytes, 10x cheaper than `suspicious` on the decoded text."""
    for value in obj.values():
        kind = type(value)
        if kind is not str and kind is not int and kind is not bool and value is not None:
            return None
    try:
        data = orjson.dumps(obj)
    except TypeError:
        return None
    return None if b"\\u0000" in data else data.decode()


def _text_problem(value: str) -> str | None:
    if "\x00" in value:
        return "contains a NUL character (\\u0000), which cannot be stored"
    if not value.isascii():
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return "contains a lone UTF-16 surrogate (not valid Unicode text)"
    return None


MAX_DEPTH = 500  # below Python's recursion limit; real records are 2-3 levels deep


def unstorable(value: object, path: str = "", depth: int = 0) -> list[str]:
    """Reasons PostgreSQL would refuse this JSON value (in a text column or the `raw` jsonb):
    NUL characters and lone surrogates in strings (keys too), NaN/Infinity numbers.

    Checked by the parsers for every record, so one such record is dead-lettered with a
    precise reason instead of failing its whole batch (a pulled page, retried forever)."""
    where = path or "record"
    if isinstance(value, str):
        problem = _text_problem(value)
        return [f"{where}: {problem}"] if problem else []
    if isinstance(value, float) and not math.isfinite(value):
        return [f"{where}: {value!r} is not a finite number (JSON has no NaN/Infinity)"]
    if depth > MAX_DEPTH:
        return [f"{where}: nested deeper than {MAX_DEPTH} levels"]
    errors: list[str] = []
    if isinstance(value, dict):
        for key, item in value.items():
            name = f"{path}.{key}" if path else str(key)
            if isinstance(key, str) and (problem := _text_problem(key)):
                errors.append(f"{where}: a field name {problem}")
                continue
            errors += unstorable(item, name, depth + 1)
    elif isinstance(value, list):
        for i, item in enumerate(value):
            errors += unstorable(item, f"{path}[{i}]", depth + 1)
    return errors


def suspicious(raw: str) -> bool:
    """Whether a record's serialised text (`raw_json`) shows a value PostgreSQL may refuse:
    NUL is always escaped as \\u0000, a lone surrogate forces the ASCII fallback (\\udXXX),
    NaN/Infinity print as such. Only then does `unstorable` walk the record for the path."""
    return "\\u0000" in raw or "NaN" in raw or "Infinity" in raw or "\\ud" in raw or "\\uD" in raw


class Fields(Protocol):
    """What a parser reads a record through: `Reader` (every reason collected) or
    `PlainReader` (the fast path, `NotPlain` on anything unusual). One parser function, two
    readers: the record is built in one place whichever way it is read."""

    raw: str

    @property
    def errors(self) -> list[str]: ...
    def ident(self, name: str) -> str | None: ...
    def ref(self, name: str) -> str | None: ...
    def text(self, name: str) -> str | None: ...
    def integer(
        self, name: str, allowed: Callable[[int], bool], what: str, *, required: bool
    ) -> int | None: ...
    def boolean(self, name: str) -> bool: ...
    def time(
        self, name: str, parse: Callable[[str, object], datetime], *, required: bool
    ) -> datetime | None: ...
    def fail(self, reason: str) -> None: ...


class Reader:
    """Reads fields of one JSON object, collecting reasons for what is wrong."""

    def __init__(self, obj: Mapping[str, Any]) -> None:
        self.obj = obj
        self.raw = raw_json(obj)
        # What the database would refuse anywhere in the record (also in fields not read).
        # The serialised text shows every candidate (NUL is always escaped as \u0000, a lone
        # surrogate forces the ASCII fallback, NaN/Infinity print as such), so the walk that
        # names the bad value's path runs only for the rare suspicious record: parsing is
        # a large share of ingest time.
        self.errors: list[str] = unstorable(obj) if suspicious(self.raw) else []

    def ident(self, name: str) -> str | None:
        value = self.obj.get(name)
        if isinstance(value, int) and not isinstance(value, bool):
            value = str(value)
        if not isinstance(value, str) or not value.strip():
            self.errors.append(f"{name}: required, a non-empty string (got {value!r})")
            return None
        if len(value) > MAX_ID:
            self.errors.append(f"{name}: longer than {MAX_ID} characters")
            return None
        return value.strip()

    def ref(self, name: str) -> str | None:
        """An optional identifier: absent/blank is None, anything else as `ident` reads it."""
        value = self.obj.get(name)
        if value is None or (isinstance(value, str) and not value.strip()):
            return None
        return self.ident(name)

    def fail(self, reason: str) -> None:
        """Record a reason that is about several fields (e.g. a status and a time)."""
        self.errors.append(reason)

    def text(self, name: str) -> str | None:
        value = self.obj.get(name)
        if value is None or value == "":
            return None
        return value if isinstance(value, str) else str(value)

    def integer(
        self, name: str, allowed: Callable[[int], bool], what: str, *, required: bool
    ) -> int | None:
        value = self.obj.get(name)
        if value is None or value == "":
            if required:
                self.errors.append(f"{name}: required ({what})")
            return None
        if isinstance(value, str) and value.strip().lstrip("-").isdigit():
            with contextlib.suppress(ValueError):  # digits int() does not read ("²")
                value = int(value)
        if isinstance(value, bool) or not isinstance(value, int):
            self.errors.append(f"{name}: {value!r} is not an integer ({what})")
            return None
        if not allowed(value):
            self.errors.append(f"{name}: unknown code {value} ({what})")
            return None
        return value

    def boolean(self, name: str) -> bool:
        value = self.obj.get(name)
        if value is None or value == "":
            return False
        if isinstance(value, bool):
            return value
        if value in (0, 1):
            return bool(value)
        if isinstance(value, str) and value.strip().lower() in ("true", "false", "1", "0"):
            return value.strip().lower() in ("true", "1")
        self.errors.append(f"{name}: {value!r} is not a boolean")
        return False

    def number(self, name: str) -> float | None:
        value = self.obj.get(name)
        if value is None or value == "":
            return None
        if isinstance(value, bool) or not isinstance(value, int | float | str):
            self.errors.append(f"{name}: {value!r} is not a number")
            return None
        try:
            return float(value)
        except ValueError:
            self.errors.append(f"{name}: {value!r} is not a number")
            return None

    def time(
        self, name: str, parse: Callable[[str, object], datetime], *, required: bool
    ) -> datetime | None:
        value = self.obj.get(name)
        if value is None or value == "":
            if required:
                self.errors.append(f"{name}: required")
            return None
        try:
            return parse(name, value)
        except BadValue as exc:
            self.errors.append(str(exc))
            return None


# Flags as real senders write them ("True"/"False" from .NET, "1"/"0"); anything else takes
# the checked path.
_FLAGS = {"True": True, "False": False, "true": True, "false": False, "1": True, "0": False}


class NotPlain(Exception):
    """A value `PlainReader` does not take; the parser then reads the record with `Reader`."""


class PlainReader:
    """The fast reader of a flat `dict` whose fields have their usual types (ids, texts and
    times as strings, codes as integers, flags as booleans) and valid values: each method
    returns what `Reader`'s returns for such a value, and raises `NotPlain` for anything
    else (another type, a missing or bad value, a reason, a record PostgreSQL cannot store),
    so it never collects reasons and `errors` stays empty. Parsing is most of the ingest
    pipeline's Python time; `tests/collectors/test_parsers.py` checks both readers agree."""

    __slots__ = ("get", "raw")
    errors: ClassVar[list[str]] = []  # never appended to: every reason raises NotPlain

    def __init__(self, obj: dict[str, Any]) -> None:
        self.get = obj.get
        raw = plain_raw(obj)
        if raw is None:  # nested or float values (e.g. DinhDanhCHS): the general serialiser
            raw = raw_json(obj)
            if suspicious(raw):
                raise NotPlain
        self.raw = raw

    def ident(self, name: str) -> str | None:
        value = self.get(name)
        if type(value) is not str or len(value) > MAX_ID:
            raise NotPlain
        value = value.strip()
        if not value:
            raise NotPlain
        return value

    def ref(self, name: str) -> str | None:
        value = self.get(name)
        if value is None:
            return None
        if type(value) is not str or len(value) > MAX_ID:
            raise NotPlain
        return value.strip() or None

    def fail(self, reason: str) -> None:
        raise NotPlain

    def text(self, name: str) -> str | None:
        value = self.get(name)
        if type(value) is str:
            return value or None
        if value is not None:
            raise NotPlain
        return None

    def integer(
        self, name: str, allowed: Callable[[int], bool], what: str, *, required: bool
    ) -> int | None:
        value = self.get(name)
        if type(value) is int and allowed(value):
            return value
        # Real one-stop systems write every code as a string ("2"): read it here too, or
        # every real record would take the slow path.
        if type(value) is str and value.isdigit() and value.isascii():
            number = int(value)
            if allowed(number):
                return number
            raise NotPlain
        if required or not (value is None or value == ""):
            raise NotPlain
        return None

    def boolean(self, name: str) -> bool:
        value = self.get(name)
        if type(value) is bool:
            return value
        if value is None or value == "":
            return False
        flag = _FLAGS.get(value) if type(value) is str else None
        if flag is None:
            raise NotPlain
        return flag

    def time(
        self, name: str, parse: Callable[[str, object], datetime], *, required: bool
    ) -> datetime | None:
        value = self.get(name)
        if value is None or value == "":
            if required:
                raise NotPlain
            return None
        if type(value) is not str:
            raise NotPlain
        try:
            return parse(name, value)
        except BadValue:
            raise NotPlain from None
