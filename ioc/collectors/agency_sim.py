"""The simulated province's reporting system: reports of agencies (*báo cáo*) requested of
its districts and communes on a calendar, filed online or on paper, on time, late or never.

Two regimes, as provinces run them under Decree 09/2019/NĐ-CP:
- the **weekly progress report to the IOC** (the chairman's request in the seed articles):
  every district, requested Monday 08:00, due Friday 16:00 (a time);
- the **monthly socio-economic report** (*báo cáo tình hình kinh tế - xã hội tháng*): every
  district and commune, requested on the 1st at 08:00, due the 15th (a date: the end of that
  day) — communes report to their district, districts to the province.

Each district has its own habits (share filed online 30–85 %, late 5–30 %, never filed 4 %),
which its communes share; 1 % of requests are cancelled. A report's versions (requested →
filed → accepted) appear when the world's clock reaches them. Drawn from a random generator
of its own, so the other feeds are the same with or without this one.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from typing import Any, Protocol

from ioc.localtime import LOCAL_TZ

FEED = "agency_reports"
WEEKLY = ("BC-IOC-TUAN", "Báo cáo tiến độ công việc tuần gửi Trung tâm IOC")
MONTHLY = ("BC-KTXH-THANG", "Báo cáo tình hình kinh tế - xã hội tháng")


class Place(Protocol):
    """A unit of the simulated province (`simulator.Unit`)."""

    @property
    def code(self) -> str: ...
    @property
    def level(self) -> str: ...
    @property
    def parent(self) -> str | None: ...


class AgencyReportDesk:
    """Schedules the requests of both regimes from `begin` on and the life of each report
    through `schedule(at, action)`; writes versions through `emit(feed, record)`."""

    def __init__(
        self,
        seed: int,
        districts: Sequence[Place],
        communes: Sequence[Place],
        schedule: Callable[[datetime, Callable[[], None]], None],
        emit: Callable[[str, dict[str, Any]], None],
    ) -> None:
        self.rng = random.Random(f"{seed}-agency-reports")
        self.districts = districts
        self.communes = communes
        self.schedule = schedule
        self.emit = emit
        # per district: (share online, share late, share never filed)
        self.habits = {
            d.code: (self.rng.uniform(0.3, 0.85), self.rng.uniform(0.05, 0.3), 0.04)
            for d in districts
        }

    def start(self, begin: datetime) -> None:
        """Schedule the first request of each regime at or after `begin`."""
        local = begin.astimezone(LOCAL_TZ)
        monday = (local - timedelta(days=local.weekday())).replace(
            hour=8, minute=0, second=0, microsecond=0
        )
        if monday < local:
            monday += timedelta(days=7)
        first = local.replace(day=1, hour=8, minute=0, second=0, microsecond=0)
        if first < local:
            first = (first + timedelta(days=32)).replace(day=1)
        self.schedule(monday, lambda: self._weekly(monday))
        self.schedule(first, lambda: self._monthly(first))

    def _weekly(self, monday: datetime) -> None:
        year, week, _ = monday.isocalendar()
        due = monday + timedelta(days=4, hours=8)  # Friday 16:00
        for d in self.districts:
            self._request(d, WEEKLY, f"{year}-W{week:02d}", "weekly", monday, due.isoformat(), "70")
        following = monday + timedelta(days=7)
        self.schedule(following, lambda: self._weekly(following))

    def _monthly(self, first: datetime) -> None:
        due_day = first.replace(day=15)
        due = due_day.strftime("%Y-%m-%d")  # a date: the end of the 15th
        for u in [*self.districts, *self.communes]:
            receiver = "70" if u.level == "district" else (u.parent or "70")
            self._request(u, MONTHLY, f"{first:%Y-%m}", "monthly", first, due, receiver)
        following = (first + timedelta(days=32)).replace(day=1)
        self.schedule(following, lambda: self._monthly(following))

    def _request(
        self,
        unit: Place,
        regime: tuple[str, str],
        period: str,
        frequency: str,
        at: datetime,
        due: str,
        receiver: str,
    ) -> None:
        r = self.rng
        code, title = regime
        record: dict[str, Any] = {
            "id": f"{code}-{period}-{unit.code}", "unit": unit.code, "regime": code,
            "title": f"{title} {period}", "period": period, "frequency": frequency,
            "receiver": receiver, "requested_at": at.isoformat(), "due_at": due,
            "status": "requested", "updated_at": at.isoformat(),
        }  # fmt: skip
        self.emit(FEED, record)
        district = unit.code if unit.level == "district" else (unit.parent or "")
        online, late, never = self.habits.get(district, (0.5, 0.15, 0.04))
        roll = r.random()
        if roll < 0.01:
            self._later(record, at + timedelta(hours=r.uniform(1, 48)), status="cancelled")
            return
        if roll < 0.01 + never:
            return  # never filed: overdue once its deadline passes
        deadline = _due_moment(due)
        if r.random() < late:
            filed = deadline + timedelta(hours=r.uniform(2, 120))
        else:
            filed = at + (deadline - at) * r.uniform(0.3, 0.99)
        channel = "online" if r.random() < online else "paper"
        self._later(record, filed, status="filed", filed_at=filed.isoformat(), channel=channel)
        if r.random() < 0.7:
            accepted = filed + timedelta(hours=r.uniform(1, 48))
            self._later(record, accepted, status="accepted")

    def _later(self, record: dict[str, Any], at: datetime, **changes: Any) -> None:
        """A later version of `record` (built on the latest one) when the clock reaches `at`."""

        def apply() -> None:
            record.update(changes, updated_at=at.isoformat())
            self.emit(FEED, record)

        self.schedule(at, apply)


def _due_moment(due: str) -> datetime:
    if len(due) == 10:  # a date: the end of that local day
        return datetime.fromisoformat(due).replace(hour=23, minute=59, tzinfo=LOCAL_TZ)
    return datetime.fromisoformat(due)
