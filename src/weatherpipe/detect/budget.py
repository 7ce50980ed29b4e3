"""Per-device exceedance-rate calibration of vigil's lines: the false-alarm budget, enforced.

calibration.py extrapolates each test's line from the tail the tuning corpus (and the device's
first readings) showed; on a heavy-tailed stream that extrapolation is too low and the test
fires more often than the setting allows. So each test's line on each device also carries an
offset, in nats (the log of how much rarer the line is made):

- every onset the test raises on this device adds STEP nats (its tail would pass the line a
  quarter as often; ln 4 chosen on the tuning set among ln 1.3, 2, 3, 4, 10);
- every day of the device's own time takes away STEP x its share of `false_alarms_per_day`.

This is a stochastic-approximation quantile tracker in the device's time: the offset stops
moving where the device's own onsets of that test come at its share of the budget (onsets per
day = share), whatever the shape of its tail and however fast it samples. The offset never goes
below 0, so the extrapolated line is a floor (a device that has shown nothing keeps the fixed
lines: warm-up is unchanged), and never above CAP nats (a device with many real faults stays
watched; ln 1e6 does not bind on the tuning set, ln 1e3 was too low for Student-t noise).
A raised line comes down only slowly: STEP nats take 1 / share days.
"""

from __future__ import annotations

import math

STEP = math.log(4.0)  # nats an onset raises its test's line by: its tail passes a quarter as often
CAP = math.log(1e6)  # a line is made at most a million times rarer than extrapolated
TESTS = 5  # vigil's statistical tests share the budget evenly (as in calibration.lines)
SECONDS_PER_DAY = 86_400.0


def fresh() -> list[float]:
    """No offsets: a device that has raised nothing keeps the extrapolated lines."""
    return [0.0] * TESTS


def raised(offsets: list[float], test: int) -> list[float]:
    """The offsets after `test` raised an onset on this device."""
    out = list(offsets)
    out[test] = min(out[test] + STEP, CAP)
    return out


def lowered(offsets: list[float], seconds: float, false_alarms_per_day: float) -> list[float]:
    """The offsets after `seconds` of the device's time without changes: each comes down by
    STEP for every onset its test was allowed in that time."""
    allowed = max(seconds, 0.0) / SECONDS_PER_DAY * false_alarms_per_day / TESTS
    return [max(o - STEP * allowed, 0.0) for o in offsets]
