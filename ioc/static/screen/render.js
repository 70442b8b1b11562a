// Drawing the state into the page. Only textContent and attributes are ever set (never
// innerHTML), so no text from the server can become markup or script.

import { t, kpiName } from './i18n.js';
import { ONTIME_KPIS, headlineOntime, rankChildren, worstStatus } from './model.js';

const SVG = 'http://www.w3.org/2000/svg';

function el(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

/** The kind of a KPI's value: from the catalogue, else guessed from its id. */
export function kpiKind(id, catalogue) {
  const kind = catalogue.get(id)?.kind;
  if (kind) return kind;
  if (id.endsWith('_rate')) return 'rate';
  if (id.endsWith('_hours')) return 'hours';
  return 'count';
}

function targetOp(id, catalogue) {
  const op = catalogue.get(id)?.op;
  if (op) return op.replace('>=', '≥').replace('<=', '≤');
  return id.endsWith('_open') || id.endsWith('_hours') ? '≤' : '≥';
}

/** The order of tiles: the catalogue's, then any KPI the catalogue does not know; the
 * headline on-time figure (766's) comes first of the on-time ones. */
/** The overview's tiles: the plain KPIs and the headline 766 rate, in catalogue order. The
 * other 766 indicators are the scorecard view's (28 tiles do not fit a TV legibly). */
export function onOverview(id) {
  return !id.startsWith('i766_') || id === ONTIME_KPIS[0];
}

function tileOrder(kpis, catalogue) {
  const ids = [...catalogue.keys()].filter((id) => kpis.has(id) && onOverview(id));
  for (const id of kpis.keys()) if (!catalogue.has(id) && onOverview(id)) ids.push(id);
  const [headline, plain] = ONTIME_KPIS;
  if (ids.includes(headline) && ids.includes(plain)) {
    ids.splice(ids.indexOf(headline), 1);
    ids.splice(ids.indexOf(plain), 0, headline);
  }
  return ids;
}

function sparkline(points) {
  const svg = document.createElementNS(SVG, 'svg');
  svg.setAttribute('class', 'spark');
  svg.setAttribute('viewBox', '-3 -3 106 36'); // room for the end dot
  svg.setAttribute('preserveAspectRatio', 'none');
  svg.setAttribute('aria-hidden', 'true');
  const values = points.map((p) => p.v).filter((v) => v !== null && Number.isFinite(v));
  svg.dataset.points = String(values.length);
  if (values.length === 0) return svg;
  const lo = Math.min(...values);
  const hi = Math.max(...values);
  const span = hi - lo || 1;
  const step = 100 / Math.max(1, points.length - 1);
  const coords = [];
  points.forEach((p, i) => {
    if (p.v === null || !Number.isFinite(p.v)) return;
    coords.push([i * step, hi === lo ? 15 : 28 - ((p.v - lo) / span) * 26]);
  });
  const line = document.createElementNS(SVG, 'polyline');
  line.setAttribute('points', coords.map(([x, y]) => `${x.toFixed(1)},${y.toFixed(1)}`).join(' '));
  line.setAttribute('vector-effect', 'non-scaling-stroke');
  svg.append(line);
  // The latest point marked, so a line of one day (or a flat one) still shows where "now" is.
  const [x, y] = coords[coords.length - 1];
  const dot = document.createElementNS(SVG, 'circle');
  dot.setAttribute('cx', x.toFixed(1));
  dot.setAttribute('cy', y.toFixed(1));
  dot.setAttribute('r', '2.5');
  svg.append(dot);
  return svg;
}

/** KPI tiles: name, value, target, status (colour and word), 14-day sparkline. */
export function renderTiles(root, { state, catalogue, series, lang, fmt }) {
  const nodes = [];
  for (const id of tileOrder(state.kpis, catalogue)) {
    const kpi = state.kpis.get(id);
    const kind = kpiKind(id, catalogue);
    // Without a target there is no verdict to give: the figure is shown plain.
    const untargeted = kpi.target === null && kpi.status === 'ok';
    const tile = el('article', `tile status-${kpi.status}${untargeted ? ' untargeted' : ''}`);
    tile.dataset.kpi = id;
    tile.dataset.status = kpi.status;
    if (kpi.source) tile.dataset.source = kpi.source;
    tile.append(el('h3', 'name', kpiName(lang, id, catalogue)));
    // Hours go bare on the tile: the KPI's name already says "(giờ)".
    tile.append(kpi.value === null
      ? el('div', 'value none', t(lang, 'status.no_data'))
      : el('div', 'value', kind === 'hours' ? fmt.decimal(kpi.value) : fmt.value(kind, kpi.value)));
    const foot = el('div', 'foot');
    const target = kpi.target === null
      ? t(lang, 'target.none')
      : t(lang, 'target', { op: targetOp(id, catalogue), v: fmt.value(kind, kpi.target) });
    foot.append(el('span', 'target', target));
    if (!untargeted && kpi.value !== null) {
      foot.append(el('span', 'status', t(lang, `status.${kpi.status}`)));
    }
    if (kpi.source === 'upstream') foot.append(el('span', 'source', t(lang, 'source.upstream')));
    tile.append(foot);
    const spark = sparkline(series.get(id) ?? []);
    tile.classList.toggle('nospark', spark.dataset.points === '0');
    tile.append(spark);
    nodes.push(tile);
  }
  root.replaceChildren(...nodes);
}

/** Shrink a figure that does not fit its tile (e.g. 1.234.567 or 36,33% beside a sparkline)
 * step by step, rather than let it be clipped. Needs the tiles to be in the page. */
export function fitValues(root) {
  for (const value of root.querySelectorAll('.tile .value:not(.none)')) {
    // Too wide for its tile, or the tile too short for a two-line name, the figure and a
    // two-line foot: a size or two smaller, never clipped or drawn over the name.
    const tile = value.closest('.tile');
    const name = tile?.querySelector('.name');
    const foot = tile?.querySelector('.foot');
    const overflows = () => {
      if (value.scrollWidth > value.clientWidth) return true;
      const box = value.getBoundingClientRect();
      return (name && box.top < name.getBoundingClientRect().bottom - 1)
        || (foot && box.bottom > foot.getBoundingClientRect().top + 1);
    };
    value.classList.remove('fit-1', 'fit-2', 'fit-3');
    for (const step of ['fit-1', 'fit-2', 'fit-3']) {
      if (!overflows()) break;
      value.classList.remove('fit-1', 'fit-2');
      value.classList.add(step);
    }
  }
}

/** Children ranked worst first, as many rows as fit; the rest counted. */
export function renderChildren(table, more, { state, lang, fmt, maxRows }) {
  const body = table.tBodies[0];
  const ranked = rankChildren(state.children);
  const rows = ranked.slice(0, maxRows).map((child) => {
    const row = el('tr', `status-${worstStatus(child.kpis)}`);
    row.dataset.unit = child.code;
    row.append(el('td', 'unit', child.name ?? child.code));
    row.append(el('td', `bad num${child.bad ? ' some' : ''}`,
      child.kpis.size ? fmt.count(child.bad) : '—'));
    const ontime = headlineOntime(child.kpis);
    row.append(el('td', `num status-${ontime?.status ?? 'no_data'}`, fmt.rateShort(ontime?.value)));
    const overdue = child.kpis.get('dossier_overdue_open');
    row.append(el('td', `num status-${overdue?.status ?? 'no_data'}`,
      fmt.value('count', overdue?.value)));
    return row;
  });
  body.replaceChildren(...rows);
  const hidden = ranked.length - rows.length;
  more.textContent = ranked.length === 0 ? t(lang, 'children.none')
    : hidden > 0 ? t(lang, 'children.more', { n: fmt.count(hidden) }) : '';
}

/** The KPI's value for an alert: the live one when this screen has it (the alert's own
 * value is from its last evaluation and may be older than the tile beside it). */
function currentValue(state, alert, unitCode, kpiId) {
  if (alert.window === state.window) {
    const kpis = unitCode === state.unit ? state.kpis : state.children.get(unitCode)?.kpis;
    const live = kpis?.get(kpiId);
    if (live) return live.value;
  }
  if (alert.value === undefined) return undefined;
  return alert.value === null ? null : Number(alert.value);
}

/** The open alerts ticker: severity, rule, unit, KPI and value — nothing personal. */
export function renderAlerts(root, { state, catalogue, unitNames, lang, fmt }) {
  const alerts = [...state.alerts.values()];
  alerts.sort(alertOrder);
  if (alerts.length === 0) {
    root.replaceChildren(el('span', 'alert none', t(lang, 'alerts.none')));
    return;
  }
  root.replaceChildren(...alerts.map((a) => {
    const severity = ['critical', 'warning', 'info'].includes(a.severity) ? a.severity : 'warning';
    const acked = Boolean(a.acknowledged_at || a.acknowledged || a.state === 'acknowledged');
    const item = el('span', `alert sev-${severity} state-${a.state ?? 'firing'} ack-${acked ? 'yes' : 'no'}`);
    item.dataset.state = String(a.state ?? '');
    item.dataset.alert = String(a.id ?? '');
    item.append(el('b', 'sev', t(lang, `severity.${severity}`)));
    const rule = a.rule_name ?? a.name ?? a.rule?.name ?? '';
    const unitCode = String(a.unit ?? a.unit_code ?? '');
    const unit = a.unit_name ?? unitNames.get(unitCode) ?? unitCode;
    const kpiId = a.kpi ?? a.kpi_id ?? a.rule?.kpi;
    const parts = [rule, unit];
    if (kpiId) {
      const value = currentValue(state, a, unitCode, kpiId);
      const shown = value === undefined ? '' : `: ${fmt.value(kpiKind(kpiId, catalogue), value)}`;
      parts.push(`${kpiName(lang, kpiId, catalogue)}${shown}`);
    }
    item.append(el('span', 'text', parts.filter(Boolean).join(' · ')));
    if (acked) {
      item.append(el('i', 'ack', t(lang, 'alert.acknowledged')));
    }
    return item;
  }));
}

const SEVERITY_ORDER = { critical: 0, warning: 1, info: 2 };

function isAcked(a) {
  return Boolean(a.acknowledged_at || a.acknowledged || a.state === 'acknowledged');
}

/** Most severe first; within a severity, unacknowledged before acknowledged. */
function alertOrder(a, b) {
  return (SEVERITY_ORDER[a.severity] ?? 3) - (SEVERITY_ORDER[b.severity] ?? 3)
    || Number(isAcked(a)) - Number(isAcked(b));
}

/** Firing critical alerts nobody has acknowledged: a red band under the header, in every
 * view, large enough to read from 3 m. Hidden when there is none. */
export function renderCritical(root, { state, unitNames, lang }) {
  const firing = [...state.alerts.values()].filter((a) => a.severity === 'critical'
    && (a.state ?? 'firing') === 'firing' && !isAcked(a));
  root.hidden = firing.length === 0;
  root.dataset.count = String(firing.length);
  if (firing.length === 0) {
    root.replaceChildren();
    return;
  }
  const head = el('span', 'sev', `⚠ ${t(lang, 'critical.firing')}`);
  root.replaceChildren(head, ...firing.slice(0, 3).map((a) => {
    const unitCode = String(a.unit ?? a.unit_code ?? '');
    const item = el('span', 'item', [a.rule_name ?? a.name ?? '', a.unit_name ?? unitNames.get(unitCode) ?? unitCode]
      .filter(Boolean).join(' · '));
    item.dataset.alert = String(a.id ?? '');
    return item;
  }));
}
