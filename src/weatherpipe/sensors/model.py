"""Simulated temperatures: daily cycle, wandering weather, sensor noise and labeled anomalies."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from weatherpipe.sensors.profiles import Device

KINDS = ("spike", "dip", "stuck", "drift", "level_shift", "noise_burst")
# No anomaly in a device's first minutes, so detectors see normal weather first.
WARMUP_SECONDS = 300.0
WEATHER_PERIODS_HOURS = (7.0, 19.0, 53.0, 131.0)
RESOLUTION = 0.01


@dataclass
class Anomaly:
    """One injected anomaly: its kind, device index, [start, end) in epoch seconds, and size."""

    device: int
    kind: str
    start: float
    end: float
    magnitude: float
    frozen: float = 0.0
    seed: int = 0

    def apply(self, t: np.ndarray, values: np.ndarray) -> np.ndarray:
        if self.kind in ("spike", "dip", "level_shift"):
            return values + self.magnitude
        if self.kind == "drift":
            return values + self.magnitude * (t - self.start) / (self.end - self.start)
        if self.kind == "stuck":
            return np.full_like(values, self.frozen)
        rng = np.random.default_rng([self.seed, int(t[0] * 1000) & 0xFFFFFFFF])
        return values + rng.normal(0.0, self.magnitude, size=values.shape)


TruthSink = Callable[[Device, Anomaly], None]


@dataclass
class Fleet:
    """The temperatures every device reads; the same seed gives the same weather and anomalies."""

    devices: Sequence[Device]
    seed: int = 0
    anomaly_rate: float = 4.0  # anomalies per device per hour
    kinds: Sequence[str] = KINDS
    on_anomaly: TruthSink | None = None
    _next: np.ndarray = field(init=False, repr=False)
    _active: list[Anomaly] = field(default_factory=list, init=False, repr=False)

    def __post_init__(self) -> None:
        n = len(self.devices)
        rng = np.random.default_rng(self.seed)
        self._rng = rng
        self._mean = np.array([d.climate.mean for d in self.devices])
        self._amp = np.array([d.climate.daily_amplitude for d in self.devices])
        self._noise = np.array([d.climate.noise_sd for d in self.devices])
        self._lon_hours = np.array([d.longitude / 15.0 for d in self.devices])
        wsd = np.array([d.climate.weather_sd for d in self.devices])
        k = len(WEATHER_PERIODS_HOURS)
        self._w_amp = (wsd / math.sqrt(k / 2))[:, None] * rng.uniform(0.6, 1.4, (n, k))
        self._w_period = (
            np.array(WEATHER_PERIODS_HOURS)[None, :] * 3600 * rng.uniform(0.8, 1.25, (n, k))
        )
        self._w_phase = rng.uniform(0, 2 * math.pi, (n, k))
        self._next = np.full(n, np.nan)

    # -- the normal signal --------------------------------------------------------------------

    def _clean(self, idx: np.ndarray | int, t: np.ndarray) -> np.ndarray:
        """Noise-free temperature of device(s) `idx` at times `t` (elementwise, broadcast)."""
        local_hours = (t / 3600.0 + self._lon_hours[idx]) % 24.0
        daily = self._amp[idx] * np.cos(2 * math.pi * (local_hours - 15.0) / 24.0)
        phase = 2 * math.pi * np.asarray(t)[..., None] / self._w_period[idx] + self._w_phase[idx]
        weather = (self._w_amp[idx] * np.sin(phase)).sum(axis=-1)
        return np.asarray(self._mean[idx] + daily + weather)

    # -- anomalies ----------------------------------------------------------------------------

    def _schedule(self, device: int, after: float) -> None:
        if self.anomaly_rate <= 0 or not self.kinds:
            self._next[device] = math.inf
            return
        self._next[device] = after + self._rng.exponential(3600.0 / self.anomaly_rate)

    def _start_anomaly(self, device: int, start: float) -> Anomaly:
        rng = self._rng
        kind = str(rng.choice(list(self.kinds)))
        sign = 1.0 if rng.random() < 0.5 else -1.0
        sizes: dict[str, tuple[float, float]] = {
            "spike": (float(rng.integers(1, 4)), rng.uniform(4.0, 12.0)),
            "dip": (float(rng.integers(1, 4)), -rng.uniform(4.0, 12.0)),
            "stuck": (rng.uniform(90, 300), 0.0),
            "drift": (rng.uniform(300, 900), sign * rng.uniform(3.0, 8.0)),
            "level_shift": (rng.uniform(120, 600), sign * rng.uniform(3.0, 8.0)),
            "noise_burst": (rng.uniform(30, 120), rng.uniform(1.0, 3.0)),
        }
        duration, magnitude = sizes[kind]
        anomaly = Anomaly(
            device,
            kind,
            start,
            start + float(duration),
            float(magnitude),
            frozen=float(self._clean(device, np.array([start]))[0]),
            seed=int(rng.integers(0, 2**31)),
        )
        if self.on_anomaly is not None:
            self.on_anomaly(self.devices[device], anomaly)
        self._schedule(device, anomaly.end)
        return anomaly

    def _advance(self, device: int, until: float) -> list[Anomaly]:
        """Start every anomaly of `device` due before `until`; return them."""
        started = []
        while self._next[device] < until:
            started.append(self._start_anomaly(device, float(self._next[device])))
        return started

    def start(self, t0: float) -> None:
        """Begin the simulation at epoch second `t0` (anomalies only after the warm-up)."""
        for device in range(len(self.devices)):
            self._schedule(device, t0 + WARMUP_SECONDS)

    # -- sampling -----------------------------------------------------------------------------

    def tick(self, t: float) -> np.ndarray:
        """Every device's reading at time `t` (real-time mode)."""
        if np.isnan(self._next).any():
            self.start(t)
        n = len(self.devices)
        idx = np.arange(n)
        values = self._clean(idx, np.full(n, t)) + self._rng.normal(0.0, 1.0, n) * self._noise
        for device in np.flatnonzero(self._next <= t):
            self._active.extend(self._advance(int(device), t + 1e-9))
        self._active = [a for a in self._active if a.end > t]
        stamp = np.array([t])
        for a in self._active:
            if a.start <= t:
                values[a.device] = a.apply(stamp, values[a.device : a.device + 1])[0]
        return np.round(values / RESOLUTION) * RESOLUTION

    def series(self, device: int, times: np.ndarray) -> np.ndarray:
        """One device's readings at increasing `times` (backfill mode, call in time order)."""
        if math.isnan(self._next[device]):
            self._schedule(device, float(times[0]) + WARMUP_SECONDS)
        values = (
            self._clean(device, times)
            + self._rng.normal(0.0, 1.0, len(times)) * self._noise[device]
        )
        pending = [a for a in self._active if a.device == device and a.end > times[0]]
        pending += self._advance(device, float(times[-1]) + 1e-9)
        self._active = [a for a in self._active if a.device != device] + [
            a for a in pending if a.end > times[-1]
        ]
        for a in pending:
            lo, hi = np.searchsorted(times, [a.start, a.end])
            if hi > lo:
                values[lo:hi] = a.apply(times[lo:hi], values[lo:hi])
        return np.round(values / RESOLUTION) * RESOLUTION
