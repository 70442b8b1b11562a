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
SERVICE_LEASE_HELD = Gauge(
    "ioc_service_lease_held",
    "1 while this process holds the lease of a leased service (exactly one replica should)",
    ["service"],
)
DB_POOL_CHECKED_OUT = Gauge("ioc_db_pool_checked_out", "Database connections in use")
DB_POOL_SIZE = Gauge("ioc_db_pool_size", "Database pool size")

# --- hardening (input limits, rate limits, personal data)
HARDENING_REJECTED = Counter(
    "ioc_hardening_rejected_requests_total",
    "Requests refused by an input or rate limit, by reason",
    ["reason"],
)
PERSONAL_DATA_READS = Counter(
    "ioc_privacy_personal_data_reads_total",
    "Unmasked personal-data reads (each also written to personal_data_access_log)",
    ["kind"],
)
PERSONAL_DATA_PURGED = Counter(
    "ioc_privacy_purged_records_total",
    "Records whose personal data was erased (or rows deleted) by the retention purge",
    ["table"],
)

# --- live screens (websockets)
LIVE_CLIENTS = Gauge("ioc_live_clients", "Open /ws connections of this process")
LIVE_MESSAGES_SENT = Counter(
    "ioc_live_messages_sent_total", "Messages written to screens, by type", ["type"]
)
LIVE_EVENTS_DROPPED = Counter(
    "ioc_live_events_dropped_total",
    "Events not sent to a screen, by reason (coalesced = superseded by a newer KPI value; "
    "overflow = queue full, screen resynchronised or cut off)",
    ["reason"],
)
LIVE_DISCONNECTS = Counter(
    "ioc_live_disconnects_total", "Screens closed by the server, by reason", ["reason"]
)
LIVE_EVENTS_READ = Counter(
    "ioc_live_events_read_total", "kpi/alert events read from the log by this process's hub"
)
LIVE_FANOUT_DELAY = Histogram(
    "ioc_live_fanout_delay_seconds",
    "From an event's transaction start to its fan-out by the hub",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
LIVE_EVENTS_PURGED = Counter(
    "ioc_live_events_purged_total", "Events deleted from the log by the retention purge"
)

# --- feeds (district IOCs)
FEEDS_DELIVERIES = Counter(
    "ioc_feeds_deliveries_total", "Feed delivery attempts by outcome (ok = 2xx)", ["outcome"]
)
FEEDS_DELIVERY_LATENCY = Histogram(
    "ioc_feeds_delivery_duration_seconds",
    "One delivery attempt, request sent to response status",
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
FEEDS_WORKERS = Gauge("ioc_feeds_workers", "Subscriptions with a delivery worker in this process")
FEEDS_FAILING = Counter(
    "ioc_feeds_failing_total", "Subscriptions that turned failing (retries exhausted)"
)
FEEDS_RECORD_EVENTS = Counter(
    "ioc_feeds_record_events_total", "Record events published for feeds, by type", ["type"]
)
FEDERATION_RECEIVED = Counter(
    "ioc_feeds_federation_received_total",
    "Deliveries received from an upstream ioc, by outcome (accepted, duplicate, refused, "
    "out_of_scope)",
    ["outcome"],
)

# --- alerts
ALERT_TRANSITIONS = Counter(
    "ioc_alerts_transitions_total", "Alert state transitions, by the state entered", ["state"]
)
ALERT_STATES = Gauge("ioc_alerts_alerts", "Alerts (rule, unit) in each state", ["state"])
ALERT_NOTIFICATIONS = Counter(
    "ioc_alerts_notifications_total",
    "Alert notification outcomes per outbox row (sent, error, failed, skipped, silenced)",
    ["channel", "outcome"],
)
ALERT_DELIVERY_SECONDS = Histogram(
    "ioc_alerts_delivery_seconds", "Time to send one alert message", ["channel"]
)
LIVE_RESYNCS = Counter(
    "ioc_live_resyncs_total",
    "Fresh snapshots sent instead of events (overflow = the screen fell behind; "
    "too_old = resume `since` older than the retained log)",
    ["reason"],
)

# --- collectors (ingest pipeline, pull sources)
INGEST_RECORDS = Counter(
    "ioc_ingest_records_total",
    "Records taken in, by source, feed and outcome (inserted/updated/unchanged/rejected)",
    ["source", "feed", "outcome"],
)
INGEST_BATCH_DURATION = Histogram(
    "ioc_ingest_batch_duration_seconds", "Time to parse and store one batch", ["feed"]
)
COLLECTOR_FETCHES = Counter(
    "ioc_collector_fetches_total",
    "Pull requests to sources by outcome (ok, http_error, timeout, garbage, error)",
    ["source", "outcome"],
)
COLLECTOR_LAST_SUCCESS = Gauge(
    "ioc_collector_last_success_timestamp_seconds",
    "Unix time of the source's last successful poll",
    ["source"],
)
COLLECTOR_LAG = Gauge(
    "ioc_collector_lag_seconds", "Seconds since the source's last successful poll", ["source"]
)
COLLECTOR_FAILURES = Gauge(
    "ioc_collector_consecutive_failures", "Failed polls in a row per source", ["source"]
)

# --- KPI engine
KPI_ROUND_SECONDS = Histogram(
    "ioc_kpis_round_duration_seconds",
    "Duration of one KPI engine round up to its events committed (read, compute, emit)",
    buckets=(0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
)
KPI_FOLD_SECONDS = Histogram(
    "ioc_kpis_fold_duration_seconds",
    "Duration of folding a round's journal into the KPI aggregates (after its events)",
)
KPI_RECORDS = Counter("ioc_kpis_records_total", "Source records folded into the KPI aggregates")
KPI_EVENTS = Counter("ioc_kpis_events_total", "KPI events emitted (one per changed value)")
KPI_VALUE = Gauge(
    "ioc_kpi_value",
    "Current KPI value per unit and window (NaN when there is no data); exported by the "
    "replica running the KPI engine",
    ["kpi", "unit", "window"],
)
