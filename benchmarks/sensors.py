"""The simulator at scale: N devices at 1 Hz from one process, to NATS and to a null sink."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping, Sequence

from benchmarks.base import BenchOptions, Result, scratch_stream
from weatherpipe.bus.base import Bus, Message
from weatherpipe.sensors.profiles import fleet
from weatherpipe.sensors.publisher import SensorRunner

BEHIND_LIMIT_SECONDS = 1.0


class NullBus(Bus):
    """Accepts every message and keeps none: the simulator's own cost, without a broker."""

    scheme = "null"

    def __init__(self) -> None:
        super().__init__("null://", "null", "null")
        self.count = 0

    async def connect(self) -> None:
        return None

    async def close(self) -> None:
        return None

    async def setup(self) -> None:
        return None

    async def publish(self, data: bytes, attributes: Mapping[str, str] | None = None) -> None:
        self.count += 1

    async def publish_many(self, items: Sequence[tuple[bytes, Mapping[str, str] | None]]) -> None:
        self.count += len(items)

    async def pull(self, max_messages: int, timeout: float) -> list[Message]:
        return []

    async def ack(self, messages: Sequence[Message]) -> None:
        return None

    async def nack(self, messages: Sequence[Message]) -> None:
        return None


async def run_fleet(bus: Bus, devices: int, seconds: float) -> tuple[float, int, float]:
    """Run `devices` sensors at 1 Hz for `seconds`: (max seconds behind, published, CPU s)."""
    runner = SensorRunner(bus, fleet(devices, 0), rate=1.0, anomaly_rate=4.0)
    cpu = time.process_time()
    stats = await runner.run(duration=seconds)
    return stats.max_behind, stats.published, time.process_time() - cpu


def sensors(options: BenchOptions) -> Result:
    """10,000 devices at 1 Hz for 60 s (quick: 1,000 for 5 s): the slowest tick's lag behind
    its schedule (SensorRunner.stats.max_behind), publishing to NATS and to a null sink."""
    devices = int(options.size(10_000, 1000, options.devices))
    seconds = options.size(60.0, 5.0, options.seconds)
    null_behind, null_sent, null_cpu = asyncio.run(run_fleet(NullBus(), devices, seconds))
    with scratch_stream(options.nats_url) as topic:

        async def to_nats() -> tuple[float, int, float]:
            from weatherpipe.bus.nats import NatsBus

            async with NatsBus(options.nats_url, topic, topic + "_sensors") as bus:
                return await run_fleet(bus, devices, seconds)

        behind, sent, cpu = asyncio.run(to_nats())
    return Result(
        "sensors",
        f"{devices:,} devices at 1 Hz for {seconds:.0f} s → NATS, worst lag behind schedule",
        behind,
        "s",
        f"< {BEHIND_LIMIT_SECONDS:.0f} s behind",
        behind < BEHIND_LIMIT_SECONDS and sent >= devices * int(seconds),
        runs=[behind],
        baselines={"null sink": null_behind},
        ratios={"of the 1 s limit": behind / BEHIND_LIMIT_SECONDS},
        details={
            "published": sent,
            "published_per_s": sent / seconds,
            "cpu_share_nats": cpu / seconds,
            "null_published": null_sent,
            "cpu_share_null": null_cpu / seconds,
        },
    )
