"""Detection throughput: the default detector's readings per second on synthetic 1 Hz data."""

from __future__ import annotations

import statistics
import time

import numpy as np

from weatherpipe.detect import create_detector

RUNS = 3


def synthetic_readings(n: int, seed: int = 0) -> tuple[list[float], list[float]]:
    """A 1 Hz temperature stream: a daily cycle, a slow wander and sensor noise."""
    rng = np.random.default_rng(seed)
    t = np.arange(n, dtype=float)
    wander = np.cumsum(rng.normal(0.0, 0.002, n))
    values = 20.0 + 4.0 * np.sin(2 * np.pi * t / 86_400) + wander + rng.normal(0.0, 0.05, n)
    return (1_700_000_000.0 + t).tolist(), values.tolist()


def bench_detection(n: int = 1_000_000, detector: str = "default") -> dict[str, float | int | str]:
    """Time `process_many` over n readings of one device (median of a few runs, one core)."""
    ts, values = synthetic_readings(n)
    seconds = []
    for _ in range(RUNS):
        fresh = create_detector(detector)
        start = time.perf_counter()
        fresh.process_many(ts, values)
        seconds.append(time.perf_counter() - start)
    median = statistics.median(seconds)
    return {
        "detector": detector,
        "readings": n,
        "runs": RUNS,
        "seconds": median,
        "readings_per_second": n / median,
    }
