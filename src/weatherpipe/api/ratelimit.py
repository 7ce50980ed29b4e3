"""Token buckets per device: each reading costs one token; a device refills at `rate` a
second up to `burst`. One process's buckets: N API processes let a device N times the rate."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping

# Buckets of devices idle this long are full again anyway: forget them (bounded memory).
FORGET_SECONDS = 600.0


class RateLimiter:
    def __init__(
        self, rate: float, burst: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.rate = rate
        self.burst = burst
        self.clock = clock
        self._buckets: dict[str, tuple[float, float]] = {}  # device -> (tokens, when)
        self._swept = clock()

    def _level(self, device: str, now: float) -> float:
        tokens, when = self._buckets.get(device, (self.burst, now))
        return min(self.burst, tokens + (now - when) * self.rate)

    def take(self, costs: Mapping[str, int]) -> float:
        """Take each device's cost; 0.0 if all could pay (and did), else the seconds until
        the poorest could (and nothing is taken)."""
        now = self.clock()
        self._sweep(now)
        levels = {device: self._level(device, now) for device in costs}
        wait = 0.0
        for device, cost in costs.items():
            if cost > self.burst:
                return float("inf")  # never: the batch is bigger than the bucket
            if levels[device] < cost:
                wait = max(wait, (cost - levels[device]) / self.rate)
        if wait:
            return wait
        for device, cost in costs.items():
            self._buckets[device] = (levels[device] - cost, now)
        return 0.0

    def _sweep(self, now: float) -> None:
        if now - self._swept < FORGET_SECONDS:
            return
        self._buckets = {
            d: (t, w) for d, (t, w) in self._buckets.items() if now - w < FORGET_SECONDS
        }
        self._swept = now
