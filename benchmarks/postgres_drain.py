"""ingest-drain on PostgreSQL: the same NATS backlog through `weatherpipe ingest` into
PostgreSQL and into MariaDB, against raw COPY and raw multi-row INSERTs (psycopg) and raw
multi-row INSERTs (PyMySQL), all in the same interleaved rounds."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from itertools import chain
from typing import TYPE_CHECKING

from sqlalchemy.engine import make_url

from benchmarks.base import (
    BenchOptions,
    Result,
    fleet_payloads,
    median,
    publish_all,
    scratch_mariadb,
    scratch_postgresql,
    scratch_stream,
)
from benchmarks.drain import (
    BACKLOG_START,
    RAW_ROWS_PER_TRANSACTION,
    _backlog,
    _rows,
    drain_rate,
    raw_insert_rate,
)

if TYPE_CHECKING:
    import psycopg

_COLUMNS = "readings (device_id, ts, temperature, latitude, longitude, seq, received_at)"


def _connect(url: str) -> psycopg.Connection[tuple[object, ...]]:
    import psycopg

    parsed = make_url(url)
    return psycopg.connect(
        host=parsed.host or "127.0.0.1",
        port=parsed.port or 5432,
        user=parsed.username or "postgres",
        password=parsed.password or None,
        dbname=parsed.database,
    )


def raw_copy_rate(url: str, rows: Sequence[tuple[object, ...]], per_transaction: int) -> float:
    """Rows/s of psycopg's COPY (rows written by its C writer) straight into
    `readings`, `per_transaction` rows per transaction: the fastest way in, with no check for
    stored keys and no rollups."""
    with _connect(url) as conn:
        cursor = conn.cursor()
        started = time.perf_counter()
        for first in range(0, len(rows), per_transaction):
            with cursor.copy(f"COPY {_COLUMNS} FROM STDIN") as copy:
                for row in rows[first : first + per_transaction]:
                    copy.write_row(row)
            conn.commit()
        return len(rows) / (time.perf_counter() - started)


def raw_multirow_rate(url: str, rows: Sequence[tuple[object, ...]]) -> float:
    """Rows/s of one multi-row INSERT of 2,000 rows per statement and transaction (the MariaDB
    baseline's shape), parameters bound by psycopg."""
    placeholders = "(%s, %s, %s, %s, %s, %s, %s)"
    with _connect(url) as conn:
        cursor = conn.cursor()
        started = time.perf_counter()
        for first in range(0, len(rows), RAW_ROWS_PER_TRANSACTION):
            chunk = rows[first : first + RAW_ROWS_PER_TRANSACTION]
            values = ",".join([placeholders] * len(chunk))
            cursor.execute(f"INSERT INTO {_COLUMNS} VALUES {values}", list(chain(*chunk)))
            conn.commit()
        return len(rows) / (time.perf_counter() - started)


def ingest_drain_postgresql(options: BenchOptions) -> Result:
    """NATS backlog → `weatherpipe ingest` → PostgreSQL, against raw COPY and raw multi-row
    INSERT, with MariaDB's drain and raw multi-row INSERT in the same rounds (medians)."""
    from weatherpipe.config import Settings

    devices, ticks = _backlog(options)
    payloads = fleet_payloads(devices, ticks, BACKLOG_START)
    rows = _rows(payloads)
    batch = Settings.model_fields["batch_size"].default
    runs: dict[str, list[float]] = {
        k: [] for k in ("pg", "copy", "pg_multirow", "mariadb", "mariadb_multirow")
    }
    with scratch_stream(options.nats_url) as topic:
        asyncio.run(publish_all(options.nats_url, topic, payloads))
        for _ in range(options.repeats):
            with scratch_postgresql(options.postgresql_url, options.tag) as url:
                runs["copy"].append(raw_copy_rate(url, rows, batch))
            with scratch_postgresql(options.postgresql_url, options.tag) as url:
                runs["pg"].append(drain_rate(options, url, topic, len(payloads), 1))
            with scratch_postgresql(options.postgresql_url, options.tag) as url:
                runs["pg_multirow"].append(raw_multirow_rate(url, rows))
            with scratch_mariadb(options.mariadb_url, options.tag) as url:
                runs["mariadb"].append(drain_rate(options, url, topic, len(payloads), 1))
            with scratch_mariadb(options.mariadb_url, options.tag) as url:
                runs["mariadb_multirow"].append(raw_insert_rate(url, rows))
    m = {k: median(v) for k, v in runs.items()}
    value = m["pg"]
    baselines = {
        "raw COPY": m["copy"],
        "raw multi-row INSERT": m["pg_multirow"],
        "MariaDB ingest": m["mariadb"],
        "MariaDB raw multi-row INSERT": m["mariadb_multirow"],
    }
    return Result(
        "ingest-drain-postgresql",
        f"NATS → PostgreSQL, {len(payloads):,}-reading backlog of {devices:,} devices",
        value,
        "readings/s",
        "≥ MariaDB ingest in the same run",
        value >= m["mariadb"],
        runs=runs["pg"],
        baselines=baselines,
        ratios={name: value / rate for name, rate in baselines.items()},
        details={f"{k}_runs": v for k, v in runs.items()} | {"copy_rows_per_transaction": batch},
    )
