"""alerts: rules, per-(rule, unit) alert state and history, silences, notification outbox

Revision ID: 0005
Revises: 0001
Create Date: 2026-11-27
"""

from collections.abc import Sequence

from ioc.db.script import run_script

revision: str = "0005"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Rules are soft-deleted (deleted_at) so the history and the outbox of a deleted rule
    # still say what was sent and why.
    run_script("""
    CREATE TABLE alert_rules (
        id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        name text NOT NULL,
        kpi text NOT NULL,
        unit_code text NOT NULL REFERENCES units(code),
        each_child boolean NOT NULL DEFAULT false,
        time_window text NOT NULL,
        op text NOT NULL CHECK (op IN ('<', '<=', '>', '>=')),
        threshold double precision NOT NULL,
        clear_threshold double precision,
        for_seconds integer NOT NULL DEFAULT 0 CHECK (for_seconds >= 0),
        severity text NOT NULL CHECK (severity IN ('info', 'warning', 'critical')),
        recipients jsonb NOT NULL DEFAULT '[]',
        repeat_seconds integer NOT NULL DEFAULT 3600 CHECK (repeat_seconds >= 0),
        no_data_fires boolean NOT NULL DEFAULT false,
        webhook_secret text NOT NULL,
        created_by text NOT NULL,
        created_at timestamptz NOT NULL DEFAULT now(),
        updated_at timestamptz NOT NULL DEFAULT now(),
        deleted_at timestamptz
    );
    CREATE INDEX ix_alert_rules_kpi ON alert_rules (kpi, time_window) WHERE deleted_at IS NULL;
    CREATE INDEX ix_alert_rules_unit ON alert_rules (unit_code);
    """)
    # One row per (rule, unit): the alert instance and its current state. An "episode" is
    # one pending→firing→resolved run; notification ids embed it so they stay stable.
    run_script("""
    CREATE TABLE alerts (
        id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        rule_id bigint NOT NULL REFERENCES alert_rules(id) ON DELETE CASCADE,
        unit_code text NOT NULL REFERENCES units(code),
        state text NOT NULL CHECK (state IN
            ('ok', 'pending', 'firing', 'acknowledged', 'resolved', 'no_data', 'closed')),
        since timestamptz NOT NULL,
        pending_since timestamptz,
        fired_at timestamptz,
        resolved_at timestamptz,
        episode integer NOT NULL DEFAULT 0,
        value double precision,
        numerator double precision,
        denominator double precision,
        target double precision,
        as_of timestamptz,
        observed_at timestamptz,
        no_data_reason text,
        acknowledged_by text,
        acknowledged_at timestamptz,
        ack_comment text,
        last_notified_at timestamptz,
        reminders integer NOT NULL DEFAULT 0,
        CONSTRAINT uq_alerts_rule_unit UNIQUE (rule_id, unit_code)
    );
    CREATE INDEX ix_alerts_unit_state ON alerts (unit_code, state);
    CREATE INDEX ix_alerts_state ON alerts (state);
    CREATE TABLE alert_transitions (
        id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        alert_id bigint NOT NULL REFERENCES alerts(id) ON DELETE CASCADE,
        at timestamptz NOT NULL DEFAULT now(),
        from_state text,
        to_state text NOT NULL,
        value double precision,
        episode integer NOT NULL,
        actor text,
        comment text
    );
    CREATE INDEX ix_alert_transitions_alert ON alert_transitions (alert_id, at);
    CREATE INDEX ix_alert_transitions_at ON alert_transitions (at);
    CREATE TABLE alert_silences (
        id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        rule_id bigint REFERENCES alert_rules(id) ON DELETE CASCADE,
        unit_code text REFERENCES units(code),
        starts_at timestamptz NOT NULL DEFAULT now(),
        ends_at timestamptz NOT NULL,
        reason text NOT NULL,
        created_by text NOT NULL,
        created_at timestamptz NOT NULL DEFAULT now(),
        expired_by text,
        CONSTRAINT ck_alert_silences_matcher CHECK (rule_id IS NOT NULL OR unit_code IS NOT NULL)
    );
    CREATE INDEX ix_alert_silences_ends_at ON alert_silences (ends_at);
    """)
    # The delivery outbox: written in the evaluator's transaction, drained by the sender.
    # (notification_id, channel, recipient) is unique, so a replayed evaluation cannot
    # enqueue twice; message_id is fixed at the first attempt so retries of a grouped
    # message carry the same id (receivers deduplicate on it).
    run_script("""
    CREATE TABLE alert_notifications (
        id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        notification_id text NOT NULL,
        alert_id bigint NOT NULL REFERENCES alerts(id) ON DELETE CASCADE,
        episode integer NOT NULL,
        kind text NOT NULL CHECK (kind IN ('firing', 'resolved', 'reminder')),
        channel text NOT NULL CHECK (channel IN ('email', 'webhook')),
        recipient text NOT NULL,
        payload jsonb NOT NULL,
        status text NOT NULL DEFAULT 'pending'
            CHECK (status IN ('pending', 'sent', 'failed', 'skipped')),
        message_id text,
        attempts integer NOT NULL DEFAULT 0,
        created_at timestamptz NOT NULL DEFAULT now(),
        next_attempt_at timestamptz NOT NULL DEFAULT now(),
        sent_at timestamptz,
        last_error text,
        CONSTRAINT uq_alert_notifications_notification_id
            UNIQUE (notification_id, channel, recipient)
    );
    CREATE INDEX ix_alert_notifications_due ON alert_notifications (next_attempt_at)
        WHERE status = 'pending';
    CREATE INDEX ix_alert_notifications_alert ON alert_notifications (alert_id);
    CREATE TABLE alert_delivery_attempts (
        id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        notification_pk bigint NOT NULL REFERENCES alert_notifications(id) ON DELETE CASCADE,
        message_id text,
        at timestamptz NOT NULL DEFAULT now(),
        outcome text NOT NULL,
        detail text,
        latency_ms integer
    );
    CREATE INDEX ix_alert_delivery_attempts_notification
        ON alert_delivery_attempts (notification_pk);
    CREATE TABLE alert_cursor (
        id smallint PRIMARY KEY CHECK (id = 1),
        seq bigint NOT NULL,
        updated_at timestamptz NOT NULL DEFAULT now()
    );
    INSERT INTO alert_cursor (id, seq) VALUES (1, 0);
    """)


def downgrade() -> None:
    run_script("""
    DROP TABLE alert_cursor, alert_delivery_attempts, alert_notifications, alert_silences,
        alert_transitions, alerts, alert_rules;
    """)
