"""What an export reads: readings in (device_id, ts) order, a bounded chunk per query, paged by
key, so a month of a device never sits in memory or in one long transaction."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import Any, Protocol

from sqlalchemy import select

from weatherpipe.storage.database import Store
from weatherpipe.storage.rows import naive_utc
from weatherpipe.storage.tables import devices, readings

# The exported columns, in order: a reading and its detection, without ingest's bookkeeping
# (the device's registry name is read beside the id, second).
EXPORT_COLUMNS = [
    readings.c.device_id,
    readings.c.ts,
    readings.c.temperature,
    readings.c.latitude,
    readings.c.longitude,
    readings.c.seq,
    readings.c.is_anomaly,
    readings.c.anomaly_score,
    readings.c.detector,
    readings.c.kind,
    readings.c.severity,
]
CHUNK_ROWS = 10_000


class Export(Protocol):
    """What `weatherpipe export` and the export endpoint read."""

    def export_chunks(
        self,
        device_id: str | None,
        start: datetime | None,
        end: datetime | None,
        chunk_rows: int | None = None,
    ) -> Iterator[list[tuple[Any, ...]]]: ...


class ExportStore(Store):
    def export_chunks(
        self,
        device_id: str | None,
        start: datetime | None,
        end: datetime | None,
        chunk_rows: int | None = None,
    ) -> Iterator[list[tuple[Any, ...]]]:
        """Rows of EXPORT_COLUMNS from `start` (inclusive) to `end` (exclusive), of one device
        or of every device in id order, in chunks of at most `chunk_rows` (CHUNK_ROWS). Each
        chunk is its own query (`ts > last ts` on the (device_id, ts) key): no connection is
        held between chunks, however slowly the caller consumes them. Timestamps may come as
        text (see `Dialect.text_columns`)."""
        limit = chunk_rows or CHUNK_ROWS
        owners = [device_id] if device_id is not None else self._device_ids()
        for owner in owners:
            after: Any = None
            while True:
                rows = self._chunk(owner, start, end, after, limit)
                if rows:
                    yield rows
                if len(rows) < limit:
                    break
                after = rows[-1][2]

    def _device_ids(self) -> list[str]:
        query = select(devices.c.id).order_by(devices.c.id)
        return list(self.db.run(lambda conn: conn.execute(query).scalars().all()))

    def _chunk(
        self,
        device_id: str,
        start: datetime | None,
        end: datetime | None,
        after: Any,
        limit: int,
    ) -> list[tuple[Any, ...]]:
        r = readings.c
        id_column, *rest = self.db.dialect.text_columns(EXPORT_COLUMNS)
        # The registry's name beside the id, so an exported file says which device it holds.
        query = (
            select(id_column, devices.c.name, *rest)
            .select_from(readings.outerjoin(devices, devices.c.id == r.device_id))
            .where(r.device_id == device_id)
        )
        if start is not None:
            query = query.where(r.ts >= naive_utc(start))
        if end is not None:
            query = query.where(r.ts < naive_utc(end))
        if after is not None:
            # The previous chunk's last ts, as the database handed it over (text or datetime).
            query = query.where(r.ts > (after if isinstance(after, datetime) else _parse(after)))
        query = query.order_by(r.ts).limit(limit)
        return [tuple(row) for row in self.db.run(lambda conn: conn.execute(query).all())]


def _parse(text: str) -> datetime:
    return datetime.fromisoformat(text)
