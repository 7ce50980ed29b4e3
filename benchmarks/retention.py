"""Retention under load: 7.8 million readings over 60 days (half of them past the 30-day
retention), and a NATS backlog drained by `weatherpipe ingest` with and without
`weatherpipe prune --every` deleting beside it, in interleaved rounds on the same database."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta

import numpy as np
from sqlalchemy import create_engine, text

from benchmarks.base import (
    BenchOptions,
    Processes,
    Result,
    fleet_payloads,
    median,
    publish_all,
    scratch_mariadb,
    scratch_postgresql,
    scratch_stream,
    stage_env,
)
from weatherpipe.reading import Reading
from weatherpipe.retention import PruneReport
from weatherpipe.sensors.profiles import fleet

log = logging.getLogger(__name__)
DAYS = 60
LOAD_BATCH = 20_000
DRAIN_TIMEOUT_SECONDS = 600.0
POLL_SECONDS = 0.1
TARGET = 0.90  # ingest with pruning at least 90% of ingest without
PRUNE_ALONE_SECONDS = 60.0


def load_history(url: str, devices: int, total: int, now: datetime) -> float:
    """`total` readings of `devices` devices spread evenly over the DAYS before `now`, stored
    through the repository as ingest stores them (readings, rollups, devices); returns rows/s."""
    from weatherpipe.storage.repository import Repository

    catalogue = fleet(devices, 0)
    ticks = max(1, total // devices)
    step = DAYS * 86_400 / ticks
    start = now - timedelta(days=DAYS)
    rng = np.random.default_rng(0)
    repo = Repository.from_url(url)
    started = time.perf_counter()
    try:
        batch: list[Reading] = []
        for tick in range(ticks):
            ts = start + timedelta(seconds=round(tick * step, 3))
            phase = 2 * np.pi * (tick * step % 86_400) / 86_400
            temps = 15 + 8 * np.sin(phase) + rng.normal(0, 0.5, devices)
            for device, t in zip(catalogue, temps.tolist(), strict=True):
                batch.append(Reading(device.device_id, ts, t, device.latitude, device.longitude))
            if len(batch) >= LOAD_BATCH:
                repo.store_batch(batch)
                batch = []
        if batch:
            repo.store_batch(batch)
    finally:
        repo.close()
    return ticks * devices / (time.perf_counter() - started)


@contextlib.contextmanager
def _stored(url: str) -> Iterator[Callable[[], int]]:
    """Readings ever stored (the daily rollups' sum: pruning does not lower it)."""
    engine = create_engine(url)
    query = text("SELECT COALESCE(SUM(n), 0) FROM readings_daily")

    def probe() -> int:
        with engine.connect() as conn:
            return int(conn.execute(query).scalar() or 0)

    try:
        yield probe
    finally:
        engine.dispose()


def _rows(url: str) -> int:
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            return int(conn.execute(text("SELECT COUNT(*) FROM readings")).scalar() or 0)
    finally:
        engine.dispose()


def drain(options: BenchOptions, url: str, topic: str, expected: int, children: Processes) -> float:
    """Readings/s of one `weatherpipe ingest` draining `expected` readings from a fresh
    consumer into a database that already holds rows: stored-count growth from the first poll
    that sees new rows to the one that sees them all (start-up is not counted)."""
    with _stored(url) as stored:
        base = stored()
        launched = time.perf_counter()
        child = children.start(["ingest"], stage_env(url, options.nats_url, topic, "retention"))
        try:
            return _until_drained(stored, base, expected, children, launched)
        finally:
            child.terminate()
            child.wait(30)
            children.children.remove(child)


def _until_drained(
    stored: Callable[[], int], base: int, expected: int, children: Processes, launched: float
) -> float:
    first: tuple[float, int] | None = None
    deadline = time.monotonic() + DRAIN_TIMEOUT_SECONDS
    while True:
        new = stored() - base
        now = time.perf_counter()
        if new and first is None:
            first = (now, new)
        if new >= expected and first is not None:
            if new == first[1]:  # a backlog too small to see twice: count from the launch
                return new / (now - launched)
            return (new - first[1]) / (now - first[0])
        if time.monotonic() > deadline:
            raise TimeoutError(f"drained {new:,} of {expected:,} readings")
        children.check()
        time.sleep(POLL_SECONDS)


@contextlib.contextmanager
def _pruning(url: str, children: Processes) -> Iterator[None]:
    """`weatherpipe prune --every 1` beside ingest while the block runs."""
    child = children.start(["prune", "--every", "1"], {"WEATHERPIPE_DATABASE_URL": url})
    try:
        yield
    finally:
        child.terminate()
        child.wait(30)
        children.children.remove(child)


def _scenario(options: BenchOptions, database: str) -> Result:
    devices = int(options.size(1000, 100, options.devices))
    total = int(options.size(7_800_000, 100_000))
    per_round = int(options.size(200_000, 10_000, options.backlog))
    scratch = scratch_mariadb if database == "mariadb" else scratch_postgresql
    root = options.mariadb_url if database == "mariadb" else options.postgresql_url
    now = datetime.now(UTC).replace(microsecond=0)
    runs: dict[str, list[float]] = {"without": [], "with": []}
    pruned_during: list[float] = []
    with scratch(root, options.tag) as url:
        load_rate = load_history(url, devices, total, now - timedelta(hours=2))
        old_rows = _count_old(url, now)
        with Processes() as children:
            for index in range(2 * options.repeats):
                pruned = index % 2 == 1
                ticks = per_round // devices
                # Each round its own recent hour (inside the retention), so no key repeats.
                start = (now - timedelta(hours=1, seconds=(index + 1) * ticks)).timestamp()
                payloads = fleet_payloads(devices, ticks, start)
                with scratch_stream(options.nats_url) as topic:
                    asyncio.run(publish_all(options.nats_url, topic, payloads))
                    before = _rows(url)
                    prune = _pruning(url, children) if pruned else contextlib.nullcontext()
                    with prune:
                        started = time.perf_counter()
                        rate = drain(options, url, topic, len(payloads), children)
                        window = time.perf_counter() - started
                    runs["with" if pruned else "without"].append(rate)
                    # Shown as it goes: a full run takes tens of minutes on a shared machine.
                    log.warning("round %d, pruning %s: %.0f readings/s", index, pruned, rate)
                    if pruned:
                        gone = before + len(payloads) - _rows(url)
                        pruned_during.append(gone / window)
        report = _prune_alone(url, options.size(PRUNE_ALONE_SECONDS, 10.0))
    without, with_ = median(runs["without"]), median(runs["with"])
    ratio = with_ / without
    return Result(
        f"prune-ingest{'' if database == 'mariadb' else '-postgresql'}",
        f"NATS → {database} ingest while `prune --every 1` runs, {total:,} readings over "
        f"{DAYS} days of {devices:,} devices ({old_rows:,} past 30 days)",
        with_,
        "readings/s",
        f"≥ {TARGET:.0%} of ingest without pruning",
        ratio >= TARGET,
        runs=runs["with"],
        baselines={"ingest without pruning": without},
        ratios={"ingest without pruning": ratio},
        details={
            "without_runs": runs["without"],
            "pruned_rows_per_s_during_ingest": pruned_during,
            "prune_alone_deleted": report.deleted,
            "prune_alone_seconds": report.seconds,
            "prune_alone_rows_per_s": report.total / report.seconds if report.seconds else None,
            "load_rows_per_s": load_rate,
            "old_rows": old_rows,
            "backlog_per_round": per_round,
        },
    )


def _prune_alone(url: str, seconds: float) -> PruneReport:
    """A prune pass with the default settings and nothing else writing, stopped after
    `seconds` (a whole pass over millions of rows takes tens of minutes here)."""
    from weatherpipe.compose import make_pruner
    from weatherpipe.config import load_settings
    from weatherpipe.storage.repository import Repository

    async def timed(repo: Repository) -> PruneReport:
        stop = asyncio.Event()
        asyncio.get_running_loop().call_later(seconds, stop.set)
        return await make_pruner(load_settings(database_url=url), repo).prune(stop=stop)

    repo = Repository.from_url(url)
    try:
        return asyncio.run(timed(repo))
    finally:
        repo.close()


def _count_old(url: str, now: datetime) -> int:
    from weatherpipe.retention import Policy, Pruner
    from weatherpipe.storage.repository import Repository

    repo = Repository.from_url(url)
    try:
        return asyncio.run(Pruner(repo, Policy()).prune(now=now, dry_run=True)).deleted["readings"]
    finally:
        repo.close()


def prune_ingest(options: BenchOptions) -> Result:
    """Ingest rate into MariaDB with pruning running beside it, against without (same run)."""
    return _scenario(options, "mariadb")


def prune_ingest_postgresql(options: BenchOptions) -> Result:
    """Ingest rate into PostgreSQL with pruning running beside it, against without (same run)."""
    return _scenario(options, "postgresql")
