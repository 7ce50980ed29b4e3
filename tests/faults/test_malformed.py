"""10,000 malformed messages among 100,000 readings: each reading stored once, each bad message a
dead letter with its reason, and ingest neither crashes nor stalls."""

from __future__ import annotations

import asyncio
import random
import time
import uuid
from collections import Counter

import pytest

from weatherpipe.bus.nats import NatsBus
from weatherpipe.errors import BusError
from weatherpipe.reading import encode
from weatherpipe.testing import make_reading

from .conftest import StartStage
from .harness import STALL_SECONDS, Consumer, Database, Report, wait_for
from .malformed import generate

READINGS = 100_000
MALFORMED = 10_000
DEVICES = 20


def mixed() -> tuple[list[bytes], list[bytes]]:
    devices = [str(uuid.uuid4()) for _ in range(DEVICES)]
    valid = [
        encode(make_reading(devices[i % DEVICES], i // DEVICES, 15.0, seq=i // DEVICES + 1))
        for i in range(READINGS)
    ]
    bad = generate(MALFORMED)
    return valid, bad


@pytest.mark.slow
def test_malformed_messages_become_dead_letters_and_every_reading_is_stored_once(
    shared_nats: Consumer, mariadb_url: str, start_stage: StartStage, report: Report
) -> None:
    valid, bad = mixed()
    messages = valid + bad
    random.Random(6).shuffle(messages)
    report["publish_seconds"] = shared_nats.publish([(m, None) for m in messages])
    report["malformed_bytes"] = sum(map(len, bad))
    db = Database(mariadb_url)
    ingest = start_stage(
        "ingest",
        log="ingest",
        database_url=mariadb_url,
        bus_url=shared_nats.bus.url,
        topic=shared_nats.bus.topic,
        subscription=shared_nats.bus.subscription,
    )
    started = time.monotonic()
    progress: list[tuple[float, int]] = []

    def drained() -> bool:
        assert ingest.running(), f"ingest died:\n{ingest.log()}"
        progress.append((time.monotonic(), db.stored()))
        return shared_nats.settled()

    wait_for(drained, 300, "ingest drains the mixed stream", every=0.5)
    report["drain_seconds"] = time.monotonic() - started
    # A batch still being written after the 5 s ack_wait comes back; its dead letters must
    # not be stored again (their message keys).
    report["redeliveries"] = shared_nats.deliveries() - len(messages)
    report["stop_seconds"] = ingest.terminate()
    assert ingest.process.returncode == 0

    db.assert_exactly_once(READINGS)
    dead = db.rows("SELECT data, reason FROM dead_letters")
    assert Counter(bytes(data) for data, _ in dead) == Counter(bad)
    assert all(reason.strip() for _, reason in dead)
    report["stored"] = READINGS
    report["dead_letters"] = len(dead)
    report["dead_letter_reasons_by_first_word"] = dict(Counter(r.split()[0] for _, r in dead))
    report["longest_stall_seconds"] = longest_stall(progress)
    assert report.values["longest_stall_seconds"] < STALL_SECONDS
    report.write()
    db.close()


def longest_stall(progress: list[tuple[float, int]]) -> float:
    """The longest time the stored count stood still between the first and last reading."""
    moving = [(t, n) for t, n in progress if 0 < n < READINGS]
    stall, since, last = 0.0, None, -1
    for t, n in moving:
        if n != last:
            since, last = t, n
        elif since is not None:
            stall = max(stall, t - since)
    return stall


def test_a_message_over_the_brokers_limit_is_refused_at_the_publisher(
    shared_nats: Consumer,
) -> None:
    """NATS takes at most 1 MiB per message: a bigger one never reaches ingest, so it cannot be
    a dead letter: the publisher gets a BusError and nothing enters the stream."""

    async def publish_huge() -> None:
        async with NatsBus(
            shared_nats.bus.url, shared_nats.bus.topic, shared_nats.bus.subscription
        ) as bus:
            await bus.publish(b"{" + b" " * (2 * 1024 * 1024) + b"}")

    with pytest.raises(BusError):
        asyncio.run(publish_huge())
    assert shared_nats.pending()[0] == 0
