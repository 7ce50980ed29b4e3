"""Labelled anomalies: where they go in a stream, what they do to the readings, their windows."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from benchmarks.corpus.sets import LENGTH_S, PlannedFault

GRACE_S = 60.0  # a window ends this long after the anomaly's true end
SPACING_S = 900.0  # quiet time between one window's end and the next onset
WARM_S = 300.0  # no anomaly in a stream's first 5 minutes
EARLY_S = (300.0, 900.0)  # where an "early" stream's first anomaly starts
SPIKE_FLOOR_C = 1.5
# A spike is at least this many *local* noise widths, above any normal outlier (sensor.NOISE_CLIP).
SPIKE_FLOOR_SIGMA = 8.0
DRIFT_MIN_RAMP_S = 600.0
SHIFT_FLOOR_C = 0.3
# On slow devices a shift, drift, stuck spell or noise burst spans at least this many readings,
# and its longest is at least STRETCH times its shortest.
MIN_READINGS = 8
STRETCH = 4.0

RANGE_S = (2.0, 120.0)  # an error code held over several readings

# Error codes real sensors emit: DS18B20 power-on 85.0 and disconnected -127.0, others.
RANGE_CODES = {
    0.1: (85.0, -127.0, 150.0, -60.0, -40.0),
    0.0625: (85.0, -127.0, 125.0, -55.0),
    0.01: (85.0, -127.0, 150.0, -60.0, -40.0, 327.67),
    0.25: (85.0, -127.0, 125.0, -128.0),
    0.5: (85.0, -127.0, 125.0, -128.0),
}
RANGE_MARGIN_C = 20.0  # a code is used only this far outside the site's plausible range


@dataclass(frozen=True)
class Timing:
    """The label convention's times for a device sampling every `period_s` seconds.

    At 1 Hz-class sampling these are the fixed minutes above; a slow device gets at least a
    few readings in each (a 5-minute device: 10 min grace, 20 min quiet start).
    """

    period_s: float

    @property
    def grace(self) -> float:
        return max(GRACE_S, 2 * self.period_s)

    @property
    def spacing(self) -> float:
        return max(SPACING_S, 6 * self.period_s)

    @property
    def warm(self) -> float:
        return max(WARM_S, 4 * self.period_s)

    @property
    def early(self) -> tuple[float, float]:
        return self.warm, max(EARLY_S[1], 12 * self.period_s)

    @property
    def lead_in(self) -> float:
        """How long before an onset no reading may be dropped."""
        return max(10.0, 2 * self.period_s)


def length_range(kind: str, period_s: float) -> tuple[float, float]:
    """Shortest and longest length of a level kind at this sampling period."""
    lo, hi = LENGTH_S[kind]
    lo_here = max(lo, MIN_READINGS * period_s)
    return lo_here, max(hi, STRETCH * lo_here)


def _stretched(length: float, kind: str, period_s: float) -> float:
    """Map a planned length from the kind's range onto its range at this period (log scale)."""
    lo, hi = LENGTH_S[kind]
    lo_here, hi_here = length_range(kind, period_s)
    if (lo_here, hi_here) == (lo, hi):
        return length
    u = math.log(length / lo) / math.log(hi / lo)
    return math.exp(math.log(lo_here) + u * math.log(hi_here / lo_here))


@dataclass
class Fault:
    """One anomaly as planned (continuous time) and, once applied, as labelled."""

    kind: str
    onset: float
    length: float
    readings: int = 0  # spike and fast dip: how many consecutive readings
    variant: str = ""
    held: bool = False
    detail: dict[str, object] = field(default_factory=dict)
    shortest: float = 0.0  # level kinds: how short placement may make it

    @property
    def floor(self) -> float:
        """How short placement may make it: spikes, dips and error codes keep their shape."""
        return self.shortest or self.length


def _log_uniform(rng: np.random.Generator, lo: float, hi: float) -> float:
    return math.exp(rng.uniform(math.log(lo), math.log(hi)))


def _draw(planned: PlannedFault, period_s: float, rng: np.random.Generator) -> Fault:
    """A fault of the planned kind with its length (its onset comes later)."""
    kind = planned.kind
    if kind in LENGTH_S:
        length = (
            _stretched(planned.length_s, kind, period_s)
            if planned.length_s
            else _log_uniform(rng, *length_range(kind, period_s))
        )
        fault = Fault(kind, 0.0, length, shortest=length_range(kind, period_s)[0])
        if kind == "drift":
            # Half the drifts are reset as soon as the ramp ends; the others hold their offset
            # for the last 20-60 % of the span before the reset.
            plateau = rng.random() < 0.5
            fault.variant = "plateau" if plateau else "reset"
            fault.detail["ramp_fraction"] = rng.uniform(0.4, 0.8) if plateau else 1.0
        return fault
    if kind == "spike" or (kind == "dip" and rng.random() < 0.5):
        n = int(rng.integers(1, 4))
        # The first reading may come up to a period after the onset, hence n + 1 periods.
        return Fault(kind, 0.0, (n + 1) * period_s, readings=n, variant="fast")
    if kind == "dip":
        # A slow device sees a draught over at least three readings of its recovery.
        scale = max(1.0, period_s / 20.0)
        fall, rise = rng.uniform(5.0, 30.0) * scale, rng.uniform(60.0, 240.0) * scale
        return Fault(kind, 0.0, fall + rise, variant="slow", detail={"fall_s": fall})
    if kind == "range" and rng.random() < 0.5:
        return Fault(kind, 0.0, 2 * period_s, readings=1)
    lo, hi = RANGE_S
    return Fault(kind, 0.0, _log_uniform(rng, max(lo, period_s), max(hi, 8 * period_s)))


def place(
    planned: tuple[PlannedFault, ...], duration_s: float, early: bool, period_s: float,
    rng: np.random.Generator,
) -> list[Fault]:
    """Lay the faults out in time: none overlap, windows 15 min apart, all inside the stream."""
    if not planned:
        return []
    faults = [_draw(p, period_s, rng) for p in planned]
    timing = Timing(period_s)
    n = len(faults)
    rest = n * timing.grace + (n - 1) * timing.spacing + period_s
    # An early start must still leave room for every fault at its kind's minimum length.
    latest = duration_s - rest - sum(f.floor for f in faults)
    first, last = timing.early
    if early:
        lead = rng.uniform(first, max(first, min(last, latest)))
    else:
        # Others start after the first quarter hour when the stream has room for it.
        lead = max(timing.warm, min(last, latest))
    fixed = lead + rest
    _fit_lengths(faults, duration_s - fixed)
    free = duration_s - fixed - sum(f.length for f in faults)
    # Share the slack between the gaps (and the lead, unless this stream starts early).
    parts = rng.dirichlet(np.ones(n + (0 if early else 1))) * free
    if not early:
        lead += parts[0]
        parts = parts[1:]
    t = lead
    for fault, slack in zip(faults, parts, strict=True):
        fault.onset = t
        t += fault.length + timing.grace + timing.spacing + slack
    faults[-1].held = planned[-1].held
    return faults


def _fit_lengths(faults: list[Fault], budget: float) -> None:
    """Shorten the longest faults (never below their kind's minimum) until they fit."""
    lengths = np.array([f.length for f in faults])
    if lengths.sum() <= budget:
        return
    floors = np.array([f.floor for f in faults])
    if floors.sum() > budget:
        raise ValueError("stream too short for its faults")
    lo, hi = 0.0, float(lengths.max())
    for _ in range(60):
        cap = 0.5 * (lo + hi)
        if np.maximum(floors, np.minimum(lengths, cap)).sum() > budget:
            hi = cap
        else:
            lo = cap
    for fault, length in zip(faults, np.maximum(floors, np.minimum(lengths, lo)), strict=True):
        fault.length = float(length)


def protected(
    faults: list[Fault], duration_s: float, period_s: float
) -> list[tuple[float, float]]:
    """Spans where no reading may be dropped: a little before each onset to its window's end."""
    timing = Timing(period_s)
    return [
        (f.onset - timing.lead_in, duration_s if f.held else f.onset + f.length + timing.grace)
        for f in faults
    ]


@dataclass
class Stream:
    """Readings after the faults, in the order the sensor reported them."""

    times: np.ndarray
    values: np.ndarray
    sigma: np.ndarray  # local noise standard deviation at each reading
    sigma_typical: float
    quantum: float
    plausible: tuple[float, float]


def span(fault: Fault, times: np.ndarray) -> tuple[int, int]:
    """First and last affected reading."""
    first = int(np.searchsorted(times, fault.onset))
    if fault.held:
        return first, len(times) - 1
    if fault.readings:
        return first, min(first + fault.readings - 1, len(times) - 1)
    last = int(np.searchsorted(times, fault.onset + fault.length, side="right")) - 1
    return first, max(first, last)


def add_faults(faults: list[Fault], stream: Stream, rng: np.random.Generator) -> None:
    """Faults that add to the signal before the sensor quantises it."""
    adders = {"spike": _spike, "dip": _dip, "shift": _shift, "drift": _drift, "noise": _noise}
    for fault in faults:
        if fault.kind in adders:
            first, last = span(fault, stream.times)
            adders[fault.kind](fault, stream, first, last, rng)


def overwrite_faults(faults: list[Fault], stream: Stream, rng: np.random.Generator) -> None:
    """Faults that replace the quantised reading: a stuck value, an error code."""
    for fault in faults:
        first, last = span(fault, stream.times)
        if fault.kind == "stuck":
            # The last good reading repeats exactly: no noise, no new quantisation.
            stream.values[first : last + 1] = stream.values[first - 1]
            fault.detail["value"] = float(stream.values[first - 1])
        elif fault.kind == "range":
            code = _range_code(stream.quantum, stream.plausible, rng)
            stream.values[first : last + 1] = code
            fault.detail["value"] = code


def _spike_size(stream: Stream, first: int, last: int, rng: np.random.Generator) -> float:
    """5-40 typical noise widths or 2-15 °C, never under 1.5 °C nor 8 local noise widths."""
    if rng.random() < 0.5:
        size = rng.uniform(5.0, 40.0) * stream.sigma_typical
    else:
        size = rng.uniform(2.0, 15.0)
    local = SPIKE_FLOOR_SIGMA * float(stream.sigma[first : last + 1].max())
    return max(size, SPIKE_FLOOR_C, local)


def _spike(fault: Fault, stream: Stream, first: int, last: int, rng: np.random.Generator) -> None:
    size = _spike_size(stream, first, last, rng)
    stream.values[first : last + 1] += size * rng.uniform(0.85, 1.0, size=last - first + 1)
    fault.detail["size_c"] = round(size, 3)


def _dip(fault: Fault, stream: Stream, first: int, last: int, rng: np.random.Generator) -> None:
    if fault.variant == "fast":
        size = _spike_size(stream, first, last, rng)
        stream.values[first : last + 1] -= size * rng.uniform(0.85, 1.0, size=last - first + 1)
        fault.detail["size_c"] = round(size, 3)
        return
    # A draught: down to the full depth in 5-30 s, back over 1-4 min.
    depth = rng.uniform(2.0, 6.0)
    fall = float(fault.detail["fall_s"])  # type: ignore[arg-type]
    rise = fault.length - fall
    local = stream.times[first : last + 1] - fault.onset
    shape = np.where(local < fall, local / fall, 1.0 - (local - fall) / rise)
    stream.values[first : last + 1] -= depth * np.clip(shape, 0.0, 1.0)
    fault.detail["size_c"] = round(depth, 3)


def _shift(fault: Fault, stream: Stream, first: int, last: int, rng: np.random.Generator) -> None:
    """A step of 1-5 typical noise widths, at least 0.3 °C and one quantum, up or down."""
    floor = max(SHIFT_FLOOR_C, stream.quantum)
    size = max(rng.uniform(1.0, 5.0) * stream.sigma_typical, floor) * rng.choice([-1.0, 1.0])
    stream.values[first : last + 1] += size
    fault.detail["size_c"] = round(float(size), 3)


def _drift(fault: Fault, stream: Stream, first: int, last: int, rng: np.random.Generator) -> None:
    """A ramp of 1.5-6 °C (bent by an exponent of 0.7-1.5), held or not, then reset at once.

    A drift held to the end of the stream keeps its offset from the ramp's end onwards.
    """
    total = rng.uniform(1.5, 6.0) * rng.choice([-1.0, 1.0])
    bend = rng.uniform(0.7, 1.5)
    fraction = float(fault.detail.pop("ramp_fraction"))  # type: ignore[arg-type]
    ramp = min(fault.length, max(DRIFT_MIN_RAMP_S, fraction * fault.length))
    progress = np.clip((stream.times[first : last + 1] - fault.onset) / ramp, 0.0, 1.0)
    stream.values[first : last + 1] += total * progress**bend
    fault.detail.update(size_c=round(float(total), 3), ramp_s=round(ramp, 1))


def _noise(fault: Fault, stream: Stream, first: int, last: int, rng: np.random.Generator) -> None:
    """Noise width times 4-15: add independent noise of sqrt(k^2 - 1) widths."""
    factor = rng.uniform(4.0, 15.0)
    extra = math.sqrt(factor**2 - 1.0) * stream.sigma[first : last + 1]
    stream.values[first : last + 1] += extra * rng.normal(size=last - first + 1)
    fault.detail["factor"] = round(factor, 2)


def _range_code(quantum: float, plausible: tuple[float, float], rng: np.random.Generator) -> float:
    lo, hi = plausible
    codes = [
        c for c in RANGE_CODES[quantum] if c < lo - RANGE_MARGIN_C or c > hi + RANGE_MARGIN_C
    ]
    return float(rng.choice(codes))


def windows(
    faults: list[Fault], times: np.ndarray, period_s: float
) -> list[tuple[float, float, str]]:
    """Label windows: first affected reading to last affected reading plus the grace, max(60 s,
    two periods), or to the stream's end.
    """
    grace = Timing(period_s).grace
    out = []
    for fault in faults:
        first, last = span(fault, times)
        end = times[-1] if fault.held else min(times[last] + grace, times[-1])
        out.append((float(times[first]), float(end), fault.kind))
    return out
