"""foundation: units and their history, organs, API tokens, the event log, source records

Revision ID: 0001
Revises:
Create Date: 2026-11-27
"""

from collections.abc import Sequence

from ioc.db.script import run_script

revision: str = "0001"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # --- administrative units: a code is one row (its latest name/level); the tree through
    # time is in unit_links (parent edges with validity, successor edges from reforms), and
    # unit_closure is every (ancestor, descendant) pair so a subtree is one indexed lookup.
    run_script("""
    CREATE TABLE units (
        code text PRIMARY KEY CHECK (code ~ '^[0-9]{2}([0-9]|[0-9]{3})?$'),
        name text NOT NULL,
        level text NOT NULL CHECK (level IN ('province', 'district', 'commune')),
        parent_code text REFERENCES units(code) DEFERRABLE INITIALLY DEFERRED,
        lat double precision,
        lon double precision,
        valid_from date,
        valid_to date,
        successor_code text REFERENCES units(code) DEFERRABLE INITIALLY DEFERRED,
        updated_at timestamptz NOT NULL DEFAULT now()
    );
    CREATE INDEX ix_units_parent_code ON units (parent_code);
    CREATE TABLE unit_links (
        child_code text NOT NULL REFERENCES units(code) ON DELETE CASCADE,
        parent_code text NOT NULL REFERENCES units(code) ON DELETE CASCADE,
        kind text NOT NULL CHECK (kind IN ('parent', 'successor')),
        valid_from date,
        valid_to date,
        is_default boolean NOT NULL DEFAULT true,
        CONSTRAINT pk_unit_links PRIMARY KEY (child_code, parent_code, kind),
        CONSTRAINT ck_unit_links_not_self CHECK (child_code <> parent_code)
    );
    CREATE TABLE unit_closure (
        ancestor_code text NOT NULL,
        descendant_code text NOT NULL,
        depth integer NOT NULL,
        CONSTRAINT pk_unit_closure PRIMARY KEY (ancestor_code, descendant_code)
    );
    CREATE INDEX ix_unit_closure_descendant ON unit_closure (descendant_code, ancestor_code);
    CREATE TABLE organs (
        organ_id text PRIMARY KEY,
        unit_code text NOT NULL REFERENCES units(code),
        name text NOT NULL DEFAULT '',
        updated_at timestamptz NOT NULL DEFAULT now()
    );
    """)
    # --- API tokens (docs/api.md §3): only a SHA-256 of the token is stored.
    run_script("""
    CREATE TABLE api_tokens (
        id uuid PRIMARY KEY,
        name text NOT NULL,
        role text NOT NULL CHECK (role IN
            ('admin', 'operator', 'department_head', 'district', 'collector')),
        unit_code text REFERENCES units(code),
        token_hash bytea NOT NULL UNIQUE,
        prefix text NOT NULL,
        created_at timestamptz NOT NULL DEFAULT now(),
        expires_at timestamptz,
        revoked_at timestamptz,
        last_used_at timestamptz
    );
    """)
    # --- the event log: the one seam between "it happened" and "tell people" (live, alerts,
    # feeds). seq comes from a sequence and is assigned under a transaction-level advisory
    # lock, so seq order is commit order and a reader of `seq > N` never skips a late commit.
    run_script("""
    CREATE SEQUENCE event_seq;
    CREATE TABLE events (
        seq bigint PRIMARY KEY,
        type text NOT NULL,
        unit_code text,
        time_window text,
        subject text,
        payload jsonb NOT NULL,
        created_at timestamptz NOT NULL DEFAULT now()
    );
    CREATE INDEX ix_events_created_at ON events (created_at);
    CREATE INDEX ix_events_unit_seq ON events (unit_code, seq);
    """)
    # --- source records. Every insert or real change stamps change_seq from one sequence
    # (under a per-feed advisory lock held by the ingest transaction), so downstream
    # projections (KPI aggregates, record events) can tail `change_seq > cursor` safely.
    run_script("""
    CREATE SEQUENCE record_change_seq;
    CREATE TABLE dossiers (
        id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        source text NOT NULL,
        source_id text NOT NULL,
        procedure_code text NOT NULL,
        procedure_name text,
        sector_code text,
        sector_name text,
        channel smallint NOT NULL CHECK (channel IN (1, 2, 3)),
        unit_code text NOT NULL REFERENCES units(code),
        unit_ref text NOT NULL,
        received_at timestamptz NOT NULL,
        due_at timestamptz,
        finished_at timestamptz,
        returned_at timestamptz,
        status smallint NOT NULL CHECK (status BETWEEN 1 AND 10),
        service_level smallint,
        digitized boolean NOT NULL DEFAULT false,
        paid_online boolean NOT NULL DEFAULT false,
        applicant_name text,
        applicant_phone text,
        applicant_email text,
        applicant_address text,
        source_updated_at timestamptz NOT NULL,
        raw jsonb NOT NULL,
        change_seq bigint NOT NULL,
        created_at timestamptz NOT NULL DEFAULT now(),
        updated_at timestamptz NOT NULL DEFAULT now(),
        CONSTRAINT uq_dossiers_source_id UNIQUE (source, source_id)
    );
    CREATE INDEX ix_dossiers_change_seq ON dossiers (change_seq);
    CREATE INDEX ix_dossiers_unit_received ON dossiers (unit_code, received_at);
    CREATE INDEX ix_dossiers_unit_finished ON dossiers (unit_code, finished_at)
        WHERE finished_at IS NOT NULL;
    CREATE INDEX ix_dossiers_open_due ON dossiers (unit_code, due_at)
        WHERE finished_at IS NULL AND status NOT IN (3, 7, 8);
    CREATE TABLE dossier_history (
        dossier_id bigint NOT NULL REFERENCES dossiers(id) ON DELETE CASCADE,
        status smallint NOT NULL,
        at timestamptz NOT NULL,
        origin text NOT NULL CHECK (origin IN ('sync', 'progress')),
        actor text,
        department text,
        note text,
        raw jsonb,
        CONSTRAINT pk_dossier_history PRIMARY KEY (dossier_id, at, status)
    );
    CREATE TABLE procedures (
        source text NOT NULL,
        code text NOT NULL,
        unit_code text NOT NULL REFERENCES units(code),
        name text,
        sector_code text,
        service_level smallint,
        online boolean NOT NULL,
        raw jsonb NOT NULL,
        change_seq bigint NOT NULL,
        updated_at timestamptz NOT NULL DEFAULT now(),
        CONSTRAINT pk_procedures PRIMARY KEY (source, code, unit_code)
    );
    CREATE INDEX ix_procedures_change_seq ON procedures (change_seq);
    CREATE TABLE reports (
        id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        source text NOT NULL,
        source_id text NOT NULL,
        received_at timestamptz NOT NULL,
        channel text NOT NULL,
        category text NOT NULL,
        unit_code text NOT NULL REFERENCES units(code),
        unit_ref text NOT NULL,
        status text NOT NULL CHECK (status IN
            ('received', 'assigned', 'in_progress', 'resolved', 'rejected')),
        assigned_to text,
        due_at timestamptz,
        first_response_at timestamptz,
        resolved_at timestamptz,
        title text,
        content text,
        citizen_name text,
        citizen_phone text,
        lat double precision,
        lon double precision,
        source_updated_at timestamptz NOT NULL,
        raw jsonb NOT NULL,
        change_seq bigint NOT NULL,
        created_at timestamptz NOT NULL DEFAULT now(),
        updated_at timestamptz NOT NULL DEFAULT now(),
        CONSTRAINT uq_reports_source_id UNIQUE (source, source_id)
    );
    CREATE INDEX ix_reports_change_seq ON reports (change_seq);
    CREATE INDEX ix_reports_unit_received ON reports (unit_code, received_at);
    CREATE INDEX ix_reports_open_due ON reports (unit_code, due_at)
        WHERE resolved_at IS NULL AND status <> 'rejected';
    CREATE TABLE report_history (
        report_id bigint NOT NULL REFERENCES reports(id) ON DELETE CASCADE,
        status text NOT NULL,
        at timestamptz NOT NULL,
        CONSTRAINT pk_report_history PRIMARY KEY (report_id, at, status)
    );
    CREATE TABLE documents (
        id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        source text NOT NULL,
        document_id text NOT NULL,
        sender_organ text NOT NULL,
        unit_code text REFERENCES units(code),
        code_number text,
        code_notation text,
        promulgated_on date,
        document_type text,
        document_type_name text,
        subject text,
        signer_name text,
        due_on date,
        priority smallint,
        steering_type smallint,
        electronic boolean NOT NULL DEFAULT true,
        business_type smallint,
        status text,
        status_at timestamptz,
        completed_at timestamptz,
        attachments jsonb NOT NULL DEFAULT '[]',
        sent_at timestamptz NOT NULL,
        raw_xml text NOT NULL,
        change_seq bigint NOT NULL,
        created_at timestamptz NOT NULL DEFAULT now(),
        updated_at timestamptz NOT NULL DEFAULT now(),
        CONSTRAINT uq_documents_document_id UNIQUE (source, document_id)
    );
    CREATE INDEX ix_documents_change_seq ON documents (change_seq);
    CREATE INDEX ix_documents_unit_sent ON documents (unit_code, sent_at);
    CREATE TABLE document_recipients (
        document_pk bigint NOT NULL REFERENCES documents(id) ON DELETE CASCADE,
        organ_id text NOT NULL,
        unit_code text REFERENCES units(code),
        status text,
        status_at timestamptz,
        completed_at timestamptz,
        CONSTRAINT pk_document_recipients PRIMARY KEY (document_pk, organ_id)
    );
    CREATE INDEX ix_document_recipients_unit ON document_recipients (unit_code);
    CREATE TABLE document_status_history (
        document_pk bigint NOT NULL REFERENCES documents(id) ON DELETE CASCADE,
        organ_id text NOT NULL,
        status_code text NOT NULL,
        at timestamptz NOT NULL,
        description text,
        department text,
        staff text,
        raw_xml text NOT NULL,
        CONSTRAINT pk_document_status_history PRIMARY KEY (document_pk, organ_id, status_code, at)
    );
    CREATE TABLE dead_letters (
        id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        source text NOT NULL,
        feed text NOT NULL,
        record_id text,
        unit_code text,
        content_type text NOT NULL,
        payload text NOT NULL,
        reasons jsonb NOT NULL,
        received_at timestamptz NOT NULL DEFAULT now(),
        replayed_at timestamptz,
        replay_outcome text
    );
    CREATE INDEX ix_dead_letters_received_at ON dead_letters (received_at);
    CREATE TABLE source_cursors (
        source text PRIMARY KEY,
        feed text NOT NULL,
        cursor text,
        last_success_at timestamptz,
        last_attempt_at timestamptz,
        last_error text,
        consecutive_failures integer NOT NULL DEFAULT 0,
        records_total bigint NOT NULL DEFAULT 0,
        updated_at timestamptz NOT NULL DEFAULT now()
    );
    """)


def downgrade() -> None:
    run_script("""
    DROP TABLE source_cursors, dead_letters, document_status_history, document_recipients,
        documents, report_history, reports, procedures, dossier_history, dossiers;
    DROP SEQUENCE record_change_seq;
    DROP TABLE events;
    DROP SEQUENCE event_seq;
    DROP TABLE api_tokens, organs, unit_closure, unit_links, units;
    """)
