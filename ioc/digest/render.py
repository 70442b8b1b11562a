"""The digest as an e-mail: HTML with a plain-text part, in Vietnamese, rendered by Jinja2,
each KPI's chart an inline PNG (`multipart/related`, by Content-ID); and as a file for
`ioc digest preview` (the same HTML, its images as `data:` URIs)."""

from __future__ import annotations

import base64
import functools
from datetime import datetime
from email.message import EmailMessage
from email.utils import formatdate

from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape

from ioc.digest.charts import kpi_chart
from ioc.digest.content import Digest
from ioc.kpis import vi_number
from ioc.localtime import LOCAL_TZ

WORDS = {"ok": "Đạt", "warn": "Cần chú ý", "bad": "Không đạt", "no_data": "Chưa có dữ liệu"}
COLOURS = {"ok": "#1a7f37", "warn": "#9a6700", "bad": "#d1242f", "no_data": "#57606a"}
STATES = {"firing": "Vượt ngưỡng", "resolved": "Hết cảnh báo"}
SEVERITIES = {"info": "thông tin", "warning": "cảnh báo", "critical": "nghiêm trọng"}


@functools.cache
def _templates() -> Environment:
    env = Environment(
        loader=PackageLoader("ioc.digest", "templates"),
        autoescape=select_autoescape(enabled_extensions=("html.j2",), default=False),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["pct"] = lambda v: "—" if v is None else f"{vi_number(v * 100, 1)}%"
    env.filters["num"] = lambda v: "—" if v is None else vi_number(v, 1)
    env.filters["count"] = lambda v: vi_number(v, 0)
    env.filters["day"] = lambda d: d.strftime("%d/%m/%Y")
    env.filters["when"] = lambda t: t.astimezone(LOCAL_TZ).strftime("%H:%M %d/%m/%Y")
    return env


def subject(digest: Digest) -> str:
    return (
        f"[IOC] Bản tin tuần {digest.week_start:%d/%m}–{digest.week_end:%d/%m/%Y}: "
        f"{digest.unit_name}"
    )


def _context(digest: Digest, images: dict[str, str], screen_url: str) -> dict[str, object]:
    change = None
    if digest.score is not None and digest.score_before is not None:
        delta = digest.score - digest.score_before
        change = ("+" if delta > 0 else "") + vi_number(delta, 1)
    return {
        "d": digest,
        "subject": subject(digest),
        "images": images,
        "words": WORDS,
        "colours": COLOURS,
        "states": STATES,
        "severities": SEVERITIES,
        "change": change,
        "fired": sum(1 for a in digest.alerts if a.state == "firing"),
        "resolved": sum(1 for a in digest.alerts if a.state == "resolved"),
        "screen_url": screen_url,
    }


def charts(digest: Digest) -> dict[str, bytes]:
    return {k.id: kpi_chart(k.history, k.target) for k in digest.kpis}


def render(digest: Digest, images: dict[str, str], screen_url: str) -> tuple[str, str]:
    """(plain text, HTML)."""
    context = _context(digest, images, screen_url)
    env = _templates()
    return (
        env.get_template("digest.txt.j2").render(context),
        env.get_template("digest.html.j2").render(context),
    )


def preview_html(digest: Digest, screen_url: str) -> str:
    """The HTML with its charts inlined as data: URIs (a file that opens anywhere offline)."""
    images = {
        kpi: "data:image/png;base64," + base64.b64encode(png).decode()
        for kpi, png in charts(digest).items()
    }
    return render(digest, images, screen_url)[1]


def compose(
    digest: Digest, *, sender: str, recipient: str, screen_url: str, message_id: str
) -> EmailMessage:
    """`multipart/alternative` (plain, then `multipart/related` HTML + its PNG charts)."""
    pngs = charts(digest)
    cids = {kpi: f"{kpi}@digest.ioc" for kpi in pngs}  # unique within the message
    plain, html = render(digest, {k: f"cid:{c}" for k, c in cids.items()}, screen_url)
    email = EmailMessage()
    email["From"] = sender
    email["To"] = recipient
    email["Subject"] = subject(digest)
    email["Date"] = formatdate(datetime.now().timestamp(), localtime=False)
    # The same id on a retry: a mail system that got the first attempt can drop the second.
    email["Message-ID"] = f"<{message_id}@ioc.digest>"
    email.set_content(plain)
    email.add_alternative(html, subtype="html")
    related = email.get_payload()[1]  # type: ignore[index]
    assert isinstance(related, EmailMessage)
    for kpi, png in pngs.items():
        related.add_related(
            png, maintype="image", subtype="png", cid=f"<{cids[kpi]}>", filename=f"{kpi}.png"
        )
    return email
