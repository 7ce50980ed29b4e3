"""Query plans that must hold whatever MariaDB's statistics say.

A table filled fast can carry statistics that are far off for minutes. MariaDB reads its
engine-independent statistics (mysql.table_stats, mysql.index_stats) when it opens a table,
so writing misleading ones there reproduces that state on a table of any size.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url

from weatherpipe.storage.analyses import ANALYSES
from weatherpipe.storage.engine import upgrade
from weatherpipe.storage.repository import Repository, Scored
from weatherpipe.testing import DEVICE_A, DEVICE_B, series

READINGS_PER_DEVICE = 600


@pytest.fixture
def misled(mariadb_url: str) -> Iterator[Repository]:
    """Two devices' readings, a few flagged, and statistics claiming each device sent about
    one reading (what makes a per-device lookup look free)."""
    repo = Repository.from_url(mariadb_url)
    upgrade(repo.engine)
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=20)
    for device in (DEVICE_A, DEVICE_B):
        repo.store_batch(series([10.0] * READINGS_PER_DEVICE, device, start=start))
        rows = repo.readings_after(device, None, READINGS_PER_DEVICE)
        flags = [Scored(row[0], 0.9, True) for row in rows[::100]]
        repo.save_detection("t", device, rows[-1][1], b"", flags)
    database = make_url(mariadb_url).database
    stats = {"db": database, "table": "readings"}
    with repo.engine.begin() as conn:
        conn.execute(
            text("REPLACE INTO mysql.table_stats VALUES (:db, :table, :rows)"),
            {**stats, "rows": 2 * READINGS_PER_DEVICE},
        )
        for arity in (1, 2):
            conn.execute(
                text("REPLACE INTO mysql.index_stats VALUES (:db, :table, :index, :arity, 1.0)"),
                {**stats, "index": "uq_readings_device_ts", "arity": arity},
            )
        conn.execute(text("FLUSH TABLES"))
    try:
        yield repo
    finally:
        with repo.engine.begin() as conn:
            for table in ("table_stats", "index_stats"):
                conn.execute(
                    text(f"DELETE FROM mysql.{table} WHERE db_name = :db AND table_name = :table"),
                    stats,
                )
        repo.close()


def test_anomalies_per_device_reads_only_flagged_readings(misled: Repository) -> None:
    since = datetime.now(UTC).replace(tzinfo=None) - timedelta(minutes=30)
    analysis = ANALYSES["deviceanomalies"]
    with misled.engine.connect() as conn:
        plan = conn.execute(text("EXPLAIN " + analysis.sql), {"since": since}).mappings().all()
    on_readings = [row for row in plan if row["table"] == "readings"]
    assert on_readings, plan
    assert all(row["key"] == "ix_readings_anomaly_ts" for row in on_readings), plan
    assert all("LATERAL" not in row["select_type"] for row in plan), plan
    # And the answer, under the same statistics.
    counts = {
        row["device_id"]: row["count"] for row in misled.analysis("deviceanomalies", since=since)
    }
    assert counts == {DEVICE_A: READINGS_PER_DEVICE // 100, DEVICE_B: READINGS_PER_DEVICE // 100}
