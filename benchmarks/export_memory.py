"""Export memory: `weatherpipe export` of a month of one device at 1 Hz (2.6 million readings)
against the same command exporting one hour of it, peak resident memory of each process."""

from __future__ import annotations

import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from benchmarks.base import BenchOptions, Result, median, scratch_mariadb, scratch_postgresql
from benchmarks.memory import rss_bytes
from weatherpipe.reading import Reading
from weatherpipe.sensors.profiles import fleet

SAMPLE_SECONDS = 0.05
LOAD_BATCH = 20_000
FORMATS = ("csv", "parquet")
# Flat: the month (720 x an hour's rows) may take at most this many times an hour's memory.
FLAT = 1.5


def load_month(url: str, device: str, seconds: int, end: datetime) -> float:
    """One reading a second of `device` for `seconds` before `end`; returns rows/s."""
    from weatherpipe.storage.repository import Repository

    start = end - timedelta(seconds=seconds)
    repo = Repository.from_url(url)
    started = time.perf_counter()
    try:
        for first in range(0, seconds, LOAD_BATCH):
            batch = [
                Reading(device, start + timedelta(seconds=s), 15 + (s % 86_400) / 8_640, 52.5, 13.4)
                for s in range(first, min(first + LOAD_BATCH, seconds))
            ]
            repo.store_batch(batch)
    finally:
        repo.close()
    return seconds / (time.perf_counter() - started)


def peak_rss(url: str, args: list[str], out: Path) -> tuple[int, float, int]:
    """Run `weatherpipe export ARGS -o OUT`; its peak RSS (bytes), seconds and file size."""
    command = [sys.executable, "-m", "weatherpipe", "export", *args, "-o", str(out)]
    env = {"WEATHERPIPE_DATABASE_URL": url, "WEATHERPIPE_LOG_LEVEL": "WARNING", "PATH": "/usr/bin"}
    started = time.perf_counter()
    child = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    peak = 0
    try:
        while child.poll() is None:
            try:
                peak = max(peak, rss_bytes(child.pid))
            except (FileNotFoundError, RuntimeError):  # it ended between poll and read
                break
            time.sleep(SAMPLE_SECONDS)
        _, errors = child.communicate(timeout=600)
    finally:
        if child.poll() is None:
            child.kill()
    if child.returncode != 0:
        raise RuntimeError(f"export failed: {errors.decode()[-500:]}")
    return peak, time.perf_counter() - started, out.stat().st_size


def _scenario(options: BenchOptions, database: str) -> Result:
    seconds = int(options.size(30 * 86_400, 86_400))
    device = fleet(1)[0].device_id
    end = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    scratch = scratch_mariadb if database == "mariadb" else scratch_postgresql
    root = options.mariadb_url if database == "mariadb" else options.postgresql_url
    runs: dict[str, list[float]] = {}
    details: dict[str, object] = {}
    with scratch(root, options.tag) as url, tempfile.TemporaryDirectory() as tmp:
        details["load_rows_per_s"] = load_month(url, device, seconds, end)
        hour = ["--device-id", device, "--start", (end - timedelta(hours=1)).isoformat()]
        for _ in range(options.repeats):
            for fmt in FORMATS:
                out = Path(tmp) / f"month.{fmt}"
                small, _, _ = peak_rss(url, ["--format", fmt, *hour], Path(tmp) / f"hour.{fmt}")
                big, took, size = peak_rss(url, ["--format", fmt, "--device-id", device], out)
                runs.setdefault(f"{fmt}_growth_mib", []).append((big - small) / 2**20)
                runs.setdefault(f"{fmt}_hour_peak_mib", []).append(small / 2**20)
                runs.setdefault(f"{fmt}_month_peak_mib", []).append(big / 2**20)
                runs.setdefault(f"{fmt}_rows_per_s", []).append(seconds / took)
                details[f"{fmt}_file_mib"] = size / 2**20
    m = {k: median(v) for k, v in runs.items()}
    growth = m["csv_growth_mib"]
    csv_ratio = m["csv_month_peak_mib"] / m["csv_hour_peak_mib"]
    parquet_ratio = m["parquet_month_peak_mib"] / m["parquet_hour_peak_mib"]
    return Result(
        f"export-memory{'' if database == 'mariadb' else '-postgresql'}",
        f"peak RSS growth of `weatherpipe export` over {seconds:,} readings of one device "
        f"({database}), CSV",
        growth,
        "MiB",
        f"month's peak RSS < {FLAT:g} x one hour's ({seconds // 3600:,} x the rows), both formats",
        csv_ratio < FLAT and parquet_ratio < FLAT,
        runs=runs["csv_growth_mib"],
        baselines={"one hour's export, peak RSS (MiB)": m["csv_hour_peak_mib"]},
        ratios={"month / hour peak RSS, CSV": csv_ratio, "month / hour, Parquet": parquet_ratio},
        details=details | {"medians": m, "runs": runs},
    )


def export_memory(options: BenchOptions) -> Result:
    """Peak RSS of exporting a month of one device at 1 Hz against exporting one hour (MariaDB)."""
    return _scenario(options, "mariadb")


def export_memory_postgresql(options: BenchOptions) -> Result:
    """Peak RSS of exporting a month of one device at 1 Hz against one hour (PostgreSQL)."""
    return _scenario(options, "postgresql")
