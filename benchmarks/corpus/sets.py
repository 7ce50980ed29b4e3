"""The corpus sets (tuning, tuning2, holdout) and the deterministic plan of their streams."""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import TypeVar

import numpy as np

KINDS = ("spike", "dip", "shift", "drift", "stuck", "noise", "range")

# Shortest and longest true duration (seconds) of the kinds whose length the set plans;
# spikes, dips and error codes last a few readings to minutes and each stream draws its own.
LENGTH_S = {
    "shift": (300.0, 6 * 3600.0),
    "drift": (600.0, 4 * 3600.0),
    "stuck": (120.0, 2 * 3600.0),
    "noise": (60.0, 1200.0),
}
SHORT_FAULT_S = 300.0  # what a spike, dip or error code needs at most, for dealing only
LEAD_S = 900.0  # a stream's quiet start, for dealing only
GAP_S = 60.0 + 900.0  # a window's grace and the spacing before the next onset
HELD_CHANCE = 0.25  # of a stream with a shift or drift, that one is last and never released

# Salt for the set-level RNG, so the plan never shares draws with stream 0's RNG.
_PLAN_SALT = 1_000_003
LENGTH_WEIGHT = 0.7


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
    # Stream lengths of this device class, shortest and longest; None: the set spreads them.
    lengths_s: tuple[float, float] | None = None


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
    # Per sampling with its own lengths: devices that started recently, as fractions of the
    # class's shortest length.
    recent: tuple[float, ...] = ()


@dataclass(frozen=True)
class PlannedFault:
    """A fault dealt to a stream: its kind and, for the long kinds, its true length."""

    kind: str
    length_s: float = 0.0  # 0: the stream draws it
    held: bool = False  # held to the end of the stream (only ever the last fault)

    @property
    def footprint(self) -> float:
        return (self.length_s or SHORT_FAULT_S) + GAP_S


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
    faults: tuple[PlannedFault, ...]
    early: bool

    @property
    def kinds(self) -> tuple[str, ...]:
        return tuple(f.kind for f in self.faults)

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

# A second tuning set of slow battery and LoRaWAN-class devices: other climates, correlated
# noise, coarse resolutions, and stream lengths that follow the sampling period.
TUNING2 = SetSpec(
    name="tuning2",
    seed=20_261_203,
    n_streams=36,
    device_hours=5_115.8,
    duration_s=(3600.0, 30 * 86_400.0),
    climates=("subarctic", "mediterranean", "greenhouse"),
    noise_models=("laplace_pink", "lag_laplace_walk"),
    samplings=(
        Sampling("10s", 10.0, 1.0, (0.005, 0.03), 1.5, (60.0, 1800.0), bursty=False,
                 lengths_s=(6 * 3600.0, 4 * 86_400.0)),
        Sampling("60s", 60.0, 3.0, (0.01, 0.05), 1.0, (300.0, 7200.0), bursty=False,
                 lengths_s=(86_400.0, 14 * 86_400.0)),
        Sampling("300s-lorawan", 300.0, 20.0, (0.02, 0.1), 0.5, (1200.0, 21_600.0),
                 bursty=True, lengths_s=(5 * 86_400.0, 30 * 86_400.0)),
    ),
    quanta=(0.25, 0.5),
    anomalies_per_kind=30,
    clean_fraction=0.2,
    early_fraction=0.3,
    recent=(1 / 6, 1 / 3),
)

T = TypeVar("T")

SETS = {spec.name: spec for spec in (TUNING, TUNING2, HOLDOUT)}


def plan_set(spec: SetSpec) -> list[StreamPlan]:
    """Decide each stream's length, climate, sensor, sampling and anomaly kinds."""
    rng = np.random.default_rng([spec.seed, _PLAN_SALT])
    if spec.samplings[0].lengths_s is not None:
        samplings, durations, hands, early = _by_sampling(spec, rng)
    else:
        durations = _durations(spec, rng)
        clean = _clean_streams(spec, durations, rng)
        hands = _deal_faults(spec, durations, clean, rng)
    climates = _balanced(spec.climates, spec.n_streams, rng)
    noises = _balanced(spec.noise_models, spec.n_streams, rng)
    if spec.samplings[0].lengths_s is None:
        # Drawn here, after the rest, so the first two sets' files never change.
        samplings = _balanced(spec.samplings, spec.n_streams, rng)
    quanta = _balanced(spec.quanta, spec.n_streams, rng)
    if spec.samplings[0].lengths_s is None:
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
            faults=hands[i],
            early=bool(early[i]) and bool(hands[i]),
        )
        for i in range(spec.n_streams)
    ]


def _by_sampling(
    spec: SetSpec, rng: np.random.Generator
) -> tuple[list[Sampling], np.ndarray, list[tuple[PlannedFault, ...]], np.ndarray]:
    """Device classes whose lengths follow their period (a 5-minute device runs for weeks).

    Each class is planned as a set of its own: lengths at log-spaced quantiles of its range
    (both ends included) plus the recently started devices, its own anomaly-free streams, an
    equal share of every kind (so slow and fast devices both see every kind) and exactly its
    share of early first anomalies.
    """
    samplings = _balanced(spec.samplings, spec.n_streams, rng)
    durations = np.zeros(spec.n_streams)
    early = np.zeros(spec.n_streams, dtype=bool)
    hands: list[tuple[PlannedFault, ...]] = [() for _ in range(spec.n_streams)]
    for sampling in spec.samplings:
        members = np.array([i for i, s in enumerate(samplings) if s is sampling])
        lo, hi = sampling.lengths_s or spec.duration_s
        n = len(members) - len(spec.recent)
        u = np.arange(n) / (n - 1)
        lengths = np.concatenate([
            np.round(np.exp(math.log(lo) + u * (math.log(hi) - math.log(lo)))),
            np.round(lo * np.array(spec.recent)),
        ])[rng.permutation(len(members))]
        share = replace(
            spec,
            n_streams=len(members),
            anomalies_per_kind=spec.anomalies_per_kind // len(spec.samplings),
        )
        clean = _clean_streams(share, lengths, rng)
        durations[members] = lengths
        for i, hand in zip(members, _deal_faults(share, lengths, clean, rng), strict=True):
            hands[i] = hand
        anomalous = members[~clean]
        n_early = round(spec.early_fraction * len(anomalous))
        early[rng.choice(anomalous, size=n_early, replace=False)] = True
    return samplings, durations, hands, early


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


def _deal_faults(
    spec: SetSpec, durations: np.ndarray, clean: np.ndarray, rng: np.random.Generator
) -> list[tuple[PlannedFault, ...]]:
    """Deal a balanced deck to the anomalous streams, more faults to longer streams.

    Longest faults first, each to a stream chosen at random among those with room for it
    (weighted by the room), so a 6 h shift lands in a stream that can hold it.
    """
    anomalous = np.flatnonzero(~clean)
    slots = _counts_by_length(durations[anomalous], len(KINDS) * spec.anomalies_per_kind)
    room = durations[anomalous] - LEAD_S
    hands: list[list[PlannedFault]] = [[] for _ in anomalous]
    for fault in sorted(_deck(spec, rng), key=lambda f: f.footprint, reverse=True):
        # Keep room for the short faults each stream is still owed.
        spare = room - (slots - 1) * (SHORT_FAULT_S + GAP_S) - fault.footprint
        spare = np.where(slots > 0, spare, -np.inf)
        fits = spare >= 0
        if fits.any():
            weight = np.where(fits, spare + 1.0, 0.0)
            chosen = int(rng.choice(len(anomalous), p=weight / weight.sum()))
        else:
            chosen = int(np.argmax(spare))  # placement shortens it to fit
        hands[chosen].append(fault)
        slots[chosen] -= 1
        room[chosen] -= fault.footprint
    dealt: list[tuple[PlannedFault, ...]] = [() for _ in range(spec.n_streams)]
    for stream, hand in zip(anomalous, hands, strict=True):
        dealt[stream] = _order(hand, rng)
    return dealt


def _order(hand: list[PlannedFault], rng: np.random.Generator) -> tuple[PlannedFault, ...]:
    """Shuffle a stream's faults; sometimes a shift or drift goes last and is never released."""
    shuffled = [hand[i] for i in rng.permutation(len(hand))]
    levels = [i for i, f in enumerate(shuffled) if f.kind in ("shift", "drift")]
    if levels and rng.random() < HELD_CHANCE:
        last = shuffled.pop(levels[0])
        shuffled.append(replace(last, held=True))
    return tuple(shuffled)


def _deck(spec: SetSpec, rng: np.random.Generator) -> list[PlannedFault]:
    """Equal counts of every kind; lengths stratified over each kind's log-range.

    One draw in each of n equal strata (not n free draws) so every set holds both the
    shortest and the longest shifts, drifts, stuck spells and noise bursts.
    """
    n = spec.anomalies_per_kind
    deck: list[PlannedFault] = []
    for kind in KINDS:
        if kind not in LENGTH_S:
            deck += [PlannedFault(kind)] * n
            continue
        lo, hi = (math.log(x) for x in LENGTH_S[kind])
        u = (np.arange(n) + rng.random(n)) / n
        deck += [PlannedFault(kind, float(x)) for x in np.exp(lo + u * (hi - lo))]
    return deck


def _counts_by_length(durations: np.ndarray, total: int) -> np.ndarray:
    """At least one anomaly per stream; the rest by length ** LENGTH_WEIGHT (largest remainder).

    A weight under 1 packs short streams more densely and leaves long ones sparser, where
    hours-long shifts and drifts fit. A stream gets at most one anomaly per 40 minutes.
    """
    cap = np.maximum(1, (durations // 2400).astype(int))
    counts = np.ones(len(durations), dtype=int)
    weight = durations**LENGTH_WEIGHT
    share = weight / weight.sum() * (total - counts.sum())
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
