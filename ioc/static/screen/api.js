// Calls to the ioc API with the screen's token in the Authorization header. Paths are
// relative to the page, so the screen also works behind a reverse proxy under a prefix.

export class ApiError extends Error {
  constructor(status, problem) {
    super(problem?.detail || `HTTP ${status}`);
    this.status = status;
    this.problem = problem;
    // 401: the token is wrong or revoked; 403: it does not cover this unit; 404/422: no such
    // unit. Retrying cannot help: the screen asks for a new token or unit instead.
    this.fatal = [401, 403, 404, 422].includes(status);
    this.reason = { 401: 'unauthorized', 403: 'forbidden', 404: 'unknown_unit', 422: 'unknown_unit' }[status] ?? 'error';
  }
}

export class Api {
  constructor(base, token) {
    this.base = base;
    this.token = token;
  }

  url(path, params = {}) {
    const u = new URL(path, this.base);
    for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== null) u.searchParams.set(k, v);
    return u;
  }

  async get(path, params) {
    const res = await fetch(this.url(path, params), {
      headers: { Authorization: `Bearer ${this.token}`, Accept: 'application/json' },
      cache: 'no-store',
      credentials: 'omit',
      referrerPolicy: 'no-referrer',
    });
    if (!res.ok) {
      let problem = null;
      try {
        problem = await res.json();
      } catch {
        problem = null;
      }
      throw new ApiError(res.status, problem);
    }
    return res.json();
  }

  unit(code) {
    return this.get(`api/v1/units/${encodeURIComponent(code)}`);
  }

  kpis(unit, window) {
    return this.get('api/v1/kpis', { unit, window, children: 'true' });
  }

  series(id, unit, from, to, step) {
    return this.get(`api/v1/kpis/${encodeURIComponent(id)}/series`, { unit, from, to, step });
  }

  /** The unit and its children with their map positions (or null when none is known). */
  map(code) {
    return this.get(`api/v1/screen/map/${encodeURIComponent(code)}`);
  }

  /** The unit's Decision 766 scorecard for the current month, its children ranked. */
  scorecard(unit) {
    return this.get('api/v1/scorecards/766', { unit, period: 'month' });
  }

  /** The KPI catalogue of the KPI engine: [{id, name_vi, name_en, unit, direction, target}]. */
  catalogue() {
    return this.get('api/v1/kpis/catalogue');
  }

  /** ws(s)://host/…/ws — the token goes as ?token= because browsers cannot set headers here. */
  wsUrl() {
    const u = new URL('ws', this.base);
    u.protocol = u.protocol === 'https:' ? 'wss:' : 'ws:';
    u.searchParams.set('token', this.token);
    return u.toString();
  }
}
