"""The simulator: climates, reproducible weather, labeled anomalies, spool, backfill."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest

from weatherpipe.bus import create_bus
from weatherpipe.bus.base import Bus, Message
from weatherpipe.errors import BusUnavailable
from weatherpipe.reading import decode
from weatherpipe.sensors.model import KINDS, Fleet
from weatherpipe.sensors.profiles import DEFAULT_DEVICES, fleet
from weatherpipe.sensors.publisher import SensorRunner
from weatherpipe.sensors.spool import Spool

T0 = datetime(2026, 6, 1, tzinfo=UTC).timestamp()


def day_of(device_index: int, seed: int = 1, anomaly_rate: float = 0.0) -> np.ndarray:
    f = Fleet(list(DEFAULT_DEVICES), seed=seed, anomaly_rate=anomaly_rate)
    return f.series(device_index, np.arange(T0, T0 + 86400, 1.0))


def test_three_devices_in_three_climates() -> None:
    means = [float(day_of(i).mean()) for i in range(3)]
    cold, temperate, hot = means
    assert cold < 0 < temperate < hot
    assert len({d.device_id for d in DEFAULT_DEVICES}) == 3


def test_daily_cycle_and_noise() -> None:
    values = day_of(1)
    assert values.max() - values.min() > 5.0  # the daily swing shows
    steps = np.abs(np.diff(values))
    assert 0.01 < float(np.median(steps)) < 0.3  # sensor noise, no jumps


def test_same_seed_same_readings_other_seed_other_weather() -> None:
    assert np.array_equal(day_of(0, seed=5), day_of(0, seed=5))
    assert not np.array_equal(day_of(0, seed=5), day_of(0, seed=6))


def test_every_injected_anomaly_is_recorded_and_visible() -> None:
    truth = []
    f = Fleet(
        list(DEFAULT_DEVICES[:1]),
        seed=3,
        anomaly_rate=30.0,
        on_anomaly=lambda device, a: truth.append(a),
    )
    times = np.arange(T0, T0 + 6 * 3600, 1.0)
    values = f.series(0, times)
    clean = Fleet(list(DEFAULT_DEVICES[:1]), seed=3, anomaly_rate=0.0)._clean(0, times)
    assert {a.kind for a in truth} == set(KINDS)
    for a in truth:
        inside = (times >= a.start) & (times < a.end)
        if a.kind == "stuck":
            assert np.ptp(values[inside]) == 0.0
        elif a.kind in ("spike", "dip", "level_shift"):
            assert np.all(np.abs(values[inside] - clean[inside] - a.magnitude) < 0.5)


def test_tick_gives_every_device_one_reading() -> None:
    devices = fleet(50, seed=2)
    f = Fleet(devices, seed=2)
    values = f.tick(T0)
    assert values.shape == (50,)
    assert len({d.device_id for d in devices}) == 50


def test_backfill_publishes_every_second_of_the_range() -> None:
    async def scenario() -> list[Message]:
        async with create_bus("memory://") as bus:
            runner = SensorRunner(bus, DEFAULT_DEVICES, seed=1)
            start = datetime(2026, 1, 1, tzinfo=UTC)
            await runner.backfill(start, start + timedelta(minutes=15), chunk_seconds=100)
            return await bus.pull(10_000, timeout=0.1)

    messages = asyncio.run(scenario())
    readings = [decode(m.data) for m in messages]
    assert len(readings) == 3 * 900
    assert len({r.key for r in readings}) == 3 * 900
    per_device = sorted(r.seq or 0 for r in readings if r.device_id == DEFAULT_DEVICES[0].device_id)
    assert per_device == list(range(1, 901))


class DownBus(Bus):
    """A bus whose broker refuses every publish until it is 'up'."""

    def __init__(self, inner: Bus) -> None:
        super().__init__(inner.url, inner.topic, inner.subscription)
        self.inner, self.up = inner, False

    async def connect(self) -> None:
        await self.inner.connect()

    async def close(self) -> None:
        await self.inner.close()

    async def setup(self) -> None:
        await self.inner.setup()

    async def publish(self, data: bytes, attributes: object = None) -> None:
        if not self.up:
            raise BusUnavailable("broker down (simulated)")
        await self.inner.publish(data, attributes)  # type: ignore[arg-type]

    async def pull(self, max_messages: int, timeout: float) -> list[Message]:
        return await self.inner.pull(max_messages, timeout)

    async def ack(self, messages: object) -> None:
        await self.inner.ack(messages)  # type: ignore[arg-type]

    async def nack(self, messages: object) -> None:
        await self.inner.nack(messages)  # type: ignore[arg-type]


def test_spooled_readings_survive_a_restart_and_are_sent_in_order(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "sensors.spool")

    async def scenario() -> list[Message]:
        async with create_bus("memory://") as inner:
            down = DownBus(inner)
            first = SensorRunner(down, DEFAULT_DEVICES, rate=20.0, spool=spool)
            await first.run(duration=0.25)
            assert first.stats.published == 0 and len(spool) == first.stats.spooled > 0
            down.up = True  # a new sensors process, after the broker came back
            second = SensorRunner(down, DEFAULT_DEVICES, rate=20.0, spool=Spool(spool.path))
            await second.run(duration=0.1)
            return await inner.pull(10_000, timeout=0.1)

    messages = asyncio.run(scenario())
    assert not spool.path.exists()
    stamps = [decode(m.data).ts for m in messages]
    assert len(stamps) >= 3 * 5
    assert stamps == sorted(stamps)


@pytest.mark.parametrize("count", [1, 3, 1000])
def test_fleet_sizes(count: int) -> None:
    devices = fleet(count, seed=9)
    assert len(devices) == count
    assert devices[: min(count, 3)] == list(DEFAULT_DEVICES[: min(count, 3)])
