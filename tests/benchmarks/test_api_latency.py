"""The API benchmark runs end to end on a small database and reuses a filled one."""

from __future__ import annotations

from benchmarks import api_latency as bench


def test_bench_fills_measures_every_endpoint_and_reuses_the_database(sqlite_url: str) -> None:
    first = bench.run(sqlite_url, days=0.01, requests=5, scans=1)
    assert first.fill_seconds is not None
    assert first.readings == 3 * 864
    names = [t.name for t in first.timings]
    assert "GET /api/v1/stats/daily-max" in names and "GET / (dashboard)" in names
    assert all(t.p50_ms > 0 for t in first.timings)  # each endpoint was really timed
    scans = [t for t in first.timings if t.baseline_ms is not None]
    assert len(scans) == 5 and all(t.ratio and t.ratio > 0 for t in scans)
    table = first.markdown()
    assert table.count("\n| `GET") == len(first.timings)
    again = bench.run(sqlite_url, days=0.01, requests=2, scans=1)
    assert again.fill_seconds is None and again.readings == first.readings


def test_percentiles_are_the_median_and_the_nearest_rank_99th() -> None:
    assert bench.percentiles([float(n) for n in range(100, 0, -1)]) == (50.5, 99.0)
    assert bench.percentiles([float(n) for n in range(1, 201)]) == (100.5, 198.0)
    assert bench.percentiles([3.0]) == (3.0, 3.0)
