"""The detector benchmark runs the default detector over a synthetic stream and reports rates."""

from __future__ import annotations

import itertools

from benchmarks.detector_speed import bench_detection, synthetic_readings


def test_bench_detection_reports_readings_per_second() -> None:
    result = bench_detection(20_000)
    assert result["readings"] == 20_000
    assert float(result["readings_per_second"]) > 0


def test_the_synthetic_stream_is_1_hz_and_reproducible() -> None:
    ts, values = synthetic_readings(1000, seed=3)
    assert [b - a for a, b in itertools.pairwise(ts)] == [1.0] * 999
    assert (ts, values) == synthetic_readings(1000, seed=3)
    assert all(10.0 < v < 30.0 for v in values)
