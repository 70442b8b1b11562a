"""How much the input-limit middleware costs: parse + walk of a full ingest body.

Run: .venv/bin/python benchmarks/hardening_limits.py
Prints the time of `ioc.api.limits.parse_json` (what every JSON request pays once) next to a
bare `json.loads` of the same body, for a 10,000-dossier batch (~the contract's maximum
record count), and the token-bucket cost per request.
"""

from __future__ import annotations

import json
import statistics
import time

from ioc.api.limits import parse_json
from ioc.api.ratelimit import TokenBucket
from ioc.settings import Settings


def dossier(i: int) -> dict[str, object]:
    return {
        "MaHoSo": f"000.21.17.H10-260315-{i:06d}", "SoBienNhan": f"SBN-{i}",
        "MaTTHC": "1.001612.000.00.00.H10", "TenTTHC": "Đăng ký thành lập hộ kinh doanh",
        "MaLinhVuc": "G09-TL01", "TenLinhVuc": "Thành lập và hoạt động của hộ kinh doanh",
        "KenhThucHien": 2, "MaDonVi": "689", "NgayTiepNhan": "20260315083000",
        "NgayHenTra": "20260318170000", "NgayKetThucXuLy": "20260317153000",
        "TrangThaiHoSo": 10, "MucDo": 4, "DaSoHoa": True, "ThanhToanTrucTuyen": True,
        "ChuHoSo": "Nguyễn Thị Hồng Nhung", "SoDienThoai": "0912345678",
        "Email": "hongnhung@example.vn", "DiaChi": "Phường Tân Phú, Thành phố Đồng Xoài",
        "DinhDanhCHS": [{"LoaiDinhDanh": 1, "SoDinhDanh": "070190001234"}],
    }  # fmt: skip


def timed(fn: object, rounds: int = 5) -> float:
    samples = []
    for _ in range(rounds):
        started = time.perf_counter()
        fn()  # type: ignore[operator]
        samples.append(time.perf_counter() - started)
    return statistics.median(samples)


def main() -> None:
    settings = Settings(database_url=None)
    body = json.dumps([dossier(i) for i in range(10_000)], ensure_ascii=False).encode()
    loads = timed(lambda: json.loads(body))
    checked = timed(lambda: parse_json(body, settings))
    print(f"body: 10,000 dossiers, {len(body) / 1024 / 1024:.1f} MiB")
    print(f"json.loads              : {loads * 1000:7.1f} ms")
    print(f"limits.parse_json       : {checked * 1000:7.1f} ms  (parse + depth/size walk)")
    print(f"walk overhead           : {(checked - loads) * 1000:7.1f} ms")
    bucket = TokenBucket(1e9, 10**9)
    n = 200_000
    started = time.perf_counter()
    for i in range(n):
        bucket.take(f"t:{i % 1000}")
    per = (time.perf_counter() - started) / n
    print(f"token bucket take       : {per * 1e6:7.2f} µs per request (1,000 keys)")


if __name__ == "__main__":
    main()
