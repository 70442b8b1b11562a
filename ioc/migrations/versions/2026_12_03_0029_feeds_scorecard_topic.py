"""feeds: districts may subscribe to the 766 scorecard's changes (topic `scorecard`)

Revision ID: 0029_feeds_scorecard_topic
Revises: 0006
Create Date: 2026-12-03
"""

from collections.abc import Sequence

from ioc.db.script import run_script

revision: str = "0029_feeds_scorecard_topic"
down_revision: str | Sequence[str] | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_TOPICS = "'kpi', 'alert', 'dossier', 'report', 'document'"


def _topics(allowed: str) -> str:
    return f"""
    ALTER TABLE feed_subscriptions DROP CONSTRAINT feed_subscriptions_topics_check;
    ALTER TABLE feed_subscriptions ADD CONSTRAINT feed_subscriptions_topics_check
        CHECK (cardinality(topics) > 0 AND topics <@ ARRAY[{allowed}]);
    """


def upgrade() -> None:
    run_script(_topics(_TOPICS + ", 'scorecard'"))


def downgrade() -> None:
    run_script("DELETE FROM feed_subscriptions WHERE 'scorecard' = ANY(topics);" + _topics(_TOPICS))
