// The IOC wall screen: /screen?unit=CODE&window=WINDOW[&lang=en]#token=…
// Reads the token from the fragment (never sent to the server in a URL) or the login form,
// keeps it in localStorage, and shows the unit's KPIs live from the websocket.

import { Api } from './api.js';
import { formatter, isoDay } from './format.js';
import { LANGS, t } from './i18n.js';
import { LiveConnection } from './live.js';
import { ScreenState, WINDOWS, normCatalogue, seriesPoints } from './model.js';
import { fitValues, renderAlerts, renderChildren, renderTiles } from './render.js';

const TOKEN_KEY = 'ioc.screen.token';
const LANG_KEY = 'ioc.screen.lang';
const SERIES_DAYS = 14;
const SERIES_REFRESH_MS = 10 * 60 * 1000;
const MAX_CHILD_ROWS = 12;
const RENDER_BATCH_MS = 40;

const $ = (id) => document.getElementById(id);

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
  constructor({ unit, window, token, lang }) {
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
  }

  async start() {
    $('lang').addEventListener('click', () => this.setLang(this.lang === 'vi' ? 'en' : 'vi'));
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
    this.render();
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
    } else if (msg.type === 'kpi' || msg.type === 'alert') {
      if (this.state.applyEvent(msg)) this.scheduleRender();
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
    renderTiles($('tiles'), ctx);
    fitValues($('tiles'));
    renderChildren($('children'), $('children-more'), ctx);
    renderAlerts($('alerts'), ctx);
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
  const screen = new Screen({ unit, window: win, token, lang });
  screen.start();
}

main();
