"""Every seam of the storage over one database, for callers that need more than one (the CLI,
`up`, tests). A stage takes only its own seam: ingest.ReadingSink, detection.DetectionStorage,
reads.Reads, deadletters.DeadLetters."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Engine, text

from weatherpipe.storage.database import Database
from weatherpipe.storage.deadletters import DeadLetterStore
from weatherpipe.storage.detection import DetectionStore
from weatherpipe.storage.ingest import IngestStore
from weatherpipe.storage.reads import ReadStore
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


class Repository(IngestStore, DetectionStore, ReadStore, DeadLetterStore):
    """The database, as weatherpipe uses it: all four seams sharing one engine."""

    def __init__(self, engine: Engine | Database) -> None:
        super().__init__(engine if isinstance(engine, Database) else Database(engine))

    @classmethod
    def from_url(cls, url: str) -> Repository:
        return cls(Database.from_url(url))

    def full_scan_queries(self) -> dict[str, str]:
        """The original deployment's queries over weather_trans (full scans), for benchmarks."""
        day_of = self.db.dialect.day_of.format("time")
        month_of = self.db.dialect.month_of.format("time")
        return {
            "devices": (
                "SELECT deviceid, COUNT(*), MAX(temperature), MAX(time) FROM weather_trans "
                "GROUP BY deviceid"
            ),
            "devicedata": "SELECT deviceid, COUNT(*) FROM weather_trans GROUP BY deviceid",
            "devicemax": "SELECT deviceid, MAX(temperature) FROM weather_trans GROUP BY deviceid",
            "daymax": (
                "SELECT deviceid, MAX(temperature) FROM weather_trans "
                f"WHERE {day_of} = :day AND {month_of} = :month GROUP BY deviceid"
            ),
            "deviceanomalies": (
                "SELECT deviceid, COUNT(*) FROM weather_trans "
                "WHERE isanomal = 1 AND time >= :since GROUP BY deviceid"
            ),
        }

    def run_sql(self, sql: str, **params: Any) -> list[tuple[Any, ...]]:
        """Run one literal read-only statement with bound parameters (benchmarks, tests)."""
        values = {k: naive_utc(v) if isinstance(v, datetime) else v for k, v in params.items()}
        return [tuple(r) for r in self.db.run(lambda conn: conn.execute(text(sql), values).all())]
