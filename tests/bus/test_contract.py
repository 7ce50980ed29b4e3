"""The contract every bus backend keeps: at-least-once delivery with explicit acks."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
from collections.abc import Callable, Coroutine
from typing import Any

import pytest

from weatherpipe.bus import Bus, Message, create_bus
from weatherpipe.errors import BusUnavailable

BusFactory = Callable[[], Bus]

# Generous: the emulator and brokers share two cores with the test run.
DEADLINE_SECONDS = 30.0


def run(scenario: Coroutine[Any, Any, None]) -> None:
    asyncio.run(scenario)


async def pull_until(bus: Bus, count: int, ack: bool = True) -> list[Message]:
    """Pull (and ack) until `count` messages arrived; fail past the deadline."""
    received: list[Message] = []
    deadline = time.monotonic() + DEADLINE_SECONDS
    while len(received) < count:
        assert time.monotonic() < deadline, f"only {len(received)} of {count} arrived"
        batch = await bus.pull(min(500, count - len(received)), timeout=1.0)
        if ack:
            await bus.ack(batch)
        received.extend(batch)
    return received


def bodies(messages: list[Message]) -> set[bytes]:
    return {message.data for message in messages}


def test_publish_then_pull_round_trips_data_and_attributes(bus_factory: BusFactory) -> None:
    async def scenario() -> None:
        async with bus_factory() as bus:
            await bus.publish(b'{"v": 1}', {"signature": "abc", "device": "d-1"})
            [message] = await pull_until(bus, 1)
        assert message.data == b'{"v": 1}'
        assert dict(message.attributes) == {"signature": "abc", "device": "d-1"}

    run(scenario())


def test_acked_messages_are_not_delivered_again(bus_factory: BusFactory) -> None:
    async def scenario() -> None:
        async with bus_factory() as bus:
            await bus.publish_many([(b"a", None), (b"b", None), (b"c", None)])
            assert bodies(await pull_until(bus, 3)) == {b"a", b"b", b"c"}
            assert await bus.pull(10, timeout=1.0) == []
        async with bus_factory() as again:
            assert await again.pull(10, timeout=1.0) == []

    run(scenario())


def test_nacked_messages_are_delivered_again(bus_factory: BusFactory) -> None:
    async def scenario() -> None:
        async with bus_factory() as bus:
            await bus.publish(b"retry me")
            first = await pull_until(bus, 1, ack=False)
            await bus.nack(first)
            again = await pull_until(bus, 1)
        assert bodies(again) == {b"retry me"}

    run(scenario())


def test_unacked_messages_come_back_to_the_next_consumer_after_close(
    bus_factory: BusFactory,
) -> None:
    async def scenario() -> None:
        async with bus_factory() as bus:
            await bus.publish_many([(b"one", None), (b"two", None)])
            assert bodies(await pull_until(bus, 2, ack=False)) == {b"one", b"two"}
        async with bus_factory() as restarted:
            assert bodies(await pull_until(restarted, 2)) == {b"one", b"two"}

    run(scenario())


def test_two_consumers_split_the_work_and_never_see_an_acked_message(
    bus_factory: BusFactory,
) -> None:
    total = 200
    acked: set[bytes] = set()
    seen_after_ack: list[bytes] = []

    async def consume(bus: Bus, mine: list[bytes]) -> None:
        deadline = time.monotonic() + DEADLINE_SECONDS
        while len(acked) < total and time.monotonic() < deadline:
            batch = await bus.pull(10, timeout=0.5)
            seen_after_ack.extend(m.data for m in batch if m.data in acked)
            await bus.ack(batch)
            acked.update(m.data for m in batch)
            mine.extend(m.data for m in batch)
            await asyncio.sleep(0)  # a turn for the other consumer, as a second process has

    async def scenario() -> None:
        async with bus_factory() as first, bus_factory() as second:
            # Both join the subscription before anything is published.
            await first.pull(1, timeout=0.1)
            await second.pull(1, timeout=0.1)
            await first.publish_many([(b"%d" % i, None) for i in range(total)])
            got_first: list[bytes] = []
            got_second: list[bytes] = []
            await asyncio.gather(consume(first, got_first), consume(second, got_second))
        assert acked == {b"%d" % i for i in range(total)}
        assert seen_after_ack == []
        assert got_first and got_second, "one consumer did all the work"

    run(scenario())


def test_setup_twice_is_fine(bus_factory: BusFactory) -> None:
    async def scenario() -> None:
        async with bus_factory() as bus:
            await bus.setup()
            await bus.setup()
            await bus.publish(b"still works")
            assert bodies(await pull_until(bus, 1)) == {b"still works"}

    run(scenario())


def test_pull_on_an_empty_subscription_returns_nothing_within_its_timeout(
    bus_factory: BusFactory,
) -> None:
    async def scenario() -> None:
        async with bus_factory() as bus:
            started = time.monotonic()
            assert await bus.pull(100, timeout=0.5) == []
            assert time.monotonic() - started < 0.5 + 2.0

    run(scenario())


def test_publish_many_of_1000_messages_all_arrive(bus_factory: BusFactory) -> None:
    sent = {b"reading-%04d" % i for i in range(1000)}

    async def scenario() -> None:
        async with bus_factory() as bus:
            await bus.publish_many([(data, {"n": data.decode()}) for data in sorted(sent)])
            received = await pull_until(bus, len(sent))
        assert bodies(received) == sent
        assert all(m.attributes["n"] == m.data.decode() for m in received)

    run(scenario())


# Which backends report a backlog: a backend that starts (or stops) doing so must change this.
REPORTS_LAG = {"memory": True, "nats": True, "mqtt": False, "pubsub": False}


def test_lag_counts_waiting_messages_where_the_broker_reports_it(
    bus_factory: BusFactory,
) -> None:
    async def until_lag(bus: Bus, wanted: int) -> None:
        # The broker may count a publish or apply an ack a moment later (NATS does).
        deadline = time.monotonic() + DEADLINE_SECONDS
        while (lag := await bus.lag()) != wanted:
            assert time.monotonic() < deadline, f"lag {lag}, expected {wanted}"
            await asyncio.sleep(0.05)

    async def scenario() -> None:
        async with bus_factory() as bus:
            await bus.publish_many([(b"x", None)] * 5)
            if not REPORTS_LAG[bus.scheme]:
                assert await bus.lag() is None
                await pull_until(bus, 5)
                assert await bus.lag() is None
                return
            await until_lag(bus, 5)
            await pull_until(bus, 5)
            await until_lag(bus, 0)

    run(scenario())


@pytest.mark.parametrize("url", ["nats://127.0.0.1:1", "mqtt://127.0.0.1:1"])
def test_an_unreachable_broker_raises_bus_unavailable(url: str) -> None:
    async def scenario() -> None:
        with pytest.raises(BusUnavailable):
            await create_bus(url).connect()

    run(scenario())


def test_a_bus_says_truly_whether_another_process_reaches_its_topic(
    bus_factory: BusFactory,
) -> None:
    """`crosses_processes` is what the supervisor, `api` and `replay` ask instead of the URL:
    a child process publishes on the same names, and only a crossing bus receives it."""
    probe = bus_factory()
    publish = (
        "import asyncio, sys\n"
        "from weatherpipe.bus import create_bus\n"
        "async def main():\n"
        "    async with create_bus(sys.argv[1], sys.argv[2], sys.argv[3]) as bus:\n"
        "        await bus.publish(b'from another process')\n"
        "asyncio.run(main())\n"
    )
    subprocess.run(
        [sys.executable, "-c", publish, probe.url, probe.topic, probe.subscription],
        check=True,
        timeout=DEADLINE_SECONDS,
    )

    async def scenario() -> None:
        async with probe as bus:
            if bus.crosses_processes:
                assert bodies(await pull_until(bus, 1)) == {b"from another process"}
            else:
                assert await bus.pull(10, timeout=1.0) == []

    run(scenario())


def test_a_message_keeps_its_id_when_redelivered_and_no_two_messages_share_one(
    bus_factory: BusFactory,
) -> None:
    """The id that keys a dead letter: equal bytes in two messages are two ids, and a message
    handed back comes again with its own. MQTT has no such id (None)."""

    async def scenario() -> None:
        async with bus_factory() as bus:
            await bus.publish_many([(b"same", None), (b"same", None), (b"other", None)])
            first = await pull_until(bus, 3, ack=False)
            await bus.nack(first)
            again = await pull_until(bus, 3)
        ids = [m.id for m in first]
        if bus.scheme == "mqtt":
            assert ids == [None, None, None]
            return
        assert None not in ids and len(set(ids)) == 3
        assert {m.id for m in again} == set(ids)

    run(scenario())
