// The trends view: per KPI with a history, a uPlot chart (vendored, uplot.esm.js) of the last
// 30/90/365 days from GET /api/v1/kpis/{id}/series — dates on the time axis (Asia/Ho_Chi_Minh),
// the value axis in the KPI's unit, the target as a dashed line. Live: a kpi event of the
// screen's unit for a charted KPI re-reads that KPI's series (at most once per 2 s).
// Axis labels are drawn on a canvas; the labels drawn last are also kept on the chart's
// element (data-x-ticks, data-y-ticks) for tests and screen readers.

import uPlot from './uplot.esm.js';
import { t, kpiName } from './i18n.js';
import { ZONE, isoDay } from './format.js';
import { kpiKind } from './render.js';

export const TREND_DAYS = [30, 90, 365];
const REFETCH_MS = 2000;

function el(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

/** 'YYYY-MM-DD' → unix seconds of that day's noon in Asia/Ho_Chi_Minh (UTC+7, no DST). */
function daySeconds(period) {
  const [y, m, d] = period.slice(0, 10).split('-').map(Number);
  return Date.UTC(y, m - 1, d, 5) / 1000;
}

export class TrendsView {
  constructor(root, api) {
    this.root = root;
    this.api = api;
    this.charts = new Map(); // id → {box, plot, data, target}
    this.pending = new Map(); // id → timer of a queued re-read
    this.days = 30;
    this.key = '';
  }

  /** Which KPIs are charted and for how many days; rebuilds the grid when that changes. */
  async show(ctx, ids, days) {
    const key = `${ctx.state.unit}|${days}|${ctx.lang}|${ids.join(',')}`;
    this.ctx = ctx;
    if (key === this.key) return;
    this.key = key;
    this.days = days;
    for (const { plot } of this.charts.values()) plot?.destroy();
    this.charts.clear();
    if (ids.length === 0) {
      this.root.replaceChildren(el('p', 'placeholder', t(ctx.lang, 'trends.none')));
      return;
    }
    const boxes = ids.map((id) => {
      const box = el('figure', 'chart');
      box.dataset.chart = id;
      box.append(el('h3', null, kpiName(ctx.lang, id, ctx.catalogue)), el('div', 'now'), el('div', 'plot'));
      this.charts.set(id, { box, plot: null });
      return box;
    });
    this.root.replaceChildren(...boxes);
    await Promise.all(ids.map((id) => this.load(id)));
  }

  async load(id) {
    const { state } = this.ctx;
    const to = new Date();
    const from = new Date(to.getTime() - (this.days - 1) * 86400000);
    let body;
    try {
      body = await this.api.series(id, state.unit, isoDay(from), isoDay(to), 'day');
    } catch {
      return; // the previous chart stays; the next event or view change tries again
    }
    const entry = this.charts.get(id);
    if (!entry) return;
    const points = Array.isArray(body.points) ? body.points : [];
    const xs = points.map((p) => daySeconds(String(p.period ?? p.t ?? p.date)));
    const ys = points.map((p) => (p.value === null || p.value === undefined ? null : Number(p.value)));
    const target = body.target === null || body.target === undefined ? null : Number(body.target);
    this.draw(id, entry, [xs, ys, xs.map(() => target)], target);
  }

  draw(id, entry, data, target) {
    const { lang, fmt, catalogue } = this.ctx;
    const kind = kpiKind(id, catalogue);
    const box = entry.box;
    const last = [...data[1]].reverse().find((v) => v !== null);
    box.dataset.points = String(data[0].length);
    box.dataset.target = target === null ? '' : String(target);
    box.dataset.last = last === undefined ? '' : String(last);
    box.querySelector('.now').textContent = target === null
      ? fmt.value(kind, last)
      : `${fmt.value(kind, last)} · ${t(lang, 'trends.target')} ${fmt.value(kind, target)}`;
    if (entry.plot) {
      entry.plot.setData(data);
      return;
    }
    const plotBox = box.querySelector('.plot');
    // dd/mm (dd/mm/yy over a year) in Asia/Ho_Chi_Minh, built from parts: 'vi-VN' alone
    // would write a day and month without a year as 06-11.
    const parts = new Intl.DateTimeFormat('en-GB', {
      timeZone: ZONE, day: '2-digit', month: '2-digit', year: '2-digit',
    });
    const dayFmt = {
      format: (d) => {
        const p = Object.fromEntries(parts.formatToParts(d).map((x) => [x.type, x.value]));
        return this.days > 90 ? `${p.day}/${p.month}/${p.year}` : `${p.day}/${p.month}`;
      },
    };
    const yValue = (v) => (kind === 'rate' ? fmt.rateShort(v) : fmt.decimal(v));
    const rem = parseFloat(getComputedStyle(document.documentElement).fontSize) || 16;
    const font = `${Math.round(rem * 1.05)}px sans-serif`;
    const axis = { stroke: '#9fb3c8', font, grid: { stroke: '#1d3a55', width: 1 }, ticks: { stroke: '#1d3a55' } };
    const opts = {
      width: Math.max(200, plotBox.clientWidth),
      height: Math.max(120, plotBox.clientHeight),
      legend: { show: false },
      tzDate: (ts) => uPlot.tzDate(new Date(ts * 1000), ZONE),
      cursor: { show: false },
      scales: {
        x: { time: true },
        y: {
          range: (u, lo, hi) => {
            const vals = [lo, hi, target].filter((v) => v !== null && Number.isFinite(v));
            let [a, b] = [Math.min(...vals), Math.max(...vals)];
            if (kind === 'rate') [a, b] = [Math.max(0, a - 0.05), Math.min(1, b + 0.05)];
            if (a === b) [a, b] = [a - 1, b + 1];
            return [kind === 'rate' ? a : Math.min(0, a), b];
          },
        },
      },
      axes: [
        {
          ...axis,
          values: (u, splits) => {
            const labels = splits.map((s) => dayFmt.format(new Date(s * 1000)));
            box.dataset.xTicks = labels.join('|');
            return labels;
          },
        },
        {
          ...axis,
          size: rem * 5.5,
          label: t(lang, `unit.${kind}`),
          labelFont: font,
          labelSize: rem * 1.6,
          values: (u, splits) => {
            const labels = splits.map(yValue);
            box.dataset.yTicks = labels.join('|');
            return labels;
          },
        },
      ],
      series: [
        {},
        { label: t(lang, 'trends.value'), stroke: '#4fc3f7', width: rem * 0.2, spanGaps: true, points: { show: data[0].length <= 31 } },
        { label: t(lang, 'trends.target'), stroke: '#f5b041', width: rem * 0.15, dash: [rem * 0.6, rem * 0.4], points: { show: false } },
      ],
    };
    entry.plot = new uPlot(opts, data, plotBox);
  }

  /** A live value of the screen's unit: re-read that KPI's series soon (coalesced). */
  changed(id) {
    if (!this.charts.has(id) || this.pending.has(id)) return;
    this.pending.set(id, setTimeout(() => {
      this.pending.delete(id);
      this.load(id);
    }, REFETCH_MS));
  }

  resize() {
    for (const { box, plot } of this.charts.values()) {
      const p = box.querySelector('.plot');
      plot?.setSize({ width: Math.max(200, p.clientWidth), height: Math.max(120, p.clientHeight) });
    }
  }
}
