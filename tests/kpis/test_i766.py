"""The Decision 766 indicators on records posted as real one-stop systems and hotlines send
them, each hand-computed as numerator / denominator (docs/indicators-766.md).

Now is Monday 2 March 2026, 10:00 local. Commune C1 = 25432 and C2 = 25433 (district 697,
province 70). Tết 2026: Monday 16 – Friday 20 February are not working days. The working-day
deadlines are computed by hand below (d = working day number after the start day).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pytest

from ioc.collectors.service import ingest_json
from ioc.db import Database
from ioc.kpis import rebuild, snapshot

from .conftest import at, by_id, engine_round

NOW = at(2026, 3, 2, 10)
LATER = at(2026, 3, 6, 10)  # Friday: no new records, the clock alone moves
C1, C2, DISTRICT, PROVINCE = "25432", "25433", "697", "70"
SOURCE = "i766-test"


def ts(moment: datetime) -> str:
    """yyyyMMddHHmmss local, as one-stop systems send it (a string)."""
    return moment.strftime("%Y%m%d%H%M%S")


def dossier(code: str, unit: str, received: datetime, status: int, **fields: Any) -> dict[str, Any]:
    """A dossier as a one-stop system syncs it: every value a string, absent dates ""."""
    record: dict[str, Any] = {
        "MaHoSo": f"000.00.97.H10-{code}",
        "SoBienNhan": f"000.00.97.H10-{code}",
        "MaTTHC": "P-PAPER",
        "TenTTHC": "Thủ tục thử",
        "MaDonVi": unit,
        "NgayNopHoSo": ts(received),
        "NgayTiepNhan": ts(received),
        "NgayHenTra": "",
        "NgayKetThucXuLy": "",
        "NgayTra": "",
        "TrangThaiHoSo": str(status),
        "HoSoCoThanhPhanSoHoa": "0",
        "DuocThanhToanTrucTuyen": "0",
        "ChuHoSo": "Nguyễn Văn An",
    }
    record.update(fields)
    return record


def supplement(requested: datetime, completed: datetime | None, **extra: str) -> dict[str, Any]:
    """One `DanhSachHoSoBoSung` entry (the VietOpenCPS/DVCQG sync's names)."""
    return {
        "HoSoBoSungId": f"bs-{ts(requested)}",
        "NguoiYeuCauBoSung": "Cán bộ một cửa",
        "NoiDungBoSung": "Bổ sung bản sao giấy tờ",
        "NgayBoSung": ts(requested),
        "NgayTiepNhanBoSung": ts(completed) if completed else "",
        "TrangThaiBoSung": "1" if completed else "0",
        "NgayHenTraTruoc": extra.get("before", ""),
        "NgayHenTraMoi": extra.get("after", ""),
    }


def result_file(link: str = "") -> dict[str, str]:
    return {
        "TenGiayTo": "Giấy chứng nhận",
        "MaThanhPhanHoSo": "KQ1",
        "GiayToId": "gt-1",
        "DuongDanTepTinKetQua": link,
    }


def dossiers() -> list[dict[str, Any]]:
    return [
        # D1: due Fri 9 Jan 17:00, finished Fri 16 Jan 10:00 — late by the plain rule; a
        # 9-day supplement pause (Tue 6 Jan 09:00 → Thu 15 Jan 09:00) makes the 766 end
        # 16 Jan 10:00 − 9 d = Wed 7 Jan 10:00 <= due: ON TIME.
        dossier(
            "D1",
            C1,
            at(2026, 1, 5, 8),
            10,
            NgayHenTra=ts(at(2026, 1, 9, 17)),
            NgayKetThucXuLy=ts(at(2026, 1, 16, 10)),
            NgayTra=ts(at(2026, 1, 16, 15)),
            DanhSachHoSoBoSung=[supplement(at(2026, 1, 6, 9), at(2026, 1, 15, 9))],
        ),
        # D2: finished before its due date but asked to supplement twice: LATE.
        dossier(
            "D2",
            C1,
            at(2026, 1, 5, 8),
            9,
            NgayHenTra=ts(at(2026, 1, 20, 17)),
            NgayKetThucXuLy=ts(at(2026, 1, 12, 10)),
            DanhSachHoSoBoSung=[
                supplement(at(2026, 1, 6, 9), at(2026, 1, 7, 9)),
                supplement(at(2026, 1, 8, 9), at(2026, 1, 9, 9)),
            ],
        ),
        # D3: open, due Thu 5 Mar 17:00: in its deadline now (ON TIME), overdue on 6 Mar.
        dossier("D3", C1, at(2026, 2, 26, 9), 4, NgayHenTra=ts(at(2026, 3, 5, 17))),
        # D4: open, due Fri 27 Feb 17:00: past it now (LATE, overdue).
        dossier("D4", C1, at(2026, 2, 2, 9), 4, NgayHenTra=ts(at(2026, 2, 27, 17))),
        # D5: waiting for the citizen's supplement (status 5), asked Thu 12 Feb 09:00, due
        # Tue 24 Feb 17:00 (past): ends at the request, ON TIME; never overdue while waiting.
        dossier(
            "D5",
            C1,
            at(2026, 2, 9, 8),
            5,
            NgayHenTra=ts(at(2026, 2, 24, 17)),
            DanhSachHoSoBoSung=[supplement(at(2026, 2, 12, 9), None)],
        ),
        # D6: refused (status 3) Thu 22 Jan 10:00, after its due Wed 21 Jan 17:00: LATE.
        dossier(
            "D6",
            C1,
            at(2026, 1, 20, 9),
            3,
            NgayHenTra=ts(at(2026, 1, 21, 17)),
            NgayTuChoi=ts(at(2026, 1, 22, 10)),
        ),
        # D7: accepted (2), withdrawn (7) by a progress step Wed 4 Feb 10:00, due 10 Feb: counts,
        # ON TIME.
        dossier("D7", C1, at(2026, 2, 3, 8), 2, NgayHenTra=ts(at(2026, 2, 10, 17))),
        # D8: registered online (1) and withdrawn (7) before acceptance: NOT COUNTED.
        dossier("D8", C1, at(2026, 2, 3, 8), 1, NgayHenTra=ts(at(2026, 2, 10, 17))),
        # D9, D10: no NgayHenTra; procedure P-LEGAL takes 5 working days. Received Thu 12 Feb
        # 09:00: d1 = Fri 13, then Tết and the weekend, d2..d5 = Mon 23 .. Thu 26 Feb; the
        # deadline is the end of Thu 26 Feb. (Ignoring Tết it would be Thu 19 Feb.)
        # D9 finished Thu 26 Feb 15:00: ON TIME. D10 finished Fri 27 Feb 09:00: LATE.
        dossier(
            "D9",
            C1,
            at(2026, 2, 12, 9),
            9,
            MaTTHC="P-LEGAL",
            NgayKetThucXuLy=ts(at(2026, 2, 26, 15)),
        ),
        dossier(
            "D10",
            C1,
            at(2026, 2, 12, 9),
            9,
            MaTTHC="P-LEGAL",
            NgayKetThucXuLy=ts(at(2026, 2, 27, 9)),
        ),
        # D11: open, NgayHenTra Fri 20 Feb 17:00; one completed supplement Thu 5 → Tue 10 Feb
        # (5 days) that moved the appointment to Fri 6 Mar 17:00 (NgayHenTraMoi).
        # 766 (NgayHenTra + pause = Wed 25 Feb 17:00 < now): LATE. Overdue (moved date): not.
        dossier(
            "D11",
            C1,
            at(2026, 2, 2, 9),
            4,
            NgayHenTra=ts(at(2026, 2, 20, 17)),
            DanhSachHoSoBoSung=[
                supplement(
                    at(2026, 2, 5, 9),
                    at(2026, 2, 10, 9),
                    before=ts(at(2026, 2, 20, 17)),
                    after=ts(at(2026, 3, 6, 17)),
                )
            ],
        ),
        # March, for the received-day indicators (month window = 1–2 March):
        # M1 online, electronic result, fee 50 000 paid online (1), digitised, a reused
        # component, VNeID; finished Mon 2 Mar 08:00, due 5 Mar: ON TIME.
        dossier(
            "M1",
            C1,
            at(2026, 3, 1, 8),
            10,
            MaTTHC="PA",
            KenhThucHien="2",
            NgayHenTra=ts(at(2026, 3, 5, 17)),
            NgayKetThucXuLy=ts(at(2026, 3, 2, 8)),
            HoSoCoThanhPhanSoHoa="1",
            DuocThanhToanTrucTuyen="1",
            TaiKhoanDuocXacThucVoiVNeID="1",
            TaiLieuNop=[{"TenTepDinhKem": "don.pdf", "DuocTaiSuDung": "1"}],
            DanhSachGiayToKetQua=[result_file("https://dvc.example.vn/kq/m1.pdf")],
            DanhSachLePhi=[{"TenPhiLePhi": "Lệ phí", "MaPhiLePhi": "LP1", "Gia": "50000"}],
        ),
        # M2 online but a paper result without a file (not online/digitised by 766), fee 0,
        # finished Mon 2 Mar 09:00, due 3 Mar: ON TIME.
        dossier(
            "M2",
            C1,
            at(2026, 3, 1, 9),
            9,
            MaTTHC="PA",
            KenhThucHien="2",
            NgayHenTra=ts(at(2026, 3, 3, 17)),
            NgayKetThucXuLy=ts(at(2026, 3, 2, 9)),
            HoSoCoThanhPhanSoHoa="1",
            DanhSachGiayToKetQua=[result_file("")],
            DanhSachLePhi=[{"TenPhiLePhi": "Lệ phí", "MaPhiLePhi": "LP1", "Gia": "0"}],
        ),
        # M3 no KenhThucHien (in person), fee 20 000 not paid, a national database consulted;
        # open, due 10 Mar.
        dossier(
            "M3",
            C1,
            at(2026, 3, 2, 8),
            2,
            MaTTHC="PB",
            NgayHenTra=ts(at(2026, 3, 10, 17)),
            DanhSachLePhi=[{"TenPhiLePhi": "Phí", "MaPhiLePhi": "P2", "Gia": "20000"}],
            DSKetNoiCSDL=[{"MaCSDL": "1"}],
        ),
        # M4 online, no result document, paid online on the province's gateway (2) without a
        # fee list, a component from the citizen's DVCQG folder; open, due 9 Mar.
        dossier(
            "M4",
            C1,
            at(2026, 3, 2, 9),
            4,
            MaTTHC="PC",
            KenhThucHien="2",
            NgayHenTra=ts(at(2026, 3, 9, 17)),
            DuocThanhToanTrucTuyen="2",
            TaiLieuNop=[{"TenTepDinhKem": "cccd.pdf", "DuocLayTuKhoDMQG": "1"}],
        ),
        # M5 by post, digitised, no result document; open, due 20 Mar.
        dossier(
            "M5",
            C1,
            at(2026, 3, 2, 9, 30),
            4,
            KenhThucHien="3",
            NgayHenTra=ts(at(2026, 3, 20, 17)),
            HoSoCoThanhPhanSoHoa="1",
        ),
        # C2: one open dossier within its deadline.
        dossier("E1", C2, at(2026, 2, 27, 9), 4, NgayHenTra=ts(at(2026, 3, 10, 17))),
    ]


def steps() -> list[dict[str, Any]]:
    def step(code: str, status: int, moment: datetime) -> dict[str, Any]:
        return {
            "MaHoSo": f"000.00.97.H10-{code}",
            "NguoiXuLy": "Cán bộ một cửa",
            "ChucDanh": "Chuyên viên",
            "ThoiDiemXuLy": ts(moment),
            "PhongBanXuLy": "Bộ phận Một cửa",
            "NoiDungXuLy": "Công dân yêu cầu rút hồ sơ",
            "TrangThai": str(status),
            "NgayBatDau": ts(moment),
            "NgayKetThucTheoQuyDinh": "",
        }

    return [step("D7", 7, at(2026, 2, 4, 10)), step("D8", 7, at(2026, 2, 4, 10))]


def procedures() -> list[dict[str, Any]]:
    def proc(code: str, online: bool, days: str | None = None) -> dict[str, Any]:
        record: dict[str, Any] = {
            "MaTTHC": code,
            "TenTTHC": f"Thủ tục {code}",
            "MaLinhVuc": "LV1",
            "MucDo": 4 if online else 2,
            "TrucTuyen": online,
            "MaDonVi": C1,
        }
        if days is not None:
            record["ThoiGianGiaiQuyet"] = days
        return record

    return [proc("P-LEGAL", False, "5"), proc("PA", True), proc("PB", True), proc("PC", False)]


def danang(ident: int, received: str, state: str, steps_at: list[str], rating: str | None):
    record: dict[str, Any] = {
        "id": ident,
        "tieuDe": "Phản ánh thử",
        "noiDungYKien": "Nội dung phản ánh",
        "noiDienRa": "Phường Hưng Long",
        "unit": C1,
        "ngayTao": received,
        "hanPhanHoi": "",
        "nguonGopY": "APP",
        "tenLinhVuc": "Môi trường",
        "maTinhTrangXuLy": state,
        "thongTinXuLy": [
            {"donViXuLy": "UBND Phường Hưng Long", "thoiGian": t, "noiDung": "Xử lý"}
            for t in steps_at
        ],
    }
    if rating is not None:
        record["danhGia"] = rating
    return record


def hue_s() -> dict[str, Any]:
    """A Hue-S field-report export (*phản ánh hiện trường*): H1 resolved Tue 10 Feb (15
    working days from Tue 3 Feb end on Tue 3 Mar): ON TIME, rated DISSATISFIED."""
    return {
        "code": 200,
        "message": "Thành công",
        "data": [
            {
                "PhanAnhID": 990001,
                "TaiKhoan": "0905123987",
                "ChuyenMucID": 3,
                "TenChuyenMuc": "Vệ sinh môi trường",
                "TieuDe": "Rác thải tồn đọng",
                "NoiDungPhanAnh": "Rác tồn đọng nhiều ngày.",
                "NgayPhanAnh": "03/02/2026 09:00:00",
                "KinhDo": "",
                "ViDo": "",
                "NoiDungTraLoi": "Đã thu gom.",
                "FileTraLoi": "",
                "DiaChiSuKien": "Khu phố 1, phường Hưng Long",
                "NgayTraLoi": "10/02/2026 10:00:00",
                "DanhSachFileDinhKem": [],
                "DanhSachFileDinhKem_Kq": [],
                "DonViThuLy": "UBND phường Hưng Long",
                "TrangThai": "Đã xử lý",
                "DenNgay": "",
                "CongKhai": True,
                "DanhGia": "Không hài lòng",
                "LoaiXuLy": True,
                "unit": C1,
            }
        ],
        "totalrow": 1,
    }


def reports() -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Đà Nẵng-shaped (Góp ý) exports and docs/api.md §1.3 records. 15 working days:
    R1 Thu 5 Feb → end of Thu 5 Mar; R2 Wed 28 Jan → Jan 29, 30, Feb 2–6, 9–13, 23, 24, 25 →
    end of Wed 25 Feb (ignoring Tết: 18 Feb); R3 Mon 5 Jan → end of Mon 26 Jan; R5 Fri 30
    Jan → end of Fri 27 Feb. 2 working days: R6 Tue 10 Feb → end of Thu 12 Feb; R7 Thu 12 Feb
    → Fri 13, Mon 23 → end of Mon 23 Feb."""
    gopy = [
        # R1 resolved Thu 26 Feb: ON TIME; satisfied.
        danang(
            1, "05/02/2026 09:00", "DA_XU_LY", ["06/02/2026 08:00", "26/02/2026 10:00"], "HAI_LONG"
        ),
        # R2 resolved Wed 25 Feb 10:00: ON TIME only because Tết is not counted; DISSATISFIED.
        danang(
            2,
            "28/01/2026 09:00",
            "DA_XU_LY",
            ["29/01/2026 08:00", "25/02/2026 10:00"],
            "KHONG_HAI_LONG",
        ),
        # R3 resolved Mon 2 Feb: LATE; satisfied (5.3 subtracts it for being late).
        danang(
            3, "05/01/2026 09:00", "DA_XU_LY", ["06/01/2026 08:00", "02/02/2026 10:00"], "HAI_LONG"
        ),
        # R4 open (forwarded), received Wed 25 Feb: WITHIN TIME.
        danang(4, "25/02/2026 09:00", "CHUYEN_TIEP", ["25/02/2026 10:00"], None),
        # R5 open (in progress), received Fri 30 Jan: deadline passed 27 Feb: LATE now.
        danang(5, "30/01/2026 09:00", "DANG_XU_LY", ["02/02/2026 08:00"], None),
    ]
    contract = [
        # R6 refused Thu 12 Feb 10:00 within 2 working days: ON TIME.
        {
            "id": "R6",
            "received_at": "2026-02-10T09:00:00+07:00",
            "channel": "web",
            "category": "other",
            "unit": C1,
            "status": "rejected",
            "rejected_at": "2026-02-12T10:00:00+07:00",
        },
        # R7 refused Tue 24 Feb 09:00, after the end of Mon 23 Feb: LATE.
        {
            "id": "R7",
            "received_at": "2026-02-12T09:00:00+07:00",
            "channel": "web",
            "category": "other",
            "unit": C1,
            "status": "rejected",
            "rejected_at": "2026-02-24T09:00:00+07:00",
        },
        # C2: resolved the next day: ON TIME.
        {
            "id": "S1",
            "received_at": "2026-02-26T09:00:00+07:00",
            "channel": "phone",
            "category": "other",
            "unit": C2,
            "status": "resolved",
            "first_response_at": "2026-02-26T10:00:00+07:00",
            "resolved_at": "2026-02-27T09:00:00+07:00",
        },
    ]
    return gopy, contract


@pytest.fixture(scope="module")
async def loaded(own_db: Database) -> Database:
    gopy, contract = reports()
    async with own_db.session() as s:
        for feed, body in [
            ("procedures", procedures()),
            (
                "dossiers",
                {
                    "session": "s",
                    "madonvi": "000.00.97.H10",
                    "service": "DongBoHoSoMC",
                    "isUpdating": "False",
                    "data": dossiers(),
                },
            ),
            ("dossiers", {"service": "CapNhatTienDoHoSoMC", "data": steps()}),
            ("reports", gopy),
            ("reports", contract),
            ("reports", hue_s()),
        ]:
            result = await ingest_json(s, feed, SOURCE, body)
            assert result.rejected == [], (feed, result.rejected)
    await engine_round(own_db, NOW)
    return own_db


async def figures(db: Database, unit: str, window: str, now: datetime = NOW) -> dict[str, Any]:
    async with db.session() as s:
        snap = await snapshot(s, unit, window, now=now)
    return {k.id: (k.numerator, k.denominator) for k in snap.kpis} | {"_values": by_id(snap.kpis)}


async def test_on_time_2_1_and_5_4(loaded: Database) -> None:
    # Ended in 2026: D1 ✓ D2 ✗ D5 ✓ D6 ✗ D7 ✓ D9 ✓ D10 ✗ M1 ✓ M2 ✓ (D8 not counted) → 6/9.
    # Open now: D3 ✓ D4 ✗ D11 ✗ M3 ✓ M4 ✓ M5 ✓ → 4/6. Year: (6 + 4) / (9 + 6).
    year = await figures(loaded, C1, "year")
    assert year["i766_2_1"] == (10, 15)
    # 5.4 = 100 % − (late share of 2.1 + complaint share, not received = 0).
    assert year["i766_5_4"] == (10, 15)
    # Month (1–2 March) and today (2 March): ended M1 ✓ M2 ✓, open as above → (2 + 4) / (2 + 6).
    assert (await figures(loaded, C1, "month"))["i766_2_1"] == (6, 8)
    assert (await figures(loaded, C1, "today"))["i766_2_1"] == (6, 8)
    # The plain rate for contrast (finished in 2026: D1 late, D2 D9 D10 M1 M2 on time).
    assert year["dossier_ontime_rate"] == (5, 6)
    # District 697 = C1 + C2's open E1 (on time).
    assert (await figures(loaded, DISTRICT, "year"))["i766_2_1"] == (11, 16)
    assert (await figures(loaded, PROVINCE, "year"))["i766_2_1"] == (11, 16)


async def test_overdue_open_pauses_and_follows_moved_due(loaded: Database) -> None:
    # Open: D3 (due 5 Mar), D4 (27 Feb: overdue), D5 (status 5: never), D11 (moved to 6 Mar),
    # M3, M4, M5 → 1.
    year = await figures(loaded, C1, "year")
    assert year["dossier_overdue_open"] == (1, None)


async def test_received_day_indicators(loaded: Database) -> None:
    month = await figures(loaded, C1, "month")
    # received 1–2 March: M1..M5
    assert month["i766_3_3"] == (2, 5)  # M1 (electronic result), M4 (no result document)
    assert month["i766_3_6"] == (2, 3)  # paid M1, M4 / fee-bearing M1, M3, M4
    assert month["i766_4_2"] == (2, 5)  # M1, M5 (M2's paper result has no file)
    assert month["i766_4_3"] == (2, 5)  # M1 (reused), M4 (from the DVCQG folder)
    assert month["i766_4_5"] == (2, 5)  # M1 (VNeID), M3 (national database)
    # 4.1 among dossiers finished in the window that list result documents: M1 ✓, M2 ✗.
    assert month["i766_4_1"] == (1, 2)
    assert (await figures(loaded, C1, "year"))["i766_4_1"] == (1, 2)


async def test_catalogue_indicators(loaded: Database) -> None:
    month = await figures(loaded, C1, "month")
    # 3.1: online procedures PA, PB / catalogue P-LEGAL, PA, PB, PC.
    assert month["i766_3_1"] == (2, 4)
    # 3.2: online services with an online dossier received in the window: PA (M1, M2) / PA, PB.
    assert month["i766_3_2"] == (1, 2)
    assert month["i766_3_2"] == month["online_service_usage_rate"]


async def test_reports_5_2_and_5_3(loaded: Database) -> None:
    year = await figures(loaded, C1, "year")
    # Ended in 2026: R1 ✓ R2 ✓ R3 ✗ R6 ✓ R7 ✗ H1 ✓ → 4/6; open R4 ✓ R5 ✗ → 1/2.
    assert year["i766_5_2"] == (5, 8)
    # Received in 2026: R1..R7, H1; minus R2 (Đà Nẵng: KHONG_HAI_LONG) and H1 (Hue-S: Không
    # hài lòng), R3 and R7 (ended late) → 4/8.
    # (R5, open past its deadline, is subtracted once it ends: docs/indicators-766.md.)
    assert year["i766_5_3"] == (4, 8)
    month = await figures(loaded, C1, "month")
    assert month["i766_5_2"] == (1, 2)  # nothing ended in March; R4 ✓, R5 ✗
    assert month["i766_5_3"] == (0, 0)
    assert month["_values"]["i766_5_3"].status == "no_data"
    # District: + S1 (resolved on time, received in 2026, satisfied by default).
    district = await figures(loaded, DISTRICT, "year")
    assert district["i766_5_2"] == (6, 9)
    assert district["i766_5_3"] == (5, 9)


async def test_the_clock_alone(loaded: Database) -> None:
    """Friday 6 March 10:00, no new records: D3 passed its due (5 Mar 17:00)."""
    await engine_round(loaded, LATER)
    month = await figures(loaded, C1, "month", LATER)
    # ended in March M1 ✓ M2 ✓; open D3 ✗ D4 ✗ D11 ✗ M3 ✓ M4 ✓ M5 ✓ → (2 + 3) / (2 + 6).
    assert month["i766_2_1"] == (5, 8)
    # overdue: D4, D3 (D11's moved due is 6 Mar 17:00, not yet).
    assert month["dossier_overdue_open"] == (2, None)
    # reports: R4 (end of Wed 18 Mar) still within time; R5 late.
    assert month["i766_5_2"] == (1, 2)


async def test_rebuild_changes_nothing(loaded: Database) -> None:
    before = await figures(loaded, C1, "year", LATER)
    async with loaded.session() as s:
        result = await rebuild(s, now=LATER)
    assert result.events == 0  # no value differs from what the incremental rounds emitted
    assert await figures(loaded, C1, "year", LATER) == before


async def test_a_legal_duration_change_rejudges_dossiers_without_due_date(
    loaded: Database,
) -> None:
    """The catalogue now says 6 working days for P-LEGAL: D10 (finished Fri 27 Feb 09:00,
    no NgayHenTra) is judged again by the next round — the end of the 6th working day after
    Thu 12 Feb is the end of Fri 27 Feb: on time."""
    before = await figures(loaded, C1, "year", LATER)
    # ended: 6 of 9 on time; open now: M3, M4, M5 within, D3, D4, D11 past → (6 + 3) / 15
    assert before["i766_2_1"] == (9, 15)
    catalogue = [p for p in procedures() if p["MaTTHC"] == "P-LEGAL"]
    catalogue[0]["ThoiGianGiaiQuyet"] = "6"
    async with loaded.session() as s:
        result = await ingest_json(s, "procedures", SOURCE, catalogue)
        assert result.rejected == []
    await engine_round(loaded, LATER)
    after = await figures(loaded, C1, "year", LATER)
    assert after["i766_2_1"] == (10, 15)
    async with loaded.session() as s:
        rebuilt = await rebuild(s, now=LATER)
    assert rebuilt.events == 0
