"""Every Prometheus metric of `ioc`, in one module (names: `ioc_<room>_<thing>_<unit>`).

Metrics live in prometheus-client's process registry by design of that library: they are
counters of this process, not application state.
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

# --- HTTP and services
HTTP_REQUESTS = Counter(
    "ioc_http_requests_total", "HTTP requests answered", ["method", "route", "status"]
)
HTTP_LATENCY = Histogram(
    "ioc_http_request_duration_seconds", "HTTP request latency", ["method", "route"]
)
SERVICE_RUNS = Counter(
    "ioc_service_runs_total", "Background service rounds by outcome", ["service", "outcome"]
)
DB_POOL_CHECKED_OUT = Gauge("ioc_db_pool_checked_out", "Database connections in use")
DB_POOL_SIZE = Gauge("ioc_db_pool_size", "Database pool size")
