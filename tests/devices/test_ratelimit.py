"""The per-device token buckets behind 429: each reading costs one token, a device refills at
`rate` a second up to `burst`, a request is taken whole or not at all, and the wait it is told
is when its poorest device could pay. A fake clock drives them: no sleeps."""

from __future__ import annotations

import math

from weatherpipe.api.ratelimit import FORGET_SECONDS, RateLimiter


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_device_gets_its_burst_then_its_rate() -> None:
    clock = Clock()
    limiter = RateLimiter(rate=10, burst=100, clock=clock)
    assert limiter.take({"a": 100}) == 0.0
    assert limiter.take({"a": 1}) == 0.1  # one token comes back in 1/10 s
    clock.now += 0.1
    assert limiter.take({"a": 1}) == 0.0
    assert math.isclose(limiter.take({"a": 5}), 0.5)
    clock.now += 100.0  # idle: full again, never more than the burst
    assert limiter.take({"a": 100}) == 0.0
    assert limiter.take({"a": 1}) > 0


def test_devices_have_buckets_of_their_own() -> None:
    limiter = RateLimiter(rate=1, burst=3, clock=Clock())
    assert limiter.take({"a": 3}) == 0.0
    assert limiter.take({"b": 3}) == 0.0  # a gateway posting for another device
    assert limiter.take({"a": 1}) == 1.0


def test_a_request_is_taken_whole_or_not_at_all() -> None:
    """A batch for two devices, one of them out of tokens: the other pays nothing either."""
    limiter = RateLimiter(rate=2, burst=4, clock=Clock())
    assert limiter.take({"a": 4}) == 0.0
    assert limiter.take({"a": 2, "b": 4}) == 1.0  # a needs 2 tokens: 1 s at 2/s
    assert limiter.take({"b": 4}) == 0.0  # b's tokens were not spent by the refused request


def test_a_batch_bigger_than_the_burst_can_never_pass() -> None:
    limiter = RateLimiter(rate=10, burst=100, clock=Clock())
    assert limiter.take({"a": 101}) == math.inf
    assert limiter.take({"a": 100}) == 0.0  # and it took nothing


def test_idle_devices_are_forgotten() -> None:
    clock = Clock()
    limiter = RateLimiter(rate=1, burst=10, clock=clock)
    for n in range(50):
        limiter.take({f"d{n}": 1})
    clock.now += FORGET_SECONDS + 1
    limiter.take({"fresh": 1})
    assert set(limiter._buckets) == {"fresh"}
