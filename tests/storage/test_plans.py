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
from weatherpipe.storage.repository import Repository, Scored, naive_utc
from weatherpipe.testing import DEVICE_A, DEVICE_B, series

READINGS_PER_DEVICE = 600


# The former query: devices joined to a subquery grouped by device (see analyses.py).
JOINED_SHAPE = (
    "SELECT d.id AS device_id, COALESCE(a.n, 0) AS count FROM devices d LEFT JOIN ("
    "SELECT device_id, COUNT(*) AS n FROM readings WHERE is_anomaly = 1 AND ts >= :since "
    "GROUP BY device_id) a ON a.device_id = d.id ORDER BY d.id"
)


@pytest.fixture
def misled(mariadb_url: str) -> Iterator[Repository]:
    """Two devices' readings, a few flagged, and statistics claiming each device sent about
    one reading (what makes a per-device lookup look free). The statistics rows go with the
    database when the mariadb_url fixture drops it."""
    repo = Repository.from_url(mariadb_url)
    try:
        upgrade(repo.engine)
        start = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=20)
        for device in (DEVICE_A, DEVICE_B):
            repo.store_batch(series([10.0] * READINGS_PER_DEVICE, device, start=start))
            rows = repo.readings_after(device, None, READINGS_PER_DEVICE)
            flags = [Scored(row[0], 0.9, True) for row in rows[::100]]
            repo.save_detection("t", device, rows[-1][1], "{}", flags)
        stats = {"db": make_url(mariadb_url).database, "table": "readings"}
        with repo.engine.begin() as conn:
            conn.execute(
                text("REPLACE INTO mysql.table_stats VALUES (:db, :table, :rows)"),
                {**stats, "rows": 2 * READINGS_PER_DEVICE},
            )
            for arity in (1, 2):
                conn.execute(
                    text(
                        "REPLACE INTO mysql.index_stats VALUES (:db, :table, :index, :arity, 1.0)"
                    ),
                    {**stats, "index": "uq_readings_device_ts", "arity": arity},
                )
            conn.execute(text("FLUSH TABLES readings"))  # reopened with those statistics
        yield repo
    finally:
        repo.close()


def plan(repo: Repository, sql: str, since: datetime) -> list[dict[str, object]]:
    with repo.engine.connect() as conn:
        rows = conn.execute(text("EXPLAIN " + sql), {"since": naive_utc(since)}).mappings()
        return [dict(row) for row in rows]


def test_anomalies_per_device_reads_only_flagged_readings(misled: Repository) -> None:
    since = datetime.now(UTC) - timedelta(minutes=30)
    # The statistics do mislead: the former query goes through every device's readings.
    joined = plan(misled, JOINED_SHAPE, since)
    assert any(row["select_type"] == "LATERAL DERIVED" for row in joined), joined

    current = plan(misled, ANALYSES["deviceanomalies"].sql, since)
    on_readings = [row for row in current if row["table"] == "readings"]
    assert on_readings, current
    assert all(row["key"] == "ix_readings_anomaly_ts" for row in on_readings), current
    assert not any("LATERAL" in str(row["select_type"]) for row in current), current
    # And the answer, under the same statistics.
    counts = {
        row["device_id"]: row["count"] for row in misled.analysis("deviceanomalies", since=since)
    }
    assert counts == {DEVICE_A: READINGS_PER_DEVICE // 100, DEVICE_B: READINGS_PER_DEVICE // 100}
