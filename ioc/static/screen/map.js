// The map view: every child of the screen's unit drawn at its place (SVG, no tiles, nothing
// fetched from outside), coloured by the status of one KPI (`&kpi=`), its name and value
// beside it. Units without a position are listed beside the map, never dropped. The SVG is
// built once per layout; live events only change classes and texts (no DOM churn).

import { t, kpiName } from './i18n.js';
import { kpiKind } from './render.js';

const SVG = 'http://www.w3.org/2000/svg';
const STATUSES = ['ok', 'warn', 'bad', 'no_data'];

function svg(tag, attrs) {
  const node = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs ?? {})) node.setAttribute(k, String(v));
  return node;
}

function li(className, text) {
  const node = document.createElement('li');
  if (className) node.className = className;
  node.textContent = text;
  return node;
}

/** Plane coordinates of positions: longitude shrunk by cos(latitude) (equirectangular),
 * y growing southwards, then scaled to a 100-unit-wide box with a margin for labels. */
function project(placed) {
  const lats = placed.map((p) => p.lat);
  const lons = placed.map((p) => p.lon);
  const mid = ((Math.min(...lats) + Math.max(...lats)) / 2) * (Math.PI / 180);
  const xs = lons.map((lon) => lon * Math.cos(mid));
  const ys = lats.map((lat) => -lat);
  const [x0, x1, y0, y1] = [Math.min(...xs), Math.max(...xs), Math.min(...ys), Math.max(...ys)];
  const span = Math.max(x1 - x0, y1 - y0, 1e-6);
  const scale = 100 / span;
  const pad = 12;
  const width = (x1 - x0) * scale + 2 * pad;
  const height = (y1 - y0) * scale + 2 * pad;
  return {
    viewBox: `0 0 ${width.toFixed(2)} ${height.toFixed(2)}`,
    points: placed.map((p, i) => [pad + (xs[i] - x0) * scale, pad + (ys[i] - y0) * scale]),
  };
}

export class MapView {
  constructor(root, side) {
    this.root = root; // the <svg>
    this.side = side; // {kpi, legend, unplacedTitle, unplaced, source}
    this.layout = null; // {unit, children} from /api/v1/screen/map
    this.nodes = new Map(); // code → {g, value}
  }

  /** Positions from the server: draws the places (once per layout). */
  setLayout(layout) {
    this.layout = layout;
    const placed = layout.children.filter((c) => c.lat !== null && c.lon !== null);
    this.nodes.clear();
    if (placed.length === 0) {
      this.root.replaceChildren();
      return;
    }
    const { viewBox, points } = project(placed);
    this.root.setAttribute('viewBox', viewBox);
    this.root.setAttribute('preserveAspectRatio', 'xMidYMid meet');
    // Sizes in the box's units: fewer places → bigger marks and labels.
    const r = placed.length > 40 ? 1.6 : placed.length > 15 ? 2.4 : 3.2;
    const font = placed.length > 40 ? 1.7 : placed.length > 15 ? 2.4 : 3.0;
    const groups = placed.map((p, i) => {
      const [x, y] = points[i];
      const g = svg('g', { class: 'place status-no_data', 'data-unit': p.code, 'data-status': 'no_data' });
      const title = svg('title');
      g.append(title, svg('circle', { cx: x.toFixed(2), cy: y.toFixed(2), r }));
      const name = svg('text', { x: (x + r + 0.6).toFixed(2), y: (y - 0.2).toFixed(2), 'font-size': font });
      name.textContent = p.name;
      const value = svg('text', { class: 'v', x: (x + r + 0.6).toFixed(2), y: (y + font).toFixed(2), 'font-size': font });
      g.append(name, value);
      this.nodes.set(p.code, { g, title, value, name: p.name });
      return g;
    });
    this.root.replaceChildren(...groups);
  }

  /** The KPI the map is coloured by: the asked one, else the headline on-time rate. */
  static chooseKpi(asked, state) {
    if (asked) return asked;
    const seen = new Set();
    for (const c of state.children.values()) for (const id of c.kpis.keys()) seen.add(id);
    for (const id of state.kpis.keys()) seen.add(id);
    for (const id of ['i766_2_1', 'dossier_ontime_rate']) if (seen.has(id)) return id;
    return 'dossier_ontime_rate';
  }

  render({ state, catalogue, lang, fmt, kpi }) {
    const side = this.side;
    side.kpi.textContent = t(lang, 'map.kpi', { k: kpiName(lang, kpi, catalogue) });
    side.legend.replaceChildren(...STATUSES.map((s) => {
      const item = li(null, t(lang, `status.${s}`));
      const sw = document.createElement('span');
      sw.className = `sw status-${s}`;
      item.prepend(sw);
      return item;
    }));
    side.unplacedTitle.textContent = t(lang, 'map.unplaced');
    if (!this.layout) {
      side.unplaced.replaceChildren(li(null, t(lang, 'map.loading')));
      return;
    }
    const kind = kpiKind(kpi, catalogue);
    const unplaced = [];
    for (const c of this.layout.children) {
      const figure = state.children.get(c.code)?.kpis.get(kpi);
      const status = figure && figure.value !== null ? figure.status : 'no_data';
      const text = figure ? fmt.value(kind, figure.value) : '—';
      const node = this.nodes.get(c.code);
      if (!node) {
        const item = li(`status-${status}`, `${c.name}: ${text}`);
        item.dataset.unit = c.code;
        item.dataset.status = status;
        unplaced.push(item);
        continue;
      }
      if (node.g.dataset.status !== status) {
        node.g.setAttribute('class', `place status-${status}`);
        node.g.dataset.status = status;
      }
      if (node.value.textContent !== text) node.value.textContent = text;
      const title = `${node.name}: ${text} (${t(lang, `status.${status}`)})`;
      if (node.title.textContent !== title) node.title.textContent = title;
    }
    side.unplaced.replaceChildren(...(unplaced.length ? unplaced : [li(null, t(lang, 'map.unplaced.none'))]));
    const sources = new Set(this.layout.children.map((c) => c.source).filter(Boolean));
    side.source.textContent = sources.size ? t(lang, 'map.source', { s: [...sources].join(', ') }) : '';
  }
}
