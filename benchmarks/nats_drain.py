"""Hand-run throughput measurements of the bus backends (not timed unit tests)."""

from __future__ import annotations

import time
import uuid

from weatherpipe.bus.nats import NatsBus

PUBLISH_CHUNK = 10_000
DRAIN_BATCH = 2_000
# A reading on the wire is about this long (DESIGN.md, schema v1).
PAYLOAD = (
    b'{"v":1,"device_id":"6b4fa32e-a7f5-4ec2-8820-6581468ef36b","ts":"2026-11-28T01:02:03.456Z",'
    b'"seq":1234,"temperature":21.37,"latitude":52.52,"longitude":13.405}'
)


async def bench_nats_drain(url: str, n: int = 200_000) -> dict[str, float]:
    """Publish `n` small messages to a scratch stream, drain them with pull+ack; rates in msgs/s.

    The stream and consumer are created for the run and deleted after it.
    """
    name = f"bench_{uuid.uuid4().hex[:8]}"
    bus = NatsBus(url, topic=name, subscription=f"{name}_sub")
    await bus.setup()
    try:
        publish_seconds = await _publish(bus, n)
        drain_seconds, pull_seconds, ack_seconds = await _drain(bus, n)
    finally:
        await bus.delete()
        await bus.close()
    return {
        "messages": float(n),
        "publish_per_s": n / publish_seconds,
        "drain_per_s": n / drain_seconds,
        "pull_seconds": pull_seconds,
        "ack_seconds": ack_seconds,
    }


async def _publish(bus: NatsBus, n: int) -> float:
    started = time.perf_counter()
    for first in range(0, n, PUBLISH_CHUNK):
        count = min(PUBLISH_CHUNK, n - first)
        await bus.publish_many([(PAYLOAD, None)] * count)
    return time.perf_counter() - started


async def _drain(bus: NatsBus, n: int) -> tuple[float, float, float]:
    """Seconds in total, in pull and in ack, to take `n` messages off the consumer."""
    received = 0
    pull_seconds = ack_seconds = 0.0
    started = time.perf_counter()
    while received < n:
        t0 = time.perf_counter()
        messages = await bus.pull(DRAIN_BATCH, timeout=5.0)
        t1 = time.perf_counter()
        if not messages:
            raise RuntimeError(f"drain stalled after {received} of {n} messages")
        await bus.ack(messages)
        ack_seconds += time.perf_counter() - t1
        pull_seconds += t1 - t0
        received += len(messages)
    return time.perf_counter() - started, pull_seconds, ack_seconds
