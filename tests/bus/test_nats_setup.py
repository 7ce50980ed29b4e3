"""NATS setup against a consumer that already exists with other settings."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from contextlib import suppress

import nats
import pytest
from nats.js.api import ConsumerConfig, DeliverPolicy

from tests.bus.conftest import NATS_URL, require_server
from weatherpipe.bus import create_bus
from weatherpipe.bus.nats import MAX_ACK_PENDING, NatsBus

OLD_LIMIT = 20_000


@pytest.fixture
def names() -> Iterator[tuple[str, str]]:
    """A fresh topic and subscription; their stream is deleted afterwards if it was made."""
    require_server("NATS", NATS_URL)
    name = f"t{uuid.uuid4().hex[:10]}"
    yield f"{name}_topic", f"{name}_sub"

    async def clean_up() -> None:
        async with create_bus(NATS_URL, f"{name}_topic", f"{name}_sub") as bus:
            with suppress(nats.js.errors.NotFoundError):
                await bus.delete()  # type: ignore[attr-defined]

    asyncio.run(clean_up())


def nats_bus(url: str, names: tuple[str, str]) -> NatsBus:
    bus = create_bus(url, *names)
    assert isinstance(bus, NatsBus)
    return bus


async def consumer_config(bus: NatsBus) -> ConsumerConfig:
    nc = await nats.connect(bus.server)
    try:
        return (await nc.jetstream().consumer_info(bus.stream, bus.consumer)).config
    finally:
        await nc.close()


def test_setup_raises_an_older_consumers_max_ack_pending_in_place(
    names: tuple[str, str],
) -> None:
    """A consumer made with a smaller in-flight limit (an older release's 20,000) gets the
    current one from the next setup, and keeps its place in the stream."""
    old = nats_bus(f"{NATS_URL}?max_ack_pending={OLD_LIMIT}", names)
    new = nats_bus(NATS_URL, names)

    async def scenario() -> None:
        async with old:
            await old.setup()
            await old.publish_many([(b"one", None), (b"two", None)])
            [first] = await old.pull(1, timeout=5.0)
            await old.ack([first])
            assert (await consumer_config(old)).max_ack_pending == OLD_LIMIT
        async with new:
            await new.setup()
            assert (await consumer_config(new)).max_ack_pending == MAX_ACK_PENDING
            rest = await new.pull(10, timeout=5.0)
            await new.ack(rest)
        assert [m.data for m in rest] == [b"two"]

    asyncio.run(scenario())


def test_setup_leaves_a_consumer_it_cannot_update_as_it_is(
    names: tuple[str, str], caplog: pytest.LogCaptureFixture
) -> None:
    """An operator's consumer whose deliver policy differs (not editable) keeps every setting,
    and setup says so instead of failing."""
    bus = nats_bus(NATS_URL, names)

    async def scenario() -> None:
        async with bus:
            await bus.setup()
            nc = await nats.connect(bus.server)
            try:
                js = nc.jetstream()
                await js.delete_consumer(bus.stream, bus.consumer)
                await js.add_consumer(
                    bus.stream,
                    ConsumerConfig(
                        durable_name=bus.consumer,
                        deliver_policy=DeliverPolicy.NEW,
                        max_ack_pending=OLD_LIMIT,
                        filter_subject=bus.topic,
                    ),
                )
            finally:
                await nc.close()
            await bus.setup()
            config = await consumer_config(bus)
        assert config.deliver_policy == DeliverPolicy.NEW
        assert config.max_ack_pending == OLD_LIMIT

    asyncio.run(scenario())
    assert f"consumer {bus.consumer} exists with other settings" in caplog.text
