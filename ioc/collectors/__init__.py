"""Collectors: parse the portal's dossiers, the 1022 hotline's reports and edXML documents,
store them exactly once, keep what cannot be taken in as dead-letters, and poll sources.

Other rooms use: `ingest_json`, `ingest_xml` (one transaction, the caller's session),
dead-letter listing/replay. The app composes `router`, `build_services(ctx)` and
`register_cli`; `ioc demo` uses `prepare_demo` and `start_demo_sources` (the simulated
province and collectors pulling from it).
"""

from ioc.collectors import tables as _tables  # noqa: F401  (puts the room's tables on ioc.db.metadata)
from ioc.collectors.cli import register_cli
from ioc.collectors.deadletters import DeadLetter, list_dead_letters
from ioc.collectors.demo import prepare_demo, start_demo_sources
from ioc.collectors.pull import build_services, failing_feeds
from ioc.collectors.records import IngestResult, Rejection
from ioc.collectors.service import (
    FEEDS,
    ReplayOutcome,
    XmlLimits,
    ingest_items,
    ingest_json,
    ingest_xml,
    replay_dead_letters,
)
from ioc.collectors.views import router

__all__ = [
    "FEEDS",
    "DeadLetter",
    "IngestResult",
    "Rejection",
    "ReplayOutcome",
    "XmlLimits",
    "build_services",
    "failing_feeds",
    "ingest_items",
    "ingest_json",
    "ingest_xml",
    "list_dead_letters",
    "prepare_demo",
    "register_cli",
    "replay_dead_letters",
    "router",
    "start_demo_sources",
]
