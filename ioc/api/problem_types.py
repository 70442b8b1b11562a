"""Every problem `type` ioc answers with, in one registry (docs/api.md §0, "Errors").

A problem's `type` is `/problems/<name>`: a path on the server that answered, so it can be
opened in a browser (`GET /problems/<name>` explains it in Vietnamese and English) and it is
the same string on every deployment, whatever its public address — clients match on it.
Each `IocError` names its type in `type_slug`; a test checks that every one is listed here.
"""

from __future__ import annotations

from dataclasses import dataclass

PATH = "/problems/"


@dataclass(frozen=True, slots=True)
class ProblemType:
    """One kind of error: its status, and what it means and what to do, in both languages."""

    name: str
    status: int
    title: str
    title_vi: str
    meaning: str
    meaning_vi: str
    action: str
    action_vi: str

    @property
    def uri(self) -> str:
        """The problem's `type` member: `/problems/<name>`."""
        return PATH + self.name


_TYPES = (
    ProblemType(
        "bad-request", 400, "Bad request", "Yêu cầu không hợp lệ",
        "The request cannot be understood as sent.",
        "Máy chủ không hiểu được yêu cầu như đã gửi.",
        "Read `detail`, correct the request and send it again.",
        "Đọc trường `detail`, sửa yêu cầu rồi gửi lại.",
    ),
    ProblemType(
        "bad-body", 400, "Body is not the expected format", "Nội dung không đúng định dạng",
        "The body is not the format of this endpoint at all: not a JSON array or a known "
        "envelope (`DongBoHoSoMC`, `CapNhatTienDoHoSoMC`, a Hue-S page), or a bad `source`.",
        "Nội dung gửi lên không phải định dạng của điểm nhận này: không phải mảng JSON hay "
        "gói tin đã biết (`DongBoHoSoMC`, `CapNhatTienDoHoSoMC`, trang Hue-S), hoặc tham số "
        "`source` sai.",
        "Send a JSON array of records or one of the envelopes in docs/api.md §1; nothing of "
        "this request was stored.",
        "Gửi mảng JSON các bản ghi hoặc một gói tin nêu ở docs/api.md §1; yêu cầu này chưa "
        "được lưu gì.",
    ),
    ProblemType(
        "bad-xml", 400, "Not a valid edXML message", "Không phải thông điệp edXML hợp lệ",
        "The XML is malformed, carries a DOCTYPE (refused: external entities and entity "
        "expansion), is nested too deep, or is neither an edXML envelope nor a status message.",
        "Tệp XML bị lỗi cú pháp, có khai báo DOCTYPE (bị từ chối để chống tấn công thực thể "
        "ngoài), lồng quá sâu, hoặc không phải gói tin edXML hay thông điệp trạng thái.",
        "Send one edXML envelope or status message (QCVN 102:2016) without a DOCTYPE.",
        "Gửi một gói tin edXML hoặc một thông điệp trạng thái (QCVN 102:2016), không có DOCTYPE.",
    ),
    ProblemType(
        "json-malformed", 400, "Malformed JSON", "JSON bị lỗi cú pháp",
        "The body is not valid UTF-8 JSON (or uses `NaN`/`Infinity`, which JSON does not have).",
        "Nội dung không phải JSON UTF-8 hợp lệ (hoặc dùng `NaN`/`Infinity`, JSON không có).",
        "Check the sending program's JSON encoder and the `Content-Type` header.",
        "Kiểm tra bộ mã hóa JSON của chương trình gửi và tiêu đề `Content-Type`.",
    ),
    ProblemType(
        "unauthorized", 401, "Unauthorized", "Chưa xác thực",
        "No token was sent, or the token is unknown, revoked or expired.",
        "Không có mã truy cập (token), hoặc mã không tồn tại, đã bị thu hồi hay hết hạn.",
        "Send `Authorization: Bearer <token>`; an administrator creates tokens with "
        "`ioc token create`.",
        "Gửi tiêu đề `Authorization: Bearer <token>`; quản trị viên tạo mã bằng lệnh "
        "`ioc token create`.",
    ),
    ProblemType(
        "forbidden", 403, "Forbidden", "Không có quyền",
        "The token's role may not do this (docs/api.md §3 lists what each role may do).",
        "Vai trò của mã truy cập không được phép làm việc này (docs/api.md §3 liệt kê quyền "
        "của từng vai trò).",
        "Use a token of a role that may, or ask an administrator for one.",
        "Dùng mã của vai trò có quyền, hoặc đề nghị quản trị viên cấp.",
    ),
    ProblemType(
        "out-of-scope", 403, "Outside your unit", "Ngoài phạm vi đơn vị",
        "The unit or object asked for is outside the token's unit and the units below it.",
        "Đơn vị hoặc đối tượng được hỏi nằm ngoài đơn vị của mã truy cập và các đơn vị trực "
        "thuộc.",
        "Ask about your own unit or one below it, or use a token of a unit above both.",
        "Chỉ hỏi về đơn vị mình hoặc đơn vị trực thuộc, hoặc dùng mã của đơn vị cấp trên.",
    ),
    ProblemType(
        "not-found", 404, "Not found", "Không tìm thấy",
        "Nothing has this id or address (a rule, an alert, a subscription, a KPI…), or it was "
        "deleted.",
        "Không có đối tượng nào mang mã hay địa chỉ này (quy tắc, cảnh báo, đăng ký, chỉ "
        "tiêu…), hoặc nó đã bị xóa.",
        "Check the id; list the objects to find the right one.",
        "Kiểm tra lại mã; xem danh sách để tìm đúng đối tượng.",
    ),
    ProblemType(
        "method-not-allowed", 405, "Method not allowed", "Phương thức không được hỗ trợ",
        "This address exists but does not answer this HTTP method.",
        "Địa chỉ này có, nhưng không nhận phương thức HTTP này.",
        "Use one of the methods in the `Allow` header (see /docs).",
        "Dùng một phương thức nêu trong tiêu đề `Allow` (xem /docs).",
    ),
    ProblemType(
        "conflict", 409, "Conflict", "Xung đột trạng thái",
        "The object is not in a state that allows this, e.g. acknowledging an alert that is "
        "not firing.",
        "Đối tượng không ở trạng thái cho phép việc này, ví dụ xác nhận một cảnh báo không "
        "còn kích hoạt.",
        "Read the object again and act on its current state.",
        "Đọc lại đối tượng và xử lý theo trạng thái hiện tại của nó.",
    ),
    ProblemType(
        "too-large", 413, "Request body too large", "Nội dung gửi quá lớn",
        "The body is over the limit: 16 MiB (`IOC_INGEST_MAX_BODY_BYTES`), 8 MiB of XML "
        "(`IOC_XML_MAX_BYTES`), 1 MiB on the federation inbox.",
        "Nội dung vượt giới hạn: 16 MiB (`IOC_INGEST_MAX_BODY_BYTES`), 8 MiB với XML "
        "(`IOC_XML_MAX_BYTES`), 1 MiB với hộp thư liên thông.",
        "Send smaller batches; nothing of this request was stored.",
        "Chia nhỏ lô dữ liệu rồi gửi lại; yêu cầu này chưa được lưu gì.",
    ),
    ProblemType(
        "unsupported-media-type", 415, "Unsupported media type", "Kiểu nội dung không hỗ trợ",
        "The `Content-Type` is not one this endpoint reads: `application/json` for JSON "
        "ingest, `application/xml` (or `text/xml`, `application/soap+xml`) for edXML.",
        "Tiêu đề `Content-Type` không phải kiểu điểm nhận này đọc: `application/json` cho dữ "
        "liệu JSON, `application/xml` (hoặc `text/xml`, `application/soap+xml`) cho edXML.",
        "Set the `Content-Type` header to the body's real type.",
        "Đặt tiêu đề `Content-Type` đúng với kiểu nội dung gửi.",
    ),
    ProblemType(
        "invalid", 422, "Invalid request", "Dữ liệu không hợp lệ",
        "A field or parameter is invalid; `errors` lists each one with its reason.",
        "Một trường hay tham số không hợp lệ; `errors` liệt kê từng trường kèm lý do.",
        "Correct every field listed in `errors` and send the request again.",
        "Sửa mọi trường nêu trong `errors` rồi gửi lại.",
    ),
    ProblemType(
        "unknown-unit", 422, "Unknown unit", "Đơn vị không tồn tại",
        "The unit code (or window) is not known: units are GSO codes loaded with "
        "`ioc units load`.",
        "Mã đơn vị (hoặc kỳ) không tồn tại: đơn vị là mã hành chính (GSO) đã nạp bằng "
        "`ioc units load`.",
        "Check the code (province 2 digits, district 3, commune 5) against the loaded units.",
        "Kiểm tra mã (tỉnh 2 chữ số, huyện 3, xã 5) với danh mục đơn vị đã nạp.",
    ),
    ProblemType(
        "json-too-deep", 422, "JSON too deep", "JSON lồng quá sâu",
        "The JSON body is nested deeper than `IOC_JSON_MAX_DEPTH` levels.",
        "Nội dung JSON lồng nhau sâu hơn `IOC_JSON_MAX_DEPTH` cấp.",
        "Flatten the records; real source records need only a few levels.",
        "Làm phẳng bản ghi; dữ liệu nguồn thật chỉ cần vài cấp.",
    ),
    ProblemType(
        "json-array-too-long", 422, "JSON array too long", "Mảng JSON quá dài",
        "An array has more items than allowed: an ingest batch holds at most 10,000 records "
        "(`IOC_INGEST_MAX_RECORDS`).",
        "Một mảng có nhiều phần tử hơn cho phép: mỗi lô gửi tối đa 10.000 bản ghi "
        "(`IOC_INGEST_MAX_RECORDS`).",
        "Split the batch; nothing of this request was stored.",
        "Chia nhỏ lô; yêu cầu này chưa được lưu gì.",
    ),
    ProblemType(
        "json-object-too-large", 422, "JSON object too large", "Đối tượng JSON quá lớn",
        "An object has more keys than `IOC_JSON_MAX_OBJECT_KEYS`.",
        "Một đối tượng có nhiều khóa hơn `IOC_JSON_MAX_OBJECT_KEYS`.",
        "Send records with their own fields only.",
        "Chỉ gửi các trường của bản ghi.",
    ),
    ProblemType(
        "json-string-too-long", 422, "JSON string too long", "Chuỗi JSON quá dài",
        "A string is longer than `IOC_JSON_MAX_STRING_CHARS` characters.",
        "Một chuỗi dài hơn `IOC_JSON_MAX_STRING_CHARS` ký tự.",
        "Shorten the value (attachments are sent as links, not content).",
        "Rút gọn giá trị (tệp đính kèm gửi dưới dạng đường dẫn, không gửi nội dung).",
    ),
    ProblemType(
        "invalid-text", 422, "Invalid text", "Văn bản không hợp lệ",
        "A string holds a NUL character or an unpaired UTF-16 surrogate, which cannot be stored.",
        "Một chuỗi chứa ký tự NUL hoặc nửa cặp UTF-16 lẻ, không thể lưu.",
        "Clean the value at the source (usually a text encoding bug).",
        "Làm sạch giá trị ở hệ thống nguồn (thường do lỗi mã hóa ký tự).",
    ),
    ProblemType(
        "number-out-of-range", 422, "Number out of range", "Số vượt giới hạn",
        "A number is too large to store (e.g. `1e400`).",
        "Một số quá lớn để lưu (ví dụ `1e400`).",
        "Send the value ioc can store, or as a string if it is an identifier.",
        "Gửi giá trị trong giới hạn, hoặc gửi dạng chuỗi nếu đó là mã định danh.",
    ),
    ProblemType(
        "rate-limited", 429, "Too many requests", "Gửi quá nhiều yêu cầu",
        "This token sent more requests than its rate limit (docs/security.md §5).",
        "Mã truy cập này gửi nhiều yêu cầu hơn giới hạn cho phép (docs/security.md §5).",
        "Wait the seconds in the `Retry-After` header, then send again.",
        "Chờ số giây nêu trong tiêu đề `Retry-After` rồi gửi lại.",
    ),
    ProblemType(
        "internal", 500, "Internal error", "Lỗi nội bộ",
        "A fault in ioc itself. `detail` carries an error id that is written in the server's log.",
        "Lỗi trong chính phần mềm ioc. `detail` có mã lỗi, được ghi trong nhật ký máy chủ.",
        "Quote the error id to the operators of ioc.",
        "Báo mã lỗi cho đơn vị vận hành ioc.",
    ),
    ProblemType(
        "unavailable", 503, "Service unavailable", "Dịch vụ tạm thời không sẵn sàng",
        "The database (or another service this request needs, e.g. the federation secret) is "
        "unreachable or not configured.",
        "Cơ sở dữ liệu (hoặc dịch vụ khác yêu cầu cần, ví dụ khóa liên thông) không truy cập "
        "được hoặc chưa cấu hình.",
        "Retry after the `Retry-After` seconds; re-sending an ingest batch is safe.",
        "Thử lại sau số giây trong `Retry-After`; gửi lại một lô dữ liệu là an toàn.",
    ),
)  # fmt: skip

PROBLEM_TYPES: dict[str, ProblemType] = {t.name: t for t in _TYPES}

# The type of an HTTP error raised by the framework (unknown path, wrong method…) by status.
_BY_STATUS: dict[int, str] = {}
for _type in _TYPES:
    _BY_STATUS.setdefault(_type.status, _type.name)


def for_status(status: int) -> ProblemType:
    """The general type of an HTTP status (`not-found` for 404, `internal` for any 5xx…)."""
    name = _BY_STATUS.get(status) or ("internal" if status >= 500 else "bad-request")
    return PROBLEM_TYPES[name]


def problem_type(name: str) -> ProblemType:
    """The registered type `name`; an unregistered name is a bug (KeyError)."""
    return PROBLEM_TYPES[name]
