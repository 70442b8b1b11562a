"""ioc: monitoring backend for a provincial Intelligent Operations Centre (IOC).

The house, bottom to top (each layer imports only layers below it, and another room only
through its package: `from ioc.kpis import snapshot`; tests/foundation/test_structure.py
checks both):

- base: `settings`, `errors`, `metrics`, `localtime` (the one time zone, the KPI windows),
  `webhooks`, `smtp`, `loops` (LoopService, leases), `db`, `events` (the event log, every
  NOTIFY channel, the listener), `context` (AppContext: what one running app owns);
- `auth` (tokens, roles) and `api` (the HTTP edge: unit of work, problem+json, limits,
  health);
- the rooms: `units`, `privacy`, `collectors`, `federation`, `kpis`, `alerts`, `live`,
  `feeds`, `screen`, `ops` — each exporting what others use, and `router`,
  `build_services(ctx)`, `register_cli(app)` as it has them;
- the composition roots: `app` (the FastAPI factory) and `cli` (the `ioc` command).
"""

__version__ = "0.1.0"
