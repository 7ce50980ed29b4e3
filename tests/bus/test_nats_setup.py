"""NATS setup against a stream and consumer that already exist with other settings."""

from __future__ import annotations

import asyncio
import uuid

import nats

from tests.bus.conftest import NATS_URL, require_server
from weatherpipe.bus import create_bus
from weatherpipe.bus.nats import MAX_ACK_PENDING, NatsBus


def test_setup_raises_an_older_consumers_max_ack_pending_in_place() -> None:
    """A consumer made with a smaller in-flight limit (an older release's 20,000) gets the
    current one from the next setup, and keeps its place in the stream."""
    require_server("NATS", NATS_URL)
    name = f"t{uuid.uuid4().hex[:10]}"
    topic, subscription = f"{name}_topic", f"{name}_sub"

    async def max_ack_pending(bus: NatsBus) -> int:
        nc = await nats.connect(bus.server)
        try:
            info = await nc.jetstream().consumer_info(bus.stream, bus.consumer)
            return int(info.config.max_ack_pending or 0)
        finally:
            await nc.close()

    async def scenario() -> None:
        old = create_bus(f"{NATS_URL}?max_ack_pending=20000", topic, subscription)
        new = create_bus(NATS_URL, topic, subscription)
        assert isinstance(old, NatsBus) and isinstance(new, NatsBus)
        try:
            async with old:
                await old.setup()
                await old.publish_many([(b"one", None), (b"two", None)])
                [first] = await old.pull(1, timeout=5.0)
                await old.ack([first])
                assert await max_ack_pending(old) == 20_000
            async with new:
                await new.setup()
                assert await max_ack_pending(new) == MAX_ACK_PENDING
                rest = await new.pull(10, timeout=5.0)
                await new.ack(rest)
            assert [m.data for m in rest] == [b"two"]
        finally:
            async with new:
                await new.delete()

    asyncio.run(scenario())
