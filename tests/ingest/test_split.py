"""What the database refuses is isolated: the batch is split until the refused messages are
found, they become dead letters with the database's reason, the rest is stored and acked."""

from __future__ import annotations

import asyncio
import json
import logging
import math
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import pytest
from sqlalchemy import text

from weatherpipe.bus import create_bus
from weatherpipe.errors import DecodeError, StorageError
from weatherpipe.ingest.worker import IngestWorker
from weatherpipe.reading import Reading, encode
from weatherpipe.storage.repository import BatchResult, DeadLetter, Prepared, Repository
from weatherpipe.testing import series

BATCH = 1000
BAD_AT = 617
# A value each database refuses, and the words of its refusal.
REFUSED = {
    "mysql": ({"seq": 2**63}, "Out of range value for column 'seq'"),
    "sqlite": ({"temperature": math.nan}, "NOT NULL constraint failed: readings.temperature"),
    "postgresql": ({"seq": 2**63}, "out of range for type bigint"),
}


def lenient(messages: list[bytes]) -> list[Reading | DecodeError]:
    """A decoder with a bug: it checks nothing, so a value the columns cannot hold gets in."""
    out: list[Reading | DecodeError] = []
    for data in messages:
        b = json.loads(data)
        ts = datetime.fromisoformat(b["ts"])
        out.append(Reading(b["device_id"], ts, b["temperature"], 0.0, 0.0, b.get("seq")))
    return out


class Counting(Repository):
    """A real repository that counts its write transactions."""

    def __init__(self, inner: Repository) -> None:
        super().__init__(inner.engine)
        self.writes = 0

    def store_batch(
        self,
        batch: Sequence[Reading] | Prepared,
        dead: Sequence[DeadLetter] = (),
        received_at: datetime | None = None,
    ) -> BatchResult:
        self.writes += 1
        return super().store_batch(batch, dead, received_at)


def count(repo: Repository, sql: str) -> Any:
    with repo.engine.connect() as conn:
        return conn.execute(text(sql)).scalar_one()


def test_one_refused_row_among_a_thousand_is_dead_lettered_and_the_rest_stored(
    repo: Repository, caplog: pytest.LogCaptureFixture
) -> None:
    changes, words = REFUSED[repo.dialect if repo.dialect in REFUSED else "mysql"]
    readings = series([float(i % 40) for i in range(BATCH)])
    messages = [json.dumps(json.loads(encode(r))).encode() for r in readings]
    bad = {**json.loads(messages[BAD_AT]), **changes}
    messages[BAD_AT] = json.dumps(bad).encode()
    counting = Counting(repo)

    async def scenario() -> IngestWorker:
        async with create_bus("memory://") as bus:
            for data in messages:
                await bus.publish(data, {"origin": "test"})
            worker = IngestWorker(bus, counting, batch_size=BATCH, decoder=lenient)
            batch = await worker._collect(asyncio.Event())
            assert len(batch) == BATCH  # one batch: the split happens inside it
            await worker.handle(batch, asyncio.Event())
            assert await bus.lag() == 0  # all acked, the refused one too
            return worker

    with caplog.at_level(logging.WARNING, logger="weatherpipe.ingest.worker"):
        worker = asyncio.run(scenario())
    assert (worker.stats.stored, worker.stats.dead) == (BATCH - 1, 1)
    assert count(repo, "SELECT COUNT(*) FROM readings") == BATCH - 1
    assert count(repo, "SELECT SUM(n) FROM readings_minute") == BATCH - 1
    assert count(repo, f"SELECT COUNT(*) FROM readings WHERE seq = {BAD_AT}") == 0
    (letter,) = repo.dead_letters()
    assert letter["data"] == messages[BAD_AT]
    assert letter["reason"].startswith("refused by the database: ")
    assert words in letter["reason"]
    assert letter["attributes"] == {"origin": "test"}
    # Bisection, not one by one: two writes per level of a 1,000-message batch, at most.
    assert counting.writes <= 1 + 2 * math.ceil(math.log2(BATCH)) + 1
    assert "splitting it to find the refused ones" in caplog.text


class Broken(Repository):
    """A real repository whose writes fail for a reason neither retry nor split can fix."""

    def store_batch(self, *args: object, **kwargs: object) -> BatchResult:
        raise StorageError("Table 'weather.readings' doesn't exist")


def test_a_failed_write_is_logged_and_stops_the_worker_with_one_batch_in_flight(
    repo: Repository, caplog: pytest.LogCaptureFixture
) -> None:
    """With fewer batches in flight than writers, the worker still sees the failure at once
    (it used to keep pulling and never look: minutes of silence, messages unacked)."""

    async def scenario() -> None:
        async with create_bus("memory://") as bus:
            for r in series([1.0, 2.0, 3.0]):
                await bus.publish(encode(r))
            worker = IngestWorker(
                bus, Broken(repo.engine), batch_size=100, batch_seconds=0.05, writers=4
            )
            with pytest.raises(StorageError, match="doesn't exist"):
                await asyncio.wait_for(worker.run(asyncio.Event()), timeout=10)
            assert len(bus._queue().in_flight) == 3  # type: ignore[attr-defined]  # unacked

    with caplog.at_level(logging.ERROR, logger="weatherpipe.ingest.worker"):
        asyncio.run(scenario())
    assert "writing a batch of 3 messages failed: Table 'weather.readings'" in caplog.text


def test_two_copies_of_a_key_that_differ_only_in_seq_are_stored_once(repo: Repository) -> None:
    """Found by the fuzz test: sorting whole rows compared None with an int and crashed."""
    reading = series([1e4])[0]

    async def scenario() -> IngestWorker:
        async with create_bus("memory://") as bus:
            await bus.publish(encode(reading._replace(seq=None)))
            await bus.publish(encode(reading._replace(seq=5)))
            worker = IngestWorker(bus, repo, batch_size=10)
            await worker.handle(await worker._collect(asyncio.Event()), asyncio.Event())
            return worker

    worker = asyncio.run(scenario())
    assert (worker.stats.stored, worker.stats.duplicates) == (1, 1)


def test_a_stop_during_a_split_hands_the_batch_back(sqlite_repo: Repository) -> None:
    """SIGTERM must not wait for a long split: what is not stored yet goes back to the bus."""
    changes, _ = REFUSED["sqlite"]
    messages = [encode(r) for r in series([1.0] * 10)]
    messages[3] = json.dumps({**json.loads(messages[3]), **changes}).encode()

    async def scenario() -> int | None:
        async with create_bus("memory://") as bus:
            for data in messages:
                await bus.publish(data)
            worker = IngestWorker(bus, sqlite_repo, batch_size=10, decoder=lenient)
            stopped = asyncio.Event()
            stopped.set()
            await worker.handle(await worker._collect(asyncio.Event()), stopped)
            assert worker.stats.received == 0
            return await bus.lag()

    assert asyncio.run(scenario()) == 10
    assert count(sqlite_repo, "SELECT COUNT(*) FROM dead_letters") == 0
