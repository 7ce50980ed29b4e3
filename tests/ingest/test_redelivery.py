"""A batch redelivered after its commit (ingest died between commit and ack) stores nothing
twice: readings by their (device_id, ts), dead letters by their message's key. Through the
real worker, on NATS JetStream, MQTT and the in-process bus, into each database."""

from __future__ import annotations

import asyncio
import random
import time
import uuid
from collections import Counter
from collections.abc import Iterator, Sequence

import pytest
from sqlalchemy import text
from tests.bus.conftest import MQTT_URL, NATS_URL, require_server

from weatherpipe.bus import Bus, Message, create_bus
from weatherpipe.ingest.worker import IngestWorker
from weatherpipe.reading import encode
from weatherpipe.storage.repository import Repository
from weatherpipe.testing import series

# Two bad messages with the same bytes: two messages, so two dead letters (where the bus
# tells messages apart; MQTT cannot, see docs/reliability.md).
BAD = [b"not json", b"not json", b'{"v": 1, "device_id": "oops"}', b"\xff\xfe", b"{}"]
READINGS = 20


@pytest.fixture(params=["nats", "mqtt", "memory"])
def bus_url(request: pytest.FixtureRequest) -> Iterator[str]:
    if request.param == "nats":
        require_server("NATS", NATS_URL)
        # A message the server hands to the closing consumer's last pull request is lost with
        # that connection until ack_wait: keep that short.
        yield f"{NATS_URL}{'&' if '?' in NATS_URL else '?'}ack_wait=3"
    elif request.param == "mqtt":
        require_server("Mosquitto", MQTT_URL)
        yield MQTT_URL
    else:
        yield f"memory://redelivery-{uuid.uuid4().hex[:8]}"


async def ingest(bus: Bus, repo: Repository, expected: int, settle: bool = True) -> IngestWorker:
    """Run a worker (batches of 8) until it has stored `expected` messages and, with `settle`,
    the broker holds none waiting or unacked (where it says), then stop it."""
    worker = IngestWorker(bus, repo, batch_size=8, batch_seconds=0.05)
    stop = asyncio.Event()
    task = asyncio.create_task(worker.run(stop))
    deadline = time.monotonic() + 60
    try:
        while worker.stats.received < expected or (settle and await bus.lag() not in (0, None)):
            assert time.monotonic() < deadline, f"received {worker.stats.received} of {expected}"
            assert not task.done(), task
            await asyncio.sleep(0.01)
    finally:
        stop.set()
        await task
    return worker


def test_a_batch_redelivered_after_its_commit_stores_each_dead_letter_once(
    bus_url: str, repo: Repository
) -> None:
    messages = [encode(r) for r in series([15.0 + i / 10 for i in range(READINGS)])] + BAD
    random.Random(3).shuffle(messages)
    name = f"wp_redeliver_{uuid.uuid4().hex[:10]}"
    unacked: list[Message] = []

    def make() -> Bus:
        return create_bus(bus_url, topic=name, subscription=f"{name}_sub")

    async def forget(batch: Sequence[Message]) -> None:
        unacked.extend(batch)  # committed, then "killed" before the ack went out

    async def scenario() -> tuple[IngestWorker, IngestWorker]:
        async with make() as bus:
            await bus.setup()
            await bus.publish_many([(m, None) for m in messages])
        try:
            crashed = make()
            await crashed.connect()
            crashed.ack = forget  # type: ignore[method-assign]
            first = await ingest(crashed, repo, len(messages), settle=False)
            await crashed.close()  # hands back what it holds, as a restart after ack_wait
            async with make() as restarted:
                second = await ingest(restarted, repo, len(messages))
            return first, second
        finally:
            delete = getattr(make(), "delete", None)
            if delete is not None:
                async with make() as bus:
                    await bus.delete()  # type: ignore[attr-defined]

    first, second = asyncio.run(scenario())
    assert {m.data for m in unacked} == set(messages)
    # Every message came back and was stored again: readings as duplicates, dead letters...
    assert second.stats.received >= len(messages)
    assert second.stats.duplicates >= READINGS
    assert first.stats.dead >= len(BAD) and second.stats.dead >= len(BAD)
    with repo.engine.connect() as conn:
        readings = conn.execute(text("SELECT COUNT(*) FROM readings")).scalar_one()
        dead = conn.execute(text("SELECT data, message_key FROM dead_letters")).all()
    assert readings == READINGS
    # ... each once.
    kept = Counter(bytes(data) for data, _ in dead)
    assert kept == (Counter(set(BAD)) if bus_url.startswith("mqtt") else Counter(BAD))
    assert len({key for _, key in dead}) == len(dead) and None not in {key for _, key in dead}
