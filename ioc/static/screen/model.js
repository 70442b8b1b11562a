// The screen's state and the pure functions that feed it. Messages follow docs/api.md §4/§5;
// the readers below accept the shapes the REST API and the websocket use for the same data
// (a list of {unit, kpis} or a map unit → kpis or unit → window → kpis), so one screen works
// against both.

export const WINDOWS = ['today', '7d', 'month', 'quarter', 'year'];
const STATUSES = new Set(['ok', 'warn', 'bad', 'no_data']);
const num = (v) => (v === null || v === undefined || v === '' ? null : Number(v));

/** One KPI as the screen uses it. */
export function normKpi(raw) {
  return {
    id: String(raw.id),
    value: num(raw.value),
    numerator: num(raw.numerator),
    denominator: num(raw.denominator),
    target: num(raw.target),
    status: STATUSES.has(raw.status) ? raw.status : 'no_data',
    // 'upstream': mirrored from the province's ioc (federation), not this instance's engine.
    source: raw.source === 'upstream' ? 'upstream' : null,
  };
}

/** Set a KPI; a mirrored (upstream) value is replaced only by a newer mirrored one, as the
 * snapshot does ("upstream wins when present", docs/feeds.md). */
function setKpi(map, kpi) {
  if (kpi.source === null && map.get(kpi.id)?.source === 'upstream') return false;
  map.set(kpi.id, kpi);
  return true;
}

function kpiMap(list) {
  const map = new Map();
  for (const raw of Array.isArray(list) ? list : []) {
    if (raw && raw.id !== undefined) map.set(String(raw.id), normKpi(raw));
  }
  return map;
}

function kpisOf(entry, window) {
  if (Array.isArray(entry)) return entry;
  if (!entry || typeof entry !== 'object') return [];
  if (Array.isArray(entry.kpis)) return entry.kpis;
  if (entry.kpis && typeof entry.kpis === 'object') return kpisOf(entry.kpis, window);
  if (Array.isArray(entry[window])) return entry[window];
  return [];
}

/** children (list or map, see above) → Map code → {code, name, kpis: Map}. */
export function normChildren(children, window) {
  const out = new Map();
  if (!children) return out;
  if (Array.isArray(children)) {
    for (const c of children) {
      const code = String(c.unit ?? c.code ?? c.unit_code ?? '');
      if (code) out.set(code, { code, name: c.name ?? c.unit_name ?? null, kpis: kpiMap(kpisOf(c, window)) });
    }
    return out;
  }
  if (typeof children === 'object') {
    // {window: [{unit, kpis}]} — keyed by window first.
    if (WINDOWS.some((w) => w in children) && !Object.keys(children).some((k) => /^\d+$/.test(k))) {
      return normChildren(children[window], window);
    }
    for (const [code, entry] of Object.entries(children)) {
      out.set(code, { code, name: entry?.name ?? null, kpis: kpiMap(kpisOf(entry, window)) });
    }
  }
  return out;
}

const RANK = { bad: 3, warn: 2, no_data: 1, ok: 0 };

/** The headline on-time figure: Decision 766's (2.1, what DVCQG scores), else the plain rate
 * (a server without the 766 indicators). Both stay tiles. */
export const ONTIME_KPIS = ['i766_2_1', 'dossier_ontime_rate'];

/** The headline on-time KPI of a unit's KPIs (a Map by id), or undefined. */
export function headlineOntime(kpis) {
  for (const id of ONTIME_KPIS) if (kpis.has(id)) return kpis.get(id);
  return undefined;
}

/** Children worst first: more KPIs off target, then more to watch, then lower on-time rate. */
export function rankChildren(children) {
  const score = (c) => {
    let bad = 0;
    let warn = 0;
    for (const k of c.kpis.values()) {
      if (k.status === 'bad') bad += 1;
      else if (k.status === 'warn') warn += 1;
    }
    const ontime = headlineOntime(c.kpis)?.value;
    return { bad, warn, ontime: ontime ?? Number.POSITIVE_INFINITY };
  };
  return [...children.values()]
    .map((c) => ({ ...c, ...score(c) }))
    .sort((a, b) => b.bad - a.bad || b.warn - a.warn || a.ontime - b.ontime
      || String(a.name ?? a.code).localeCompare(String(b.name ?? b.code), 'vi'));
}

/** The worst status of a set of KPIs (for a child's badge). */
export function worstStatus(kpis) {
  let worst = 'ok';
  for (const k of kpis.values()) if (RANK[k.status] > RANK[worst]) worst = k.status;
  return worst;
}

/** `GET /api/v1/kpis/{id}/series` → [{t: period, v: value|null}] in time order. */
export function seriesPoints(body) {
  const list = Array.isArray(body) ? body : body?.points ?? [];
  return list.map((p) => (Array.isArray(p)
    ? { t: String(p[0]), v: num(p[1]) }
    : { t: String(p.period ?? p.t ?? p.date ?? ''), v: num(p.value) }));
}

const CLOSED_ALERT = new Set(['ok', 'resolved', 'inactive', 'closed']);

/** Whether an alert belongs on the ticker (open: pending, firing, no_data…; not resolved). */
export function alertOpen(alert) {
  return !CLOSED_ALERT.has(String(alert.state ?? alert.status ?? 'firing'));
}

export function alertKey(alert) {
  return String(alert.id ?? `${alert.rule_id ?? alert.rule ?? ''}:${alert.unit ?? alert.unit_code ?? ''}`);
}

/** Everything the screen shows, fed by snapshots and events; `seq` is the last event seen. */
export class ScreenState {
  constructor(unit, window) {
    this.unit = unit;
    this.window = window;
    this.kpis = new Map();
    this.children = new Map();
    this.alerts = new Map();
    this.seq = null;
    this.asOf = null;
  }

  /** A websocket snapshot replaces everything. */
  applySnapshot(msg) {
    const kpis = msg.kpis && !Array.isArray(msg.kpis) ? msg.kpis[this.window] : msg.kpis;
    this.kpis = kpiMap(kpis);
    const children = normChildren(msg.children, this.window);
    // Keep names learnt from /api/v1/units when the snapshot does not carry them.
    for (const [code, c] of children) c.name = c.name ?? this.children.get(code)?.name ?? null;
    this.children = children;
    this.alerts = new Map();
    for (const a of Array.isArray(msg.alerts) ? msg.alerts : []) {
      if (alertOpen(a)) this.alerts.set(alertKey(a), a);
    }
    if (msg.as_of) this.asOf = msg.as_of;
    this.seq = typeof msg.seq === 'number' ? msg.seq : this.seq;
  }

  /** A REST `GET /api/v1/kpis` body (used before the websocket answers, and as a fallback). */
  applyRest(body) {
    this.kpis = kpiMap(body.kpis);
    if (body.children !== undefined) {
      const children = normChildren(body.children, this.window);
      for (const [code, c] of children) c.name = c.name ?? this.children.get(code)?.name ?? null;
      this.children = children;
    }
    if (body.as_of) this.asOf = body.as_of;
  }

  /** Unit names from `GET /api/v1/units/{code}` (children listed even before they have KPIs). */
  applyUnit(unit) {
    this.unitName = unit.name;
    for (const child of unit.children ?? []) {
      const known = this.children.get(child.code);
      if (known) known.name = child.name;
      else this.children.set(child.code, { code: child.code, name: child.name, kpis: new Map() });
    }
  }

  /** Apply one live event; returns false when it is a duplicate or for another window. */
  applyEvent(msg) {
    if (typeof msg.seq === 'number') {
      if (this.seq !== null && msg.seq <= this.seq) return false;
      this.seq = msg.seq;
    }
    if (msg.type === 'kpi') {
      if (msg.window !== undefined && msg.window !== this.window) return false;
      const kpi = normKpi(msg.kpi);
      const unit = String(msg.unit ?? this.unit);
      if (msg.as_of) this.asOf = msg.as_of;
      if (unit === this.unit) return setKpi(this.kpis, kpi);
      const child = this.children.get(unit);
      if (!child) return false; // a grandchild: already counted in its parent's figures
      return setKpi(child.kpis, kpi);
    }
    if (msg.type === 'alert' && msg.alert) {
      const key = alertKey(msg.alert);
      if (alertOpen(msg.alert)) this.alerts.set(key, msg.alert);
      else this.alerts.delete(key);
      return true;
    }
    return false;
  }
}

const KINDS = { ratio: 'rate', count: 'count', hours: 'hours' };
const OPS = { higher: '>=', lower: '<=' };

/** `GET /api/v1/kpis/catalogue` → Map id → {name_vi, name_en, kind, op, target}. */
export function normCatalogue(list) {
  const map = new Map();
  for (const k of Array.isArray(list) ? list : []) {
    map.set(String(k.id), {
      name_vi: k.name_vi ?? null,
      name_en: k.name_en ?? null,
      kind: KINDS[k.unit] ?? null,
      op: OPS[k.direction] ?? null,
      target: num(k.target),
      // Overdue counts are "now" figures with no history (the series endpoint refuses them).
      charted: k.windowed !== false,
    });
  }
  return map;
}
