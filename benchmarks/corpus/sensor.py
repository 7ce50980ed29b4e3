"""What the sensor adds to the true temperature: sampling times, noise, quantisation."""

from __future__ import annotations

import math

import numpy as np

from benchmarks.corpus.sets import Sampling

# Night-time noise standard deviation (°C) by resolution: finer sensors are also quieter.
BASE_SIGMA = {
    0.1: (0.04, 0.10), 0.0625: (0.03, 0.08), 0.01: (0.02, 0.06),
    0.25: (0.04, 0.12), 0.5: (0.05, 0.15),
}

# Normal noise never exceeds this many local standard deviations: a labelled spike is always
# larger (see faults.SPIKE_FLOOR_SIGMA), so heavy tails stay physics, not unlabelled spikes.
NOISE_CLIP = 6.0

Interval = tuple[float, float]


def sample_times(
    sampling: Sampling,
    duration_s: float,
    protected: list[Interval],
    rng: np.random.Generator,
) -> tuple[np.ndarray, dict[str, object]]:
    """Reading times in seconds from the first reading: jittered, with drops and gaps.

    Drops and gaps never touch a protected interval (an anomaly and its window), so every
    labelled anomaly has the readings that show it.
    """
    n = int(duration_s // sampling.period_s) + 1
    # Jitter stays under 0.4 of the period so readings never swap order.
    jitter = min(sampling.jitter_s, 0.4 * sampling.period_s)
    t = np.arange(n) * sampling.period_s + rng.uniform(-jitter, jitter, size=n)
    t[0] = 0.0
    t = np.minimum(t, duration_s)
    keep = rng.random(n) >= rng.uniform(*sampling.drop_rate)
    gaps = _gaps(sampling, duration_s, rng)
    for start, end in gaps:
        keep &= ~((t >= start) & (t < end))
    keep |= _inside(t, protected)
    keep[[0, -1]] = True
    times = np.unique(np.round(t[keep], 3))
    steps = np.diff(times)
    long_steps = steps[steps > 5 * sampling.period_s]
    return times, {
        "model": sampling.name,
        "period_s": sampling.period_s,
        "jitter_s": jitter,
        "gaps": len(long_steps),
        "offline_s": round(float(long_steps.sum()), 1),
        "bursty_gaps": sampling.bursty,
    }


def _gaps(sampling: Sampling, duration_s: float, rng: np.random.Generator) -> list[Interval]:
    """Offline spells, drawn log-uniformly in length; bursty ones come 2-5 close together."""
    lo, hi = (math.log(x) for x in sampling.gap_s)
    n = rng.poisson(sampling.gaps_per_day * duration_s / 86_400.0)
    gaps: list[Interval] = []
    for _ in range(n):
        start = rng.uniform(0.0, duration_s)
        burst = int(rng.integers(2, 6)) if sampling.bursty else 1
        for _ in range(burst):
            length = math.exp(rng.uniform(lo, hi))
            gaps.append((start, start + length))
            start += length + rng.uniform(30.0, 600.0)
    return gaps


def _inside(t: np.ndarray, intervals: list[Interval]) -> np.ndarray:
    mask = np.zeros(len(t), dtype=bool)
    for start, end in intervals:
        mask |= (t >= start) & (t <= end)
    return mask


def noise_sigma(
    quantum: float, activity: np.ndarray, indoor: bool, rng: np.random.Generator
) -> tuple[np.ndarray, dict[str, float]]:
    """Noise standard deviation at each reading: base by night, 1.5-3x by day (1.1-1.5x indoors).

    `activity` is 0 at night and 1 at solar noon: sun and turbulence by day outdoors,
    people and draughts indoors.
    """
    base = rng.uniform(*BASE_SIGMA[quantum])
    day_factor = rng.uniform(1.1, 1.5) if indoor else rng.uniform(1.5, 3.0)
    sigma = base * (1.0 + (day_factor - 1.0) * activity)
    return sigma, {
        "sigma_night_c": round(base, 4),
        "day_factor": round(day_factor, 3),
        "sigma_typical_c": round(float(np.median(sigma)), 4),
    }


def unit_noise(
    model: str, times: np.ndarray, rng: np.random.Generator
) -> tuple[np.ndarray, dict[str, float]]:
    """Unit-variance noise of the chosen model, one value per reading."""
    n = len(times)
    if model == "student_t":
        dof = int(rng.integers(3, 6))
        x = rng.standard_t(dof, size=n) / math.sqrt(dof / (dof - 2))
        return np.clip(x, -NOISE_CLIP, NOISE_CLIP), {"dof": dof}
    if model == "mixture":
        rate = rng.uniform(0.001, 0.005)
        x = rng.normal(size=n)
        outlier = rng.random(n) < rate
        x[outlier] = rng.uniform(4.0, 6.0, size=outlier.sum()) * rng.choice([-1, 1], outlier.sum())
        return x, {"outlier_rate": round(rate, 5)}
    if model in ("laplace_pink", "lag_laplace_walk"):
        # Laplace of unit variance (scale 1/sqrt 2); the slow part comes from `wander`.
        x = rng.laplace(0.0, 1.0 / math.sqrt(2.0), size=n)
        return np.clip(x, -NOISE_CLIP, NOISE_CLIP), {}
    if model == "ar1":
        # Correlation set per second, so 2 Hz and 0.5 Hz devices see the same physics.
        phi_1s = rng.uniform(0.5, 0.9)
        return _ar1(times, phi_1s, rng), {"phi_per_second": round(phi_1s, 3)}
    raise ValueError(f"unknown noise model {model!r}")


def _ar1(times: np.ndarray, phi_1s: float, rng: np.random.Generator) -> np.ndarray:
    """AR(1) with unit marginal variance on irregular times (phi ** dt per step)."""
    dt = np.diff(times, prepend=times[0])
    phi = phi_1s ** np.minimum(dt, 3600.0)
    shocks = rng.normal(size=len(times)) * np.sqrt(1.0 - phi**2)
    shocks[0] = rng.normal()
    x = np.empty(len(times))
    prev = 0.0
    # A plain loop: 1e5 readings take about 30 ms, and numpy has no recursive filter.
    for i, (p, e) in enumerate(zip(phi.tolist(), shocks.tolist(), strict=True)):
        prev = p * prev + e
        x[i] = prev
    return np.clip(x, -NOISE_CLIP, NOISE_CLIP)


def thermal_lag(
    model: str, on_grid: np.ndarray, grid_s: float, rng: np.random.Generator
) -> tuple[np.ndarray, dict[str, float]]:
    """What a sensor with thermal mass reads: a first-order low-pass of the true temperature.

    Applied on the weather's regular grid; models without lag return the truth untouched.
    """
    if model != "lag_laplace_walk":
        return on_grid, {}
    tau = rng.uniform(30.0, 300.0)
    keep = math.exp(-grid_s / tau)
    out = np.empty(len(on_grid))
    prev = float(on_grid[0])
    # A plain loop, as in _ar1: numpy has no recursive filter.
    for i, x in enumerate(on_grid.tolist()):
        prev = keep * prev + (1.0 - keep) * x
        out[i] = prev
    return out, {"lag_s": round(tau, 1)}


def wander(
    model: str, times: np.ndarray, rng: np.random.Generator
) -> tuple[np.ndarray, dict[str, float]]:
    """Slow electronic wander in °C (not scaled by the daily noise level), one per reading.

    1/f (pink) for `laplace_pink`, a random-walk-like mean-reverting wander with an hours-long
    time constant for `lag_laplace_walk`; nothing (and no draws) for the other models.
    """
    if model not in ("laplace_pink", "lag_laplace_walk"):
        return np.zeros(len(times)), {}
    size = rng.uniform(0.01, 0.05)
    step = 30.0
    coarse = np.arange(0.0, times[-1] + 2 * step, step)
    if model == "laplace_pink":
        slow = _pink(len(coarse), step, rng)
        drawn = {"wander_c": round(size, 4)}
    else:
        tau_h = rng.uniform(2.0, 12.0)
        slow = _mean_reverting(len(coarse), math.exp(-step / (tau_h * 3600.0)), rng)
        drawn = {"wander_c": round(size, 4), "wander_tau_h": round(tau_h, 2)}
    slow = (slow - slow.mean()) / max(float(slow.std()), 1e-12)
    return size * np.interp(times, coarse, slow), drawn


def _pink(n: int, step: float, rng: np.random.Generator) -> np.ndarray:
    """1/f noise by shaping white noise's spectrum; flat below one cycle a day."""
    spectrum = np.fft.rfft(rng.normal(size=n))
    freq = np.fft.rfftfreq(n, step)
    spectrum /= np.sqrt(np.maximum(freq, 1.0 / 86_400.0))
    spectrum[0] = 0.0
    return np.fft.irfft(spectrum, n)


def _mean_reverting(n: int, keep: float, rng: np.random.Generator) -> np.ndarray:
    shocks = rng.normal(size=n) * math.sqrt(1.0 - keep**2)
    x = np.empty(n)
    prev = rng.normal()
    for i, e in enumerate(shocks.tolist()):
        prev = keep * prev + e
        x[i] = prev
    return x


def quantise(values: np.ndarray, quantum: float) -> np.ndarray:
    """Round to the sensor's resolution; + 0.0 turns -0.0 into 0.0 for the CSV."""
    return np.round(values / quantum) * quantum + 0.0


def decimals(quantum: float) -> int:
    """Digits that print every multiple of the quantum exactly (0.0625 needs four)."""
    return {0.1: 1, 0.0625: 4, 0.01: 2, 0.25: 2, 0.5: 1}[quantum]
