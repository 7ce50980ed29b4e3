"""Normal (never labelled) temperature physics: climates, diurnal cycle, fronts, showers, sun.

Everything here is computed on a coarse 5 s grid and interpolated onto the reading times: the
fastest normal change (a cloud passing, over one minute or more) spans a dozen grid points.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

GRID_S = 5.0
DAY_S = 86_400.0


@dataclass(frozen=True)
class Climate:
    """Parameters of one climate; ranges are (low, high) drawn per stream."""

    name: str
    annual_mean: float
    seasonal_amp: float  # half the summer-winter difference of daily means
    diurnal_range: tuple[float, float]  # daily max minus daily min on a clear day
    max_hour: tuple[float, float]  # local solar hour of the daily maximum
    day_length_swing_h: float  # how much sunrise moves between solstice and equinox
    cloudy_day: tuple[float, float]  # per-day factor on the diurnal range
    synoptic_sd: float
    synoptic_tau_h: tuple[float, float]
    fronts_per_day: float
    front_size: tuple[float, float]
    showers_per_day: float
    afternoon_showers: bool  # convective downpours cluster in the early afternoon
    sunny_fraction: float
    cloud_cycle_min: tuple[float, float]  # mean sunny+cloudy period of the cloud field
    utc_offset_h: tuple[int, int]
    plausible: tuple[float, float]  # readings outside this are impossible for the site
    sea_breeze: bool = False  # a coast: most days cool by 2-5 °C within minutes, late morning


CLIMATES = {
    c.name: c
    for c in (
        Climate("continental", 9.0, 11.0, (8.0, 14.0), (14.0, 16.0), 1.5, (0.5, 1.1),
                2.5, (12.0, 36.0), 0.5, (2.0, 8.0), 0.7, False, 0.5, (20.0, 60.0),
                (1, 3), (-35.0, 40.0)),
        Climate("maritime", 11.0, 5.0, (4.0, 8.0), (13.5, 15.0), 1.5, (0.5, 1.1),
                1.5, (8.0, 24.0), 0.8, (2.0, 6.0), 1.5, False, 0.4, (15.0, 45.0),
                (0, 1), (-15.0, 35.0)),
        Climate("tropical", 27.0, 1.5, (6.0, 9.0), (13.0, 14.5), 0.3, (0.7, 1.05),
                0.7, (12.0, 36.0), 0.1, (2.0, 4.0), 1.5, True, 0.5, (20.0, 60.0),
                (7, 8), (15.0, 40.0)),
        Climate("desert", 28.0, 9.0, (20.0, 25.0), (14.5, 16.0), 1.0, (0.9, 1.05),
                1.5, (24.0, 48.0), 0.15, (2.0, 6.0), 0.03, False, 0.95, (90.0, 240.0),
                (3, 4), (-5.0, 55.0)),
        Climate("alpine", -6.0, 8.0, (3.0, 8.0), (13.0, 15.0), 2.0, (0.4, 1.1),
                3.0, (6.0, 24.0), 1.0, (4.0, 8.0), 0.6, False, 0.5, (15.0, 45.0),
                (1, 2), (-45.0, 25.0)),
        # tuning2: long winter nights (a 3 h day), strong fronts, well below zero.
        Climate("subarctic", -2.0, 15.0, (3.0, 10.0), (13.5, 15.0), 4.5, (0.4, 1.1),
                4.0, (12.0, 48.0), 0.8, (4.0, 12.0), 0.4, False, 0.4, (20.0, 90.0),
                (2, 3), (-60.0, 40.0)),
        Climate("mediterranean", 17.0, 7.0, (6.0, 11.0), (12.5, 14.0), 1.3, (0.75, 1.05),
                1.2, (24.0, 72.0), 0.15, (2.0, 6.0), 0.2, False, 0.8, (60.0, 180.0),
                (1, 2), (-8.0, 48.0), sea_breeze=True),
        # The weather outside a greenhouse; greenhouse.py turns it into the air inside.
        Climate("greenhouse", 10.0, 9.0, (6.0, 12.0), (14.0, 15.5), 1.8, (0.5, 1.1),
                2.0, (12.0, 36.0), 0.5, (2.0, 7.0), 0.8, False, 0.5, (20.0, 60.0),
                (0, 1), (-15.0, 60.0)),
    )
}

INDOOR_PLAUSIBLE = (5.0, 40.0)


@dataclass(frozen=True)
class Clock:
    """Where a stream sits in the calendar: start as local solar time and day of year."""

    start_local_s: float  # seconds since local midnight of the first day
    start_doy: float
    day_length_swing_h: float

    def hour(self, t: np.ndarray) -> np.ndarray:
        return ((self.start_local_s + t) / 3600.0) % 24.0

    def day(self, t: np.ndarray) -> np.ndarray:
        return np.floor((self.start_local_s + t) / DAY_S).astype(int)

    def doy(self, t: np.ndarray) -> np.ndarray:
        return self.start_doy + (self.start_local_s + t) / DAY_S

    def sun_hours(self, t: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Sunrise and sunset hours: longer days around the June solstice (northern sites)."""
        summer = np.cos(2 * math.pi * (self.doy(t) - 172.0) / 365.25)
        swing = self.day_length_swing_h * summer
        return 6.0 - swing, 18.0 + swing

    def solar(self, t: np.ndarray) -> np.ndarray:
        """0 at night, rising to 1 at solar noon: drives sun heating and daytime turbulence."""
        rise, set_ = self.sun_hours(t)
        phase = (self.hour(t) - rise) / (set_ - rise)
        return np.where((phase > 0) & (phase < 1), np.sin(math.pi * np.clip(phase, 0, 1)), 0.0)


def grid(duration_s: float) -> np.ndarray:
    return np.arange(0.0, duration_s + 2 * GRID_S, GRID_S)


def outdoor(
    climate: Climate, clock: Clock, duration_s: float, in_sun: bool, rng: np.random.Generator
) -> tuple[np.ndarray, dict[str, object]]:
    """The true air (or sensor-housing) temperature on the grid, and what was drawn."""
    tau = grid(duration_s)
    diurnal_range = rng.uniform(*climate.diurnal_range)
    max_hour = rng.uniform(*climate.max_hour)
    season = climate.annual_mean - climate.seasonal_amp * np.cos(
        2 * math.pi * (clock.doy(tau) - 20.0) / 365.25
    )
    temp = season + _diurnal(climate, clock, tau, diurnal_range, max_hour, rng)
    temp += _ornstein_uhlenbeck(tau, climate.synoptic_sd, climate.synoptic_tau_h, rng)
    n_fronts, fronts = _fronts(climate, tau, rng)
    n_showers, showers = _showers(climate, clock, tau, rng)
    temp += fronts + showers
    drawn: dict[str, object] = {
        "diurnal_range_c": round(diurnal_range, 2),
        "max_hour_local": round(max_hour, 2),
        "fronts": n_fronts,
        "showers": n_showers,
    }
    if climate.sea_breeze:
        drawn["sea_breezes"], breezes = _sea_breezes(clock, tau, rng)
        temp += breezes
    drawn["in_sun"] = in_sun
    if in_sun:
        sun_amp = rng.uniform(0.5, 3.0)
        temp += sun_amp * sunshine(climate, tau, rng) * clock.solar(tau)
        drawn["sun_heating_c"] = round(sun_amp, 2)
    return temp, drawn


def _diurnal(
    climate: Climate,
    clock: Clock,
    tau: np.ndarray,
    diurnal_range: float,
    max_hour: float,
    rng: np.random.Generator,
) -> np.ndarray:
    """Minimum at sunrise, maximum mid-afternoon; cloudier days get a smaller range."""
    days = clock.day(tau)
    factors = rng.uniform(*climate.cloudy_day, size=int(days.max()) + 2)
    # Interpolate the per-day factor between local noons so the range never jumps at midnight.
    day_pos = (clock.start_local_s + tau) / DAY_S - 0.5
    factor = np.interp(day_pos, np.arange(len(factors)), factors)
    rise, _ = clock.sun_hours(tau)
    return 0.5 * diurnal_range * factor * diurnal_shape(clock.hour(tau), rise, max_hour)


def diurnal_shape(hour: np.ndarray, rise: np.ndarray, max_hour: float) -> np.ndarray:
    """-1 at sunrise, +1 at max_hour: a half-cosine up by day, a longer one down by night."""
    up = max_hour - rise
    since_rise = (hour - rise) % 24.0
    rising = since_rise < up
    down_phase = (since_rise - up) / (24.0 - up)
    return np.where(
        rising, -np.cos(math.pi * since_rise / up), np.cos(math.pi * down_phase)
    )


def _ornstein_uhlenbeck(
    tau: np.ndarray, sd: float, tau_h: tuple[float, float], rng: np.random.Generator
) -> np.ndarray:
    """Synoptic wander: mean-reverting with an hours-long time constant, on a 60 s grid."""
    step = 60.0
    coarse = np.arange(0.0, tau[-1] + step, step)
    keep = math.exp(-step / (rng.uniform(*tau_h) * 3600.0))
    shocks = rng.normal(0.0, sd * math.sqrt(1 - keep**2), size=len(coarse))
    x = np.empty(len(coarse))
    x[0] = rng.normal(0.0, sd)
    for i in range(1, len(coarse)):
        x[i] = keep * x[i - 1] + shocks[i]
    return np.interp(tau, coarse, x)


def _smoothstep(x: np.ndarray) -> np.ndarray:
    x = np.clip(x, 0.0, 1.0)
    return x * x * (3.0 - 2.0 * x)


def _fronts(
    climate: Climate, tau: np.ndarray, rng: np.random.Generator
) -> tuple[int, np.ndarray]:
    """Passing fronts: 2-8 °C over 10-60 min, then fading over a day or so.

    Fronts from up to two days before the start still shape the level the stream begins at.
    """
    lead = 2 * DAY_S
    n = rng.poisson(climate.fronts_per_day * (tau[-1] + lead) / DAY_S)
    out = np.zeros(len(tau))
    inside = 0
    for _ in range(n):
        t0 = rng.uniform(-lead, tau[-1])
        inside += t0 >= 0.0
        size = rng.uniform(*climate.front_size) * (-1.0 if rng.random() < 0.65 else 1.0)
        width = rng.uniform(600.0, 3600.0)
        fade = rng.uniform(12.0, 36.0) * 3600.0
        after = np.maximum(tau - t0 - width, 0.0)
        out += size * _smoothstep((tau - t0) / width) * np.exp(-after / fade)
    return int(inside), out


def _showers(
    climate: Climate, clock: Clock, tau: np.ndarray, rng: np.random.Generator
) -> tuple[int, np.ndarray]:
    """Showers: 1-4 °C cooler within 2-10 min, recovering over 30-90 min."""
    starts = _shower_starts(climate, clock, float(tau[-1]), rng)
    out = np.zeros(len(tau))
    for t0 in starts:
        drop = rng.uniform(1.0, 4.0)
        fall = rng.uniform(120.0, 600.0)
        rise = rng.uniform(1800.0, 5400.0)
        lo = np.searchsorted(tau, t0)
        hi = np.searchsorted(tau, t0 + fall + rise)
        local = tau[lo:hi] - t0
        shape = np.where(
            local < fall, _smoothstep(local / fall), 1.0 - _smoothstep((local - fall) / rise)
        )
        out[lo:hi] -= drop * shape
    return int(np.count_nonzero(starts >= 0.0)), out


def _sea_breezes(
    clock: Clock, tau: np.ndarray, rng: np.random.Generator
) -> tuple[int, np.ndarray]:
    """On most days (50-90 %) the sea breeze sets in between 10:30 and 13:00 local: 2-5 °C
    cooler within 5-20 min, held through the afternoon, fading from 16:00-18:30 over 1.5-3 h.
    """
    chance = rng.uniform(0.5, 0.9)
    out = np.zeros(len(tau))
    count = 0
    last_day = math.floor((clock.start_local_s + tau[-1]) / DAY_S)
    for day in range(last_day + 1):
        midnight = day * DAY_S - clock.start_local_s
        onset = midnight + rng.uniform(10.5, 13.0) * 3600.0
        drop, fall = rng.uniform(2.0, 5.0), rng.uniform(300.0, 1200.0)
        fade_at, fade = midnight + rng.uniform(16.0, 18.5) * 3600.0, rng.uniform(5400.0, 10_800.0)
        if rng.random() >= chance:
            continue
        lo, hi = np.searchsorted(tau, [onset, fade_at + fade])
        local = tau[lo:hi]
        shape = _smoothstep((local - onset) / fall) * (1.0 - _smoothstep((local - fade_at) / fade))
        out[lo:hi] -= drop * shape
        count += onset >= 0.0
    return count, out


def _shower_starts(
    climate: Climate, clock: Clock, end: float, rng: np.random.Generator
) -> np.ndarray:
    """Any time, or (convective climates) between 13:00 and 18:00 local.

    Starts run from 90 minutes before the first reading, so a stream may begin mid-shower.
    """
    lead = 5400.0
    if not climate.afternoon_showers:
        n = rng.poisson(climate.showers_per_day * (end + lead) / DAY_S)
        return np.sort(rng.uniform(-lead, end, size=n))
    afternoons = []
    first = math.floor((clock.start_local_s - lead) / DAY_S)
    for day in range(first, math.floor((clock.start_local_s + end) / DAY_S) + 1):
        begin = day * DAY_S + 13 * 3600.0 - clock.start_local_s
        lo, hi = max(begin, -lead), min(begin + 5 * 3600.0, end)
        if hi > lo:
            afternoons.append((lo, hi))
    total = sum(hi - lo for lo, hi in afternoons)
    n = rng.poisson(climate.showers_per_day * total / (5 * 3600.0))
    # Uniform over the afternoons joined end to end, then mapped back onto the clock.
    offsets = np.sort(rng.uniform(0.0, total, size=n))
    bounds = np.cumsum([0.0] + [hi - lo for lo, hi in afternoons])
    which = np.searchsorted(bounds, offsets, side="right") - 1
    lows = np.array([lo for lo, _ in afternoons] or [0.0])
    return lows[which] + offsets - bounds[which]


def sunshine(climate: Climate, tau: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """1 in sunshine, 0 under cloud; each change takes 1-5 min (the cloud's edge passing)."""
    cycle = rng.uniform(*climate.cloud_cycle_min) * 60.0
    sunny, cloudy = climate.sunny_fraction * cycle, (1 - climate.sunny_fraction) * cycle
    edges = [0.0]
    state = [bool(rng.random() < climate.sunny_fraction)]
    while edges[-1] < tau[-1]:
        edges.append(edges[-1] + rng.exponential(sunny if state[-1] else cloudy))
        state.append(not state[-1])
    raw = np.asarray(state, dtype=float)[np.searchsorted(edges, tau, side="right") - 1]
    width = max(1, int(rng.uniform(60.0, 300.0) / GRID_S))
    return _moving_average(raw, width)


def _moving_average(x: np.ndarray, width: int) -> np.ndarray:
    padded = np.concatenate([np.full(width, x[0]), x])
    sums = np.cumsum(padded)
    return (sums[width:] - sums[:-width]) / width


def indoor(
    clock: Clock, duration_s: float, rng: np.random.Generator
) -> tuple[np.ndarray, dict[str, object]]:
    """A room: thermostat sawtooth around a setpoint, optional night setback, slow wander."""
    tau = grid(duration_s)
    heating = bool(rng.random() < 0.7)
    setpoint = rng.uniform(19.0, 23.0) if heating else rng.uniform(23.0, 26.0)
    amplitude = rng.uniform(0.3, 1.0)
    period = rng.uniform(600.0, 2400.0)
    temp = _setpoint_schedule(clock, tau, setpoint, heating, rng)
    temp += _thermostat(tau, amplitude, period, heating, rng)
    temp += _ornstein_uhlenbeck(tau, 0.2, (2.0, 6.0), rng)
    temp += 0.3 * diurnal_shape(clock.hour(tau), clock.sun_hours(tau)[0], 16.0)
    return temp, {
        "mode": "heating" if heating else "cooling",
        "setpoint_c": round(setpoint, 2),
        "hysteresis_c": round(amplitude, 2),
        "cycle_s": round(period, 1),
    }


def _thermostat(
    tau: np.ndarray, amplitude: float, period: float, heating: bool, rng: np.random.Generator
) -> np.ndarray:
    """Hysteresis sawtooth: a fast climb while the heater runs, a slower exponential sag.

    Each cycle's length and height vary a little (±15 %, ±10 %), as real ones do.
    """
    n = int(tau[-1] / (0.85 * period)) + 3
    lengths = period * rng.uniform(0.85, 1.15, size=n)
    heights = amplitude * rng.uniform(0.9, 1.1, size=n)
    duty = rng.uniform(0.3, 0.6)
    starts = np.concatenate([[0.0], np.cumsum(lengths)]) - rng.uniform(0.0, period)
    cycle = np.searchsorted(starts, tau, side="right") - 1
    phase = (tau - starts[cycle]) / lengths[cycle]
    on = phase < duty
    climb = (1 - np.exp(-3 * phase / duty)) / (1 - math.exp(-3))
    sag = np.exp(-2.5 * (phase - duty) / (1 - duty))
    sag = (sag - math.exp(-2.5)) / (1 - math.exp(-2.5))
    wave = (np.where(on, climb, sag) - 0.5) * heights[cycle]
    return wave if heating else -wave


def _setpoint_schedule(
    clock: Clock, tau: np.ndarray, setpoint: float, heating: bool, rng: np.random.Generator
) -> np.ndarray:
    """Half the heated rooms set back 1-2.5 °C from 22:00 to 06:00 (a slow cool, a quick warm)."""
    level = np.full(len(tau), setpoint)
    if not heating or rng.random() < 0.5:
        return level
    setback = rng.uniform(1.0, 2.5)
    cool = rng.uniform(2700.0, 7200.0)
    warm = rng.uniform(1200.0, 2700.0)
    since_22 = ((clock.hour(tau) - 22.0) % 24.0) * 3600.0
    night = 8 * 3600.0
    down = _smoothstep(since_22 / cool)
    up = _smoothstep((since_22 - night) / warm)
    return level - setback * np.where(since_22 < night, down, 1.0 - up)
