"""The ingest worker: batches, exactly-once storage, dead letters, ack only after commit."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from datetime import datetime

import pytest
from sqlalchemy import text

from weatherpipe.bus import create_bus
from weatherpipe.bus.base import Bus
from weatherpipe.errors import StorageError, StorageUnavailable
from weatherpipe.ingest.worker import IngestWorker
from weatherpipe.reading import Reading, encode
from weatherpipe.storage.repository import BatchResult, DeadLetter, Prepared, Repository
from weatherpipe.testing import series


async def drain(bus: Bus, repo: Repository, **options: object) -> IngestWorker:
    """Run a worker until the subscription is empty and everything pulled is settled."""
    worker = IngestWorker(bus, repo, batch_seconds=0.05, **options)  # type: ignore[arg-type]
    stop = asyncio.Event()
    task = asyncio.create_task(worker.run(stop))
    deadline = time.monotonic() + 10  # the callers' assertions say what was not drained
    while time.monotonic() < deadline and not task.done():
        if await bus.lag() == 0 and worker.stats.received >= 1:
            break
        await asyncio.sleep(0.01)
    stop.set()
    await task
    return worker


def count(repo: Repository, table: str) -> int:
    with repo.engine.connect() as conn:
        return int(conn.execute(text(f"SELECT COUNT(*) FROM {table}")).scalar_one())


def test_readings_sent_twice_are_stored_once(repo: Repository) -> None:
    async def scenario() -> IngestWorker:
        async with create_bus("memory://") as bus:
            readings = series([20.0, 21.0, 22.0])
            for r in readings + readings[:2]:
                await bus.publish(encode(r))
            return await drain(bus, repo)

    worker = asyncio.run(scenario())
    assert count(repo, "readings") == 3
    assert (worker.stats.stored, worker.stats.duplicates) == (3, 2)


def test_a_malformed_message_goes_to_dead_letters_and_ingest_goes_on(repo: Repository) -> None:
    async def scenario() -> None:
        async with create_bus("memory://") as bus:
            first, second = series([20.0, 21.0])
            await bus.publish(encode(first))
            await bus.publish(b'{"v": 1, "device_id": "oops"}', {"origin": "test"})
            await bus.publish(encode(second))
            await drain(bus, repo)
            assert await bus.lag() == 0

    asyncio.run(scenario())
    assert count(repo, "readings") == 2
    (letter,) = repo.dead_letters()
    assert letter["data"] == b'{"v": 1, "device_id": "oops"}'
    assert "missing field(s): ts, temperature" in letter["reason"]
    assert letter["attributes"] == {"origin": "test"}


class FlakyRepository(Repository):
    """A real repository whose database is 'down' for the first few batches."""

    def __init__(self, inner: Repository, failures: int) -> None:
        super().__init__(inner.engine)
        self.failures = failures

    def store_batch(
        self,
        batch: Sequence[Reading] | Prepared,
        dead: Sequence[DeadLetter] = (),
        received_at: datetime | None = None,
    ) -> BatchResult:
        if self.failures > 0:
            self.failures -= 1
            raise StorageUnavailable("database unavailable: simulated outage")
        return super().store_batch(batch, dead, received_at)


def test_nothing_is_acked_before_the_commit(repo: Repository) -> None:
    flaky = FlakyRepository(repo, failures=2)

    async def scenario() -> None:
        async with create_bus("memory://") as bus:
            for r in series([1.0, 2.0, 3.0]):
                await bus.publish(encode(r))
            worker = IngestWorker(bus, flaky, batch_seconds=0.01)
            messages = await worker._collect(asyncio.Event())
            store = asyncio.create_task(worker.handle(messages, asyncio.Event()))
            deadline = time.monotonic() + 10
            while flaky.failures > 1:  # the first store attempt failed; the second will too
                assert time.monotonic() < deadline, "the worker never tried to store"
                await asyncio.sleep(0.01)
            in_flight = len(bus._queue().in_flight)  # type: ignore[attr-defined]
            assert (in_flight, count(repo, "readings")) == (3, 0)
            await store
            assert len(bus._queue().in_flight) == 0  # type: ignore[attr-defined]

    asyncio.run(scenario())
    assert count(repo, "readings") == 3


class BrokenRepository(Repository):
    """A real repository whose writes fail for good: not an outage to wait out, nor refused
    data to split around (that is tests/ingest/test_split.py)."""

    def store_batch(self, *args: object, **kwargs: object) -> BatchResult:
        raise StorageError("Unknown column 'seq' in 'INSERT INTO'")


def test_a_write_that_fails_for_good_stops_the_worker_unacked(repo: Repository) -> None:
    async def scenario() -> None:
        async with create_bus("memory://") as bus:
            for r in series([1.0, 2.0, 3.0, 4.0]):
                await bus.publish(encode(r))
            worker = IngestWorker(bus, BrokenRepository(repo.engine), batch_size=2, writers=2)
            with pytest.raises(StorageError, match="Unknown column"):
                await asyncio.wait_for(worker.run(asyncio.Event()), timeout=10)
            assert len(bus._queue().in_flight) == 4  # type: ignore[attr-defined]
            assert worker.stats.stored == 0

    asyncio.run(scenario())


def test_stopping_while_the_database_is_down_hands_the_batch_back(repo: Repository) -> None:
    flaky = FlakyRepository(repo, failures=10**6)

    async def scenario() -> int | None:
        async with create_bus("memory://") as bus:
            for r in series([1.0, 2.0]):
                await bus.publish(encode(r))
            worker = IngestWorker(bus, flaky, batch_seconds=0.01)
            stop = asyncio.Event()
            task = asyncio.create_task(worker.run(stop))
            deadline = time.monotonic() + 10
            while flaky.failures > 10**6 - 2:  # the batch failed at least twice: it is held
                assert time.monotonic() < deadline, "the worker never tried to write"
                await asyncio.sleep(0.01)
            stop.set()
            await asyncio.wait_for(task, timeout=10)
            return await bus.lag()

    assert asyncio.run(scenario()) == 2
    assert count(repo, "readings") == 0


@pytest.mark.parametrize("batch_size", [1, 7, 2000])
def test_batches_are_bounded_by_size(sqlite_repo: Repository, batch_size: int) -> None:
    async def scenario() -> IngestWorker:
        async with create_bus("memory://") as bus:
            for r in series([float(i) for i in range(50)]):
                await bus.publish(encode(r))
            return await drain(bus, sqlite_repo, batch_size=batch_size, on_batch=on_batch)

    sizes: list[int] = []

    def on_batch(result: BatchResult, _elapsed: float) -> None:
        sizes.append(result.stored + result.duplicates + result.dead)

    worker = asyncio.run(scenario())
    assert worker.stats.stored == 50 and sum(sizes) == 50
    assert max(sizes) <= batch_size
    assert worker.stats.batches == len(sizes) >= -(-50 // batch_size)


def test_concurrent_writers_store_each_reading_once(repo: Repository) -> None:
    # Small batches written three at a time, with every tenth reading sent again a little
    # later: copies race their originals in concurrent transactions.
    readings = series([float(i % 17) for i in range(600)])
    copies = readings[::10]

    async def scenario() -> IngestWorker:
        async with create_bus("memory://") as bus:
            for i, r in enumerate(readings):
                await bus.publish(encode(r))
                if i % 10 == 5:
                    await bus.publish(encode(copies[i // 10]))
            return await drain(bus, repo, batch_size=25, writers=3)

    worker = asyncio.run(scenario())
    assert count(repo, "readings") == len(readings)
    assert (worker.stats.stored, worker.stats.duplicates) == (len(readings), len(copies))
    with repo.engine.connect() as conn:
        rolled = conn.execute(text("SELECT SUM(n) FROM readings_daily")).scalar_one()
    assert int(rolled) == len(readings)
