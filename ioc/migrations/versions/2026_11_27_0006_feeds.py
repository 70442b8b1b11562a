"""feeds: subscriptions, delivery log, record-event cursors, federation inbox

Revision ID: 0006
Revises: 0001
Create Date: 2026-11-27
"""

from collections.abc import Sequence

from ioc.db.script import run_script

revision: str = "0006"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # --- subscriptions (docs/api.md §7). The secret is kept in clear because signing needs it
    # (HMAC); it is shown once by the API and never listed. cursor_seq is the last event seq
    # delivered with a 2xx (or skipped as not matching): delivery resumes after it.
    run_script("""
    CREATE TABLE feed_subscriptions (
        id uuid PRIMARY KEY,
        unit_code text NOT NULL REFERENCES units(code),
        url text NOT NULL,
        topics text[] NOT NULL CHECK (cardinality(topics) > 0
            AND topics <@ ARRAY['kpi', 'alert', 'dossier', 'report', 'document']),
        kpi_ids text[],
        severities text[],
        contact_email text,
        description text,
        secret text NOT NULL,
        previous_secret text,
        previous_secret_expires_at timestamptz,
        status text NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'paused', 'failing')),
        status_reason text,
        status_changed_at timestamptz NOT NULL DEFAULT now(),
        cursor_seq bigint NOT NULL,
        replay_epoch integer NOT NULL DEFAULT 0,
        attempts integer NOT NULL DEFAULT 0,
        first_failure_at timestamptz,
        next_attempt_at timestamptz,
        last_success_at timestamptz,
        last_error text,
        created_by text NOT NULL,
        created_at timestamptz NOT NULL DEFAULT now(),
        updated_at timestamptz NOT NULL DEFAULT now()
    );
    CREATE INDEX ix_feed_subscriptions_unit_code ON feed_subscriptions (unit_code);
    CREATE TABLE feed_deliveries (
        id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        subscription_id uuid NOT NULL REFERENCES feed_subscriptions(id) ON DELETE CASCADE,
        seq bigint NOT NULL,
        webhook_id text NOT NULL,
        attempt integer NOT NULL,
        status_code integer,
        error text,
        latency_ms double precision NOT NULL,
        ok boolean NOT NULL,
        at timestamptz NOT NULL DEFAULT now()
    );
    CREATE INDEX ix_feed_deliveries_subscription ON feed_deliveries (subscription_id, id);
    CREATE INDEX ix_feed_deliveries_at ON feed_deliveries (at);
    """)
    # --- the record-events projector's cursors, one per source table: change_seq is commit
    # ordered within a table (ingest lock), so a per-table cursor never skips a late commit.
    # Starting at the current maximum avoids flooding the log with every historical record
    # when the revision is applied to a populated database.
    run_script("""
    CREATE TABLE feed_record_cursors (
        source_table text PRIMARY KEY CHECK (source_table IN ('dossiers', 'reports', 'documents')),
        change_seq bigint NOT NULL,
        updated_at timestamptz NOT NULL DEFAULT now()
    );
    INSERT INTO feed_record_cursors (source_table, change_seq)
    SELECT 'dossiers', coalesce(max(change_seq), 0) FROM dossiers
    UNION ALL SELECT 'reports', coalesce(max(change_seq), 0) FROM reports
    UNION ALL SELECT 'documents', coalesce(max(change_seq), 0) FROM documents;
    """)
    # --- federation: what an upstream ioc pushed to this one. webhook ids are kept long
    # enough to outlive the upstream's retries (duplicates ignored); KPI values keep the
    # newest upstream seq per (unit, window, kpi).
    run_script("""
    CREATE TABLE federation_inbox (
        webhook_id text PRIMARY KEY,
        upstream_seq bigint,
        type text,
        received_at timestamptz NOT NULL DEFAULT now()
    );
    CREATE INDEX ix_federation_inbox_received_at ON federation_inbox (received_at);
    CREATE TABLE federation_events (
        upstream_seq bigint PRIMARY KEY,
        type text NOT NULL,
        unit_code text,
        data jsonb NOT NULL,
        webhook_id text NOT NULL,
        received_at timestamptz NOT NULL DEFAULT now()
    );
    CREATE INDEX ix_federation_events_unit ON federation_events (unit_code, upstream_seq);
    CREATE INDEX ix_federation_events_received_at ON federation_events (received_at);
    CREATE TABLE federation_kpis (
        unit_code text NOT NULL,
        time_window text NOT NULL,
        kpi_id text NOT NULL,
        value double precision,
        numerator double precision,
        denominator double precision,
        target double precision,
        status text,
        as_of timestamptz,
        upstream_seq bigint NOT NULL,
        received_at timestamptz NOT NULL DEFAULT now(),
        CONSTRAINT pk_federation_kpis PRIMARY KEY (unit_code, time_window, kpi_id)
    );
    """)


def downgrade() -> None:
    run_script("""
    DROP TABLE federation_kpis, federation_events, federation_inbox;
    DROP TABLE feed_record_cursors;
    DROP TABLE feed_deliveries, feed_subscriptions;
    """)
