"""Backend behaviour beyond the contract: broker restarts, redelivery deadlines, MQTT queues."""

from __future__ import annotations

import asyncio
import time
import uuid

import pytest

from tests.bus.conftest import PrivateServer
from weatherpipe.bus import Bus, Message, create_bus
from weatherpipe.bus.mqtt import RECEIVE_MAXIMUM
from weatherpipe.errors import BusUnavailable

DEADLINE_SECONDS = 60.0


def names() -> tuple[str, str]:
    name = f"t{uuid.uuid4().hex[:10]}"
    return f"{name}_topic", f"{name}_sub"


async def publish_retrying(bus: Bus, items: list[tuple[bytes, None]]) -> None:
    """Publish as a well-behaved caller does: retry on BusUnavailable until the deadline."""
    deadline = time.monotonic() + DEADLINE_SECONDS
    while True:
        try:
            await bus.publish_many(items)
            return
        except BusUnavailable:
            assert time.monotonic() < deadline, "the broker never came back"
            await asyncio.sleep(0.2)  # the caller's backoff, not a wait for an event


async def drain(bus: Bus, expected: set[bytes], ack: bool = True) -> list[Message]:
    """Pull until every expected body arrived, riding out BusUnavailable like ingest does."""
    received: list[Message] = []
    deadline = time.monotonic() + DEADLINE_SECONDS
    while not expected <= {m.data for m in received}:
        assert time.monotonic() < deadline, f"{len(received)} of {len(expected)} arrived"
        try:
            batch = await bus.pull(1_000, timeout=1.0)
        except BusUnavailable:
            continue
        if ack:
            await bus.ack(batch)
        received.extend(batch)
    return received


def test_nats_bus_rides_out_a_server_restart_without_losing_messages(
    private_nats: PrivateServer,
) -> None:
    topic, subscription = names()
    url = f"nats://127.0.0.1:{private_nats.port}"
    before = [(b"before-%d" % i, None) for i in range(100)]
    after = [(b"after-%d" % i, None) for i in range(100)]

    async def scenario() -> None:
        async with create_bus(url, topic, subscription) as bus:
            await bus.setup()
            await bus.publish_many(before)
            private_nats.stop()
            private_nats.start()
            await publish_retrying(bus, after)
            received = await drain(bus, {data for data, _ in before + after})
        assert len({m.data for m in received}) == 200

    asyncio.run(scenario())


def test_nats_redelivers_a_message_whose_consumer_went_silent() -> None:
    from tests.bus.conftest import NATS_URL, require_server

    require_server("NATS", NATS_URL)
    topic, subscription = names()
    url = f"{NATS_URL}?ack_wait=1"

    async def scenario() -> None:
        async with (
            create_bus(url, topic, subscription) as stuck,
            create_bus(url, topic, subscription) as healthy,
        ):
            await stuck.setup()
            try:
                await stuck.publish(b"stuck")
                assert [m.data for m in await stuck.pull(1, timeout=5.0)] == [b"stuck"]
                # `stuck` neither acks nor closes, as if it hung: after ack_wait it goes elsewhere.
                assert {m.data for m in await drain(healthy, {b"stuck"})} == {b"stuck"}
            finally:
                await stuck.delete()  # type: ignore[attr-defined]

    asyncio.run(scenario())


def test_mqtt_consumer_gets_its_unacked_messages_after_a_broker_restart(
    tuned_mosquitto: PrivateServer,
) -> None:
    topic, subscription = names()
    url = f"mqtt://127.0.0.1:{tuned_mosquitto.port}"
    sent = {b"m-%d" % i for i in range(50)}

    async def scenario() -> None:
        async with create_bus(url, topic, subscription) as bus:
            await bus.setup()
            await bus.publish_many([(data, None) for data in sorted(sent)])
            await drain(bus, sent, ack=False)
            tuned_mosquitto.stop()
            tuned_mosquitto.start()
            # Nothing was acked, so the resumed session delivers every message again.
            assert {m.data for m in await drain(bus, sent)} == sent

    asyncio.run(scenario())


@pytest.mark.slow
def test_mqtt_with_the_documented_settings_keeps_a_20000_message_backlog(
    tuned_mosquitto: PrivateServer,
) -> None:
    topic, subscription = names()
    url = f"mqtt://127.0.0.1:{tuned_mosquitto.port}"
    sent = [(b"r-%05d" % i, None) for i in range(20_000)]

    async def scenario() -> None:
        async with create_bus(url, topic, subscription) as publisher:
            await publisher.setup()  # the session exists; no consumer is connected
            await publisher.publish_many(sent)
        async with create_bus(url, topic, subscription) as consumer:
            received = await drain(consumer, {data for data, _ in sent})
        assert len({m.data for m in received}) == 20_000

    asyncio.run(scenario())


def test_mqtt_with_default_mosquitto_limits_drops_past_its_queue(
    default_mosquitto: PrivateServer,
) -> None:
    """The limit docs/brokers.md warns about: an offline consumer's queue holds 1,000."""
    sent = RECEIVE_MAXIMUM + 4_000
    topic, subscription = names()
    url = f"mqtt://127.0.0.1:{default_mosquitto.port}"

    async def scenario() -> int:
        async with create_bus(url, topic, subscription) as publisher:
            await publisher.setup()
            await publisher.publish_many([(b"%d" % i, None) for i in range(sent)])
        received: set[bytes] = set()
        async with create_bus(url, topic, subscription) as consumer:
            while batch := await consumer.pull(1_000, timeout=2.0):
                received.update(m.data for m in batch)
                await consumer.ack(batch)
        return len(received)

    kept = asyncio.run(scenario())
    # Up to our receive maximum is in flight to the session, 1,000 more queue; the rest is gone.
    assert kept == RECEIVE_MAXIMUM + 1_000
