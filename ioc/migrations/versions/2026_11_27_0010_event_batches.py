"""events: a row may hold a run of consecutive events ("record batch"); `event_log` shows one
row per event

Revision ID: 0010_event_batches
Revises: 0001
Create Date: 2026-11-27
"""

from collections.abc import Sequence

from ioc.db.script import run_script

revision: str = "0010_event_batches"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # One engine round publishes thousands of `kpi` events; a row (and three index entries)
    # per event is most of the round's write time. A row now holds a run of `n` consecutive
    # events of one (type, unit_code): seqs `seq .. seq + n - 1`, like a Kafka record batch.
    # For n = 1 the row is as before (items NULL). For n > 1, `items` is the JSON text of the
    # n `[time_window, subject, payload]` triples in seq order, and `payload` is '{}':
    # stored as text, not jsonb: a round's 123 rows (727 KB) inserted in 6.7 ms as text and
    # 18.4 ms as jsonb (PostgreSQL parses it all), and readers parse only what they read.
    # `last_seq` is generated, so no writer (nor a hand-written INSERT) can get it wrong; its
    # index drives every "after my cursor" read: rows never overlap, so last_seq order is
    # seq order and `last_seq > cursor` finds the row a cursor stopped in.
    run_script("""
    ALTER TABLE events
        ADD COLUMN n integer NOT NULL DEFAULT 1,
        ADD COLUMN items text,
        ADD COLUMN last_seq bigint NOT NULL GENERATED ALWAYS AS (seq + n - 1) STORED,
        ADD CONSTRAINT ck_events_batch CHECK (n >= 1 AND (n = 1) = (items IS NULL));
    CREATE INDEX ix_events_last_seq ON events (last_seq);
    """)
    # One row per logical event. Readers filter on the stored row's columns (type, unit_code,
    # last_seq, first_seq) before the items are expanded, and order by `last_seq, seq`: the
    # index gives last_seq order and an incremental sort orders each row's few events, so a
    # LIMIT stops early instead of expanding and sorting everything after the cursor.
    run_script("""
    CREATE VIEW event_log AS
    SELECT e.seq + coalesce(i.ord, 1) - 1 AS seq,
           e.type,
           e.unit_code,
           CASE WHEN i.ord IS NULL THEN e.time_window ELSE i.item ->> 0 END AS time_window,
           CASE WHEN i.ord IS NULL THEN e.subject ELSE i.item ->> 1 END AS subject,
           CASE WHEN i.ord IS NULL THEN e.payload ELSE i.item -> 2 END AS payload,
           e.created_at,
           e.seq AS first_seq,
           e.last_seq
    FROM events e
    LEFT JOIN LATERAL jsonb_array_elements(e.items::jsonb) WITH ORDINALITY AS i (item, ord)
        ON true;
    """)


def downgrade() -> None:
    # Packed rows become one row per event again (same seqs), so nothing is lost.
    run_script("""
    DROP VIEW event_log;
    INSERT INTO events (seq, type, unit_code, time_window, subject, payload, created_at)
    SELECT e.seq + i.ord - 1, e.type, e.unit_code, i.item ->> 0, i.item ->> 1, i.item -> 2,
           e.created_at
    FROM events e
    CROSS JOIN LATERAL jsonb_array_elements(e.items::jsonb) WITH ORDINALITY AS i (item, ord)
    WHERE e.n > 1 AND i.ord > 1;
    UPDATE events SET time_window = items::jsonb -> 0 ->> 0, subject = items::jsonb -> 0 ->> 1,
        payload = items::jsonb -> 0 -> 2
    WHERE n > 1;
    DROP INDEX ix_events_last_seq;
    ALTER TABLE events DROP CONSTRAINT ck_events_batch, DROP COLUMN last_seq,
        DROP COLUMN items, DROP COLUMN n;
    """)
