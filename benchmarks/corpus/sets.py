"""The two corpus sets (tuning, holdout) and the deterministic plan of their streams."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TypeVar

import numpy as np

KINDS = ("spike", "dip", "shift", "drift", "stuck", "noise", "range")

# Salt for the set-level RNG, so the plan never shares draws with stream 0's RNG.
_PLAN_SALT = 1_000_003


@dataclass(frozen=True)
class Sampling:
    """How a device samples: period, timestamp jitter, dropped readings and offline gaps."""

    name: str
    period_s: float
    jitter_s: float
    drop_rate: tuple[float, float]  # fraction of readings silently lost, drawn per stream
    gaps_per_day: float
    gap_s: tuple[float, float]  # offline time of one gap, drawn log-uniformly
    bursty: bool  # gaps come in clusters (a flaky radio), not one at a time


@dataclass(frozen=True)
class SetSpec:
    """One set: which climates, sensors and samplings its streams draw from, and its size."""

    name: str
    seed: int
    n_streams: int
    device_hours: float
    duration_s: tuple[float, float]
    climates: tuple[str, ...]
    noise_models: tuple[str, ...]
    samplings: tuple[Sampling, ...]
    quanta: tuple[float, ...]
    anomalies_per_kind: int
    clean_fraction: float
    early_fraction: float  # share of anomalous streams whose first anomaly is 5-15 min in


@dataclass(frozen=True)
class StreamPlan:
    """What the set decides for one stream; everything else comes from the stream's own RNG."""

    set_name: str
    set_seed: int
    index: int
    duration_s: float
    climate: str
    noise_model: str
    sampling: Sampling
    quantum: float
    kinds: tuple[str, ...]
    early: bool

    @property
    def name(self) -> str:
        return f"{self.climate}_{self.index:03d}"

    @property
    def seed(self) -> list[int]:
        return [self.set_seed, self.index]


TUNING = SetSpec(
    name="tuning",
    seed=20_261_201,
    n_streams=40,
    device_hours=150.0,
    duration_s=(20 * 60.0, 24 * 3600.0),
    climates=("continental", "maritime"),
    noise_models=("student_t",),
    samplings=(
        Sampling("1hz", 1.0, 0.05, (0.001, 0.01), 2.0, (10.0, 600.0), bursty=False),
    ),
    quanta=(0.1,),
    anomalies_per_kind=18,
    clean_fraction=0.2,
    early_fraction=0.3,
)

HOLDOUT = SetSpec(
    name="holdout",
    seed=20_261_202,
    n_streams=60,
    device_hours=350.0,
    duration_s=(20 * 60.0, 72 * 3600.0),
    climates=("tropical", "desert", "alpine", "indoor"),
    noise_models=("mixture", "ar1"),
    samplings=(
        Sampling("0.5hz", 2.0, 0.2, (0.005, 0.05), 3.0, (10.0, 1800.0), bursty=False),
        Sampling("2hz", 0.5, 0.1, (0.005, 0.05), 3.0, (10.0, 1800.0), bursty=False),
        Sampling("1hz-jitter", 1.0, 0.4, (0.005, 0.05), 2.0, (10.0, 1800.0), bursty=True),
    ),
    quanta=(0.0625, 0.01),
    anomalies_per_kind=30,
    clean_fraction=0.2,
    early_fraction=0.3,
)

T = TypeVar("T")

SETS = {spec.name: spec for spec in (TUNING, HOLDOUT)}


def plan_set(spec: SetSpec) -> list[StreamPlan]:
    """Decide each stream's length, climate, sensor, sampling and anomaly kinds."""
    rng = np.random.default_rng([spec.seed, _PLAN_SALT])
    durations = _durations(spec, rng)
    clean = _clean_streams(spec, durations, rng)
    kinds = _deal_kinds(spec, durations, clean, rng)
    climates = _balanced(spec.climates, spec.n_streams, rng)
    noises = _balanced(spec.noise_models, spec.n_streams, rng)
    samplings = _balanced(spec.samplings, spec.n_streams, rng)
    quanta = _balanced(spec.quanta, spec.n_streams, rng)
    early = rng.random(spec.n_streams) < spec.early_fraction
    return [
        StreamPlan(
            set_name=spec.name,
            set_seed=spec.seed,
            index=i,
            duration_s=float(durations[i]),
            climate=climates[i],
            noise_model=noises[i],
            sampling=samplings[i],
            quantum=quanta[i],
            kinds=kinds[i],
            early=bool(early[i]) and bool(kinds[i]),
        )
        for i in range(spec.n_streams)
    ]


def _durations(spec: SetSpec, rng: np.random.Generator) -> np.ndarray:
    """Two long streams (the longest allowed and two thirds of it), the rest log-uniform.

    The rest are stratified quantiles (not free draws) between the shortest length and a cap
    found by bisection so that the set's total matches its device-hours exactly.
    """
    lo, hi = spec.duration_s
    pinned = np.array([hi, round(hi * 2 / 3)])
    n = spec.n_streams - len(pinned)
    u = np.arange(n) / (n - 1)
    target = spec.device_hours * 3600.0 - pinned.sum()

    def spread(cap: float) -> np.ndarray:
        return np.round(np.exp(math.log(lo) + u * (math.log(cap) - math.log(lo))))

    cap_lo, cap_hi = lo, hi
    for _ in range(60):
        cap = 0.5 * (cap_lo + cap_hi)
        if spread(cap).sum() > target:
            cap_hi = cap
        else:
            cap_lo = cap
    durations = np.concatenate([spread(cap_lo), pinned])
    return durations[rng.permutation(spec.n_streams)]


def _clean_streams(spec: SetSpec, durations: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Pick the anomaly-free streams across the length range (short and long alike)."""
    n_clean = round(spec.clean_fraction * spec.n_streams)
    by_length = np.argsort(durations)
    strata = np.array_split(by_length, n_clean)
    clean = np.zeros(spec.n_streams, dtype=bool)
    for stratum in strata:
        clean[rng.choice(stratum)] = True
    return clean


def _deal_kinds(
    spec: SetSpec, durations: np.ndarray, clean: np.ndarray, rng: np.random.Generator
) -> list[tuple[str, ...]]:
    """Deal a shuffled, balanced deck of kinds to the anomalous streams, more to longer ones."""
    deck = list(np.repeat(KINDS, spec.anomalies_per_kind))
    rng.shuffle(deck)
    anomalous = np.flatnonzero(~clean)
    counts = _counts_by_length(durations[anomalous], len(deck))
    hands: list[tuple[str, ...]] = [() for _ in range(spec.n_streams)]
    start = 0
    for stream, count in zip(anomalous, counts, strict=True):
        hands[stream] = tuple(str(k) for k in deck[start : start + count])
        start += count
    return hands


def _counts_by_length(durations: np.ndarray, total: int) -> np.ndarray:
    """At least one anomaly per stream; the rest in proportion to length (largest remainder).

    A stream gets at most one anomaly per 40 minutes so each keeps room for spacing.
    """
    cap = np.maximum(1, (durations // 2400).astype(int))
    counts = np.ones(len(durations), dtype=int)
    share = durations / durations.sum() * (total - counts.sum())
    extra = np.minimum(np.floor(share).astype(int), cap - 1)
    counts += extra
    while counts.sum() < total:
        room = cap - counts
        if not room.any():
            raise ValueError("set too short for its anomalies: add device-hours")
        score = np.where(room > 0, share - (counts - 1), -np.inf)
        counts[int(np.argmax(score))] += 1
    return counts


def _balanced(options: tuple[T, ...], n: int, rng: np.random.Generator) -> list[T]:
    """Each option used about equally often, in a shuffled order."""
    picks = [options[i % len(options)] for i in range(n)]
    order = rng.permutation(n)
    return [picks[i] for i in order]
