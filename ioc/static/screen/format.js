// Number, date and time formats through Intl: 'vi-VN' gives 91,03% · 1.441 · 24/11/2026;
// English uses 'en-GB' (day/month/year, as Vietnamese readers expect). Times are shown in
// Asia/Ho_Chi_Minh whatever the TV's own zone, because calendar windows are in that zone.

import { t } from './i18n.js';

export const ZONE = 'Asia/Ho_Chi_Minh';
const LOCALES = { vi: 'vi-VN', en: 'en-GB' };

/** Formatters for one language: {count, rate, hours, value(kind, v), date, time, dateTime}. */
export function formatter(lang) {
  const locale = LOCALES[lang] || LOCALES.vi;
  const count = new Intl.NumberFormat(locale, { maximumFractionDigits: 0 });
  const rate = new Intl.NumberFormat(locale, { style: 'percent', maximumFractionDigits: 2 });
  const rateShort = new Intl.NumberFormat(locale, { style: 'percent', maximumFractionDigits: 1 });
  const decimal = new Intl.NumberFormat(locale, { maximumFractionDigits: 1 });
  const date = new Intl.DateTimeFormat(locale, {
    timeZone: ZONE, day: '2-digit', month: '2-digit', year: 'numeric',
  });
  const time = new Intl.DateTimeFormat(locale, {
    timeZone: ZONE, hour: '2-digit', minute: '2-digit', second: '2-digit', hourCycle: 'h23',
  });
  const fmt = {
    count: (v) => count.format(v),
    rate: (v) => rate.format(v),
    /** One decimal, for the narrow columns of the children table (71,4%). */
    rateShort: (v) => (v === null || v === undefined ? '—' : rateShort.format(v)),
    hours: (v) => t(lang, 'hours', { v: decimal.format(v) }),
    decimal: (v) => decimal.format(v),
    /** A KPI value of `kind` ('rate' | 'count' | 'hours'); an em dash when there is none. */
    value(kind, v) {
      if (v === null || v === undefined || !Number.isFinite(v)) return '—';
      if (kind === 'rate') return fmt.rate(v);
      if (kind === 'hours') return fmt.hours(v);
      return fmt.count(v);
    },
    date: (d) => date.format(d),
    time: (d) => time.format(d),
    dateTime: (d) => `${time.format(d)} ${date.format(d)}`,
  };
  return fmt;
}

/** 'YYYY-MM-DD' of `d` in Asia/Ho_Chi_Minh (for the series endpoint's from/to). */
export function isoDay(d) {
  const parts = new Intl.DateTimeFormat('en-CA', {
    timeZone: ZONE, year: 'numeric', month: '2-digit', day: '2-digit',
  }).format(d);
  return parts; // en-CA formats as 2026-11-24
}
