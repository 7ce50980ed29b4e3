"""Scenarios measured by other parts' own benchmarks (detectors, API), imported only when run,
plus the detection job's database writes on MariaDB."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Engine, create_engine, text

from benchmarks.base import BenchOptions, Result, median, scratch_mariadb
from weatherpipe.compose import open_repository
from weatherpipe.config import load_settings
from weatherpipe.reading import Reading
from weatherpipe.storage.repository import Scored

DETECT_TARGET_PER_S = 100_000
FLAG_TARGET_PER_S = 25_000


def detection(options: BenchOptions) -> Result:
    """The default detector's readings/s on one core (benchmarks.detector_speed)."""
    from benchmarks.detector_speed import bench_detection

    n = int(options.size(1_000_000, 50_000, options.backlog))
    figures: dict[str, Any] = dict(bench_detection(n))
    value = float(figures["readings_per_second"])
    return Result(
        "detection",
        f"detector {figures.get('detector', 'default')}, {n:,} readings of one device",
        value,
        "readings/s",
        f"≥ {DETECT_TARGET_PER_S:,} readings/s per core",
        value >= DETECT_TARGET_PER_S,
        runs=[value],
        ratios={"of the target": value / DETECT_TARGET_PER_S},
        details=figures,
    )


def api(options: BenchOptions) -> Result:
    """API p99 per endpoint over months of readings (benchmarks.api_latency), on a scratch
    MariaDB database filled for the run."""
    from benchmarks import api_latency as api_bench

    days = options.size(30.0, 0.05, options.seconds and options.seconds / 86400)
    with scratch_mariadb(options.mariadb_url, options.tag) as url:
        outcome = api_bench.run(url, days=days, devices=3, requests=int(options.size(200, 20)))
    timings = list(outcome.timings)
    worst = max((t.p99_ms for t in timings), default=float("nan"))
    ratios = {t.name: t.ratio for t in timings if t.ratio is not None}
    return Result(
        "api",
        f"worst endpoint p99 over {outcome.readings:,} readings",
        worst,
        "ms",
        "p99 < 50 ms, ≥ 100x faster than the full scan",
        bool(outcome.passed()),
        runs=[t.p99_ms for t in timings],
        baselines={f"{t.name} full scan (ms)": t.baseline_ms for t in timings if t.baseline_ms},
        ratios={f"{k} scan/p99": v for k, v in ratios.items()},
        details={"table": outcome.markdown()},
    )


def detect_db(options: BenchOptions) -> Result:
    """The detection job's flag writes on MariaDB: Repository.save_detection (multi-row into a
    temporary table + one UPDATE … JOIN) against SQLAlchemy's executemany UPDATE, which PyMySQL
    sends as one round trip per reading, on the same rows."""
    devices = int(options.size(100, 10))
    per_device = int(options.size(2000, 200))
    start = datetime(2026, 11, 1, tzinfo=UTC)
    batch = [
        Reading(f"00000000-0000-4000-8000-{d:012d}", start + timedelta(seconds=i), 20.0, 0, 0)
        for d in range(devices)
        for i in range(per_device)
    ]
    ours, per_row = [], []
    with scratch_mariadb(options.mariadb_url, options.tag) as url:
        repo = open_repository(load_settings(database_url=url))
        engine = create_engine(url)
        try:
            for first in range(0, len(batch), 5000):
                repo.store_batch(batch[first : first + 5000])
            ids = _ids_by_device(engine)
            sample = ids[next(iter(ids))][: int(options.size(2000, 100))]
            for round_ in range(options.repeats):
                started = time.perf_counter()
                for device, rows in ids.items():
                    results = [Scored(rid, 0.1 * round_, rid % 97 == 0) for rid in rows]
                    repo.save_detection("bench", device, start, "{}", results)
                ours.append(len(batch) / (time.perf_counter() - started))
                per_row.append(_per_row_update_rate(engine, sample))
        finally:
            engine.dispose()
            repo.close()
    value, base = median(ours), median(per_row)
    return Result(
        "detect-db",
        f"flag writes on MariaDB, {len(batch):,} readings in {devices} device passes",
        value,
        "readings/s",
        f"≥ {FLAG_TARGET_PER_S:,} readings/s (keeps up with ingest)",
        value >= FLAG_TARGET_PER_S,
        runs=ours,
        baselines={"executemany UPDATE (row by row)": base},
        ratios={"executemany UPDATE (row by row)": value / base},
    )


def _ids_by_device(engine: Engine) -> dict[str, list[int]]:
    out: dict[str, list[int]] = {}
    with engine.connect() as conn:
        for rid, device in conn.execute(text("SELECT id, device_id FROM readings")):
            out.setdefault(device, []).append(int(rid))
    return out


def _per_row_update_rate(engine: Engine, ids: list[int]) -> float:
    """The pre-bench way of writing flags (kept here only as the baseline)."""
    statement = text(
        "UPDATE readings SET is_anomaly = :flag, anomaly_score = :score, detector = 'x' "
        "WHERE id = :rid"
    )
    params = [{"rid": rid, "flag": False, "score": 0.5} for rid in ids]
    started = time.perf_counter()
    with engine.begin() as conn:
        conn.execute(statement, params)
    return len(ids) / (time.perf_counter() - started)
