"""An administrator works the console: finds a refused document in data quality, loads the
missing organ mapping and replays it; issues, lists and revokes a token; sets a target. Every
page is checked with axe-core, and each role is refused what it may not do (the test tries)."""

from __future__ import annotations

import re
from pathlib import Path

import httpx
import pytest
from playwright.async_api import Browser, Page, expect

from ioc.collectors.service import ingest_xml
from tests.webconsole.conftest import Console, axe_serious, csrf_of, sign_in

pytestmark = pytest.mark.browser

UNMAPPED = "000.99.88.H10"  # an organ of district 689 that the mapping does not know yet
DOCUMENT = f"""<?xml version="1.0" encoding="utf-8"?>
<edXML:edXMLEnvelope xmlns:edXML="http://www.mic.gov.vn/TBT/QCVN_102_2016">
 <edXML:edXMLHeader><edXML:MessageHeader>
  <edXML:From><edXML:OrganId>{UNMAPPED}</edXML:OrganId><edXML:OrganName>Phòng Nội vụ</edXML:OrganName></edXML:From>
  <edXML:To><edXML:OrganId>{UNMAPPED}</edXML:OrganId><edXML:OrganName>Phòng Nội vụ</edXML:OrganName></edXML:To>
  <edXML:Code><edXML:CodeNumber>12</edXML:CodeNumber><edXML:CodeNotation>UBND-NV</edXML:CodeNotation></edXML:Code>
  <edXML:PromulgationInfo><edXML:Place>Đồng Xoài</edXML:Place><edXML:PromulgationDate>2026/11/20</edXML:PromulgationDate></edXML:PromulgationInfo>
  <edXML:DocumentType><edXML:Type>1</edXML:Type><edXML:TypeName>Công văn</edXML:TypeName></edXML:DocumentType>
  <edXML:Subject>Về việc rà soát thủ tục</edXML:Subject>
 </edXML:MessageHeader></edXML:edXMLHeader>
 <edXML:edXMLBody/>
</edXML:edXMLEnvelope>"""  # noqa: E501

ADMIN_PAGES = [
    "/console/alerts", "/console/rules", "/console/rules/new", "/console/silences",
    "/console/targets?unit=689", "/console/feeds", "/console/data-quality", "/console/tokens",
    "/console/lang/en?next=/console/rules",  # the English pages too
]  # fmt: skip


async def test_admin_replays_a_dead_letter_after_loading_the_organ_mapping(
    page: Page, console: Console, browser: Browser, tmp_path: Path
) -> None:
    async with console.db.session() as session:
        refused = await ingest_xml(session, "edoc-test", [DOCUMENT.encode()])
    assert refused.accepted == 0 and len(refused.rejected) == 1
    admin = await console.token("admin", None, "Quản trị Sở TT&TT")
    await sign_in(page, console, admin, "/console/data-quality")
    row = page.locator("table.list tbody tr", has_text=UNMAPPED)
    await expect(row).to_contain_text("edoc-test")
    # The record's page says why, and what to do.
    await row.get_by_role("link").first.click()
    await expect(page.locator("main")).to_contain_text("ioc organs load")
    await page.go_back()

    organs = tmp_path / "organs-689.csv"
    organs.write_text(f"organ_id,unit_code,name\n{UNMAPPED},689,Phòng Nội vụ\n", encoding="utf-8")
    await page.get_by_label("CSV").set_input_files(str(organs))
    await page.get_by_role("button", name="Nạp").click()
    await expect(page.get_by_role("status")).to_contain_text("Đã nạp 1 mã cơ quan")
    await page.get_by_role("link", name=re.compile("Quay lại|Trở lại|Back")).click()
    row = page.locator("table.list tbody tr", has_text=UNMAPPED)
    await row.get_by_role("button", name=re.compile("Xử lý lại")).click()
    await expect(page.get_by_role("status")).to_contain_text("chấp nhận 1")
    stored = await console.sql(
        "SELECT unit_code FROM documents WHERE source = 'edoc-test' AND sender_organ = :o",
        o=UNMAPPED,
    )
    assert [r.unit_code for r in stored] == ["689"]

    # Tokens: issue (shown once), listed by name, revoked.
    await page.goto(console.url + "/console/tokens")
    await page.get_by_label("Tên").fill("Màn hình phòng họp")
    await page.get_by_label("Vai trò").select_option("operator")
    await page.get_by_label("Đơn vị").fill("689")
    await page.get_by_label(re.compile("Số ngày hiệu lực")).fill("30")
    await page.get_by_role("button", name="Cấp mã mới").click()
    secret = (await page.locator("#new-secret").inner_text()).strip()
    async with httpx.AsyncClient(base_url=console.url) as http:
        headers = {"Authorization": f"Bearer {secret}"}
        assert (await http.get("/api/v1/kpis", params={"unit": "689"}, headers=headers)).is_success
        await page.get_by_role("button", name="Thu hồi Màn hình phòng họp").click()
        await expect(page.locator("tr", has_text="Màn hình phòng họp").first).to_contain_text(
            "Đã thu hồi"
        )
        refused_now = await http.get("/api/v1/kpis", params={"unit": "689"}, headers=headers)
        assert refused_now.status_code == 401

    # A target for district 689, with who changed it.
    await page.goto(console.url + "/console/targets?unit=689")
    await page.get_by_label("Chỉ tiêu dossier_online_rate").fill("0.6")
    await (
        page.locator("tr", has=page.get_by_label("Chỉ tiêu dossier_online_rate"))
        .get_by_role("button", name="Lưu")
        .click()
    )
    await expect(page.get_by_role("status")).to_be_visible()
    await expect(page.locator("table.list").last).to_contain_text("Quản trị Sở TT&TT")

    # Accessibility: no serious or critical axe-core violation on any page an admin opens.
    cookies = await page.context.cookies()
    found = {path: await axe_serious(browser, console, cookies, path) for path in ADMIN_PAGES}
    assert {p: v for p, v in found.items() if v} == {}


async def test_each_role_is_refused_what_it_may_not_do(
    page: Page, console: Console, browser: Browser
) -> None:
    # The sign-in page, before anyone signs in.
    assert await axe_serious(browser, console, [], "/console/sign-in") == []
    # A department head: no tokens, no data quality, no targets of its own to set.
    head = await console.token("department_head", "689", "Trưởng phòng 689")
    await sign_in(page, console, head, "/console/alerts")
    nav = page.get_by_role("navigation", name="Điều hướng chính")
    await expect(nav.get_by_role("link", name="Mã truy cập")).to_have_count(0)
    for path in ("/console/tokens", "/console/data-quality"):
        answer = await page.goto(console.url + path)
        assert answer is not None and answer.status == 403, path
        await expect(page.locator("main")).to_contain_text("không")
    # It tries anyway: a forged form post is refused and changes nothing.
    csrf = await csrf_of(page) if await page.locator("input[name=csrf]").count() else ""
    answer = await page.request.post(
        console.url + "/console/tokens",
        form={"csrf": csrf, "name": "cửa sau", "role": "admin", "unit": ""},
    )
    assert answer.status == 403
    assert not await console.sql("SELECT 1 FROM api_tokens WHERE name = 'cửa sau'")
    # An operator of the province may preview a threshold but not save a rule: no button,
    # and a forged save is refused by the API's role check.
    operator = await console.token("operator", "70", "Màn hình tỉnh")
    await page.context.clear_cookies()
    await sign_in(page, console, operator, "/console/alerts")
    await page.goto(console.url + "/console/rules/new")
    await expect(page.get_by_role("button", name="Lưu")).to_have_count(0)
    forged = await page.request.post(
        console.url + "/console/rules/new",
        form={"csrf": await csrf_of(page), "action": "save", "name": "quy tắc lén",
              "kpi": "dossier_received", "unit": "70", "window": "today", "op": ">=",
              "threshold": "0", "severity": "info", "emails": ""},
    )  # fmt: skip
    assert forged.status == 403
    assert not await console.sql("SELECT 1 FROM alert_rules WHERE name = 'quy tắc lén'")
    # A collector may not use the console at all.
    collector = await console.token("collector", "70", "Cổng DVC tỉnh")
    await page.context.clear_cookies()
    await page.goto(console.url + "/console/sign-in")
    await page.get_by_label("Mã truy cập (token)").fill(collector)
    await page.get_by_role("button", name="Đăng nhập").click()
    await expect(page).to_have_url(re.compile(r"/console/sign-in"))
    await expect(page.locator("main")).to_contain_text("hệ thống nguồn")
