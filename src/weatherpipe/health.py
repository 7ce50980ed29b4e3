"""The pipeline's health as the dashboard's strip shows it: ingest rate, consumer lag, dead
letters, where detection stands. Read from what /metrics and `weatherpipe status` read (the
database's totals, the bus's lag, the detector's positions), sampled at most every few seconds
however many pages ask."""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections import deque
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, Protocol

from weatherpipe.bus.base import Bus
from weatherpipe.metrics import Metrics

# The ingest rate is the growth of the stored total over up to this many seconds of samples.
RATE_WINDOW = 60.0
LAG_TIMEOUT = 2.0


class HealthReads(Protocol):
    def totals(self) -> dict[str, int]: ...

    def pending_dead_letters(self) -> int: ...

    def detection_progress(self, detector: str) -> dict[str, Any]: ...

    def fleet_totals(self, detector: str, now: datetime) -> dict[str, int]: ...


class HealthSampler:
    """The newest sample of the pipeline's health and the fleet's totals (`{"health": ...,
    "fleet": ...}`), refreshed when older than `every` seconds. The ingest rate comes from
    successive samples of the database's stored total (what Prometheus's rate() does with
    weatherpipe_database_stored)."""

    def __init__(
        self,
        repo: HealthReads,
        detector: str,
        metrics: Metrics | None = None,
        bus: Bus | None = None,
        every: float = 2.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.repo = repo
        self.detector = detector
        self.metrics = metrics
        self.bus = bus
        self.every = every
        self.clock = clock
        self._stored: deque[tuple[float, int]] = deque()
        self._latest: dict[str, Any] | None = None
        self._taken = 0.0
        self._lock = threading.Lock()

    async def current(self) -> dict[str, Any]:
        """The sample, at most `every` seconds old."""
        if self._latest is not None and self.clock() - self._taken < self.every:
            return self._latest
        lag, note = await self._lag()
        return await asyncio.to_thread(self._sample, lag, note)

    async def _lag(self) -> tuple[int | None, str]:
        if self.bus is None:
            return None, "this API process has no bus to ask (the in-process bus of another)"
        lag = None
        with contextlib.suppress(TimeoutError):
            if self.metrics is not None:
                lag = await asyncio.wait_for(self.metrics.sample_lag(self.bus), LAG_TIMEOUT)
            else:
                lag = await asyncio.wait_for(self.bus.lag(), LAG_TIMEOUT)
        return lag, "" if lag is not None else "the bus does not report it"

    def _sample(self, lag: int | None, lag_note: str) -> dict[str, Any]:
        with self._lock:
            now = self.clock()
            if self._latest is not None and now - self._taken < self.every:
                return self._latest
            totals = self.repo.totals()
            detection = self.repo.detection_progress(self.detector)
            sampled = datetime.now(UTC)
            health = {
                "sampled_at": sampled,
                "ingest_rate": self._rate(now, totals["stored"]),
                "stored": totals["stored"],
                "anomalies": totals["anomalies"],
                "dead_letters": totals["dead_letters"],
                "dead_letters_pending": self.repo.pending_dead_letters(),
                "lag": lag,
                "lag_note": lag_note,
                "detection": {"detector": self.detector, **detection, **_behind(detection)},
            }
            fleet = self.repo.fleet_totals(self.detector, sampled)
            self._latest = {"health": health, "fleet": fleet}
            self._taken = now
            return self._latest

    def _rate(self, now: float, stored: int) -> float | None:
        """Readings stored per second over the samples of the last RATE_WINDOW seconds."""
        self._stored.append((now, stored))
        while len(self._stored) > 2 and now - self._stored[0][0] > RATE_WINDOW:
            self._stored.popleft()
        first_at, first = self._stored[0]
        if now - first_at < 0.5:
            return None
        return round(max(0, stored - first) / (now - first_at), 1)


def _behind(detection: dict[str, Any]) -> dict[str, Any]:
    """How far detection's newest position trails the newest reading stored, in seconds."""
    position, newest = detection["position"], detection["newest_reading"]
    if position is None or newest is None:
        return {"behind_seconds": None}
    return {"behind_seconds": max(0.0, round((newest - position).total_seconds(), 3))}
