"""A round's facts: the signed differences (-old, +new contribution) of the records it read,
in the shape the engine's memory is moved by (`EngineMemory.fold`).

Rows are the projection tables' rows (`contributions.PROJECTED_FEEDS`: the new contribution
as derived, the old one as stored); which counter moves on which day is `COUNTERS`.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from operator import itemgetter
from typing import Any

from ioc.kpis.contributions import COUNT_COLUMNS, EPOCH, counters_by_day

Row = Sequence[Any]


@dataclass(frozen=True, slots=True)
class OpenFact:
    """An open record's due moment counted in (n = 1) or out (-1) at `unit`; `fan_out`:
    whether it still counts at every ancestor (documents come at each ancestor already)."""

    unit: str
    feed: str
    due: datetime
    n: int
    fan_out: bool


@dataclass
class Facts:
    """One round's changes, as the engine folds them into memory."""

    # (filing unit, day ordinal) -> signed counter deltas (COUNT_COLUMNS order); documents
    # come already at each distinct ancestor (`doc_counts`, not fanned out again).
    counts: dict[tuple[str, int], list[int]] = field(default_factory=dict)
    doc_counts: dict[tuple[str, int], list[int]] = field(default_factory=dict)
    opens: list[OpenFact] = field(default_factory=list)
    # filing unit -> response times taken out / put in, as (day ordinal, seconds)
    removed: dict[str, list[tuple[int, float]]] = field(default_factory=lambda: defaultdict(list))
    added: dict[str, list[tuple[int, float]]] = field(default_factory=lambda: defaultdict(list))
    # (filing unit, procedure) -> {day: signed online dossiers}
    online: dict[tuple[str, str], dict[date, int]] = field(
        default_factory=lambda: defaultdict(lambda: defaultdict(int))
    )
    procedures: set[tuple[str, str]] = field(default_factory=set)
    units: set[str] = field(default_factory=set)  # filing units touched (values may move)
    median_units: set[str] = field(default_factory=set)


class FeedRows:
    """How to read a feed's projection rows: each column's position (`at`, by name), and per
    contribution day column the counters (their index in COUNT_COLUMNS) with the flag column
    each adds (None: 1)."""

    def __init__(self, feed: str, names: Sequence[str]) -> None:
        self.at = at = {name: i for i, name in enumerate(names)}
        self.days = [
            (
                at[day],
                [
                    (COUNT_COLUMNS.index(c.name), None if c.flag is None else at[c.flag])
                    for c in counters
                ],
            )
            for day, counters in counters_by_day(feed).items()
        ]

    def add(self, into: dict[tuple[str, int], list[int]], unit: str, row: Row, s: int) -> None:
        """Add `s` times the row's counters at (unit, each of its days that is set)."""
        for day_at, counters in self.days:
            day = row[day_at]
            if day is None:
                continue
            key = (unit, day.toordinal())
            acc = into.get(key)
            if acc is None:
                acc = into[key] = [0] * len(COUNT_COLUMNS)
            for column, flag_at in counters:
                acc[column] += s if flag_at is None else s * int(row[flag_at])


Pair = tuple[Row | None, Row]  # a record's old contribution (None: new record), its new one


def signed(pairs: Sequence[Pair]) -> Iterator[tuple[Row, int]]:
    """Each old row counted out (-1) and each new one counted in (+1)."""
    for old, new in pairs:
        if old is not None:
            yield old, -1
        yield new, 1


def _record(
    facts: Facts,
    rows: FeedRows,
    feed: str,
    row: Row,
    s: int,
    opens: tuple[str, datetime | None, bool, datetime | None],
) -> None:
    """One signed dossier or report: its unit, its counters, and the open sets it is in
    (`opens` = unit, open_due, open766, open766_due): open with a due date, and the 766 sets
    (`contributions.DOSSIERS.opens`…) of every open record and those with a 766 deadline."""
    unit, open_due, open766, due766 = opens
    facts.units.add(unit)
    rows.add(facts.counts, unit, row, s)
    if open_due is not None:
        facts.opens.append(OpenFact(unit, feed, open_due, s, True))
    if due766 is not None:
        facts.opens.append(OpenFact(unit, f"{feed}766", due766, s, True))
    if open766:
        facts.opens.append(OpenFact(unit, f"{feed}766_all", EPOCH, s, True))


def dossier_facts(facts: Facts, rows: FeedRows, pairs: Sequence[Pair]) -> None:
    """Rows as in `kpi_dossier_proj` (`contributions.DOSSIERS`)."""
    fields = itemgetter(*(rows.at[c] for c in ("unit_code", "procedure_code", "recv_day")))
    online_of = itemgetter(rows.at["online"])
    opens = itemgetter(*(rows.at[c] for c in ("unit_code", "open_due", "open766", "open766_due")))
    for row, s in signed(pairs):
        unit, procedure, recv_day = fields(row)
        _record(facts, rows, "dossiers", row, s, opens(row))
        if online_of(row):
            facts.online[(unit, procedure)][recv_day] += s


def report_facts(facts: Facts, rows: FeedRows, pairs: Sequence[Pair]) -> None:
    """Rows as in `kpi_report_proj` (`contributions.REPORTS`)."""
    opens = itemgetter(*(rows.at[c] for c in ("unit_code", "open_due", "open766", "open766_due")))
    for row, s in signed(pairs):
        _record(facts, rows, "reports", row, s, opens(row))
    response = itemgetter(*(rows.at[c] for c in ("unit_code", "recv_day", "resp_seconds")))
    for old, new in pairs:
        before = response(old) if old is not None else None
        after = response(new)
        if before == after:
            continue
        if before is not None and before[2] is not None:
            facts.removed[before[0]].append((before[1].toordinal(), float(before[2])))
            facts.median_units.add(before[0])
        if after[2] is not None:
            facts.added[after[0]].append((after[1].toordinal(), float(after[2])))
            facts.median_units.add(after[0])


def document_facts(
    facts: Facts, rows: FeedRows, pairs: Sequence[Pair], ancestors: dict[str, list[str]]
) -> None:
    """Rows as in `kpi_document_proj` (`contributions.DOCUMENTS`); a document counts once at
    every distinct ancestor of the units involved."""
    fields = itemgetter(*(rows.at[c] for c in ("units", "open_units", "due_at")))
    for row, s in signed(pairs):
        units, open_units, due_at = fields(row)
        facts.units.update(units)
        facts.units.update(open_units)
        for a in {a for u in units for a in ancestors.get(u, ())}:
            rows.add(facts.doc_counts, a, row, s)
        if due_at is not None:
            for a in {a for u in open_units for a in ancestors.get(u, ())}:
                facts.opens.append(OpenFact(a, "documents", due_at, s, False))


def agency_report_facts(facts: Facts, rows: FeedRows, pairs: Sequence[Pair]) -> None:
    """Rows as in `kpi_agency_report_proj` (`contributions.AGENCY_REPORTS`): counters at the
    reporting unit, and the open set `agency_reports` while neither filed nor cancelled."""
    fields = itemgetter(rows.at["unit_code"], rows.at["open_due"])
    for row, s in signed(pairs):
        unit, open_due = fields(row)
        facts.units.add(unit)
        rows.add(facts.counts, unit, row, s)
        if open_due is not None:
            facts.opens.append(OpenFact(unit, "agency_reports", open_due, s, True))
