"""Fleet page: the dashboard's one query per refresh (`Repository.fleet_page`, 50 devices) at
10,000 devices against the same page at 100 devices, on SQLite, MariaDB and PostgreSQL, in
interleaved rounds; plus the fleet's totals (sampled every 2 s and shared by every page)."""

from __future__ import annotations

import contextlib
import os
import statistics
import tempfile
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from benchmarks.base import BenchOptions, Result, migrate, scratch_mariadb, scratch_postgresql

if TYPE_CHECKING:
    from weatherpipe.storage.fleet import Sort
    from weatherpipe.storage.repository import Repository

ALL_DATABASES = ("sqlite", "mariadb", "postgresql")
SORTS: tuple[Sort, ...] = ("name", "last_seen", "anomalies", "silence")
SMALL = 100
TARGET_MS = 100.0  # one page at 10,000 devices, median, every sort, every database


@contextlib.contextmanager
def scratch(database: str, options: BenchOptions) -> Iterator[str]:
    if database == "mariadb":
        with scratch_mariadb(options.mariadb_url, options.tag) as url:
            yield url
    elif database == "postgresql":
        with scratch_postgresql(options.postgresql_url, options.tag) as url:
            yield url
    else:
        with tempfile.TemporaryDirectory() as tmp:
            url = f"sqlite:///{tmp}/fleet.db"
            migrate(url)
            yield url


def page_ms(repo: Repository, sort: Sort) -> float:
    from weatherpipe.storage.fleet import FleetQuery

    started = time.perf_counter()
    repo.fleet_page(FleetQuery(sort=sort), datetime.now(UTC))
    return (time.perf_counter() - started) * 1000


def totals_ms(repo: Repository) -> float:
    started = time.perf_counter()
    repo.fleet_totals("default", datetime.now(UTC))
    return (time.perf_counter() - started) * 1000


def measure(database: str, options: BenchOptions, devices: int) -> dict[str, float]:
    """Median milliseconds of each sort's page and of the totals on a fleet of `devices`."""
    from weatherpipe.storage.repository import Repository
    from weatherpipe.testing import seed_fleet

    rounds = max(5, options.repeats * 5)
    with scratch(database, options) as url, contextlib.closing(Repository.from_url(url)) as repo:
        seed_fleet(repo, devices)
        times: dict[str, list[float]] = {sort: [] for sort in SORTS}
        times["totals"] = []
        for _ in range(rounds):
            for sort in SORTS:
                times[sort].append(page_ms(repo, sort))
            times["totals"].append(totals_ms(repo))
    return {key: statistics.median(values) for key, values in times.items()}


def fleet_page(options: BenchOptions) -> Result:
    databases = options.databases or (("sqlite",) if options.quick else ALL_DATABASES)
    devices = int(options.devices or (2_000 if options.quick else 10_000))
    details: dict[str, object] = {"load_average": os.getloadavg()[0], "devices": devices}
    worst, baselines, ratios = 0.0, {}, {}
    for database in databases:
        small = measure(database, options, SMALL)
        large = measure(database, options, devices)
        details[database] = {"small": small, "large": large}
        page = max(large[sort] for sort in SORTS)
        worst = max(worst, page)
        baselines[database] = max(small[sort] for sort in SORTS)
        ratios[database] = page / baselines[database]
    return Result(
        scenario="fleet-page",
        metric=f"fleet page (50 devices) at {devices:,} devices, median ms, slowest sort and "
        f"database of {', '.join(databases)}",
        value=worst,
        unit="ms",
        target=f"< {TARGET_MS:.0f} ms",
        met=worst < TARGET_MS,
        baselines=baselines,
        ratios=ratios,
        details=details,
        note=f"baseline: the same page at {SMALL} devices in the same run; "
        f"load average {details['load_average']:.1f}",
    )
