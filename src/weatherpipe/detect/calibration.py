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
    """A test's tail on normal weather: the chances a reading passes a reference level and a
    second, rarer one (the prior for every device, which then learns its own), and the slope
    of the tail beyond, fitted on the tuning corpus. A device whose own two chances say its tail
    is heavier gets that slope instead (never a lighter one, never under `flattest` of it)."""

    ref: float
    p: float
    ref2: float
    p2: float
    b: float
    flattest: float


# Measured on the tuning corpus's normal time (see benchmarks/detect_calibrate.py).
TAILS: dict[str, Tail] = {
    "spike": Tail(6.0, 3.3e-3, 10.0, 1.0e-4, 0.8, 0.25),  # |reading - rolling median| / its scale
    "shift": Tail(4.0, 2.7e-3, 7.0, 3.1e-5, 2.0, 1.0),  # the last readings off the trend / scale
    "drift": Tail(9.0, 8.6e-3, 18.0, 2.8e-3, 0.3, 0.5),  # |fast - slow mean| / its long-run scale
    "stuck": Tail(4.0, 1.3e-2, 8.0, 1.1e-3, 0.6, 0.5),  # nats: -ln P(a run this long), repeat rate
    "noise": Tail(0.5, 4.7e-3, 0.7, 1.1e-4, 15.0, 0.5),  # ln(short / long scale of steps)
}
TESTS = tuple(TAILS)
SECONDS_PER_DAY = 86_400.0

# Severity: how much rarer than the line the statistic is on normal weather.
MEDIUM_RARITY = math.log(10.0)  # ten times rarer than a false alarm
HIGH_RARITY = math.log(100.0)  # a hundred times rarer


def priors() -> list[float]:
    """Each test's chances of passing its two reference levels (p, p2 per test, in order),
    before a device shows its own."""
    return [p for tail in TAILS.values() for p in (tail.p, tail.p2)]


def slope(tail: Tail, p: float, p2: float) -> float:
    """The tail's slope for a device that passes the reference levels with chances p, p2."""
    own = math.log(max(p, 1e-12) / max(p2, 1e-12)) / (tail.ref2 - tail.ref)
    return min(max(own, tail.flattest * tail.b), tail.b)


def lines(
    false_alarms_per_day: float,
    seconds_per_reading: float,
    passes: Sequence[float],
    offsets: Sequence[float] = (0.0,) * len(TAILS),
) -> list[float]:
    """Each test's line (in TESTS order) for this sensitivity, sampling interval, the device's
    chances `passes` of passing each reference level (laid out as `priors`) and the device's
    own raises `offsets` in nats (budget.py: where its onsets outran the extrapolation)."""
    # Readings per day of the stream's own time: a 5-minute stream has 288, so its lines are
    # extrapolated lower than at 1 Hz; budget.py raises them where the device's tail is heavier.
    per_day = SECONDS_PER_DAY / max(seconds_per_reading, 1e-3)
    share = max(false_alarms_per_day, 1e-9) / len(TAILS)
    out = []
    for k, tail in enumerate(TAILS.values()):
        p, p2 = passes[2 * k], passes[2 * k + 1]
        rate = max(p, 1e-12) * per_day / share  # passes of `ref` per false alarm allowed
        out.append(tail.ref + (max(math.log(rate), 0.0) + offsets[k]) / slope(tail, p, p2))
    return out


def severity(test: int, statistic: float, line: float, passes: Sequence[float]) -> str:
    """low / medium / high from how much rarer than its line the statistic is."""
    tail = TAILS[TESTS[test]]
    rarity = (statistic - line) * slope(tail, passes[2 * test], passes[2 * test + 1])
    if rarity >= HIGH_RARITY:
        return "high"
    if rarity >= MEDIUM_RARITY:
        return "medium"
    return "low"
