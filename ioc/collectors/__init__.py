"""Collectors: parse the portal's dossiers, the 1022 hotline's reports and edXML documents,
store them exactly once, keep what cannot be taken in as dead-letters, and poll sources.

Other rooms use: `ingest_json`, `ingest_xml` (one transaction, the caller's session),
dead-letter listing/replay, and
`build_services(ctx)` / `router` for the app.
"""

from ioc.collectors.records import IngestResult, Rejection
from ioc.collectors.service import (
    FEEDS,
    DeadLetter,
    ReplayOutcome,
    XmlLimits,
    ingest_items,
    ingest_json,
    ingest_xml,
    list_dead_letters,
    replay_dead_letters,
)

__all__ = [
    "FEEDS",
    "DeadLetter",
    "IngestResult",
    "Rejection",
    "ReplayOutcome",
    "XmlLimits",
    "ingest_items",
    "ingest_json",
    "ingest_xml",
    "list_dead_letters",
    "replay_dead_letters",
]
