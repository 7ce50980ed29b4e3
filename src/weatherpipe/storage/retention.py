"""What pruning deletes: raw readings and minute rollups per device, dead letters, in batches
of bounded size, each in its own short transaction."""

from __future__ import annotations

from datetime import datetime
from typing import Protocol

from sqlalchemy import Table, func, or_, select

from weatherpipe.storage.database import Store
from weatherpipe.storage.rows import naive_utc
from weatherpipe.storage.tables import dead_letters, devices, readings, readings_minute

# What each prunable table is called in reports, and the time column that ages its rows.
# Daily rollups are never pruned: the analyses (counts, maxima, daily maxima) read them.
PRUNED: dict[str, tuple[Table, str]] = {
    "readings": (readings, "ts"),
    "readings_minute": (readings_minute, "minute"),
    "dead_letters": (dead_letters, "received_at"),
}
# Per-device tables: their key leads with device_id, so one device's oldest rows are an
# index range (a table-wide `ts < cutoff` would scan every reading, there is no ts index).
PER_DEVICE = frozenset({"readings", "readings_minute"})


class Retention(Protocol):
    """What the pruner needs of the database."""

    def devices_seen_before(self, cutoff: datetime) -> list[str]: ...

    def delete_oldest(
        self, table: str, cutoff: datetime, limit: int, device_id: str | None = None
    ) -> int: ...

    def count_older(self, table: str, cutoff: datetime, device_id: str | None = None) -> int: ...


class RetentionStore(Store):
    def devices_seen_before(self, cutoff: datetime) -> list[str]:
        """Devices that may have rows older than `cutoff` (first reading before it, or none
        recorded), in id order."""
        query = (
            select(devices.c.id)
            .where(or_(devices.c.first_seen < naive_utc(cutoff), devices.c.first_seen.is_(None)))
            .order_by(devices.c.id)
        )
        return list(self.db.run(lambda conn: conn.execute(query).scalars().all()))

    def delete_oldest(
        self, table: str, cutoff: datetime, limit: int, device_id: str | None = None
    ) -> int:
        """Delete up to `limit` rows of `table` older than `cutoff` (of one device for the
        per-device tables), oldest first, in one transaction; how many went."""
        target, column = PRUNED[table]
        statement = self.db.dialect.delete_oldest(target, column, table in PER_DEVICE, limit)
        params: dict[str, object] = {"cutoff": naive_utc(cutoff)}
        if table in PER_DEVICE:
            params["device_id"] = device_id
        return int(self.db.run(lambda conn: conn.execute(statement, params).rowcount))

    def count_older(self, table: str, cutoff: datetime, device_id: str | None = None) -> int:
        """How many rows of `table` are older than `cutoff` (of one device for the per-device
        tables): what a prune would delete."""
        target, column = PRUNED[table]
        query = select(func.count()).select_from(target).where(target.c[column] < naive_utc(cutoff))
        if table in PER_DEVICE:
            query = query.where(target.c.device_id == device_id)
        return int(self.db.run(lambda conn: conn.execute(query).scalar()) or 0)
