"""edXML (QCVN 102:2016) envelopes and status messages, parsed with a hardened parser.

Hardening: the body is size-checked before parsing; any DOCTYPE is refused outright (which
rules out external entities, XXE and entity-expansion bombs, since entities can only be
declared in a DTD); element depth is bounded while parsing, so a deeply nested body is
stopped early. Elements are matched by local name (vendors differ on namespaces).
"""

from __future__ import annotations

import re

# ElementTree only for its types and TreeBuilder; parsing goes through defusedxml.
import xml.etree.ElementTree as ET
from dataclasses import dataclass

import defusedxml
import defusedxml.ElementTree as DET

from ioc.collectors.records import Attachment, DocumentRecord, StatusRecord
from ioc.collectors.timefmt import BadValue, slash_date, slash_time
from ioc.errors import IocError
from ioc.localtime import LOCAL_TZ

EDXML = "edxml"
STATUS_CODES = {
    "01": "arrived",
    "02": "refused",
    "03": "accepted",
    "04": "assigned",
    "05": "in_progress",
    "06": "completed",
    "13": "recalled",
    "15": "update_agreed",
    "16": "update_refused",
}
COMPLETED = "06"


class BadXml(IocError):
    """The body is not acceptable XML (malformed, DTD/entities, too large or too deep)."""

    status = 400
    title = "Not an acceptable edXML body"
    type_slug = "bad-xml"


class TooLarge(IocError):
    status = 413
    title = "Payload too large"
    type_slug = "too-large"


@dataclass(slots=True)
class XmlRecordError:
    """The XML parsed but does not identify a document: dead-letter with these reasons."""

    record_id: str | None
    errors: list[str]


class _DepthLimited(ET.TreeBuilder):
    def __init__(self, max_depth: int) -> None:
        super().__init__()
        self.depth = 0
        self.max_depth = max_depth

    def start(self, tag: str, attrs: dict[str, str]) -> ET.Element:
        self.depth += 1
        if self.depth > self.max_depth:
            raise BadXml(f"XML nested deeper than {self.max_depth} elements")
        return super().start(tag, attrs)

    def end(self, tag: str) -> ET.Element:
        self.depth -= 1
        return super().end(tag)


def parse_xml(body: bytes, *, max_bytes: int, max_depth: int) -> ET.Element:
    """Parse untrusted XML: no DTD, no entities, bounded size and depth; `BadXml` otherwise."""
    if len(body) > max_bytes:
        raise TooLarge(f"XML body of {len(body)} bytes exceeds the limit of {max_bytes}")
    parser = DET.DefusedXMLParser(
        target=_DepthLimited(max_depth), forbid_dtd=True, forbid_entities=True, forbid_external=True
    )
    try:
        parser.feed(body)
        root: ET.Element = parser.close()
    except defusedxml.DTDForbidden:
        raise BadXml("XML with a DOCTYPE is refused (no DTDs or entities are accepted)") from None
    except (defusedxml.EntitiesForbidden, defusedxml.ExternalReferenceForbidden):
        raise BadXml("XML entities and external references are refused") from None
    except ET.ParseError as exc:
        raise BadXml(f"malformed XML: {exc}") from None
    except LookupError as exc:
        # an XML declaration naming an encoding Python does not know (`encoding="u-tf-8"`)
        raise BadXml(f"XML declares an unknown encoding: {exc}") from None
    return root


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1].rsplit(":", 1)[-1]


def _child(el: ET.Element | None, *names: str) -> ET.Element | None:
    for name in names:
        if el is None:
            return None
        el = next((c for c in el if _local(c.tag) == name), None)
    return el


def _children(el: ET.Element | None, name: str) -> list[ET.Element]:
    return [] if el is None else [c for c in el if _local(c.tag) == name]


def _find(root: ET.Element, name: str) -> ET.Element | None:
    return next((e for e in root.iter() if _local(e.tag) == name), None)


def _text(el: ET.Element | None, *names: str) -> str | None:
    found = _child(el, *names) if names else el
    if found is None or found.text is None:
        return None
    value = found.text.strip()
    return value or None


def _int(value: str | None, field: str, errors: list[str]) -> int | None:
    if value is None:
        return None
    try:
        return int(value)
    except ValueError:
        errors.append(f"{field}: {value!r} is not an integer")
        return None


_ENCODED = re.compile(
    r"(<(?:[\w.-]+:)?ContentTransferEncoded\b[^>]*>)[^<]*(</(?:[\w.-]+:)?ContentTransferEncoded>)"
)


def strip_attachments(xml_text: str) -> str:
    """The XML as kept for audit: attachment bytes removed (names and sizes are kept)."""
    return _ENCODED.sub(r"\1\2", xml_text)


def kind_of(root: ET.Element) -> str:
    """`document` or `status`; `BadXml` if the XML is neither."""
    if _find(root, "MessageHeader") is not None:
        return "document"
    status = _find(root, "Status")
    if status is not None and _child(status, "ResponseFor") is not None:
        return "status"
    raise BadXml("XML is neither an edXML envelope (MessageHeader) nor a status message")


def build_document_id(organ: str | None, day: str | None, code: str | None) -> str | None:
    """`OrganId,yyyy/MM/dd,number/notation` from its parts (docs/api.md §1.4), when all exist."""
    if not (organ and day and code):
        return None
    try:
        d = slash_date("PromulgationDate", day)
    except BadValue:
        return None
    return f"{organ},{d:%Y/%m/%d},{code}"


def normalise_document_id(document_id: str) -> str:
    """A supplied `DocumentId` in the form a built one has (`OrganId,yyyy/MM/dd,code`): parts
    trimmed, the date part rewritten from whichever order the vendor wrote it in
    (`yyyy/MM/dd`, `dd/MM/yyyy`, with `-` too, or `yyyyMMdd`), so a status message finds its
    document whoever wrote either. An id that is not three parts with a date is kept as sent
    (trimmed)."""
    parts = document_id.strip().split(",", 2)
    if len(parts) != 3:
        return document_id.strip()
    organ, day, code = (p.strip() for p in parts)
    try:
        if len(day) == 8 and day.isdigit():
            d = slash_date("DocumentId", f"{day[:4]}/{day[4:6]}/{day[6:]}")
        else:
            d = slash_date("DocumentId", day)
    except BadValue:
        return ",".join((organ, day, code))
    return f"{organ},{d:%Y/%m/%d},{code}"


def parse_document(root: ET.Element, raw_xml: str) -> DocumentRecord | XmlRecordError:
    """An edXML envelope → a document record, or the reasons it cannot be identified."""
    errors: list[str] = []
    header = _find(root, "MessageHeader")
    sender = _text(header, "From", "OrganId")
    recipients = [t for to in _children(header, "To") if (t := _text(to, "OrganId"))]
    number, notation = _text(header, "Code", "CodeNumber"), _text(header, "Code", "CodeNotation")
    code = f"{number}/{notation}" if number and notation else number
    promulgation = _text(header, "PromulgationInfo", "PromulgationDate")
    supplied = _text(header, "DocumentId")
    document_id = (
        normalise_document_id(supplied)
        if supplied
        else build_document_id(sender, promulgation, code)
    )
    if document_id is None:
        errors.append(
            "DocumentId: missing and cannot be built from From/OrganId, PromulgationDate and Code"
        )
    if sender is None:
        errors.append("From/OrganId: required")
    promulgated = due = None
    try:
        promulgated = slash_date("PromulgationDate", promulgation) if promulgation else None
    except BadValue as exc:
        errors.append(str(exc))
    due_text = _text(header, "DueDate")
    try:
        due = slash_date("DueDate", due_text) if due_text else None
    except BadValue as exc:
        errors.append(str(exc))
    traces = _find(root, "TraceHeaderList")
    stamps = []
    for trace in _children(traces, "TraceHeader"):
        stamp = _text(trace, "Timestamp")
        if stamp:
            try:
                stamps.append(slash_time("TraceHeader/Timestamp", stamp))
            except BadValue as exc:
                errors.append(str(exc))
    business = _child(traces, "Bussiness")
    sent_at = max(stamps) if stamps else None
    if sent_at is None and promulgated is not None:
        sent_at = slash_time("PromulgationDate", f"{promulgated:%Y/%m/%d}")
    if sent_at is None and not errors:
        errors.append("TraceHeader/Timestamp and PromulgationDate: neither is present")
    priority = _int(_text(header, "OtherInfo", "Priority"), "Priority", errors)
    steering = _int(_text(header, "SteeringType"), "SteeringType", errors)
    business_type = _int(_text(business, "BussinessDocType"), "BussinessDocType", errors)
    paper = _text(business, "Paper")
    if errors or document_id is None or sender is None or sent_at is None:
        return XmlRecordError(document_id, errors)
    return DocumentRecord(
        document_id=document_id,
        sender_organ=sender,
        recipients=list(dict.fromkeys(recipients)),
        code_number=number,
        code_notation=notation,
        promulgated_on=promulgated,
        document_type=_text(header, "DocumentType", "Type"),
        document_type_name=_text(header, "DocumentType", "TypeName"),
        subject=_text(header, "Subject"),
        signer_name=_text(header, "SignerInfo", "FullName"),
        due_on=due,
        priority=priority,
        steering_type=steering,
        # Paper = 1 marks a document whose authoritative copy travels on paper.
        electronic=paper != "1",
        business_type=business_type,
        sent_at=sent_at,
        attachments=_attachments(root),
        raw_xml=strip_attachments(raw_xml),
    )


def _attachments(root: ET.Element) -> list[Attachment]:
    found: dict[str, Attachment] = {}
    for att in (e for e in root.iter() if _local(e.tag) == "Attachment"):
        name = _text(att, "AttachmentName") or _text(att, "ContentId") or "?"
        encoded = _child(att, "ContentTransferEncoded")
        data = "".join("".join(encoded.itertext()).split()) if encoded is not None else ""
        size = len(data) * 3 // 4 - data[-2:].count("=") if data else None
        found[name] = Attachment(name, _text(att, "ContentType"), size)
    for ref in (e for e in root.iter() if _local(e.tag) == "Reference"):
        ref_name = _text(ref, "AttachmentName")
        if ref_name and ref_name not in found:
            found[ref_name] = Attachment(ref_name, _text(ref, "ContentType"), None)
    return list(found.values())


def parse_status(root: ET.Element, raw_xml: str) -> StatusRecord | XmlRecordError:
    """An edXML status message → a status record, or the reasons it cannot be identified."""
    errors: list[str] = []
    status = _find(root, "Status")
    response = _child(status, "ResponseFor")
    supplied = _text(response, "DocumentId")
    document_id = (
        normalise_document_id(supplied)
        if supplied
        else build_document_id(
            _text(response, "OrganId"), _text(response, "PromulgationDate"), _text(response, "Code")
        )
    )
    if document_id is None:
        errors.append("ResponseFor/DocumentId: missing and cannot be built from its parts")
    organ = _text(status, "From", "OrganId")
    if organ is None:
        errors.append("From/OrganId: required")
    code = _text(status, "StatusCode")
    if code is None or code.zfill(2) not in STATUS_CODES:
        errors.append(f"StatusCode: unknown code {code!r} (expected {', '.join(STATUS_CODES)})")
    stamp = _text(status, "Timestamp")
    at = None
    if stamp is None:
        errors.append("Timestamp: required")
    else:
        try:
            at = slash_time("Timestamp", stamp)
        except BadValue as exc:
            errors.append(str(exc))
    if errors or document_id is None or organ is None or code is None or at is None:
        return XmlRecordError(document_id, errors)
    return StatusRecord(
        document_id=document_id,
        organ_id=organ,
        status_code=code.zfill(2),
        at=at.astimezone(LOCAL_TZ),
        description=_text(status, "Description"),
        department=_text(status, "StaffInfo", "Department"),
        staff=_text(status, "StaffInfo", "Staff"),
        raw_xml=raw_xml,
    )
