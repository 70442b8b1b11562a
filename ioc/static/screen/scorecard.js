// The scorecard view: the unit's Decision 766 score for the current month — the total out of
// its maximum, each group's points as a bar, each indicator's score and where its value came
// from — and the children ranked by total. Loaded from /api/v1/scorecards/766, then kept live
// by the websocket's `scorecard` events (the unit's own, and each child's total).

import { t } from './i18n.js';

const el = (tag, cls, text) => {
  const node = document.createElement(tag);
  if (cls) node.className = cls;
  if (text !== undefined) node.textContent = text;
  return node;
};

const RELOAD_MS = 5 * 60 * 1000;

export class ScorecardView {
  constructor(root, api) {
    this.root = root;
    this.api = api;
    this.card = null;
    this.loadedAt = 0;
    this.failed = null;
  }

  /** Load (again) when shown and older than a few minutes; events keep it current between. */
  async load(unit, force = false) {
    if (!force && this.card && Date.now() - this.loadedAt < RELOAD_MS) return false;
    try {
      this.card = await this.api.scorecard(unit);
      this.failed = null;
    } catch (err) {
      this.failed = err.status ?? 'error';
    }
    this.loadedAt = Date.now();
    return true;
  }

  /** A `scorecard` event: the unit's own replaces the card; a child's moves its rank. */
  apply(msg) {
    const card = msg.scorecard;
    if (!card || !this.card) return false;
    if (String(msg.unit) === String(this.card.unit)) {
      this.card = { ...card, children: card.children?.length ? card.children : this.card.children };
      return true;
    }
    const child = this.card.children.find((c) => String(c.unit) === String(msg.unit));
    if (!child) return false;
    child.total = card.total;
    child.max = card.max;
    this.card.children.sort((a, b) => b.total - a.total || a.name.localeCompare(b.name));
    this.card.children.forEach((c, i) => { c.rank = i + 1; });
    return true;
  }

  render(lang, fmt) {
    const points = (v) => (v === null || v === undefined ? '—' : fmt.decimal(v));
    if (!this.card) {
      const text = this.failed ? t(lang, 'scorecard.failed') : t(lang, 'scorecard.loading');
      this.root.replaceChildren(el('p', 'placeholder', text));
      return;
    }
    const c = this.card;
    const name = (o) => (lang === 'en' && o.name_en ? o.name_en : o.name);
    const head = el('div', 'sc-head');
    const total = el('div', 'sc-total');
    total.dataset.total = String(c.total);
    total.append(el('span', 'sc-points', points(c.total)), el('span', 'sc-max', ` / ${points(c.max)}`));
    const title = el('div', 'sc-title');
    title.append(
      el('div', 'sc-name', t(lang, 'scorecard.title', { p: c.period })),
      el('div', 'sc-note', t(lang, c.closed ? 'scorecard.closed' : 'scorecard.live')),
    );
    head.append(total, title);

    const groups = el('div', 'sc-groups');
    for (const g of c.groups) {
      const box = el('section', 'sc-group');
      box.dataset.group = g.id;
      const line = el('div', 'sc-gline');
      line.append(el('span', 'sc-gname', name(g)), el('span', 'sc-gpts', `${points(g.score)} / ${points(g.max)}`));
      const bar = el('div', 'sc-bar');
      const fill = el('div', 'sc-fill');
      const share = g.max > 0 ? g.score / g.max : 0;
      fill.style.width = `${Math.round(Math.max(0, Math.min(1, share)) * 100)}%`;
      fill.classList.add(share >= 0.9 ? 'ok' : share >= 0.6 ? 'warn' : 'bad');
      bar.append(fill);
      box.append(line, bar);
      const list = el('ul', 'sc-inds');
      for (const ind of g.indicators) {
        if (ind.points === 0 && ind.score === null) continue; // tracked, carries no points
        const item = el('li', `sc-ind src-${ind.source}`);
        item.dataset.indicator = ind.id;
        const value = ind.value === null || ind.value === undefined ? '—' : fmt.rateShort(ind.value);
        item.append(
          el('span', 'sc-iname', name(ind)),
          el('span', 'sc-ivalue', value),
          el('span', 'sc-iscore', ind.score === null ? '—' : `${points(ind.score)}/${points(ind.points)}`),
          el('span', 'sc-isrc', t(lang, `scorecard.src.${ind.source}`)),
        );
        list.append(item);
      }
      box.append(list);
      groups.append(box);
    }

    const ranking = el('aside', 'side sc-rank');
    ranking.append(el('h2', null, t(lang, 'scorecard.ranking')));
    const table = el('table', 'children');
    const body = el('tbody');
    for (const child of c.children) {
      const row = el('tr');
      row.dataset.unit = child.unit;
      const bar = el('div', 'sc-bar small');
      const fill = el('div', 'sc-fill');
      const share = child.max > 0 ? child.total / child.max : 0;
      fill.style.width = `${Math.round(Math.max(0, Math.min(1, share)) * 100)}%`;
      fill.classList.add(share >= 0.9 ? 'ok' : share >= 0.6 ? 'warn' : 'bad');
      bar.append(fill);
      const cell = el('td', 'num');
      cell.append(el('span', null, points(child.total)), bar);
      row.append(el('td', 'num', String(child.rank)), el('td', 'unit', child.name), cell);
      body.append(row);
    }
    if (!c.children.length) {
      const row = el('tr');
      row.append(el('td', null, '—'));
      body.append(row);
    }
    table.append(body);
    ranking.append(table);

    const main = el('div', 'sc-main');
    main.append(head, groups);
    this.root.replaceChildren(main, ranking);
  }
}
