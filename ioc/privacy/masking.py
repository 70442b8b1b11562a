"""Masking of citizens' personal data (Decree 13/2023/NĐ-CP) for every output that is not
explicitly entitled to it. One place, so screens, feeds, logs and dead-letter listings mask
alike."""

from __future__ import annotations

import re
from typing import Any

# Field names, in our own records and in the sources' raw payloads, that carry personal data.
PERSONAL_FIELDS = frozenset(
    {
        "applicant_name", "applicant_phone", "applicant_email", "applicant_address",
        "citizen_name", "citizen_phone", "citizen_email",
        "ChuHoSo", "SoDienThoai", "Email", "DiaChi", "DinhDanhCHS", "NguoiXuLy",
        "tenDayDu", "soDienThoai", "email",
        # real senders' names for the same data: the applicant's id number and DVCQG account
        # (TD.DichVuCongApi, a Hà Giang system), the phone opencps-v2 copies into Fax, the
        # Hue-S citizen account (a phone number)
        "SoGiayToChuHoSo", "MaDoiTuong", "Fax", "TaiKhoan",
    }
)  # fmt: skip

_PHONE = re.compile(r"\d")

# Inside free text (a report's content, a dossier's note): what identifies a citizen by
# pattern. Phones: Vietnamese numbers, 0 or +84/84 then 9 digits, written with spaces, dots
# or dashes between digit groups; national ids: 12 digits (CCCD) or 9 (CMND), whole numbers
# only (never part of a longer run of digits, such as a yyyyMMddHHmmss time).
_TEXT_EMAIL = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
_TEXT_PHONE = re.compile(r"(?<![\w+])(?:\+84|84|0)(?:[ .-]?\d){9}(?!\d)")
_TEXT_ID = re.compile(r"(?<!\d)(?:\d{12}|\d{9})(?!\d)")


def mask_name(name: str | None) -> str | None:
    """`Nguyễn Thị Hồng Nhung` → `N*** T*** H*** N***`."""
    if not name:
        return name
    return " ".join(part[0] + "***" for part in name.split())


def mask_phone(phone: str | None) -> str | None:
    """`0912345678` → `******5678` (keeps the last 3–4 digits only)."""
    if not phone:
        return phone
    digits = _PHONE.findall(phone)
    keep = 4 if len(digits) > 8 else 3
    return "*" * max(0, len(digits) - keep) + "".join(digits[-keep:])


def mask_email(email: str | None) -> str | None:
    """`hongnhung@example.vn` → `h***@example.vn`."""
    if not email or "@" not in email:
        return email and "***"
    local, domain = email.split("@", 1)
    return (local[:1] or "") + "***@" + domain


def mask_free_text(text: str) -> str:
    """`text` with the e-mail addresses, phone numbers and national id numbers inside it
    masked (`Gọi 0903 111 222` → `Gọi ******1222`). Only text with a space in it is free
    text; a bare value (a record id, a code) is left as it is."""
    if " " not in text:
        return text
    text = _TEXT_EMAIL.sub(lambda m: mask_email(m[0]) or "***", text)
    text = _TEXT_PHONE.sub(lambda m: mask_phone(m[0]) or "***", text)
    return _TEXT_ID.sub(lambda m: "*" * (len(m[0]) - 3) + m[0][-3:], text)


def mask_value(key: str, value: Any) -> Any:
    """Mask `value` if `key` names personal data, and the personal data inside free text;
    otherwise return it unchanged."""
    if key not in PERSONAL_FIELDS or value is None:
        return mask_free_text(value) if isinstance(value, str) else value
    lowered = key.lower()
    if "phone" in lowered or "dienthoai" in lowered:
        return mask_phone(str(value))
    if "email" in lowered:
        return mask_email(str(value))
    if isinstance(value, str) and (
        "name" in lowered or key in ("ChuHoSo", "tenDayDu", "NguoiXuLy")
    ):
        return mask_name(value)
    return "***"


def mask_record(record: dict[str, Any]) -> dict[str, Any]:
    """A copy of `record` (nested dicts/lists too) with every personal field masked."""
    out: dict[str, Any] = {}
    for key, value in record.items():
        if isinstance(value, dict):
            out[key] = mask_record(value)
        elif isinstance(value, list) and key not in PERSONAL_FIELDS:
            out[key] = [
                mask_record(v)
                if isinstance(v, dict)
                else mask_free_text(v)
                if isinstance(v, str)
                else v
                for v in value
            ]
        else:
            out[key] = mask_value(key, value)
    return out
