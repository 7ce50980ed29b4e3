"""Retention: how long each kind of row is kept, and the pruner that deletes the rest in small
batches with a pause between them, so ingest never waits on it for long."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from weatherpipe.lifecycle import pause
from weatherpipe.storage.retention import PER_DEVICE, PRUNED, Retention

if TYPE_CHECKING:
    from weatherpipe.config import Settings

log = logging.getLogger(__name__)
# After a batch, the pruner rests at least this many times as long as the batch took: it works
# a quarter of the time at most, however fast or slow the database is (a fixed pause alone let
# PostgreSQL's quick deletes take 17% of ingest's rate in `bench prune-ingest-postgresql`).
REST_PER_WORK = 3.0
# Called after each batch with the table's name and the rows it deleted (or would delete).
OnBatch = Callable[[str, int], None]


@dataclass(frozen=True)
class Policy:
    """Days each table keeps (0: forever), rows per DELETE and the pause after each."""

    readings_days: int = 30
    minute_days: int = 365
    dead_letter_days: int = 14
    batch_rows: int = 2000
    pause_seconds: float = 0.1

    @classmethod
    def from_settings(cls, settings: Settings) -> Policy:
        return cls(
            readings_days=settings.retention_days,
            minute_days=settings.rollup_retention_days,
            dead_letter_days=settings.dead_letter_retention_days,
            batch_rows=settings.prune_batch,
            pause_seconds=settings.prune_pause,
        )

    def cutoffs(self, now: datetime) -> dict[str, datetime]:
        """Each prunable table's cutoff: rows older than it go (tables kept forever absent)."""
        days = {
            "readings": self.readings_days,
            "readings_minute": self.minute_days,
            "dead_letters": self.dead_letter_days,
        }
        return {table: now - timedelta(days=d) for table, d in days.items() if d > 0}


@dataclass
class PruneReport:
    """What one pass deleted (or, dry, would delete) per table, and how long it took."""

    cutoffs: dict[str, datetime]
    deleted: dict[str, int] = field(default_factory=lambda: dict.fromkeys(PRUNED, 0))
    seconds: float = 0.0
    dry_run: bool = False
    batches: int = 0

    @property
    def total(self) -> int:
        return sum(self.deleted.values())

    def lines(self) -> list[str]:
        """One line per table, as `weatherpipe prune` prints them."""
        verb = "would delete" if self.dry_run else "deleted"
        out = []
        for table in PRUNED:
            cutoff = self.cutoffs.get(table)
            kept = f"older than {cutoff:%Y-%m-%d %H:%M} UTC" if cutoff else "kept forever"
            amount = f"{self.deleted[table]:,}" if cutoff else "-"
            out.append(f"{table:16} {verb} {amount:>12}  ({kept})")
        return out

    def summary(self) -> str:
        verb = "would delete" if self.dry_run else "deleted"
        rate = f", {self.total / self.seconds:,.0f} rows/s" if self.seconds and self.total else ""
        return f"prune: {verb} {self.total:,} rows in {self.seconds:.1f} s{rate}"


class Pruner:
    """Deletes what the policy no longer keeps, oldest first: per device for readings and
    minute rollups, in batches of `batch_rows`, each its own transaction, and after every batch
    that deleted something a pause of `pause_seconds` or REST_PER_WORK times the batch's own
    time, whichever is longer (the locks, CPU and I/O go back to ingest)."""

    def __init__(self, store: Retention, policy: Policy, on_batch: OnBatch | None = None) -> None:
        self.store = store
        self.policy = policy
        self.on_batch = on_batch

    async def prune(
        self,
        now: datetime | None = None,
        stop: asyncio.Event | None = None,
        dry_run: bool = False,
    ) -> PruneReport:
        """One pass over every table; a set `stop` ends it after the batch in hand."""
        report = PruneReport(self.policy.cutoffs(now or datetime.now(UTC)), dry_run=dry_run)
        started = time.perf_counter()
        for table, cutoff in report.cutoffs.items():
            if table in PER_DEVICE:
                owners: list[str | None] = list(
                    await asyncio.to_thread(self.store.devices_seen_before, cutoff)
                )
            else:
                owners = [None]
            for device_id in owners:
                if stop is not None and stop.is_set():
                    break
                await self._prune_one(report, table, cutoff, device_id, stop)
        report.seconds = time.perf_counter() - started
        return report

    async def _prune_one(
        self,
        report: PruneReport,
        table: str,
        cutoff: datetime,
        device_id: str | None,
        stop: asyncio.Event | None,
    ) -> None:
        """One device's (or the whole table's) old rows, batch by batch."""
        if report.dry_run:
            count = await asyncio.to_thread(self.store.count_older, table, cutoff, device_id)
            self._record(report, table, count)
            return
        limit = self.policy.batch_rows
        while stop is None or not stop.is_set():
            started = time.perf_counter()
            deleted = await asyncio.to_thread(
                self.store.delete_oldest, table, cutoff, limit, device_id
            )
            took = time.perf_counter() - started
            report.batches += 1
            self._record(report, table, deleted)
            if deleted:
                await pause(max(self.policy.pause_seconds, REST_PER_WORK * took), stop)
            if deleted < limit:
                return

    def _record(self, report: PruneReport, table: str, rows: int) -> None:
        report.deleted[table] += rows
        if self.on_batch is not None and rows:
            self.on_batch(table, rows)

    async def run(self, stop: asyncio.Event, every: float) -> None:
        """A pass every `every` seconds until `stop`; each pass logged. A database outage
        skips a pass (the next one catches up)."""
        from weatherpipe.errors import StorageUnavailable

        while not stop.is_set():
            try:
                report = await self.prune(stop=stop)
            except StorageUnavailable as exc:
                log.warning("prune skipped: %s", exc)
            else:
                log.info("%s (%s)", report.summary(), _per_table(report))
            await pause(every, stop)


def _per_table(report: PruneReport) -> str:
    return ", ".join(f"{table} {rows:,}" for table, rows in report.deleted.items())
