"""Collectors: parse the portal's dossiers, the 1022 hotline's reports and edXML documents,
store them exactly once, keep what cannot be taken in as dead-letters, and poll sources.

Other rooms use: `ingest_json`, `ingest_xml` (one transaction, the caller's session),
`INGEST_CHANNEL` (NOTIFY channel; payload = feed), dead-letter listing/replay, and
`build_services(ctx)` / `router` for the app.
"""

from ioc.collectors.deadletters import DeadLetter, list_dead_letters
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
from ioc.collectors.store import INGEST_CHANNEL

__all__ = [
    "FEEDS",
    "INGEST_CHANNEL",
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
