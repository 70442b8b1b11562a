// Texts of the screen in Vietnamese (default) and English. KPI names are not here: they come
// from the KPI engine's catalogue (GET /api/v1/kpis/catalogue), the one source of them.

export const LANGS = ['vi', 'en'];

const TEXTS = {
  vi: {
    title: 'Trung tâm Điều hành thông minh',
    'window.today': 'Hôm nay',
    'window.7d': '7 ngày qua',
    'window.month': 'Tháng này',
    'window.quarter': 'Quý này',
    'window.year': 'Năm nay',
    'conn.connecting': 'Đang kết nối…',
    'conn.live': 'Trực tuyến',
    'conn.stale': 'Số liệu không cập nhật từ {t}',
    'conn.down': 'Mất kết nối',
    'conn.retry': 'Mất kết nối — thử lại sau {s} giây (lần {n})',
    'conn.unauthorized': 'Mã truy cập không hợp lệ',
    'conn.forbidden': 'Không có quyền xem đơn vị này',
    'conn.unknown_unit': 'Không có đơn vị với mã này',
    updated: 'Cập nhật lúc {t}',
    'updated.never': 'Chưa có số liệu',
    stale: 'MẤT KẾT NỐI — số liệu lúc {t} có thể đã cũ',
    'stale.database': 'SỐ LIỆU KHÔNG CẬP NHẬT — máy chủ mất kết nối cơ sở dữ liệu; số liệu lúc {t}',
    target: 'Mục tiêu {op} {v}',
    'target.none': 'Không đặt mục tiêu',
    'source.upstream': 'nguồn: tỉnh',
    'status.ok': 'Đạt',
    'status.warn': 'Cần chú ý',
    'status.bad': 'Không đạt',
    'status.no_data': 'Chưa có dữ liệu',
    children: 'Đơn vị trực thuộc — xếp từ yếu nhất',
    'children.none': 'Không có đơn vị trực thuộc',
    'children.more': '+ {n} đơn vị khác',
    'col.unit': 'Đơn vị',
    'col.bad': 'Không đạt',
    'col.ontime': 'Đúng hạn',
    'col.overdue': 'Quá hạn',
    alerts: 'Cảnh báo',
    'alerts.none': 'Không có cảnh báo đang mở',
    'alert.acknowledged': 'đã xác nhận',
    'severity.critical': 'Nghiêm trọng',
    'severity.warning': 'Cảnh báo',
    'severity.info': 'Thông tin',
    hours: '{v} giờ',
    'login.title': 'Đăng nhập màn hình IOC',
    'login.token': 'Mã truy cập (token)',
    'login.unit': 'Mã đơn vị (GSO)',
    'login.submit': 'Mở màn hình',
    'login.missing_unit': 'Hãy nhập mã đơn vị, ví dụ 70 hoặc 689',
    lang: 'EN',
  },
  en: {
    title: 'Intelligent Operations Centre',
    'window.today': 'Today',
    'window.7d': 'Last 7 days',
    'window.month': 'This month',
    'window.quarter': 'This quarter',
    'window.year': 'This year',
    'conn.connecting': 'Connecting…',
    'conn.live': 'Live',
    'conn.stale': 'Figures not updated since {t}',
    'conn.down': 'Disconnected',
    'conn.retry': 'Disconnected — retrying in {s} s (attempt {n})',
    'conn.unauthorized': 'Invalid access token',
    'conn.forbidden': 'Not allowed to view this unit',
    'conn.unknown_unit': 'No unit has this code',
    updated: 'Updated {t}',
    'updated.never': 'No data yet',
    stale: 'DISCONNECTED — figures from {t} may be out of date',
    'stale.database': 'NOT UPDATING — the server lost its database; figures from {t}',
    target: 'Target {op} {v}',
    'target.none': 'No target',
    'source.upstream': 'source: province',
    'status.ok': 'On target',
    'status.warn': 'Watch',
    'status.bad': 'Off target',
    'status.no_data': 'No data',
    children: 'Units below — worst first',
    'children.none': 'No units below this one',
    'children.more': '+ {n} more units',
    'col.unit': 'Unit',
    'col.bad': 'Off target',
    'col.ontime': 'On time',
    'col.overdue': 'Overdue',
    alerts: 'Alerts',
    'alerts.none': 'No open alerts',
    'alert.acknowledged': 'acknowledged',
    'severity.critical': 'Critical',
    'severity.warning': 'Warning',
    'severity.info': 'Info',
    hours: '{v} h',
    'login.title': 'Sign in to the IOC screen',
    'login.token': 'Access token',
    'login.unit': 'Unit code (GSO)',
    'login.submit': 'Open screen',
    'login.missing_unit': 'Enter a unit code, e.g. 70 or 689',
    lang: 'VI',
  },
};


/** `t(lang, key, {name: value})` → the text, with `{name}` replaced; the key if unknown. */
export function t(lang, key, params = {}) {
  const table = TEXTS[lang] || TEXTS.vi;
  const text = table[key] ?? TEXTS.vi[key] ?? key;
  return text.replace(/\{(\w+)\}/g, (_, name) => String(params[name] ?? ''));
}

/** The KPI's name from the catalogue in that language, else in Vietnamese, else its id. */
export function kpiName(lang, id, catalogue) {
  const entry = catalogue.get(id);
  if (lang === 'en') return entry?.name_en || entry?.name_vi || id;
  return entry?.name_vi || id;
}
