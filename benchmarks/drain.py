"""Drain scenarios: a backlog through `weatherpipe ingest` into MariaDB (one or more processes),
and the embedded memory bus into SQLite, each against raw inserts into the same table."""

from __future__ import annotations

import asyncio
import sqlite3
import tempfile
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

import pymysql
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from benchmarks.base import (
    BenchOptions,
    Processes,
    Result,
    fleet_payloads,
    median,
    migrate,
    publish_all,
    scratch_mariadb,
    scratch_name,
    scratch_stream,
    stage_env,
)
from weatherpipe.reading import decode

RAW_ROWS_PER_TRANSACTION = 2000
DRAIN_TIMEOUT_SECONDS = 600.0
POLL_SECONDS = 0.1
# The backlog starts at a fixed past hour, so runs are comparable.
BACKLOG_START = datetime(2026, 11, 1, tzinfo=UTC).timestamp()
_INSERT = (
    "INSERT INTO readings (device_id, ts, temperature, latitude, longitude, seq, received_at) "
    "VALUES (%s, %s, %s, %s, %s, %s, %s)"
)


def _rows(payloads: Sequence[bytes]) -> list[tuple[object, ...]]:
    now = datetime.now(UTC).replace(tzinfo=None)
    out: list[tuple[object, ...]] = []
    for payload in payloads:
        r = decode(payload)
        ts = r.ts.astimezone(UTC).replace(tzinfo=None)
        out.append((r.device_id, ts, r.temperature, r.latitude, r.longitude, r.seq, now))
    return out


def _pymysql(url: str) -> pymysql.connections.Connection:  # type: ignore[type-arg,unused-ignore]
    parsed = make_url(url)
    return pymysql.connect(
        host=parsed.host or "127.0.0.1",
        port=parsed.port or 3306,
        user=parsed.username or "root",
        password=parsed.password or "",
        database=parsed.database,
    )


def raw_insert_rate(url: str, rows: Sequence[tuple[object, ...]]) -> float:
    """Rows/s of plain PyMySQL multi-row INSERTs, 2,000 rows per transaction, into `readings`
    (the rows are decoded beforehand: this is the database's and the driver's rate alone)."""
    conn = _pymysql(url)
    try:
        cursor = conn.cursor()
        started = time.perf_counter()
        for first in range(0, len(rows), RAW_ROWS_PER_TRANSACTION):
            cursor.executemany(_INSERT, rows[first : first + RAW_ROWS_PER_TRANSACTION])
            conn.commit()
        return len(rows) / (time.perf_counter() - started)
    finally:
        conn.close()


def one_by_one_rate(url: str, rows: Sequence[tuple[object, ...]]) -> float:
    """Rows/s of the original subscriber's way: one INSERT and one commit per reading."""
    conn = _pymysql(url)
    try:
        cursor = conn.cursor()
        started = time.perf_counter()
        for row in rows:
            cursor.execute(_INSERT, row)
            conn.commit()
        return len(rows) / (time.perf_counter() - started)
    finally:
        conn.close()


def drain_rate(
    options: BenchOptions, database_url: str, topic: str, expected: int, processes: int
) -> float:
    """Readings/s of `processes` x `weatherpipe ingest` draining a backlog from a fresh durable
    consumer: stored-count growth from the first poll that sees rows to the one that sees all
    (so process start-up is not counted; the daily rollup's sum is the stored count)."""
    env = stage_env(database_url, options.nats_url, topic, "drain")
    engine = create_engine(database_url)
    query = text("SELECT COALESCE(SUM(n), 0) FROM readings_daily")
    try:
        with Processes() as children, engine.connect() as conn:
            launched = time.perf_counter()
            for _ in range(processes):
                children.start(["ingest"], env)
            first: tuple[float, int] | None = None
            deadline = time.monotonic() + DRAIN_TIMEOUT_SECONDS
            while True:
                stored = int(conn.execute(query).scalar() or 0)
                conn.rollback()  # a fresh snapshot for the next poll
                now = time.perf_counter()
                if stored and first is None:
                    first = (now, stored)
                if stored >= expected and first is not None:
                    if stored == first[1]:
                        # A backlog too small to see twice: count from the launch instead.
                        return stored / (now - launched)
                    return (stored - first[1]) / (now - first[0])
                if time.monotonic() > deadline:
                    raise TimeoutError(f"drained {stored:,} of {expected:,} readings")
                children.check()
                time.sleep(POLL_SECONDS)
    finally:
        engine.dispose()


def _backlog(options: BenchOptions) -> tuple[int, int]:
    devices = int(options.size(1000, 100, options.devices))
    total = int(options.size(200_000, 10_000, options.backlog))
    return devices, max(1, total // devices)


def ingest_drain(options: BenchOptions) -> Result:
    """NATS backlog → `weatherpipe ingest` → MariaDB, against raw multi-row INSERTs and the
    one-insert-one-commit path, each round on fresh databases, interleaved (medians). The
    figure is one process; two processes on the same consumer are in the details."""
    devices, ticks = _backlog(options)
    payloads = fleet_payloads(devices, ticks, BACKLOG_START)
    rows = _rows(payloads)
    sample = rows[: int(options.size(5000, 300))]
    drains, pairs, raws, singles = [], [], [], []
    with scratch_stream(options.nats_url) as topic:
        publish_seconds = asyncio.run(publish_all(options.nats_url, topic, payloads))
        for _ in range(options.repeats):
            with scratch_mariadb(options.mariadb_url, options.tag) as url:
                raws.append(raw_insert_rate(url, rows))
            with scratch_mariadb(options.mariadb_url, options.tag) as url:
                drains.append(drain_rate(options, url, topic, len(payloads), 1))
            with scratch_mariadb(options.mariadb_url, options.tag) as url:
                pairs.append(drain_rate(options, url, topic, len(payloads), 2))
            with scratch_mariadb(options.mariadb_url, options.tag) as url:
                singles.append(one_by_one_rate(url, sample))
    value, raw, single = median(drains), median(raws), median(singles)
    pair = median(pairs)
    return Result(
        "ingest-drain",
        f"NATS → MariaDB, {len(payloads):,}-reading backlog of {devices:,} devices",
        value,
        "readings/s",
        "≥ 0.8 x raw multi-row INSERT",
        value >= 0.8 * raw,
        runs=drains,
        baselines={"raw multi-row INSERT": raw, "one INSERT + commit each": single},
        ratios={"raw multi-row INSERT": value / raw, "one INSERT + commit each": value / single},
        details={
            "raw_runs": raws,
            "two_process_runs": pairs,
            "two_processes_per_s": pair,
            "two_processes_to_raw": pair / raw,
            "one_by_one_runs": singles,
            "publish_per_s": len(payloads) / publish_seconds,
            "devices": devices,
        },
    )


def scale_out(options: BenchOptions) -> Result:
    """The same backlog drained by 1 and by 2 ingest processes on one durable consumer."""
    devices, ticks = _backlog(options)
    payloads = fleet_payloads(devices, ticks, BACKLOG_START)
    one, two = [], []
    with scratch_stream(options.nats_url) as topic:
        asyncio.run(publish_all(options.nats_url, topic, payloads))
        for _ in range(options.repeats):
            with scratch_mariadb(options.mariadb_url, options.tag) as url:
                one.append(drain_rate(options, url, topic, len(payloads), 1))
            with scratch_mariadb(options.mariadb_url, options.tag) as url:
                two.append(drain_rate(options, url, topic, len(payloads), 2))
    value, base = median(two), median(one)
    return Result(
        "scale-out",
        f"2 ingest processes, one subscription, {len(payloads):,} readings",
        value,
        "readings/s",
        "report (2 shared cores)",
        None,
        runs=two,
        baselines={"1 process": base},
        ratios={"1 process": value / base},
        details={"one_process_runs": one},
    )


def embedded_drain(options: BenchOptions) -> Result:
    """memory:// bus → IngestWorker → SQLite file, against raw sqlite3 executemany INSERTs of
    the same rows into the same table, 2,000 per transaction."""
    devices, ticks = _backlog(options)
    payloads = fleet_payloads(devices, ticks, BACKLOG_START)
    rows = _rows(payloads)
    drains, raws = [], []
    for _ in range(options.repeats):
        with tempfile.TemporaryDirectory() as tmp:
            raws.append(_sqlite_raw_rate(Path(tmp), rows))
        with tempfile.TemporaryDirectory() as tmp:
            drains.append(asyncio.run(_embedded_once(Path(tmp), payloads)))
    value, raw = median(drains), median(raws)
    return Result(
        "embedded-drain",
        f"memory bus → SQLite, {len(payloads):,} readings of {devices:,} devices",
        value,
        "readings/s",
        "≥ 100,000 readings/s",
        value >= 100_000,
        runs=drains,
        baselines={"raw sqlite3 executemany INSERT": raw},
        ratios={"raw sqlite3 executemany INSERT": value / raw},
        details={"raw_runs": raws},
    )


def _sqlite_raw_rate(folder: Path, rows: Sequence[tuple[object, ...]]) -> float:
    path = folder / "raw.db"
    migrate(f"sqlite:///{path}")
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    text_rows = [(*r[:1], str(r[1]), *r[2:6], str(r[6])) for r in rows]
    started = time.perf_counter()
    for first in range(0, len(text_rows), RAW_ROWS_PER_TRANSACTION):
        with conn:
            conn.executemany(
                _INSERT.replace("%s", "?"), text_rows[first : first + RAW_ROWS_PER_TRANSACTION]
            )
    rate = len(rows) / (time.perf_counter() - started)
    conn.close()
    return rate


async def _embedded_once(folder: Path, payloads: Sequence[bytes]) -> float:
    """One drain by the ingest worker as `weatherpipe up` builds it (its default settings)."""
    from weatherpipe.bus import create_bus
    from weatherpipe.compose import make_ingest, open_repository
    from weatherpipe.config import load_settings
    from weatherpipe.lifecycle import quiet_collector

    settings = load_settings(database_url=f"sqlite:///{folder / 'weather.db'}")
    repo = open_repository(settings, migrate=True)
    bus = create_bus(f"memory://{scratch_name('bench')}", "readings", "ingest")
    try:
        await bus.setup()
        for payload in payloads:
            await bus.publish(payload)
        quiet_collector()
        worker = make_ingest(settings, bus, repo)
        stop = asyncio.Event()
        started = time.perf_counter()
        task = asyncio.create_task(worker.run(stop))
        while worker.stats.stored < len(payloads):
            if task.done():
                task.result()
                raise RuntimeError("ingest stopped before the backlog was stored")
            await asyncio.sleep(0.01)
        elapsed = time.perf_counter() - started
        stop.set()
        await task
        return len(payloads) / elapsed
    finally:
        await bus.close()
        repo.close()
