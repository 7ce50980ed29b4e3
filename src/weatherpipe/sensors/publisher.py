"""The sensors' loop: sample the fleet, encode, publish, and spool what the bus refuses."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

import numpy as np

from weatherpipe.bus.base import Bus
from weatherpipe.errors import BusError
from weatherpipe.lifecycle import pause
from weatherpipe.reading import Reading, encode
from weatherpipe.sensors.model import Anomaly, Fleet
from weatherpipe.sensors.profiles import Device
from weatherpipe.sensors.spool import Item, Spool

log = logging.getLogger(__name__)
SPOOL_BATCH = 1000
RECONNECT_SECONDS = 1.0

Signer = Callable[[str, bytes], Mapping[str, str] | None]


@dataclass
class SensorStats:
    published: int = 0
    spooled: int = 0
    ticks: int = 0
    max_behind: float = 0.0
    truth: list[tuple[str, str, datetime, datetime]] = field(default_factory=list)


class SensorRunner:
    """Publishes one reading per device per tick, in real time or as a backfill."""

    def __init__(
        self,
        bus: Bus,
        devices: Sequence[Device],
        *,
        rate: float = 1.0,
        seed: int = 0,
        anomaly_rate: float = 4.0,
        spool: Spool | None = None,
        signer: Signer | None = None,
    ) -> None:
        self.bus = bus
        self.devices = list(devices)
        self.rate = rate
        self.spool = spool
        self.signer = signer
        self.stats = SensorStats()
        self.fleet = Fleet(
            self.devices, seed=seed, anomaly_rate=anomaly_rate, on_anomaly=self._truth
        )
        self._seq = np.zeros(len(self.devices), dtype=np.int64)
        self._last_connect = 0.0
        self._connecting: asyncio.Task[None] | None = None

    def _truth(self, device: Device, anomaly: Anomaly) -> None:
        self.stats.truth.append(
            (
                device.device_id,
                anomaly.kind,
                datetime.fromtimestamp(anomaly.start, UTC),
                datetime.fromtimestamp(anomaly.end, UTC),
            )
        )

    def take_truth(self) -> list[tuple[str, str, datetime, datetime]]:
        """The injected anomalies recorded since the last call (ground truth for scoring)."""
        truth, self.stats.truth = self.stats.truth, []
        return truth

    def _items(
        self, index: Sequence[int], times: Sequence[float], values: np.ndarray
    ) -> list[Item]:
        items: list[Item] = []
        for i, t, value in zip(index, times, values, strict=True):
            device = self.devices[i]
            self._seq[i] += 1
            reading = Reading(
                device.device_id,
                datetime.fromtimestamp(round(t, 3), UTC),
                float(value),
                device.latitude,
                device.longitude,
                int(self._seq[i]),
            )
            data = encode(reading)
            items.append((data, self.signer(device.device_id, data) if self.signer else None))
        return items

    async def send(self, items: list[Item]) -> None:
        """Publish `items` after anything spooled; on a bus error spool them instead."""
        if self.spool is not None and len(self.spool):
            self._reconnect()
            if not await self._drain_spool():
                self._to_spool(items)
                return
        try:
            await self.bus.publish_many(items)
            self.stats.published += len(items)
        except BusError as exc:
            if self.spool is None:
                raise
            log.warning("bus refused %d readings (%s); spooling them", len(items), exc)
            self._to_spool(items)

    def _reconnect(self) -> None:
        """Connect again in the background if the bus was never reached (a start during an
        outage), at most once a second: a refused connect must not hold up the ticks."""
        now = time.monotonic()
        if now - self._last_connect < RECONNECT_SECONDS:
            return
        if self._connecting is not None and not self._connecting.done():
            return
        self._last_connect = now
        self._connecting = asyncio.create_task(self._connect_quietly())

    async def _connect_quietly(self) -> None:
        try:
            await self.bus.connect()
        except BusError as exc:
            log.debug("bus still unreachable: %s", exc)

    def _to_spool(self, items: list[Item]) -> None:
        assert self.spool is not None
        self.spool.append(items)
        self.stats.spooled += len(items)

    async def _drain_spool(self) -> bool:
        assert self.spool is not None
        try:
            for batch in self.spool.batches(SPOOL_BATCH):
                await self.bus.publish_many(batch)
                self.stats.published += len(batch)
        except BusError as exc:
            log.info("bus still unavailable (%s); keeping the spool", exc)
            return False
        log.info("sent the spool %s", self.spool.path)
        self.spool.clear()
        return True

    async def run(
        self, duration: float | None = None, stop: asyncio.Event | None = None
    ) -> SensorStats:
        """Real time: every 1/rate seconds, one reading from each device."""
        t0 = time.time()
        n = len(self.devices)
        index = list(range(n))
        while stop is None or not stop.is_set():
            scheduled = t0 + self.stats.ticks / self.rate
            if duration is not None and scheduled - t0 >= duration:
                break
            delay = scheduled - time.time()
            if delay > 0:
                await pause(delay, stop)
                if stop is not None and stop.is_set():
                    break
            values = self.fleet.tick(scheduled)
            await self.send(self._items(index, [scheduled] * n, values))
            self.stats.ticks += 1
            self.stats.max_behind = max(self.stats.max_behind, time.time() - scheduled)
        return self.stats

    async def backfill(
        self,
        start: datetime,
        end: datetime,
        sink: Callable[[list[Item]], Awaitable[None]] | None = None,
        chunk_seconds: int = 600,
    ) -> SensorStats:
        """Every reading from `start` to `end` as fast as the sink takes them."""
        sink = sink or self.send
        step = 1.0 / self.rate
        t = start.timestamp()
        while t < end.timestamp():
            times = np.arange(t, min(t + chunk_seconds, end.timestamp()), step)
            for i in range(len(self.devices)):
                values = self.fleet.series(i, times)
                await sink(self._items([i] * len(times), list(times), values))
            t = float(times[-1]) + step
            self.stats.ticks += len(times)
        return self.stats
