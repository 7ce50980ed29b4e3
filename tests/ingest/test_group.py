"""Group commit: requests that wait while a transaction runs share the next one, and each is
still told its own part; a retried key, a value the database refuses or a database that stays
down reach the requests they belong to."""

from __future__ import annotations

import asyncio
import json
import math
import threading
import time
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import text

from weatherpipe.bus.base import Message
from weatherpipe.errors import DecodeError, StorageUnavailable
from weatherpipe.ingest.group import GroupWriter, Stored
from weatherpipe.ingest.worker import IngestWorker
from weatherpipe.reading import Reading, encode
from weatherpipe.storage.repository import BatchResult, DeadLetter, Prepared, Repository
from weatherpipe.testing import DEVICE_A, DEVICE_B, make_reading

SECONDS = 10.0
# A value each database refuses, and the words of its refusal (as in test_split.py).
REFUSED = {
    "mysql": ({"seq": 2**63}, "Out of range value for column 'seq'"),
    "sqlite": ({"temperature": math.nan}, "NOT NULL constraint failed: readings.temperature"),
    "postgresql": ({"seq": 2**63}, "out of range for type bigint"),
}


def lenient(messages: list[bytes]) -> list[Reading | DecodeError]:
    """A decoder that checks nothing, so a value the columns cannot hold gets in."""
    out: list[Reading | DecodeError] = []
    for data in messages:
        b = json.loads(data)
        ts = datetime.fromisoformat(b["ts"])
        out.append(Reading(b["device_id"], ts, b["temperature"], 0.0, 0.0, b.get("seq")))
    return out


class Held(Repository):
    """A real repository whose first write waits until the test lets it go, and that keeps
    the size of every write (a transaction each)."""

    def __init__(self, inner: Repository) -> None:
        super().__init__(inner.engine)
        self.writes: list[int] = []
        self.entered = threading.Event()
        self.release = threading.Event()

    def store_batch(
        self,
        batch: Sequence[Reading] | Prepared,
        dead: Sequence[DeadLetter] = (),
        received_at: datetime | None = None,
        *,
        only_new: bool = False,
    ) -> BatchResult:
        size = len(batch.readings) if isinstance(batch, Prepared) else len(batch)
        self.writes.append(size + len(dead))
        if not self.entered.is_set():
            self.entered.set()
            assert self.release.wait(SECONDS), "the test never released the first write"
        return super().store_batch(batch, dead, received_at, only_new=only_new)


def message(reading: Reading, **changes: object) -> Message:
    body = {**json.loads(encode(reading)), **changes}
    return Message(json.dumps(body).encode(), {"via": "test"})


async def until(probe: object, what: str) -> None:
    deadline = time.monotonic() + SECONDS
    while not probe():  # type: ignore[operator]
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.005)


async def behind_a_held_write(
    held: Held, writer: GroupWriter, first: list[Message], rest: list[list[Message]]
) -> list[Stored]:
    """`first` alone in a transaction held open while `rest` arrive; then all answers."""
    head = asyncio.create_task(writer.store(first, SECONDS))
    await until(held.entered.is_set, "the first write")
    tail = [asyncio.create_task(writer.store(m, SECONDS)) for m in rest]
    await until(lambda: len(writer._waiting) == len(rest), "the others to queue")
    held.release.set()
    return await asyncio.gather(head, *tail)


def counts(stored: Stored) -> tuple[int, int, int]:
    assert stored.result is not None
    return stored.result.stored, stored.result.duplicates, stored.result.dead


def total(repo: Repository, sql: str) -> int:
    with repo.engine.connect() as conn:
        return int(conn.execute(text(sql)).scalar_one() or 0)


def test_requests_that_wait_on_a_commit_share_the_next_one(repo: Repository) -> None:
    held = Held(repo)
    writer = GroupWriter(IngestWorker(None, held))
    single = [[message(make_reading(DEVICE_B, seconds=i))] for i in range(6)]
    answers = asyncio.run(
        behind_a_held_write(held, writer, [message(make_reading(DEVICE_A))], single)
    )
    assert held.writes == [1, 6]  # the first alone, the six that waited in one transaction
    assert [counts(a) for a in answers] == [(1, 0, 0)] * 7
    assert total(repo, "SELECT COUNT(*) FROM readings") == 7
    assert total(repo, "SELECT SUM(n) FROM readings_minute") == 7


def test_a_key_in_two_requests_or_already_stored_is_stored_once(repo: Repository) -> None:
    """A retry lands in the same group as its first copy, or after it was stored: the group
    is written again request by request, so each is told whether its reading was new."""
    held = Held(repo)
    writer = GroupWriter(IngestWorker(None, held))
    first = make_reading(DEVICE_A, seconds=0)
    twice = make_reading(DEVICE_A, seconds=1)
    rest = [
        [message(twice)],
        [message(twice)],
        [message(first)],  # stored by the held transaction already
        [message(make_reading(DEVICE_B, seconds=2))],
    ]
    answers = asyncio.run(behind_a_held_write(held, writer, [message(first)], rest))
    assert [counts(a) for a in answers] == [(1, 0, 0), (1, 0, 0), (0, 1, 0), (0, 1, 0), (1, 0, 0)]
    assert total(repo, "SELECT COUNT(*) FROM readings") == 3
    assert total(repo, "SELECT SUM(n) FROM readings_minute") == 3
    assert len(held.writes) >= 3  # the group was tried, then written one by one


def test_a_value_the_database_refuses_reaches_only_its_request(repo: Repository) -> None:
    changes, words = REFUSED[repo.dialect if repo.dialect in REFUSED else "mysql"]
    held = Held(repo)
    writer = GroupWriter(IngestWorker(None, held, decoder=lenient))
    bad = message(make_reading(DEVICE_B, seconds=5, seq=5), **changes)
    rest = [
        [message(make_reading(DEVICE_B, seconds=1, seq=1))],
        [message(make_reading(DEVICE_B, seconds=4, seq=4)), bad],
        [message(make_reading(DEVICE_B, seconds=6, seq=6))],
    ]
    answers = asyncio.run(
        behind_a_held_write(held, writer, [message(make_reading(DEVICE_A, seq=0))], rest)
    )
    assert [counts(a) for a in answers] == [(1, 0, 0), (1, 0, 0), (1, 0, 1), (1, 0, 0)]
    assert total(repo, "SELECT COUNT(*) FROM readings") == 4
    (letter,) = repo.dead_letters()
    assert letter["data"] == bad.data
    assert words in letter["reason"]


class Down(Repository):
    """A real repository whose database never answers."""

    def __init__(self, inner: Repository) -> None:
        super().__init__(inner.engine)
        self.writes = 0

    def store_batch(self, *args: object, **kwargs: object) -> BatchResult:
        self.writes += 1
        raise StorageUnavailable("database unavailable: connection refused")


def test_with_the_database_down_every_request_of_a_group_hears_nothing_was_stored(
    sqlite_repo: Repository,
) -> None:
    down = Down(sqlite_repo)
    writer = GroupWriter(IngestWorker(None, down))

    async def scenario() -> list[Stored]:
        stores = [
            writer.store([message(make_reading(DEVICE_A, seconds=i))], timeout)
            for i, timeout in enumerate((0.3, SECONDS, SECONDS))
        ]
        return await asyncio.gather(*stores)

    started = time.monotonic()
    answers = asyncio.run(scenario())
    assert [a.result for a in answers] == [None, None, None]
    assert [len(a.batch.readings) for a in answers] == [1, 1, 1]
    # The first request's deadline ends the attempt of its group; the others follow it.
    assert time.monotonic() - started < SECONDS
    assert down.writes >= 1
    assert total(sqlite_repo, "SELECT COUNT(*) FROM readings") == 0


def test_a_bad_reading_in_a_group_is_dead_lettered_and_told_to_its_request(
    sqlite_repo: Repository,
) -> None:
    held = Held(sqlite_repo)
    writer = GroupWriter(IngestWorker(None, held))
    bad = Message(b'{"temperature": "hot"}', {"via": "test"})
    rest = [[message(make_reading(DEVICE_B, seconds=1))], [bad], [message(make_reading(DEVICE_B))]]
    answers = asyncio.run(
        behind_a_held_write(held, writer, [message(make_reading(DEVICE_A))], rest)
    )
    assert held.writes == [1, 3]  # the dead letter went into the group's transaction
    assert [counts(a) for a in answers] == [(1, 0, 0), (1, 0, 0), (0, 0, 1), (1, 0, 0)]
    assert [len(a.batch.dead) for a in answers] == [0, 0, 1, 0]
    (letter,) = sqlite_repo.dead_letters()
    assert letter["data"] == bad.data
