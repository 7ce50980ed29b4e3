"""How each of vigil's tests turns a false-alarm rate into a line, and a statistic into a severity.

Every test's statistic has, on normal weather, an exponential tail: the rate of onsets above a
line h falls as ``exp(-b * h)``. So one number per test, the line that gives one false alarm a
day on a 1 Hz stream (`h1`), and the tail's slope (`b`) say where the line sits for any
sensitivity and any sampling rate:

    h = h1 + ln(readings_per_day / 86,400 * tests / false_alarms_per_day) / b

The sensitivity is shared evenly between the statistical tests. `h1` and `b` were measured on
the tuning corpus's normal time (benchmarks/detect_calibrate.py prints them); the stuck test's
statistic is a tail probability already (nats of surprise under the stream's own repeat rate),
so its slope is 1 by construction.
"""

from __future__ import annotations

import math
from typing import NamedTuple


class Tail(NamedTuple):
    """A test's measured tail: its line for 1 false alarm a day at 1 Hz, and the tail's slope."""

    h1: float
    b: float


# Measured on the tuning corpus's normal time (see benchmarks/detect_calibrate.py).
TAILS: dict[str, Tail] = {
    "spike": Tail(9.0, 0.6),  # |reading - rolling median| in residual scales
    "shift": Tail(14.0, 0.35),  # two-sided CUSUM of clipped, standardised prediction errors
    "drift": Tail(6.0, 0.8),  # |fast - slow mean| in its own long-run scales
    "stuck": Tail(14.0, 1.0),  # -ln P(a run this long) under the stream's repeat rate
    "noise": Tail(1.6, 3.0),  # ln(short / long scale of first differences)
}
TESTS = tuple(TAILS)
SECONDS_PER_DAY = 86_400.0

# Severity: how much rarer than the line the statistic is on normal weather.
MEDIUM_RARITY = math.log(10.0)  # ten times rarer than a false alarm
HIGH_RARITY = math.log(100.0)  # a hundred times rarer


def lines(false_alarms_per_day: float, seconds_per_reading: float) -> list[float]:
    """Each test's line (in TESTS order) for this sensitivity and sampling interval."""
    per_day = SECONDS_PER_DAY / max(seconds_per_reading, 1e-3)
    share = max(false_alarms_per_day, 1e-9) / len(TAILS)
    shift = math.log(per_day / SECONDS_PER_DAY / share)
    return [tail.h1 + shift / tail.b for tail in TAILS.values()]


def severity(test: int, statistic: float, line: float) -> str:
    """low / medium / high from how much rarer than its line the statistic is."""
    rarity = (statistic - line) * TAILS[TESTS[test]].b
    if rarity >= HIGH_RARITY:
        return "high"
    if rarity >= MEDIUM_RARITY:
        return "medium"
    return "low"
