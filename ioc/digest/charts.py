"""Small PNG charts for the digest's e-mail: a KPI's last 30 days as a line with its target
as a dashed line, drawn server-side by matplotlib (Agg: no display, no network) so every mail
client shows them without loading anything."""

from __future__ import annotations

import io
from datetime import date


def kpi_chart(points: list[tuple[date, float | None]], target: float | None) -> bytes:
    """A 480×140 PNG of the values (fractions, shown in %) and the target."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt
    from matplotlib.dates import DateFormatter, date2num

    days = [float(date2num(d)) for d, v in points if v is not None]  # type: ignore[no-untyped-call]
    values = [v * 100 for _, v in points if v is not None]
    fig, ax = plt.subplots(figsize=(4.8, 1.4), dpi=100)
    try:
        if days:
            ax.plot(days, values, color="#1f6feb", linewidth=2, marker="o", markersize=2.5)
        if target is not None:
            ax.axhline(target * 100, color="#d1242f", linewidth=1.2, linestyle="--")
        ax.set_ylim(0, 105)
        ax.yaxis.set_major_formatter(lambda v, _: f"{v:.0f}%")
        ax.xaxis.set_major_formatter(DateFormatter("%d/%m"))  # type: ignore[no-untyped-call]
        ax.tick_params(labelsize=7)
        for side in ("top", "right"):
            ax.spines[side].set_visible(False)
        if not days:
            ax.text(0.5, 0.5, "chưa có dữ liệu", ha="center", va="center", transform=ax.transAxes)
        fig.tight_layout(pad=0.3)
        out = io.BytesIO()
        fig.savefig(out, format="png")
        return out.getvalue()
    finally:
        plt.close(fig)
