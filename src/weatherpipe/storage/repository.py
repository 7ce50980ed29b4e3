"""Every seam of the storage over one database, for callers that need more than one (the CLI,
`up`, tests). A stage takes only its own seam: ingest.ReadingSink, detection.DetectionStorage,
reads.Reads, fleet.FleetReads, deadletters.DeadLetters, registry.DeviceDirectory,
retention.Retention, export.Export, alerts.AlertStorage."""

from __future__ import annotations

from sqlalchemy import Engine

from weatherpipe.storage.alerts import AlertStore
from weatherpipe.storage.database import Database
from weatherpipe.storage.deadletters import DeadLetterStore
from weatherpipe.storage.detection import DetectionStore
from weatherpipe.storage.export import ExportStore
from weatherpipe.storage.fleet import FleetStore
from weatherpipe.storage.ingest import IngestStore
from weatherpipe.storage.reads import ReadStore
from weatherpipe.storage.registry import RegistryStore
from weatherpipe.storage.retention import RetentionStore
from weatherpipe.storage.rows import (
    BatchResult,
    DeadLetter,
    Detection,
    Prepared,
    Row,
    Scored,
    aware,
    naive_utc,
)

__all__ = [
    "BatchResult",
    "DeadLetter",
    "Detection",
    "Prepared",
    "Repository",
    "Row",
    "Scored",
    "aware",
    "naive_utc",
]


class Repository(
    IngestStore,
    DetectionStore,
    ReadStore,
    FleetStore,
    DeadLetterStore,
    RegistryStore,
    RetentionStore,
    ExportStore,
    AlertStore,
):
    """The database, as weatherpipe uses it: every seam sharing one engine."""

    def __init__(self, engine: Engine | Database) -> None:
        super().__init__(engine if isinstance(engine, Database) else Database(engine))

    @classmethod
    def from_url(cls, url: str) -> Repository:
        return cls(Database.from_url(url))
