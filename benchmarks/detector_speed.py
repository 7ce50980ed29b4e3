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
    """Time `process_many` over n readings of one device (median of a few runs, one core).

    Reports wall-clock and CPU-time rates: on a shared machine the CPU-time rate is what one
    uncontended core would do.
    """
    ts, values = synthetic_readings(n)
    wall, cpu = [], []
    for _ in range(RUNS):
        fresh = create_detector(detector)
        start, start_cpu = time.perf_counter(), time.process_time()
        fresh.process_many(ts, values)
        wall.append(time.perf_counter() - start)
        cpu.append(time.process_time() - start_cpu)
    seconds, cpu_seconds = statistics.median(wall), statistics.median(cpu)
    return {
        "detector": detector,
        "readings": n,
        "runs": RUNS,
        "seconds": seconds,
        "readings_per_second": n / seconds,
        "cpu_seconds": cpu_seconds,
        "cpu_readings_per_second": n / max(cpu_seconds, 1e-9),
    }
