"""Personal data inside free text is masked wherever ioc shows records (issue 22, item 9):
dead-letters listed as masked once still showed a citizen's phone, e-mail and id number
inside a report's `content`. Only the admin's access-logged read returns the original."""

from __future__ import annotations

import json

import httpx

from ioc.db import Database
from ioc.privacy import mask_free_text, mask_record

from ..conftest import TokenMaker
from .factories import new_source, report

CONTENT = (
    "Tôi là Lê Thị Hoa, gọi 0903 111 222 hoặc +84 912.345.678, thư hoa.le@gmail.com, "
    "CCCD 079123456789 (CMND cũ 123456789); hồ sơ 000.00.24.H10-260315-0001 lúc "
    "20260315083000, phí 1.500.000 đồng"
)
PERSONAL = ("0903 111 222", "912.345.678", "hoa.le@gmail.com", "079123456789", "123456789 ")


def test_free_text_keeps_what_is_not_personal() -> None:
    masked = mask_free_text(CONTENT)
    assert not [p for p in PERSONAL if p in masked]
    assert "******1222" in masked and "h***@gmail.com" in masked
    assert "*********789" in masked and "******789" in masked
    # codes, times and amounts are not people
    for kept in ("000.00.24.H10-260315-0001", "20260315083000", "1.500.000 đồng", "Lê Thị Hoa"):
        assert kept in masked
    # a bare value is a value (an id, a code), not free text
    assert mask_free_text("079123456789") == "079123456789"
    nested = mask_record({"thongTinXuLy": [{"noiDung": CONTENT}], "notes": [CONTENT]})
    assert "0903 111 222" not in json.dumps(nested, ensure_ascii=False)


async def test_dead_letters_mask_free_text_and_the_logged_read_returns_it(
    client: httpx.AsyncClient, make_token: TokenMaker, db: Database
) -> None:
    collector = {"Authorization": f"Bearer {await make_token('collector', '70')}"}
    admin = {"Authorization": f"Bearer {await make_token('admin', None)}"}
    source = new_source()
    refused = report("FT-1", channel="fax", content=CONTENT, title="Liên hệ 0987 654 321 gấp")
    r = await client.post(
        f"/api/v1/ingest/reports?source={source}", json=[refused], headers=collector
    )
    assert len(r.json()["rejected"]) == 1, r.text
    listed = await client.get(f"/api/v1/dead-letters?source={source}", headers=admin)
    assert listed.status_code == 200
    body = listed.text
    assert not [p for p in (*PERSONAL, "0987 654 321") if p in body], body
    item = listed.json()["items"][0]
    payload = json.loads(item["payload"])
    assert "******1222" in payload["content"] and "******4321" in payload["title"]
    original = await client.get(
        f"/api/v1/dead-letters/{item['id']}/payload",
        params={"reason": "đối chiếu với đường dây 1022"},
        headers=admin,
    )
    assert original.status_code == 200
    assert json.loads(original.json()["payload"])["content"] == CONTENT
