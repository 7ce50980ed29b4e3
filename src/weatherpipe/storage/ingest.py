"""What ingest writes: batches of readings with their rollups and devices, and dead letters,
each batch in one transaction, each key stored once."""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Protocol

from sqlalchemy import Connection, select, update
from sqlalchemy.exc import IntegrityError

from weatherpipe.errors import KeysTaken, StorageError
from weatherpipe.reading import Reading
from weatherpipe.storage.database import RETRIES, Store
from weatherpipe.storage.deadletters import add_dead_letters
from weatherpipe.storage.rows import BatchResult, DeadLetter, Prepared, aware, naive_utc
from weatherpipe.storage.tables import devices, readings


class ReadingSink(Protocol):
    """What the ingest worker needs of the database."""

    def prepare(
        self, batch: Sequence[Reading], received_at: datetime | None = None
    ) -> Prepared: ...

    def store_batch(
        self,
        batch: Sequence[Reading] | Prepared,
        dead: Sequence[DeadLetter] = (),
        received_at: datetime | None = None,
        *,
        only_new: bool = False,
    ) -> BatchResult: ...


class IngestStore(Store):
    def prepare(self, batch: Sequence[Reading], received_at: datetime | None = None) -> Prepared:
        """A batch rendered for its transaction; pure, so ingest renders one batch while the
        previous is written. `store_batch` takes it (or plain readings)."""
        received = naive_utc(received_at or datetime.now(UTC))
        return Prepared(list(batch), received, self.db.dialect.render(batch, received))

    def store_batch(
        self,
        batch: Sequence[Reading] | Prepared,
        dead: Sequence[DeadLetter] = (),
        received_at: datetime | None = None,
        *,
        only_new: bool = False,
    ) -> BatchResult:
        """Store readings (each key once), dead letters and rollups in one transaction.

        The fast path is the batch as it is. If any key is in it twice or already stored (a
        redelivery) and the dialect refuses the write, that transaction rolls back and the
        batch is written again without those keys, so the rollups count each reading exactly
        once, even with concurrent writers. With `only_new`, such a batch is not written at
        all (KeysTaken): the caller, which must tell whose readings were new, writes it in parts.
        """
        prepared = batch if isinstance(batch, Prepared) else self.prepare(batch, received_at)
        for attempt in range(RETRIES):
            write = functools.partial(
                self._write_batch,
                prepared=prepared,
                dead=dead,
                check_existing=attempt > 0,
                only_new=only_new,
            )
            try:
                fresh = self.db.run(write)
            except IntegrityError:
                if only_new:
                    raise KeysTaken("a key is stored already, or in the batch twice") from None
                continue
            total = len(prepared.readings)
            return BatchResult(fresh, total - fresh, len(dead))
        raise StorageError("batch kept colliding with concurrent writers")

    def _write_batch(
        self,
        conn: Connection,
        prepared: Prepared,
        dead: Sequence[DeadLetter],
        check_existing: bool,
        only_new: bool = False,
    ) -> int:
        """Write the batch in `conn`'s transaction; returns how many readings were new."""
        fresh, rendered = prepared.readings, prepared.rendered
        if check_existing:
            fresh = _unseen(conn, _distinct(fresh))
            rendered = self.db.dialect.render(fresh, prepared.received)
        stored = self.db.dialect.write(conn, rendered) if fresh else 0
        if only_new and stored < len(fresh):
            # A dialect that skips stored keys (PostgreSQL's ON CONFLICT DO NOTHING) wrote the
            # others: raising here rolls the transaction back.
            raise KeysTaken("a key is stored already, or in the batch twice")
        add_dead_letters(conn, self.db.dialect, dead, prepared.received)
        return stored

    def name_devices(self, names: Mapping[str, str]) -> None:
        """Give known devices their display names (the simulator's catalogue)."""

        def work(conn: Connection) -> None:
            for device_id, name in names.items():
                conn.execute(update(devices).where(devices.c.id == device_id).values(name=name))

        self.db.run(work)


def _unseen(conn: Connection, batch: list[Reading]) -> list[Reading]:
    """The readings of `batch` whose keys are not stored yet."""
    if not batch:
        return batch
    stamps = [naive_utc(r.ts) for r in batch]
    query = select(readings.c.device_id, readings.c.ts).where(
        readings.c.device_id.in_({r.device_id for r in batch}),
        readings.c.ts.between(min(stamps), max(stamps)),
    )
    stored = {(device, aware(ts)) for device, ts in conn.execute(query)}
    return [r for r in batch if r.key not in stored]


def _distinct(batch: Sequence[Reading]) -> list[Reading]:
    """The batch with each key once (its first reading), in order."""
    return list({r.key: r for r in reversed(batch)}.values())[::-1]
