"""How each of vigil's tests turns a false-alarm rate into a line, and a statistic into a severity.

Every test's statistic has a tail on normal weather: beyond a reference level `ref` (crossed
often enough to be counted on every device), the chance that a reading's statistic passes a
line h falls as ``p * exp(-b * (h - ref))``, where p is how often this device's statistic passes
`ref` (tracked per device, starting from the tuning corpus's `p`). So the line for a wanted rate
of false alarms is

    h = ref + ln(p * readings_per_day * tests / false_alarms_per_day) / b

and a device with heavier tails (it passes `ref` more often) gets a higher line by itself. The
sensitivity is shared evenly between the tests. `ref`, `p` and `b` were measured on the tuning
corpus's normal time (benchmarks/detect_calibrate.py prints them). The stuck test's statistic is
a tail probability already (nats of surprise under the stream's own repeat rate), so its `b` is
1 and `ref` is the margin for repeats that come in clusters.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import NamedTuple


class Tail(NamedTuple):
    """A test's tail on normal weather: a reference level, the chance a reading passes it
    (the prior for every device, which then learns its own), and the tail's slope beyond."""

    ref: float
    p: float
    b: float


# Measured on the tuning corpus's normal time (see benchmarks/detect_calibrate.py).
TAILS: dict[str, Tail] = {
    "spike": Tail(6.0, 8.1e-3, 0.6),  # |reading - rolling median| / its scale
    "shift": Tail(4.0, 3.1e-3, 2.0),  # the last minute off the trend before it / its scale
    "drift": Tail(9.0, 1.0e-2, 0.3),  # |fast - slow mean| / its long-run scale
    "stuck": Tail(4.0, 1.2e-2, 0.6),  # nats: -ln P(a run this long) at the stream's repeat rate
    "noise": Tail(0.5, 1.2e-2, 15.0),  # ln(short / long scale of first differences)
}
TESTS = tuple(TAILS)
SECONDS_PER_DAY = 86_400.0

# Severity: how much rarer than the line the statistic is on normal weather.
MEDIUM_RARITY = math.log(10.0)  # ten times rarer than a false alarm
HIGH_RARITY = math.log(100.0)  # a hundred times rarer


def priors() -> list[float]:
    """Each test's chance of passing its reference level, before a device shows its own."""
    return [tail.p for tail in TAILS.values()]


def lines(
    false_alarms_per_day: float, seconds_per_reading: float, passes: Sequence[float]
) -> list[float]:
    """Each test's line (in TESTS order) for this sensitivity, sampling interval and the
    device's chances `passes` of passing each reference level."""
    per_day = SECONDS_PER_DAY / max(seconds_per_reading, 1e-3)
    share = max(false_alarms_per_day, 1e-9) / len(TAILS)
    out = []
    for tail, p in zip(TAILS.values(), passes, strict=True):
        rate = max(p, 1e-12) * per_day / share  # passes of `ref` per false alarm allowed
        out.append(tail.ref + max(math.log(rate), 0.0) / tail.b)
    return out


def severity(test: int, statistic: float, line: float) -> str:
    """low / medium / high from how much rarer than its line the statistic is."""
    rarity = (statistic - line) * TAILS[TESTS[test]].b
    if rarity >= HIGH_RARITY:
        return "high"
    if rarity >= MEDIUM_RARITY:
        return "medium"
    return "low"
