"""Labeled 1 Hz temperature streams with six anomaly kinds, from physics unlike the simulator's.

The room is a first-order thermal mass (time constant `tau`) driven by an outdoor daily cycle, an
Ornstein-Uhlenbeck weather wander and an on/off heater with hysteresis; the sensor adds AR(1)
noise and quantises to its resolution. Anomalies are sensor or environment faults:

- spike: an electrical glitch, 1-3 readings far off (sometimes the DS18B20 power-on value 85.0 C)
- dip: a cold draught (door open) that pulls the reading down and lets it relax back
- flatline: the sensor freezes and repeats its last value for minutes
- drift: a calibration ramp of several degrees over minutes, then a reset
- level_shift: the sensor is moved or replaced, a lasting step
- noise_burst: electromagnetic interference multiplies the noise for minutes

Run it as a script to print the event-level precision, recall and F1 of a detector:
`python tests/detect/synthetic.py [DETECTOR] [STREAMS] [HOURS] [FIRST_SEED] [room|outdoor]`.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass

import numpy as np

KINDS = ("spike", "dip", "flatline", "drift", "level_shift", "noise_burst")
GRACE_SECONDS = 30.0  # a detector may answer a little after a fault ends (drift reset, dip tail)


@dataclass(frozen=True)
class Stream:
    """One labeled stream: epoch-second timestamps, readings, and (kind, start, end) windows."""

    ts: np.ndarray
    values: np.ndarray
    windows: list[tuple[str, float, float]]


def _environment(rng: np.random.Generator, n: int) -> np.ndarray:
    """Room temperature at 1 Hz: thermal mass driven by outdoors and a thermostat heater."""
    t = np.arange(n, dtype=float)
    phase = rng.uniform(0, 2 * np.pi)
    outdoor = rng.uniform(-5, 25) + rng.uniform(2, 8) * np.sin(2 * np.pi * t / 86_400 + phase)
    wander = np.zeros(n)
    shocks = rng.normal(0, 0.02, n)
    for i in range(1, n):  # Ornstein-Uhlenbeck weather: slow, mean-reverting
        wander[i] = wander[i - 1] * (1 - 1 / 7_200) + shocks[i]
    outdoor = outdoor + wander
    tau = rng.uniform(900, 3_600)
    setpoint, band = rng.uniform(19, 23), rng.uniform(0.2, 0.6)
    heat = rng.uniform(0.0, 1.5) * (outdoor.mean() < setpoint)  # degrees per minute, if any
    room = np.empty(n)
    # Start at the steady state the room settles to, as a sensor installed long ago would see.
    temp, on = (setpoint if heat else outdoor[0]), False
    for i in range(n):
        on = temp < setpoint - band or (on and temp < setpoint + band)
        temp += (outdoor[i] - temp) / tau + (heat / 60.0 if on else 0.0)
        room[i] = temp
    return room


def _outdoor(rng: np.random.Generator, n: int) -> np.ndarray:
    """Air temperature outdoors at 1 Hz: a daily cycle, cloud shadows and gusty turbulence."""
    t = np.arange(n, dtype=float)
    phase = rng.uniform(0, 2 * np.pi)
    daylight = np.clip(np.sin(2 * np.pi * t / 86_400 + phase), 0.0, None)
    base = rng.uniform(-10, 30) + rng.uniform(3, 10) * np.sin(2 * np.pi * t / 86_400 + phase - 0.6)
    # Clouds: a two-state Markov chain; sun on the sensor adds up to a few degrees, with lag.
    sunny = np.empty(n)
    state, stay = 1.0, rng.uniform(0.995, 0.9995)
    draws = rng.random(n)
    for i in range(n):
        if draws[i] > stay:
            state = 1.0 - state
        sunny[i] = state
    solar = np.empty(n)
    warm, lag = 0.0, rng.uniform(60, 300)
    boost = rng.uniform(0.5, 3.0)
    for i in range(n):
        warm += (boost * daylight[i] * sunny[i] - warm) / lag
        solar[i] = warm
    gust = rng.normal(0, 1, n)
    turbulence = np.empty(n)
    acc, rho = 0.0, rng.uniform(0.8, 0.98)
    for i in range(n):
        acc = rho * acc + gust[i] * np.sqrt(1 - rho**2)
        turbulence[i] = acc
    return base + solar + rng.uniform(0.05, 0.3) * turbulence * (0.3 + daylight)


def _sensor(rng: np.random.Generator, truth: np.ndarray) -> tuple[np.ndarray, float, float]:
    """Add AR(1) sensor noise and quantise; returns readings, noise sd and resolution."""
    sd = rng.uniform(0.02, 0.15)
    rho = rng.uniform(0.0, 0.7)
    white = rng.normal(0, sd * np.sqrt(1 - rho**2), len(truth))
    noise = np.empty(len(truth))
    acc = 0.0
    for i, w in enumerate(white):
        acc = rho * acc + w
        noise[i] = acc
    resolution = float(rng.choice([0.01, 0.0625, 0.1]))
    return truth + noise, sd, resolution


def _inject(
    rng: np.random.Generator, kind: str, x: np.ndarray, at: int, sd: float
) -> tuple[int, int]:
    """Apply one fault to readings `x` in place from row `at`; return its first and last rows."""
    n = len(x)
    if kind == "spike":
        width = int(rng.integers(1, 4))
        if rng.random() < 0.3:
            x[at : at + width] = 85.0
        else:
            x[at : at + width] += rng.choice([-1, 1]) * rng.uniform(3, 10)
        return at, at + width - 1
    if kind == "dip":
        depth, fall, relax = rng.uniform(1.5, 5), int(rng.integers(5, 30)), rng.uniform(60, 240)
        k = np.arange(n - at, dtype=float)
        shape = np.where(k < fall, k / fall, np.exp(-(k - fall) / relax))
        x[at:] -= depth * shape
        return at, at + fall + int(relax)
    if kind == "flatline":
        width = int(rng.integers(300, 1_200))
        x[at : at + width] = x[at - 1]
        return at, at + width - 1
    if kind == "drift":
        width = int(rng.integers(300, 1_200))
        x[at : at + width] += rng.choice([-1, 1]) * rng.uniform(2, 5) * np.arange(width) / width
        return at, at + width - 1
    if kind == "level_shift":
        x[at:] += rng.choice([-1, 1]) * rng.uniform(1, 4)
        return at, at + 60
    width = int(rng.integers(60, 300))  # noise_burst
    x[at : at + width] += rng.normal(0, sd * rng.uniform(6, 20), width)
    return at, at + width - 1


def make_stream(
    seed: int, hours: float = 6.0, kinds: tuple[str, ...] = KINDS, physics: str = "room"
) -> Stream:
    """A stream with each of `kinds` once, in random order, spaced evenly after a quiet start.

    `physics` is "room" (thermal mass, thermostat) or "outdoor" (sun, clouds, turbulence).
    """
    rng = np.random.default_rng(seed)
    n = int(hours * 3600)
    start = 1_700_000_000.0 + float(rng.integers(0, 10**7))
    truth = _outdoor(rng, n) if physics == "outdoor" else _environment(rng, n)
    x, sd, resolution = _sensor(rng, truth)
    order = list(rng.permutation(kinds))
    slot = (n - 2_700) // max(len(order), 1)
    windows = []
    for k, kind in enumerate(order):
        at = 2_700 + k * slot + int(rng.integers(0, slot // 3))
        first, last = _inject(rng, str(kind), x, at, sd)
        windows.append((str(kind), start + first, start + last + GRACE_SECONDS))
    x = np.round(x / resolution) * resolution
    return Stream(start + np.arange(n, dtype=float), x, windows)


def main(argv: list[str]) -> None:
    """Print event-level scores of a detector on freshly generated streams, overall and by kind."""
    from weatherpipe.detect import create_detector
    from weatherpipe.detect.scoring import EventCounts, event_counts

    name = argv[0] if argv else "default"
    count = int(argv[1]) if len(argv) > 1 else 20
    hours = float(argv[2]) if len(argv) > 2 else 12.0
    first_seed = int(argv[3]) if len(argv) > 3 else 5000
    physics = argv[4] if len(argv) > 4 else "room"
    total = EventCounts(0, 0, 0)
    missed: dict[str, int] = dict.fromkeys(KINDS, 0)
    for seed in range(first_seed, first_seed + count):
        s = make_stream(seed, hours=hours, physics=physics)
        verdicts = create_detector(name).process_many(s.ts.tolist(), s.values.tolist())
        onsets = [float(t) for t, v in zip(s.ts, verdicts, strict=True) if v.is_anomaly]
        total += event_counts([(a, b) for _, a, b in s.windows], onsets)
        for kind, a, b in s.windows:
            missed[kind] += not any(a <= t <= b for t in onsets)
    print(f"{name}: {count} {physics} streams of {hours:g} h (seeds {first_seed}..), 6 faults each")
    print(
        f"precision {total.precision:.3f} recall {total.recall:.3f} F1 {total.f1:.3f} "
        f"(TP {total.true_positives}, FN {total.false_negatives}, FP {total.false_positives})"
    )
    print("missed by kind:", missed)


if __name__ == "__main__":
    main(sys.argv[1:])
