"""Hostile input: fuzzed dossiers/reports/steps/edXML never crash a parser or the store;
hostile XML (XXE, billion laughs, deep nesting, huge attributes…) answers 400/413, and the
server keeps serving."""

from __future__ import annotations

import asyncio
import contextlib
import json
import string
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from ioc.collectors.dossiers import parse_dossier, parse_step, unwrap
from ioc.collectors.edxml import (
    STATUS_CODES,
    BadXml,
    TooLarge,
    XmlRecordError,
    kind_of,
    parse_document,
    parse_status,
    parse_xml,
)
from ioc.collectors.records import DocumentRecord, Rejection, StatusRecord
from ioc.collectors.reports import parse_report, unit_places
from ioc.collectors.service import ingest_items
from ioc.db import Database
from ioc.errors import IocError
from tests.conftest import RunningServer, TokenMaker
from tests.conftest import test_settings as settings_for_tests

SAMPLES = Path(__file__).resolve().parents[1] / "samples"
DOCUMENT = (SAMPLES / "edxml-document.edxml").read_bytes()
STATUS = (SAMPLES / "edxml-status.xml").read_bytes()
SYNC = json.loads((SAMPLES / "dvcqg-dongbohoso.json").read_text(encoding="utf-8"))
PROGRESS = json.loads((SAMPLES / "dvcqg-capnhattiendo.json").read_text(encoding="utf-8"))
DANANG = json.loads((SAMPLES / "hotline-danang-gopy.json").read_text(encoding="utf-8"))
PLACES = unit_places([("25432", "Phường Tân Phú"), ("689", "Thành phố Đồng Xoài")])

# --- strategies: any JSON, and records whose known fields get hostile values

text = st.text(alphabet=st.characters(codec="utf-8"), max_size=40) | st.sampled_from(
    ["", " ", "\x00", "20260315083000", "2026-03-15T08:30:00+07:00", "99999999999999",
     "2026-02-30T25:61:00Z", "689", "70", "-1", "1e309", "NaN", "null", "ＭＡＨＯＳＯ"]
)  # fmt: skip
scalar = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=True, allow_infinity=True)
    | text
)
json_value = st.recursive(
    scalar,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(text, inner, max_size=4),
    max_leaves=12,
)


def mutated(sample: dict[str, Any]) -> st.SearchStrategy[dict[str, Any]]:
    """The sample with some fields replaced by anything, some dropped, some added."""
    keys = sorted(sample)
    return st.builds(
        lambda changes, dropped, extra: {
            **{k: v for k, v in sample.items() if k not in dropped},
            **changes,
            **extra,
        },
        st.dictionaries(st.sampled_from(keys), json_value, max_size=len(keys)),
        st.sets(st.sampled_from(keys), max_size=3),
        st.dictionaries(text, json_value, max_size=2),
    )


DOSSIER = SYNC["data"][0]
STEP = PROGRESS["data"][0]
REPORT = {
    "id": "R-1", "received_at": "2026-03-15T08:30:00+07:00", "channel": "phone",
    "category": "water", "unit": "689", "status": "resolved",
    "due_at": "2026-03-18T08:30:00+07:00", "first_response_at": "2026-03-15T09:30:00+07:00",
    "resolved_at": "2026-03-16T08:30:00+07:00", "citizen_name": "Trần Văn Bình",
    "citizen_phone": "0987654321", "lat": 11.5, "lon": 106.9,
}  # fmt: skip
DANANG_RECORD = DANANG[0] if isinstance(DANANG, list) else DANANG["data"][0]
FUZZ = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@FUZZ
@given(st.one_of(json_value, mutated(DOSSIER)))
def test_dossier_parser_never_raises(obj: Any) -> None:
    result = parse_dossier(0, obj)
    assert isinstance(result, Rejection) or result.source_id


@FUZZ
@given(st.one_of(json_value, mutated(STEP)))
def test_progress_step_parser_never_raises(obj: Any) -> None:
    parse_step(0, obj)


@FUZZ
@given(st.one_of(json_value, mutated(REPORT), mutated(DANANG_RECORD)))
def test_report_parsers_never_raise(obj: Any) -> None:
    parse_report(0, obj, PLACES)


@FUZZ
@given(json_value)
def test_envelope_unwrap_raises_only_valueerror(body: Any) -> None:
    with contextlib.suppress(ValueError):
        unwrap(body)


def _elements(xml: bytes) -> list[bytes]:
    """Text nodes of the sample, to be replaced one at a time."""
    import re

    return re.findall(rb">([^<>]+)</", xml)


@FUZZ
@given(
    st.sampled_from([DOCUMENT, STATUS]),
    st.data(),
)
def test_edxml_parsers_never_raise(sample: bytes, data: st.DataObject) -> None:
    body = sample
    for old in data.draw(st.lists(st.sampled_from(_elements(sample)), max_size=4)):
        new = data.draw(text).encode("utf-8", "ignore")
        new = new.replace(b"<", b"").replace(b"&", b"")
        body = body.replace(b">" + old + b"</", b">" + new + b"</", 1)
    if data.draw(st.booleans()):  # and sometimes plain garbage somewhere
        cut = data.draw(st.integers(0, len(body)))
        body = body[:cut] + data.draw(st.binary(max_size=20)) + body[cut:]
    try:
        root = parse_xml(body, max_bytes=1 << 20, max_depth=64)
    except (BadXml, TooLarge):
        return
    raw = body.decode("utf-8", "replace")
    kind = kind_of(root)
    result = parse_status(root, raw) if kind == "status" else parse_document(root, raw)
    if isinstance(result, XmlRecordError):
        # Refused (dead-lettered): always with a reason a person can read.
        assert body != sample, f"the untouched sample was refused: {result.errors}"
        assert result.errors and all(isinstance(e, str) and e for e in result.errors)
    elif kind == "status":
        assert isinstance(result, StatusRecord)
        assert result.document_id and result.organ_id
        assert result.status_code in STATUS_CODES
        assert result.at.utcoffset() is not None
    else:
        assert isinstance(result, DocumentRecord)
        assert result.document_id and result.sender_organ
        assert result.sent_at.utcoffset() is not None
        assert all(organ for organ in result.recipients)


def drawn(strategy: st.SearchStrategy[Any], count: int) -> list[Any]:
    """`count` values of `strategy`, drawn by hypothesis itself (not `.example()`, which is
    meant for the REPL and warns in tests): the store is async, so the values are collected
    first and fed to it after."""
    values: list[Any] = []

    @settings(max_examples=count, database=None, deadline=None, phases=[Phase.generate])
    @given(strategy)
    def collect(value: Any) -> None:
        values.append(value)

    collect()
    return values


async def test_store_takes_fuzzed_batches_without_crashing(db: Database) -> None:
    """Through the service (as the pull collectors call it, without the HTTP limits):
    a fuzzed batch is stored or rejected, never a database error."""
    batches = [
        st.lists(st.one_of(mutated(DOSSIER), json_value), min_size=1, max_size=5),
        st.lists(st.one_of(mutated(REPORT), json_value), min_size=1, max_size=5),
    ]
    found: list[Any] = []
    for fmt, strategy in zip(("dossier", "report"), batches, strict=True):
        for i, items in enumerate(drawn(strategy, 15)):
            try:
                async with db.session() as session:
                    await ingest_items(session, fmt, f"fuzz-{fmt}", items)
            except IocError:
                pass
            except Exception as exc:
                if type(exc).__name__ in KNOWN_STORE_CRASHES:
                    continue  # reported to the collectors room
                found.append((fmt, i, type(exc).__name__, str(exc)[:200], items))
    assert found == []


# Crashes this fuzzing found in other rooms, reported to their owners (none open: identical
# rejects in one batch and NUL characters in records are fixed in the collectors).
KNOWN_STORE_CRASHES: set[str] = set()


async def test_identical_rejects_in_one_batch(
    xml_server: RunningServer, make_token: TokenMaker
) -> None:
    headers = {"Authorization": f"Bearer {await make_token('collector', '70')}"}
    async with httpx.AsyncClient(base_url=xml_server.url, timeout=30) as http:
        answer = await http.post("/api/v1/ingest/reports", json=[{}, {}], headers=headers)
    assert answer.status_code == 200, answer.text
    assert len(answer.json()["rejected"]) == 2


# --- hostile XML against the real endpoint

XXE = b"""<?xml version="1.0"?>
<!DOCTYPE foo [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>
<edXML:edXMLEnvelope xmlns:edXML="http://www.mic.gov.vn/TBT/QCVN_102_2016"><a>&xxe;</a>
</edXML:edXMLEnvelope>"""
XXE_PARAMETER = b"""<?xml version="1.0"?>
<!DOCTYPE foo [<!ENTITY % p SYSTEM "http://127.0.0.1:9/evil.dtd"> %p;]><foo/>"""
EXTERNAL_DTD = b"""<?xml version="1.0"?><!DOCTYPE foo SYSTEM "file:///etc/passwd"><foo/>"""
LAUGHS = (
    b'<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">'
    + b"".join(
        f'<!ENTITY lol{i} "{("&lol" + str(i - 1) + ";") * 10 if i > 1 else "&lol;" * 10}">'.encode()
        for i in range(1, 10)
    )
    + b"]><lolz>&lol9;</lolz>"
)
QUADRATIC = (
    b'<?xml version="1.0"?><!DOCTYPE q [<!ENTITY a "' + b"x" * 50_000 + b'">]><q>'
    + b"&a;" * 50_000 + b"</q>"
)  # fmt: skip
DEEP = b"<a>" * 100_000 + b"</a>" * 100_000
HUGE_ATTRIBUTE = b'<edXML:edXMLEnvelope xmlns:edXML="urn:x" x="' + b"A" * 6_000_000 + b'"/>'
MANY_ATTRIBUTES = (
    b"<edXML:edXMLEnvelope " + b" ".join(f'a{i}="{i}"'.encode() for i in range(100_000)) + b"/>"
)
NAMESPACES = b"<a " + b" ".join(f'xmlns:n{i}="urn:{i}"'.encode() for i in range(50_000)) + b"/>"
NOT_UTF8 = b'<?xml version="1.0" encoding="utf-8"?><a>\xff\xfe\xfa</a>'
UNCLOSED = DOCUMENT[: len(DOCUMENT) // 2]


@pytest.fixture(scope="module")
async def xml_server(database_url: str) -> AsyncIterator[RunningServer]:
    server = RunningServer(settings_for_tests(rate_limit_enabled=False), database_url)
    await server.start()
    yield server
    await server.stop()


@pytest.mark.parametrize(
    ("name", "body", "statuses"),
    [
        ("xxe", XXE, {400}),
        ("xxe-parameter-entity", XXE_PARAMETER, {400}),
        ("external-dtd", EXTERNAL_DTD, {400}),
        ("billion-laughs", LAUGHS, {400}),
        ("quadratic-blowup", QUADRATIC, {400, 413}),
        ("deep-nesting", DEEP, {400}),
        ("huge-attribute", HUGE_ATTRIBUTE, {200, 400}),
        ("many-attributes", MANY_ATTRIBUTES, {200, 400}),
        ("namespace-flood", NAMESPACES, {200, 400}),
        ("not-utf8", NOT_UTF8, {400}),
        ("truncated", UNCLOSED, {400}),
        ("empty", b"", {400}),
        ("not-xml", b'{"a": 1}', {400}),
        ("too-large", b"<a>" + b"x" * (9 * 1024 * 1024) + b"</a>", {413}),
    ],
)
async def test_hostile_xml_is_refused_and_server_keeps_serving(
    xml_server: RunningServer, make_token: TokenMaker, name: str, body: bytes, statuses: set[int]
) -> None:
    headers = {
        "Authorization": f"Bearer {await make_token('collector', '70')}",
        "content-type": "application/xml",
    }
    async with httpx.AsyncClient(base_url=xml_server.url, timeout=60) as http:
        if name == "too-large":
            # Refused on its Content-Length before the body is read: a client that keeps
            # writing sees the connection close, so announce the size and send nothing.
            answer = await _declared_only(xml_server, headers, len(body))
        else:
            answer = await http.post("/api/v1/ingest/documents", content=body, headers=headers)
        assert answer.status_code in statuses, (name, answer.status_code, answer.text[:300])
        assert answer.headers["content-type"].startswith(
            "application/problem+json" if answer.status_code != 200 else "application/json"
        )
        if answer.status_code == 200:  # parsed, but identifies no document: dead-lettered
            assert answer.json()["accepted"] == 0
        assert "root:" not in answer.text  # /etc/passwd never echoed
        assert (await http.get("/healthz")).status_code == 200
        # …and a real document is still taken in
        fine = await http.post(
            "/api/v1/ingest/documents", content=DOCUMENT, headers=headers, params={"source": name}
        )
        assert fine.status_code == 200, fine.text
        assert fine.json()["accepted"] == 1


async def _declared_only(
    server: RunningServer, headers: dict[str, str], length: int
) -> httpx.Response:
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    lines = ["POST /api/v1/ingest/documents HTTP/1.1", "Host: x", f"Content-Length: {length}"]
    lines += [f"{k}: {v}" for k, v in headers.items()]
    writer.write(("\r\n".join(lines) + "\r\n\r\n").encode())
    await writer.drain()
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), timeout=30)
    fields = dict(line.decode().split(": ", 1) for line in head.split(b"\r\n")[1:] if b": " in line)
    fields = {k.lower(): v for k, v in fields.items()}
    content = await reader.readexactly(int(fields["content-length"]))
    writer.close()
    return httpx.Response(int(head.split(b" ")[1]), headers=fields, content=content)


def test_sample_text_nodes_found() -> None:
    assert len(_elements(DOCUMENT)) > 10
    assert set(string.digits) & set(DOCUMENT.decode())
