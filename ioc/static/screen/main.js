// The IOC wall screen: /screen?unit=CODE&window=WINDOW[&lang=en]#token=…
// Reads the token from the fragment (never sent to the server in a URL) or the login form,
// keeps it in localStorage, and shows the unit's KPIs live from the websocket.

import { Api } from './api.js';
import { formatter, isoDay } from './format.js';
import { LANGS, t } from './i18n.js';
import { LiveConnection } from './live.js';
import { ScreenState, WINDOWS, normCatalogue, seriesPoints } from './model.js';
import { fitValues, renderAlerts, renderChildren, renderCritical, renderTiles } from './render.js';
import { MapView } from './map.js';
import { TREND_DAYS, TrendsView } from './trends.js';
import { ScorecardView } from './scorecard.js';

const TOKEN_KEY = 'ioc.screen.token';
const LANG_KEY = 'ioc.screen.lang';
const SERIES_DAYS = 14;
const SERIES_REFRESH_MS = 10 * 60 * 1000;
const MAX_CHILD_ROWS = 12;
const RENDER_BATCH_MS = 40;

const $ = (id) => document.getElementById(id);

export const VIEWS = ['overview', 'map', 'trends', 'scorecard'];
const MIN_EVERY_S = 2;
const MAX_CHARTS = 8; // 4 × 2 charts at 1920×1080: axes readable from across the room

/** `view=map` (one view) or `views=overview,map&every=30` (a playlist); unknown names dropped. */
function readViews(params) {
  const list = (params.get('views') ?? params.get('view') ?? 'overview')
    .split(',').map((v) => v.trim()).filter((v) => VIEWS.includes(v));
  const views = list.length ? list : ['overview'];
  const every = Math.max(MIN_EVERY_S, Number(params.get('every')) || 30);
  const days = TREND_DAYS.includes(Number(params.get('days'))) ? Number(params.get('days')) : 30;
  const kpis = (params.get('kpis') ?? '').split(',').map((k) => k.trim()).filter(Boolean);
  return { views, every, kpi: params.get('kpi'), days, kpis };
}

/** Kept per unit as well: one PC driving a video wall may show several units, each with
 * its own district token, in windows that share this origin's storage. */
function storeToken(token, unit) {
  localStorage.setItem(TOKEN_KEY, token);
  if (unit) localStorage.setItem(`${TOKEN_KEY}:${unit}`, token);
}

function readToken(unit) {
  const hash = new URLSearchParams(location.hash.slice(1));
  const fromHash = hash.get('token');
  if (fromHash) {
    storeToken(fromHash, unit);
    // Drop the fragment from the address bar and history: it is a secret.
    history.replaceState(null, '', location.pathname + location.search);
    return fromHash;
  }
  return localStorage.getItem(`${TOKEN_KEY}:${unit}`) ?? localStorage.getItem(TOKEN_KEY);
}

function readLang(params) {
  const asked = params.get('lang') || localStorage.getItem(LANG_KEY) || 'vi';
  return LANGS.includes(asked) ? asked : 'vi';
}

class Screen {
  constructor({ unit, window, token, lang, views }) {
    this.api = new Api(document.baseURI, token);
    this.state = new ScreenState(unit, window);
    this.lang = lang;
    this.fmt = formatter(lang);
    this.catalogue = new Map();
    this.series = new Map();
    this.seriesAt = 0;
    this.noSeries = new Set(); // KPIs the series endpoint refused (422): not asked again
    this.lastHeard = null; // when the server last confirmed the figures are current
    this.databaseDown = null; // since when the server says its database cannot be read
    this.conn = { state: 'connecting' };
    this.views = views.views;
    this.every = views.every;
    this.mapKpi = views.kpi;
    this.days = views.days;
    this.trendKpis = views.kpis;
    this.viewIndex = 0;
    this.mapView = new MapView($('map'), {
      kpi: $('map-kpi'), legend: $('map-legend'), unplacedTitle: $('map-unplaced-title'),
      unplaced: $('map-unplaced'), source: $('map-source'),
    });
    this.trends = new TrendsView($('charts'), this.api);
    this.scorecard = new ScorecardView($('view-scorecard'), this.api);
  }

  get view() {
    return this.views[this.viewIndex];
  }

  /** Show view number `i` of the playlist (or of every view when a key asks for one that is
   * not in it); the playlist's timer restarts, so a view chosen by hand stays `every` s. */
  showView(i, list = this.views) {
    if (list !== this.views) this.views = list;
    this.viewIndex = ((i % this.views.length) + this.views.length) % this.views.length;
    for (const name of VIEWS) $(`view-${name}`).hidden = name !== this.view;
    document.body.dataset.view = this.view;
    clearTimeout(this.playTimer);
    if (this.views.length > 1) {
      this.playTimer = setTimeout(() => this.showView(this.viewIndex + 1), this.every * 1000);
    }
    this.render();
  }

  /** Remote-friendly keys: ←/→ (and PageUp/PageDown) step through the playlist, 1–4 pick a
   * view, T cycles 30/90/365 days, L switches the language. */
  onKey(ev) {
    if (ev.target instanceof HTMLInputElement || !$('login').hidden) return;
    const k = ev.key;
    if (k === 'ArrowRight' || k === 'PageDown') this.showView(this.viewIndex + 1);
    else if (k === 'ArrowLeft' || k === 'PageUp') this.showView(this.viewIndex - 1);
    else if (/^[1-4]$/.test(k)) {
      const name = VIEWS[Number(k) - 1];
      const at = this.views.indexOf(name);
      if (at >= 0) this.showView(at);
      else this.showView(0, [name]);
    } else if (k === 't' || k === 'T') {
      this.days = TREND_DAYS[(TREND_DAYS.indexOf(this.days) + 1) % TREND_DAYS.length];
      this.render();
    } else if (k === 'l' || k === 'L') this.setLang(this.lang === 'vi' ? 'en' : 'vi');
    else return;
    ev.preventDefault();
  }

  async loadMap() {
    try {
      this.mapView.setLayout(await this.api.map(this.state.unit));
      this.render();
    } catch {
      // The map waits for the next connection's check.
    }
  }

  async start() {
    $('lang').addEventListener('click', () => this.setLang(this.lang === 'vi' ? 'en' : 'vi'));
    document.addEventListener('keydown', (ev) => this.onKey(ev));
    window.addEventListener('resize', () => this.trends.resize());
    setInterval(() => this.renderHeader(), 1000);
    setInterval(() => this.refreshSeries(true), SERIES_REFRESH_MS);
    this.live = new LiveConnection({
      url: () => this.api.wsUrl(),
      subscribe: () => {
        const msg = { type: 'subscribe', unit: this.state.unit, windows: [this.state.window] };
        if (this.state.seq !== null) msg.since = this.state.seq;
        return msg;
      },
      check: () => this.checkUnit(),
      onMessage: (msg) => this.onMessage(msg),
      onState: (s) => this.onConnState(s),
    });
    this.showView(0);
    this.live.start();
  }

  /** Before each (re)connection: the token still works and the unit is in scope. */
  async checkUnit() {
    const unit = await this.api.unit(this.state.unit);
    this.state.applyUnit(unit);
    if (this.catalogue.size === 0) {
      // Names, kinds and target directions; without them tiles show ids and guessed formats.
      this.catalogue = normCatalogue(await this.api.catalogue());
    }
    if (!this.mapView.layout) this.loadMap();
  }

  onMessage(msg) {
    if (msg.type === 'status') {
      // The server cannot read its database: the socket is fine, the figures are not.
      this.databaseDown = msg.database === 'down' ? new Date(msg.since || Date.now()) : null;
      this.renderHeader();
    } else if (msg.type === 'snapshot') {
      this.databaseDown = null;
      this.state.applySnapshot(msg);
      this.heard();
      if (msg.children === undefined) this.loadChildren();
      this.refreshSeries(false);
      this.render();
    } else if (msg.type === 'scorecard') {
      if (this.scorecard.apply(msg) && this.view === 'scorecard') this.scheduleRender();
      this.heard();
    } else if (msg.type === 'kpi' || msg.type === 'alert') {
      if (this.state.applyEvent(msg)) {
        this.scheduleRender();
        if (msg.type === 'kpi' && String(msg.unit ?? this.state.unit) === this.state.unit) {
          this.trends.changed(msg.kpi?.id);
        }
      }
      this.heard();
    } else if (msg.type === 'ping' || msg.type === 'pong') {
      if (!this.databaseDown) this.heard(); // a ping during an outage proves nothing current
      this.renderHeader();
    } else if (msg.type === 'error' && (msg.status === 401 || msg.status === 403)) {
      // The server closes the socket after this; retrying with the same token cannot help.
      this.live.stop();
      this.onConnState({ state: 'fatal', reason: msg.status === 401 ? 'unauthorized' : 'forbidden' });
    }
  }

  heard() {
    this.lastHeard = new Date();
    document.body.dataset.seq = this.state.seq === null ? '' : String(this.state.seq);
  }

  async loadChildren() {
    try {
      const body = await this.api.kpis(this.state.unit, this.state.window);
      this.state.applyRest({ ...body, kpis: [...this.state.kpis.values()] });
      this.render();
    } catch {
      // The ranking waits for the next snapshot.
    }
  }

  async refreshSeries(force) {
    if (!force && Date.now() - this.seriesAt < SERIES_REFRESH_MS && this.series.size) return;
    if (this.conn.state !== 'live') return;
    this.seriesAt = Date.now();
    // Day by day for the short windows, month by month for quarter and year.
    const monthly = this.state.window === 'quarter' || this.state.window === 'year';
    const to = new Date();
    const from = monthly
      ? new Date(to.getFullYear() - 1, to.getMonth() + 1, 1, 12)
      : new Date(to.getTime() - (SERIES_DAYS - 1) * 86400000);
    const ids = [...this.state.kpis.keys()]
      .filter((id) => this.catalogue.get(id)?.charted !== false && !this.noSeries.has(id));
    await Promise.all(ids.map(async (id) => {
      try {
        const body = await this.api.series(
          id, this.state.unit, isoDay(from), isoDay(to), monthly ? 'month' : 'day');
        this.series.set(id, seriesPoints(body));
      } catch (err) {
        // Keep the previous line: a trend a few minutes old is still the trend.
        if (err.status === 422) this.noSeries.add(id);
      }
    }));
    this.render();
  }

  onConnState(s) {
    this.conn = s.retryMs === undefined ? s : { ...s, retryAt: Date.now() + s.retryMs };
    if (s.state === 'fatal') this.showLogin(t(this.lang, `conn.${s.reason}`));
    this.renderHeader();
  }

  setLang(lang) {
    this.lang = lang;
    this.fmt = formatter(lang);
    localStorage.setItem(LANG_KEY, lang);
    this.render();
  }

  /** One ingested record moves a dozen KPIs of the unit and its children: draw them once. */
  scheduleRender() {
    if (this.renderTimer) return;
    this.renderTimer = setTimeout(() => this.render(), RENDER_BATCH_MS);
  }

  render() {
    clearTimeout(this.renderTimer);
    this.renderTimer = null;
    const ctx = {
      state: this.state, catalogue: this.catalogue, series: this.series, lang: this.lang,
      fmt: this.fmt, maxRows: MAX_CHILD_ROWS,
      unitNames: new Map([...this.state.children].map(([code, c]) => [code, c.name ?? code])),
    };
    ctx.unitNames.set(this.state.unit, this.state.unitName ?? this.state.unit);
    if (this.view === 'overview') {
      renderTiles($('tiles'), ctx);
      fitValues($('tiles'));
      renderChildren($('children'), $('children-more'), ctx);
    } else if (this.view === 'map') {
      this.mapView.render({ ...ctx, kpi: MapView.chooseKpi(this.mapKpi, this.state) });
    } else if (this.view === 'trends') {
      $('trends-title').textContent = t(this.lang, 'trends.days', { n: this.days });
      // `&kpis=a,b` charts those; else the first 8 with a history, in catalogue order.
      const ids = this.trendKpis.length ? this.trendKpis.slice(0, MAX_CHARTS)
        : [...this.catalogue.keys()].filter((id) => this.catalogue.get(id).charted
          && this.state.kpis.has(id) && !this.noSeries.has(id)).slice(0, MAX_CHARTS);
      if (this.state.kpis.size) this.trends.show(ctx, ids, this.days);
    } else if (this.view === 'scorecard') {
      this.scorecard.render(this.lang, this.fmt);
      this.scorecard.load(this.state.unit).then((loaded) => {
        if (loaded && this.view === 'scorecard') this.scorecard.render(this.lang, this.fmt);
      });
    }
    renderAlerts($('alerts'), ctx);
    renderCritical($('critical'), ctx);
    this.scrollTicker();
    this.renderHeader();
  }

  /** Scroll the ticker back and forth only when the alerts do not fit on one line. */
  scrollTicker() {
    const items = $('alerts');
    const overflow = items.scrollWidth - items.parentElement.clientWidth;
    items.classList.toggle('scrolling', overflow > 0);
    items.style.setProperty('--ticker-overflow', `${Math.max(0, overflow)}px`);
    items.style.setProperty('--ticker-seconds', `${Math.max(10, overflow / 60)}s`);
  }

  renderHeader() {
    const { lang, fmt } = this;
    document.documentElement.lang = lang;
    document.title = `IOC · ${this.state.unitName ?? this.state.unit}`;
    $('unit-name').textContent = this.state.unitName ?? this.state.unit;
    $('window-label').textContent = t(lang, `window.${this.state.window}`);
    $('clock').textContent = fmt.dateTime(new Date());
    $('lang').textContent = t(lang, 'lang');
    $('views').replaceChildren(...this.views.map((name, i) => {
      const item = document.createElement('span');
      item.textContent = `${VIEWS.indexOf(name) + 1} ${t(lang, `view.${name}`)}`;
      if (i === this.viewIndex) item.className = 'on';
      return item;
    }));
    $('children-title').textContent = t(lang, 'children');
    $('alerts-title').textContent = t(lang, 'alerts');
    for (const th of document.querySelectorAll('[data-i18n]')) th.textContent = t(lang, th.dataset.i18n);
    const outage = this.conn.state === 'live' && this.databaseDown !== null;
    const live = this.conn.state === 'live' && !outage;
    document.body.dataset.conn = outage ? 'stale' : this.conn.state;
    document.body.classList.toggle('stale', !live);
    const heard = this.lastHeard ? fmt.dateTime(this.lastHeard) : null;
    $('updated').textContent = heard ? t(lang, 'updated', { t: heard }) : t(lang, 'updated.never');
    let text = t(lang, `conn.${this.conn.state === 'fatal' ? this.conn.reason : this.conn.state}`);
    if (outage) text = t(lang, 'conn.stale', { t: fmt.dateTime(this.databaseDown) });
    if (this.conn.state === 'down' && this.conn.retryAt !== undefined) {
      const seconds = Math.max(0, Math.ceil((this.conn.retryAt - Date.now()) / 1000));
      text = t(lang, 'conn.retry', { s: seconds, n: this.conn.attempt });
    }
    $('conn-text').textContent = text;
    const banner = $('stale-banner');
    banner.hidden = live || !heard;
    banner.textContent = heard ? t(lang, outage ? 'stale.database' : 'stale', { t: heard }) : '';
  }

  showLogin(message) {
    showLogin(this.state.unit, message, this.lang);
  }
}

function showLogin(unit, message, lang) {
  const form = $('login');
  for (const node of form.querySelectorAll('[data-i18n]')) node.textContent = t(lang, node.dataset.i18n);
  $('login-unit').value = unit ?? '';
  $('login-error').textContent = message ?? '';
  form.hidden = false;
  form.onsubmit = (ev) => {
    ev.preventDefault();
    const token = $('login-token').value.trim();
    const code = $('login-unit').value.trim();
    if (!code) {
      $('login-error').textContent = t(lang, 'login.missing_unit');
      return;
    }
    storeToken(token, code);
    const params = new URLSearchParams(location.search);
    params.set('unit', code);
    // A fresh page load starts from a clean state with the new token and unit.
    location.assign(`${location.pathname}?${params}`);
  };
  $('login-token').focus();
}

function main() {
  const params = new URLSearchParams(location.search);
  const lang = readLang(params);
  const unit = params.get('unit');
  const token = readToken(unit);
  const win = WINDOWS.includes(params.get('window')) ? params.get('window') : 'today';
  document.documentElement.lang = lang;
  if (!token || !unit || !/^\d{2,5}$/.test(unit)) {
    document.body.dataset.conn = 'login';
    showLogin(unit, '', lang);
    return;
  }
  const screen = new Screen({ unit, window: win, token, lang, views: readViews(params) });
  screen.start();
}

main();
