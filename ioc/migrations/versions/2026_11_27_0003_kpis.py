"""kpis: per-record contributions, rolled-up counters, open sets, service usage, targets,
last emitted values and the engine's cursor

Revision ID: 0003
Revises: 0001
Create Date: 2026-11-27
"""

from collections.abc import Sequence

from ioc.db.script import run_script

revision: str = "0003"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # The engine's single row: how far it has read `record_change_seq`, which unit tree its
    # roll-ups were built with, and when it last looked at the clock (roll-overs, overdue).
    run_script("""
    CREATE TABLE kpi_state (
        id smallint PRIMARY KEY DEFAULT 1 CHECK (id = 1),
        change_cursor bigint NOT NULL DEFAULT 0,
        initialised boolean NOT NULL DEFAULT false,
        closure_hash text,
        last_run_at timestamptz,
        last_local_day date,
        -- The engine's configuration (Settings.kpi_targets, kpi_warn_margin), kept here so every
        -- reader (API, alerts, CLI) judges statuses exactly as the engine that emits events.
        config_targets jsonb NOT NULL DEFAULT '{}',
        warn_margin double precision NOT NULL DEFAULT 0.05
    );
    INSERT INTO kpi_state (id) VALUES (1);
    """)
    # What each record last contributed (so an update subtracts exactly what it added).
    run_script("""
    CREATE TABLE kpi_dossier_proj (
        dossier_id bigint PRIMARY KEY,
        unit_code text NOT NULL,
        procedure_code text NOT NULL,
        recv_day date NOT NULL,
        online boolean NOT NULL,
        digitized boolean NOT NULL,
        paid boolean NOT NULL,
        fin_day date,
        ontime boolean NOT NULL,
        open_due timestamptz
    );
    CREATE TABLE kpi_report_proj (
        report_id bigint PRIMARY KEY,
        unit_code text NOT NULL,
        recv_day date NOT NULL,
        resolved_day date,
        ontime boolean NOT NULL,
        resp_seconds double precision,
        resp_bucket integer,
        open_due timestamptz
    );
    CREATE INDEX ix_kpi_report_proj_resp ON kpi_report_proj (unit_code, recv_day)
        INCLUDE (resp_seconds) WHERE resp_seconds IS NOT NULL;
    CREATE INDEX ix_kpi_report_proj_bucket ON kpi_report_proj (unit_code, resp_bucket, recv_day)
        INCLUDE (resp_seconds) WHERE resp_seconds IS NOT NULL;
    CREATE TABLE kpi_document_proj (
        document_pk bigint PRIMARY KEY,
        units text[] NOT NULL,
        open_units text[] NOT NULL,
        sent_day date NOT NULL,
        electronic boolean NOT NULL,
        due_at timestamptz
    );
    """)
    # Additive counters, already rolled up to every ancestor (unit_closure), per local day
    # ('d') and per month ('m'): a year is <= 11 month rows + <= 31 day rows per unit.
    run_script("""
    CREATE TABLE kpi_counts (
        unit_code text NOT NULL,
        grain "char" NOT NULL CHECK (grain IN ('d', 'm')),
        period date NOT NULL,
        d_received bigint NOT NULL DEFAULT 0,
        d_online bigint NOT NULL DEFAULT 0,
        d_digitized bigint NOT NULL DEFAULT 0,
        d_paid bigint NOT NULL DEFAULT 0,
        d_finished bigint NOT NULL DEFAULT 0,
        d_ontime bigint NOT NULL DEFAULT 0,
        r_received bigint NOT NULL DEFAULT 0,
        r_resolved bigint NOT NULL DEFAULT 0,
        r_ontime bigint NOT NULL DEFAULT 0,
        doc_sent bigint NOT NULL DEFAULT 0,
        doc_electronic bigint NOT NULL DEFAULT 0,
        CONSTRAINT pk_kpi_counts PRIMARY KEY (unit_code, grain, period)
    );
    CREATE INDEX ix_kpi_counts_zero ON kpi_counts (unit_code) WHERE d_received = 0
        AND d_online = 0 AND d_digitized = 0 AND d_paid = 0 AND d_finished = 0
        AND d_ontime = 0 AND r_received = 0 AND r_resolved = 0 AND r_ontime = 0
        AND doc_sent = 0 AND doc_electronic = 0;
    CREATE TABLE kpi_open (
        unit_code text NOT NULL,
        feed text NOT NULL CHECK (feed IN ('dossiers', 'reports', 'documents')),
        due_at timestamptz NOT NULL,
        n bigint NOT NULL,
        CONSTRAINT pk_kpi_open PRIMARY KEY (unit_code, feed, due_at)
    );
    CREATE INDEX ix_kpi_open_due_at ON kpi_open (due_at);
    """)
    # Response times per 1-hour bucket, rolled up like kpi_counts: the exact median is found
    # by counting through the buckets, then sorting only the reports of the median's bucket.
    run_script("""
    CREATE TABLE kpi_resp_hist (
        unit_code text NOT NULL,
        grain "char" NOT NULL CHECK (grain IN ('d', 'm')),
        period date NOT NULL,
        bucket integer NOT NULL,
        n bigint NOT NULL,
        CONSTRAINT pk_kpi_resp_hist PRIMARY KEY (unit_code, grain, period, bucket)
    );
    CREATE INDEX ix_kpi_resp_hist_zero ON kpi_resp_hist (unit_code) WHERE n = 0;
    """)
    # Online-service usage: online dossiers per (filing unit, procedure, day); each service's
    # state (offered online, last day with an online dossier); and, rolled up, how many
    # offered services have each last day ('-infinity' = never used).
    run_script("""
    CREATE TABLE kpi_service_day (
        unit_code text NOT NULL,
        procedure_code text NOT NULL,
        day date NOT NULL,
        n bigint NOT NULL,
        CONSTRAINT pk_kpi_service_day PRIMARY KEY (unit_code, procedure_code, day)
    );
    CREATE TABLE kpi_service (
        unit_code text NOT NULL,
        procedure_code text NOT NULL,
        offered boolean NOT NULL,
        last_day date,
        CONSTRAINT pk_kpi_service PRIMARY KEY (unit_code, procedure_code)
    );
    CREATE TABLE kpi_service_usage (
        unit_code text NOT NULL,
        last_day date NOT NULL,
        n bigint NOT NULL,
        CONSTRAINT pk_kpi_service_usage PRIMARY KEY (unit_code, last_day)
    );
    """)
    # Per-unit target overrides (admin API) and the last value emitted per (unit, window, kpi).
    run_script("""
    CREATE TABLE kpi_targets (
        unit_code text NOT NULL REFERENCES units(code) ON DELETE CASCADE,
        kpi_id text NOT NULL,
        target double precision NOT NULL,
        updated_by text,
        updated_at timestamptz NOT NULL DEFAULT now(),
        CONSTRAINT pk_kpi_targets PRIMARY KEY (unit_code, kpi_id)
    );
    CREATE TABLE kpi_current (
        unit_code text NOT NULL,
        time_window text NOT NULL,
        kpi_id text NOT NULL,
        value double precision,
        numerator double precision,
        denominator double precision,
        target double precision,
        status text NOT NULL,
        as_of timestamptz NOT NULL,
        CONSTRAINT pk_kpi_current PRIMARY KEY (unit_code, time_window, kpi_id)
    );
    """)


def downgrade() -> None:
    run_script("""
    DROP TABLE kpi_current, kpi_targets, kpi_service_usage, kpi_service, kpi_service_day,
        kpi_resp_hist, kpi_open, kpi_counts, kpi_document_proj, kpi_report_proj,
        kpi_dossier_proj, kpi_state;
    """)
