"""A simulated province: the portal, the 1022 hotline, the document system and the reporting
system (reports of agencies, `agency_sim`) of Bình Phước (70), as append-only feeds of record
versions served per docs/api.md §1.5.

Deterministic: the same seed, start time and clock give the same items in the same order.
The world starts with `backfill_days` of history (every version a real system would have
synced, up to now), then creates `rate` new records per second of wall-clock time; each
record's life cycle (received → processing → finished on time or late → returned) is drawn
when it is created and its later versions appear when the clock reaches them, so open
dossiers from the backfill keep finishing while the demo runs.
"""

from __future__ import annotations

import csv
import heapq
import random
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape

from ioc.collectors.agency_sim import AgencyReportDesk
from ioc.localtime import LOCAL_TZ
from ioc.units import DEMO_FILES

FEED_NAMES = ("procedures", "dossiers", "reports", "documents", "agency_reports")
PROVINCE_ORGAN = "000.00.00.H10"


@dataclass(frozen=True, slots=True)
class Procedure:
    code: str
    name: str
    sector_code: str
    sector_name: str
    level: int
    days: float
    tier: str  # "district" or "commune": which units offer it


PROCEDURES = [
    Procedure("1.001612.000.00.00.H10", "Đăng ký thành lập hộ kinh doanh", "G09-TL01",
              "Thành lập và hoạt động của hộ kinh doanh", 4, 3, "district"),
    Procedure("2.000720.000.00.00.H10", "Đăng ký thay đổi nội dung đăng ký hộ kinh doanh",
              "G09-TL01", "Thành lập và hoạt động của hộ kinh doanh", 4, 3, "district"),
    Procedure("1.004227.000.00.00.H10", "Cấp giấy phép xây dựng nhà ở riêng lẻ", "G11-XD01",
              "Hoạt động xây dựng", 3, 15, "district"),
    Procedure("1.003003.000.00.00.H10", "Đăng ký biến động quyền sử dụng đất", "G02-DD01",
              "Đất đai", 3, 10, "district"),
    Procedure("1.001045.000.00.00.H10", "Cấp giấy chứng nhận quyền sử dụng đất lần đầu",
              "G02-DD01", "Đất đai", 2, 15, "district"),
    Procedure("2.001263.000.00.00.H10", "Cấp giấy phép kinh doanh bán lẻ rượu", "G12-LT01",
              "Lưu thông hàng hóa trong nước", 4, 10, "district"),
    Procedure("1.000894.000.00.00.H10", "Đăng ký khai sinh", "G13-HT01", "Hộ tịch", 4, 1,
              "commune"),
    Procedure("1.001193.000.00.00.H10", "Đăng ký khai tử", "G13-HT01", "Hộ tịch", 4, 1,
              "commune"),
    Procedure("1.000656.000.00.00.H10", "Đăng ký kết hôn", "G13-HT01", "Hộ tịch", 3, 1,
              "commune"),
    Procedure("2.000908.000.00.00.H10", "Cấp bản sao từ sổ gốc", "G13-HT01", "Hộ tịch", 3, 0.5,
              "commune"),
    Procedure("2.000815.000.00.00.H10", "Chứng thực bản sao từ bản chính giấy tờ", "G14-CT01",
              "Chứng thực", 3, 0.5, "commune"),
    Procedure("1.004082.000.00.00.H10", "Xác nhận tình trạng hôn nhân", "G13-HT01", "Hộ tịch",
              4, 3, "commune"),
    Procedure("1.001699.000.00.00.H10", "Đăng ký thường trú", "G15-CT01", "Đăng ký, quản lý cư trú",
              4, 7, "commune"),
    Procedure("2.001157.000.00.00.H10", "Hỗ trợ chi phí mai táng cho đối tượng bảo trợ xã hội",
              "G16-BT01", "Bảo trợ xã hội", 3, 5, "commune"),
]  # fmt: skip

# Fees (VND) of the fee-bearing procedures, for `DanhSachLePhi` (766 indicator 3.6).
FEES = {
    "1.001612.000.00.00.H10": 100000, "2.000720.000.00.00.H10": 100000,
    "1.004227.000.00.00.H10": 75000, "1.003003.000.00.00.H10": 30000,
    "1.001045.000.00.00.H10": 100000, "2.001263.000.00.00.H10": 1200000,
    "2.000908.000.00.00.H10": 8000, "2.000815.000.00.00.H10": 2000,
    "1.001699.000.00.00.H10": 20000,
}  # fmt: skip
FILES = "https://dichvucong.binhphuoc.gov.vn/files"

REPORT_CATEGORIES = [
    ("environment", 18, "Rác thải tập kết sai nơi quy định",
     "Rác sinh hoạt đổ ven đường, bốc mùi."),
    ("traffic", 16, "Ổ gà trên đường liên xã",
     "Mặt đường hư hỏng nặng, nguy hiểm cho người đi xe máy."),
    ("urban_order", 14, "Lấn chiếm vỉa hè",
     "Hàng quán lấn chiếm vỉa hè, người đi bộ phải xuống lòng đường."),
    ("power", 12, "Đèn chiếu sáng hỏng", "Đèn đường không hoạt động nhiều ngày, ban đêm rất tối."),
    ("water", 9, "Mất nước sinh hoạt kéo dài",
     "Khu dân cư bị mất nước hai ngày chưa có thông báo."),
    ("land", 9, "Tranh chấp ranh giới đất",
     "Đề nghị kiểm tra việc xây tường rào lấn sang đất liền kề."),
    ("admin_procedure", 8, "Hồ sơ giải quyết chậm",
     "Hồ sơ đã quá hạn hẹn trả nhưng chưa nhận được kết quả."),
    ("health", 5, "Phun thuốc phòng sốt xuất huyết",
     "Khu phố có nhiều ca sốt xuất huyết, đề nghị phun thuốc."),
    ("education", 4, "Tuyển sinh lớp một", "Đề nghị công khai danh sách tuyển sinh lớp một."),
    ("other", 5, "Ý kiến khác", "Người dân góp ý về hoạt động của khu phố."),
]  # fmt: skip
REPORT_CHANNELS = [("phone", 40), ("app", 22), ("zalo", 18), ("web", 10), ("email", 5), ("sms", 5)]
FAMILY = ["Nguyễn", "Trần", "Lê", "Phạm", "Hoàng", "Huỳnh", "Phan", "Vũ", "Võ", "Đặng", "Bùi"]
MIDDLE = ["Văn", "Thị", "Minh", "Ngọc", "Hữu", "Thanh", "Quốc", "Thu"]
GIVEN = ["An", "Bình", "Châu", "Dũng", "Hà", "Hùng", "Lan", "Linh", "Mai", "Nam", "Phúc", "Tâm"]
DOC_SUBJECTS = [
    "V/v đẩy nhanh tiến độ giải quyết hồ sơ thủ tục hành chính",
    "V/v tăng cường công tác phòng, chống dịch sốt xuất huyết",
    "V/v báo cáo kết quả chuyển đổi số quý",
    "V/v triển khai thanh toán trực tuyến phí, lệ phí",
    "V/v xử lý phản ánh, kiến nghị của người dân qua Tổng đài 1022",
    "V/v số hóa hồ sơ, kết quả giải quyết thủ tục hành chính",
]


@dataclass(frozen=True, slots=True)
class Unit:
    code: str
    name: str
    level: str
    parent: str | None


def demo_units() -> list[Unit]:
    with Path(DEMO_FILES[0]).open(encoding="utf-8") as f:
        return [
            Unit(r["code"], r["name"], r["level"], r["parent_code"] or None)
            for r in csv.DictReader(f)
        ]


def demo_organs(units: list[Unit]) -> dict[str, str]:
    """Organ id → district code for the demo's document exchange: the ids of
    `organs-70.csv` where they exist, made-up directory-style ids for the other districts."""
    known = {"688": "000.23.17.H10", "689": "000.21.17.H10"}
    organs = {PROVINCE_ORGAN: "70"}
    for i, u in enumerate(u for u in units if u.level == "district"):
        organs[known.get(u.code, f"000.{40 + i}.17.H10")] = u.code
    return organs


def _compact(t: datetime) -> str:
    return t.astimezone(LOCAL_TZ).strftime("%Y%m%d%H%M%S")


def _slash(t: datetime) -> str:
    return t.astimezone(LOCAL_TZ).strftime("%Y/%m/%d %H:%M:%S")


class World:
    """The simulated sources. Call `advance()` (or read a feed) to let time pass."""

    def __init__(
        self,
        *,
        seed: int = 7,
        rate: float = 5.0,
        start: datetime | None = None,
        backfill_days: float = 30.0,
        backfill_per_day: int = 200,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        self.rng = random.Random(seed)
        self.rate = rate
        self.clock = clock or (lambda: datetime.now(UTC))
        self.now = start or self.clock()
        self.units = demo_units()
        self.districts = [u for u in self.units if u.level == "district"]
        self.communes = [u for u in self.units if u.level == "commune"]
        self.organs = demo_organs(self.units)
        self.district_organ = {code: organ for organ, code in self.organs.items()}
        # Each district has its own habits: share online, late, digitised.
        self.habits = {
            d.code: (self.rng.uniform(0.35, 0.75), self.rng.uniform(0.02, 0.2),
                     self.rng.uniform(0.7, 1.0))
            for d in self.districts
        }  # fmt: skip
        self.logs: dict[str, list[Any]] = {name: [] for name in FEED_NAMES}
        self._latest: dict[str, dict[str, Any]] = {}  # id → latest version of a record
        # (time, tie-breaker, action): plain tuples keep the heap fast
        self._pending: list[tuple[float, int, datetime, Callable[[], None]]] = []
        self._seq = 0
        self._counter = 0
        self._catalogue()
        # the reporting system's calendar of requests (`agency_sim`): its own random numbers
        self.agency = AgencyReportDesk(
            seed, self.districts, self.communes, self._schedule, self._emit
        )
        self.agency.start(self.now - timedelta(days=backfill_days))
        self._backfill(backfill_days, backfill_per_day)
        self._last = self.now

    # --- time ---------------------------------------------------------------------------

    def advance(self, until: datetime | None = None) -> None:
        """Create the records due by `until` (default: the clock) and apply due versions."""
        until = until or self.clock()
        if until <= self._last:
            return
        seconds = (until - self._last).total_seconds()
        # At most one minute of arrivals per call: a paused demo does not flood on resume.
        arrivals = self._poisson(min(seconds, 60.0) * self.rate)
        for _ in range(arrivals):
            at = self._last + timedelta(seconds=self.rng.uniform(0, seconds))
            self._schedule(at, self._new_record_at(at))
        self._run_until(until)
        self._last = until

    def _poisson(self, mean: float) -> int:
        whole = int(mean)
        return whole + (1 if self.rng.random() < mean - whole else 0)

    def _schedule(self, at: datetime, apply: Callable[[], None]) -> None:
        self._seq += 1
        heapq.heappush(self._pending, (at.timestamp(), self._seq, at, apply))

    def _run_until(self, until: datetime) -> None:
        limit = until.timestamp()
        while self._pending and self._pending[0][0] <= limit:
            _, _, at, apply = heapq.heappop(self._pending)
            self.now = at
            apply()
        self.now = until

    def _new_record_at(self, at: datetime) -> Callable[[], None]:
        roll = self.rng.random()
        if roll < 0.72:
            return lambda: self._new_dossier(at)
        if roll < 0.97:
            return lambda: self._new_report(at)
        return lambda: self._new_document(at)

    # --- backfill -----------------------------------------------------------------------

    def _backfill(self, days: float, per_day: int) -> None:
        end = self.now
        begin = end - timedelta(days=days)
        total = int(days * per_day)
        for _ in range(total):
            day = begin + timedelta(days=self.rng.uniform(0, days))
            local = day.astimezone(LOCAL_TZ)
            # office hours, weekdays mostly
            if local.weekday() >= 5 and self.rng.random() < 0.8:
                local -= timedelta(days=2)
            hour = self.rng.uniform(7.5, 17.0)
            at = local.replace(hour=int(hour), minute=int(hour % 1 * 60), second=0, microsecond=0)
            at = at.astimezone(UTC)
            if not begin <= at < end:
                continue
            self._schedule(at, self._new_record_at(at))
        self._run_until(end)

    # --- procedures ---------------------------------------------------------------------

    def _catalogue(self) -> None:
        for unit in self.districts + self.communes:
            for p in PROCEDURES:
                if p.tier != unit.level:
                    continue
                self.logs["procedures"].append(
                    {"MaTTHC": p.code, "TenTTHC": p.name, "MaLinhVuc": p.sector_code,
                     "MucDo": p.level, "TrucTuyen": p.level >= 3, "MaDonVi": unit.code,
                     "ThoiGianGiaiQuyet": f"{p.days:g}"}
                )  # fmt: skip

    # --- dossiers -----------------------------------------------------------------------

    def _person(self) -> str:
        r = self.rng
        return f"{r.choice(FAMILY)} {r.choice(MIDDLE)} {r.choice(GIVEN)}"

    def _new_dossier(self, at: datetime) -> None:
        """A dossier as real one-stop systems sync it (docs/api.md §1.1): every value a string,
        the channel left out for some desk dossiers (absent = in person), the unit left out
        for some district dossiers (their MaHoSo's organ prefix names it), digitised files,
        fees and how they were paid; later versions add supplement requests and results."""
        r = self.rng
        p = r.choice(PROCEDURES)
        unit = r.choice(self.districts if p.tier == "district" else self.communes)
        district = unit.code if unit.level == "district" else (unit.parent or "689")
        online_share, late_share, digitised_share = self.habits[district]
        channel = (
            2 if p.level >= 3 and r.random() < online_share else (3 if r.random() < 0.05 else 1)
        )
        self._counter += 1
        due = at + timedelta(days=p.days)
        fee = FEES.get(p.code, 0)
        digitised = channel == 2 or r.random() < digitised_share
        dossier: dict[str, Any] = {
            "MaHoSo": f"{self.district_organ.get(district, PROVINCE_ORGAN)}-"
                      f"{at.astimezone(LOCAL_TZ):%y%m%d}-{self._counter:06d}",
            "MaTTHC": p.code, "TenTTHC": p.name, "MaLinhVuc": p.sector_code,
            "TenLinhVuc": p.sector_name, "KenhThucHien": str(channel), "MaDonVi": unit.code,
            "NgayTiepNhan": _compact(at), "NgayHenTra": _compact(due),
            "TrangThaiHoSo": "1" if channel == 2 else "2", "MucDo": str(p.level),
            "NgayKetThucXuLy": "", "NgayTra": "", "NgayTuChoi": "",
            "HoSoCoThanhPhanSoHoa": "1" if digitised else "0",
            "DuocThanhToanTrucTuyen": self._payment(channel, fee),
            "TaiKhoanDuocXacThucVoiVNeID": "1" if channel == 2 and r.random() < 0.7 else "0",
            "ChuHoSo": self._person(), "SoDienThoai": f"09{r.randrange(10**8):08d}",
            "DiaChi": f"{unit.name}, Bình Phước",
            "TaiLieuNop": self._files(digitised),
            "DanhSachLePhi": [{"TenPhiLePhi": f"Lệ phí {p.name.lower()}", "MaPhiLePhi": "LP",
                               "HinhThucThu": "1", "Gia": str(fee), "LoaiPhiLePhi": "1"}]
                             if fee else [],
            "DanhSachHoSoBoSung": [], "DanhSachGiayToKetQua": [],
            "DSKetNoiCSDL": [{"MaCSDL": "1"}] if r.random() < 0.4 else [],
        }  # fmt: skip
        if channel == 1 and r.random() < 0.5:
            del dossier["KenhThucHien"]  # in person, as most desk systems say it: not at all
        if unit.level == "district" and r.random() < 0.3:
            del dossier["MaDonVi"]  # the MaHoSo prefix (the district's organ) names it
        self._emit("dossiers", dossier)
        self._latest[dossier["MaHoSo"]] = dossier
        start = at + timedelta(minutes=r.uniform(5, 240))
        outcome = r.random()
        if outcome < 0.02:
            self._schedule(start, lambda: self._dossier_status(dossier, 3))
            return
        self._schedule(start, lambda: self._dossier_status(dossier, 4))
        if outcome < 0.04:
            self._schedule(start + timedelta(hours=r.uniform(2, 48)),
                           lambda: self._dossier_status(dossier, r.choice((7, 8))))  # fmt: skip
            return
        # Some dossiers wait for the citizen's supplement (once, sometimes twice): the pause
        # moves the due date, and the work resumes when the citizen comes back.
        paused = timedelta()
        back = start
        asked = start + timedelta(hours=r.uniform(1, 24))
        for _ in range(2 if r.random() < 0.25 else 1) if r.random() < 0.1 else ():
            pause = timedelta(days=r.uniform(0.5, 6))
            back = asked + pause
            self._supplement(dossier, asked, back, due + paused + pause)
            paused += pause
            asked = back + timedelta(hours=r.uniform(2, 48))
        span = (due - start).total_seconds()
        late = r.random() < late_share
        finish = paused + (
            due + timedelta(hours=r.uniform(2, 96))
            if late
            else start + timedelta(seconds=max(600.0, span * r.uniform(0.3, 0.98)))
        )
        finish = max(finish, back + timedelta(hours=r.uniform(1, 8)))  # not while it waits
        result = {"TenGiayTo": f"Kết quả {p.name.lower()}", "MaThanhPhanHoSo": "",
                  "GiayToId": str(self._counter),
                  "DuongDanTepTinKetQua": f"{FILES}/kq-{self._counter}.pdf"
                  if r.random() < 0.8 else ""}  # fmt: skip
        self._schedule(finish, lambda: self._dossier_status(dossier, 9))
        self._schedule(finish + timedelta(hours=r.uniform(1, 30)),
                       lambda: self._dossier_status(dossier, 10,
                                                    DanhSachGiayToKetQua=[result]))  # fmt: skip

    def _payment(self, channel: int, fee: int) -> str:
        """`DuocThanhToanTrucTuyen`: 1 on DVCQG's platform, 2 on the province's gateway,
        0 not online; what an online dossier with a fee did."""
        if channel != 2 or not fee:
            return "0"
        roll = self.rng.random()
        return "1" if roll < 0.4 else ("2" if roll < 0.65 else "0")

    def _files(self, digitised: bool) -> list[dict[str, str]]:
        if not digitised:
            return []
        self._counter += 1
        reused = self.rng.random() < 0.25
        return [{"TepDinhKemId": str(self._counter), "TenTepDinhKem": "Tờ khai",
                 "IsDeleted": "False", "MaThanhPhanHoSo": "TK",
                 "DuongDanTaiTepTin": f"{FILES}/{self._counter}.pdf", "DuocSoHoa": "1",
                 "DuocTaiSuDung": "1" if reused else "0", "DuocLayTuKhoDMQG": "0"}]  # fmt: skip

    def _supplement(
        self, dossier: dict[str, Any], asked: datetime, back: datetime, moved: datetime
    ) -> None:
        """A supplement request at `asked` (status 5), completed at `back` (status 4) with the
        due date moved to `moved`."""
        key = dossier["MaHoSo"]

        def ask() -> None:
            latest = self._latest.get(key, dossier)
            entry = {"HoSoBoSungId": str(len(latest["DanhSachHoSoBoSung"]) + 1),
                     "NoiDungBoSung": "Bổ sung giấy tờ còn thiếu", "NgayBoSung": _compact(asked),
                     "NgayTiepNhanBoSung": "", "TrangThaiBoSung": "0",
                     "NgayHenTraTruoc": latest["NgayHenTra"], "NgayHenTraMoi": ""}  # fmt: skip
            requests = [*latest["DanhSachHoSoBoSung"], entry]
            self._dossier_status(dossier, 5, DanhSachHoSoBoSung=requests)

        def done() -> None:
            latest = self._latest.get(key, dossier)
            requests = [dict(e) for e in latest["DanhSachHoSoBoSung"]]
            requests[-1].update(NgayTiepNhanBoSung=_compact(back), TrangThaiBoSung="1",
                                NgayHenTraMoi=_compact(moved))  # fmt: skip
            self._dossier_status(dossier, 4, DanhSachHoSoBoSung=requests)

        self._schedule(asked, ask)
        self._schedule(back, done)

    def _dossier_status(self, dossier: dict[str, Any], status: int, **changes: Any) -> None:
        dossier = dict(self._latest.get(dossier["MaHoSo"], dossier), TrangThaiHoSo=str(status),
                       **changes)  # fmt: skip
        if status in (9, 10) and not dossier.get("NgayKetThucXuLy"):
            dossier["NgayKetThucXuLy"] = _compact(self.now)
        if status == 10:
            dossier["NgayTra"] = _compact(self.now)
        if status in (3, 7, 8):
            dossier["NgayTuChoi"] = _compact(self.now)
        self._emit("dossiers", dossier)
        self._latest[dossier["MaHoSo"]] = dossier  # later versions build on this one

    # --- reports ------------------------------------------------------------------------

    def _new_report(self, at: datetime) -> None:
        r = self.rng
        category, _, title, content = r.choices(
            REPORT_CATEGORIES, weights=[c[1] for c in REPORT_CATEGORIES]
        )[0]
        channel = r.choices(REPORT_CHANNELS, weights=[c[1] for c in REPORT_CHANNELS])[0][0]
        unit = r.choice(self.communes)
        urgent = r.random() < 0.15
        due = at + timedelta(days=2 if urgent else r.choice((5, 7, 10)))
        self._counter += 1
        report: dict[str, Any] = {
            "id": f"1022-{self._counter:07d}", "received_at": at.astimezone(LOCAL_TZ).isoformat(),
            "channel": channel, "category": category, "unit": unit.code, "status": "received",
            "due_at": due.astimezone(LOCAL_TZ).isoformat(), "title": title,
            "content": f"{content} ({unit.name})", "citizen_name": self._person(),
            "citizen_phone": f"03{r.randrange(10**8):08d}", "updated_at": at.isoformat(),
        }  # fmt: skip
        self._emit("reports", report)
        assigned = at + timedelta(hours=r.uniform(0.2, 6))
        responded = assigned + timedelta(hours=r.uniform(0.5, 40))
        self._schedule(assigned, lambda: self._report_status(report, "assigned"))
        if r.random() < 0.04:
            self._schedule(responded, lambda: self._report_status(report, "rejected"))
            return
        self._schedule(responded, lambda: self._report_status(report, "in_progress"))
        late = r.random() < 0.12
        span = (due - responded).total_seconds()
        resolved = (
            due + timedelta(hours=r.uniform(1, 72))
            if late or span <= 0
            else responded + timedelta(seconds=span * r.uniform(0.2, 0.95))
        )
        self._schedule(resolved, lambda: self._report_status(report, "resolved"))

    def _report_status(self, report: dict[str, Any], status: str) -> None:
        report = dict(self._latest.get(report["id"], report))
        report["status"] = status
        report["updated_at"] = self.now.isoformat()
        if status == "assigned":
            report["assigned_to"] = f"UBND {self.rng.choice(self.communes).name}"
        if status == "in_progress":
            report["first_response_at"] = self.now.astimezone(LOCAL_TZ).isoformat()
        if status == "resolved":
            report.setdefault("first_response_at", self.now.astimezone(LOCAL_TZ).isoformat())
            report["resolved_at"] = self.now.astimezone(LOCAL_TZ).isoformat()
            roll = self.rng.random()  # the citizen's rating, when given (766 indicator 5.3)
            if roll < 0.7:
                report["rating"] = "satisfied" if roll < 0.6 else "dissatisfied"
        if status == "rejected":
            report["rejected_at"] = self.now.astimezone(LOCAL_TZ).isoformat()
        self._latest[report["id"]] = report
        self._emit("reports", report)

    # --- documents ----------------------------------------------------------------------

    def _new_document(self, at: datetime) -> None:
        r = self.rng
        self._counter += 1
        number = 1000 + self._counter % 9000
        outgoing = r.random() < 0.7
        if outgoing:
            sender = PROVINCE_ORGAN
            district_organs = [o for o in self.organs if o != PROVINCE_ORGAN]
            recipients = r.sample(district_organs, r.randint(1, 3))
            notation = "UBND-KGVX"
        else:
            sender = r.choice([o for o in self.organs if o != PROVINCE_ORGAN])
            recipients = [PROVINCE_ORGAN]
            notation = "BC-UBND"
        day = at.astimezone(LOCAL_TZ)
        due = day + timedelta(days=r.choice((5, 7, 10, 15)))
        doc_id = f"{sender},{day:%Y/%m/%d},{number}/{notation}"
        paper = 1 if r.random() < 0.02 else 0
        self.logs["documents"].append(
            _envelope(doc_id, sender, recipients, number, notation, day, due,
                      r.choice(DOC_SUBJECTS), self._person(), paper)
        )  # fmt: skip
        for organ in recipients:
            t = at + timedelta(minutes=r.uniform(1, 30))
            late = r.random() < 0.1
            for code, hours in (("01", 0), ("03", 2), ("04", 6), ("05", 24)):
                when = t + timedelta(hours=hours * r.uniform(0.5, 1.5))
                self._schedule(when, self._doc_status(doc_id, organ, code))
            finish = (
                (due + timedelta(days=r.uniform(0.5, 4)))
                if late
                else (t + (due - t) * r.uniform(0.3, 0.95))
            )
            self._schedule(finish, self._doc_status(doc_id, organ, "06"))

    def _doc_status(self, doc_id: str, organ: str, code: str) -> Callable[[], None]:
        def apply() -> None:
            self.logs["documents"].append(_status_xml(doc_id, organ, code, self.now))

        return apply

    # --- feeds --------------------------------------------------------------------------

    def _emit(self, feed: str, record: dict[str, Any]) -> None:
        self.logs[feed].append(dict(record))

    def page(self, feed: str, since: str | None, limit: int) -> dict[str, Any]:
        """The §1.5 page of `feed` after cursor `since` (an offset into the feed's log)."""
        self.advance()
        log = self.logs[feed]
        start = int(since) if since and since.isdigit() else 0
        items = log[start : start + limit]
        end = start + len(items)
        return {"items": items, "next": str(end), "has_more": end < len(log)}


STATUS_TEXT = {
    "01": "Đã đến", "03": "Đã tiếp nhận", "04": "Đã phân công xử lý", "05": "Đang xử lý",
    "06": "Đã hoàn thành",
}  # fmt: skip


def _envelope(
    doc_id: str, sender: str, recipients: list[str], number: int, notation: str,
    day: datetime, due: datetime, subject: str, signer: str, paper: int,
) -> str:  # fmt: skip
    to = "".join(f"<edXML:To><edXML:OrganId>{o}</edXML:OrganId></edXML:To>" for o in recipients)
    return (
        '<?xml version="1.0" encoding="utf-8"?>'
        '<edXML xmlns="http://www.mic.gov.vn/TBT/QCVN_102_2016">'
        '<edXML:edXMLEnvelope xmlns:edXML="http://www.mic.gov.vn/TBT/QCVN_102_2016">'
        "<edXML:edXMLHeader><edXML:MessageHeader>"
        f"<edXML:From><edXML:OrganId>{sender}</edXML:OrganId></edXML:From>{to}"
        f"<edXML:Code><edXML:CodeNumber>{number}</edXML:CodeNumber>"
        f"<edXML:CodeNotation>{notation}</edXML:CodeNotation></edXML:Code>"
        f"<edXML:PromulgationInfo><edXML:Place>Bình Phước</edXML:Place>"
        f"<edXML:PromulgationDate>{day:%Y/%m/%d}</edXML:PromulgationDate></edXML:PromulgationInfo>"
        "<edXML:DocumentType><edXML:Type>1</edXML:Type><edXML:TypeName>Công văn</edXML:TypeName>"
        f"</edXML:DocumentType><edXML:Subject>{escape(subject)}</edXML:Subject>"
        f"<edXML:SignerInfo><edXML:FullName>{escape(signer)}</edXML:FullName></edXML:SignerInfo>"
        f"<edXML:DueDate>{due:%Y/%m/%d}</edXML:DueDate>"
        "<edXML:OtherInfo><edXML:Priority>1</edXML:Priority></edXML:OtherInfo>"
        f"<edXML:SteeringType>1</edXML:SteeringType><edXML:DocumentId>{doc_id}</edXML:DocumentId>"
        "</edXML:MessageHeader><edXML:TraceHeaderList><edXML:TraceHeader>"
        f"<edXML:OrganId>{sender}</edXML:OrganId><edXML:Timestamp>{_slash(day)}</edXML:Timestamp>"
        "</edXML:TraceHeader><edXML:Bussiness><edXML:BussinessDocType>0</edXML:BussinessDocType>"
        f"<edXML:Paper>{paper}</edXML:Paper></edXML:Bussiness></edXML:TraceHeaderList>"
        "</edXML:edXMLHeader><edXML:edXMLBody/></edXML:edXMLEnvelope></edXML>"
    )


def _status_xml(doc_id: str, organ: str, code: str, at: datetime) -> str:
    return (
        '<?xml version="1.0" encoding="utf-8"?>'
        '<SOAP-ENV:Envelope xmlns:SOAP-ENV="http://schemas.xmlsoap.org/soap/envelope/">'
        '<SOAP-ENV:Header><edXML:Status xmlns:edXML="http://www.mic.gov.vn/TBT/QCVN_102_2016">'
        f"<edXML:ResponseFor><edXML:DocumentId>{doc_id}</edXML:DocumentId></edXML:ResponseFor>"
        f"<edXML:From><edXML:OrganId>{organ}</edXML:OrganId></edXML:From>"
        f"<edXML:StatusCode>{code}</edXML:StatusCode>"
        f"<edXML:Description>{STATUS_TEXT[code]}</edXML:Description>"
        f"<edXML:Timestamp>{_slash(at)}</edXML:Timestamp>"
        "</edXML:Status></SOAP-ENV:Header><SOAP-ENV:Body/></SOAP-ENV:Envelope>"
    )
