"""The repository on SQLite and MariaDB: exactly-once storage, rollups, analyses, detection."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import text

from weatherpipe.reading import Reading
from weatherpipe.storage.repository import DeadLetter, Detection, Repository, Scored
from weatherpipe.storage.tables import metadata
from weatherpipe.testing import BASE_TIME, DEVICE_A, DEVICE_B, make_reading, series


def scalar(repo: Repository, sql: str, **params: object) -> object:
    with repo.engine.connect() as conn:
        return conn.execute(text(sql), params).scalar()


def test_migrations_build_exactly_the_declared_schema(repo: Repository) -> None:
    with repo.engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), metadata)
    assert diff == []


def test_a_batch_is_stored_with_its_rollups(repo: Repository) -> None:
    result = repo.store_batch(series([20.0, 21.5, 19.0]), [DeadLetter(b"x", "bad")])
    assert (result.stored, result.duplicates, result.dead) == (3, 0, 1)
    assert scalar(repo, "SELECT COUNT(*) FROM readings") == 3
    assert scalar(repo, "SELECT n FROM readings_minute") == 3
    assert scalar(repo, "SELECT t_max FROM readings_daily") == 21.5
    assert scalar(repo, "SELECT COUNT(*) FROM dead_letters") == 1


def test_a_reading_sent_twice_is_stored_once_and_counted_once(repo: Repository) -> None:
    first = series([20.0, 21.0, 22.0])
    repo.store_batch(first)
    again = repo.store_batch([first[1], make_reading(seconds=3, temperature=30.0), first[1]])
    assert (again.stored, again.duplicates) == (1, 2)
    assert scalar(repo, "SELECT COUNT(*) FROM readings") == 4
    assert scalar(repo, "SELECT SUM(n) FROM readings_daily") == 4
    assert repo.analysis("devicedata") == [{"device_id": DEVICE_A, "count": 4}]


def test_milliseconds_are_part_of_the_key(repo: Repository) -> None:
    stamp = datetime(2026, 1, 1, 0, 0, 0, 1000, tzinfo=UTC)
    batch = [
        Reading(DEVICE_A, stamp, 1.0, 0, 0),
        Reading(DEVICE_A, stamp + timedelta(milliseconds=1), 2.0, 0, 0),
    ]
    assert repo.store_batch(batch).stored == 2
    page = repo.readings_page(DEVICE_A)
    assert [r["ts"] for r in page] == [r.ts for r in batch]


def test_rollup_analyses_equal_full_scans_of_readings(repo: Repository) -> None:
    days = [BASE_TIME + timedelta(days=d, hours=h) for d in range(3) for h in (0, 13)]
    batch = [
        make_reading(device, i, 10.0 + (i * 7919 % 23) / 3.0, start=start)
        for start in days
        for device in (DEVICE_A, DEVICE_B)
        for i in range(40)
    ]
    for i in range(0, len(batch), 97):  # several batches, some minutes split across them
        repo.store_batch(batch[i : i + 97])

    counts = {r["device_id"]: r["count"] for r in repo.analysis("devicedata")}
    maxima = {r["device_id"]: r["max_temperature"] for r in repo.analysis("devicemax")}
    for device in (DEVICE_A, DEVICE_B):
        n = "SELECT COUNT(*) FROM readings WHERE device_id = :d"
        m = "SELECT MAX(temperature) FROM readings WHERE device_id = :d"
        assert counts[device] == scalar(repo, n, d=device)
        assert maxima[device] == scalar(repo, m, d=device)
    day = BASE_TIME + timedelta(days=1)
    day_max = repo.analysis("daymax", day=day.day, month=day.month, year=None)
    expected = max(r.temperature for r in batch if r.device_id == DEVICE_A and r.ts.day == day.day)
    assert {r["device_id"]: r["max_temperature"] for r in day_max}[DEVICE_A] == expected
    assert repo.analysis("daymax", day=1, month=2, year=None) == []


def test_anomaly_analysis_counts_recent_flags_per_device(repo: Repository) -> None:
    now = datetime.now(UTC).replace(microsecond=0)
    readings = series([20.0] * 5, start=now - timedelta(minutes=40))
    readings += series([20.0] * 5, start=now - timedelta(minutes=5))
    readings += series([20.0] * 2, DEVICE_B, start=now - timedelta(minutes=5))
    repo.store_batch(readings)
    rows = repo.readings_after(DEVICE_A, None, 100)
    flags = [Scored(rid, 0.9, True) for rid, *_ in rows]  # all ten flagged, five recent
    repo.save_detection("test", DEVICE_A, rows[-1][1], "{}", flags)

    answer = repo.analysis("deviceanomalies", since=now - timedelta(minutes=30))
    assert answer == [
        {"device_id": DEVICE_B, "count": 0},
        {"device_id": DEVICE_A, "count": 5},
    ]
    assert len(repo.anomalous_readings(now - timedelta(minutes=30), DEVICE_A)) == 5


def test_detection_state_and_flags_commit_together(repo: Repository) -> None:
    repo.store_batch(series([1.0, 2.0, 3.0]))
    rows = repo.readings_after(DEVICE_A, None, 2)
    first = [Scored(r[0], 0.1, False) for r in rows]
    repo.save_detections("d", [Detection(DEVICE_A, rows[-1][1], '{"s": 1}', first, True, 0.1)])
    state = repo.detector_states("d")[DEVICE_A]
    assert state == (rows[-1][1], '{"s": 1}', 0.1)
    rest = repo.readings_after(DEVICE_A, state[0], 10)
    assert [row[2] for row in rest] == [3.0]
    flag = Scored(rest[0][0], 0.2, True, "spike", "high")
    repo.save_detection("d", DEVICE_A, rest[-1][1], '{"s": 2}', [flag])
    assert repo.detector_states("d")[DEVICE_A] == (rest[-1][1], '{"s": 2}', None)
    assert scalar(repo, "SELECT COUNT(*) FROM readings WHERE detector = 'd'") == 3
    with repo.engine.connect() as conn:
        sql = "SELECT temperature, kind, severity FROM readings WHERE kind IS NOT NULL"
        assert [tuple(row) for row in conn.execute(text(sql))] == [(3.0, "spike", "high")]


def test_weather_trans_view_keeps_the_original_queries_working(repo: Repository) -> None:
    repo.store_batch(series([20.0, 25.0]))
    sql = "SELECT MAX(temperature) FROM weather_trans WHERE deviceid = :d AND isanomal = 0"
    assert scalar(repo, sql, d=DEVICE_A) == 25.0


def test_dead_letters_keep_raw_bytes_and_can_be_marked_replayed(repo: Repository) -> None:
    raw = b"\x00\xffnot a reading"
    repo.store_batch([], [DeadLetter(raw, "not valid UTF-8 JSON", {"k": "v"})])
    (letter,) = repo.dead_letters()
    assert (letter["data"], letter["attributes"]) == (raw, {"k": "v"})
    repo.mark_replayed([letter["id"]])
    assert repo.dead_letters() == []


def test_readings_page_on_with_the_cursor(repo: Repository) -> None:
    repo.store_batch(series([float(i) for i in range(10)]))
    first = repo.readings_page(DEVICE_A, limit=4)
    second = repo.readings_page(DEVICE_A, limit=4, after=first[-1]["ts"])
    assert [r["temperature"] for r in first + second] == [float(i) for i in range(8)]


@pytest.mark.parametrize("batch_size", [1, 2000])
def test_devices_table_tracks_location_and_time_span(repo: Repository, batch_size: int) -> None:
    readings = series([5.0] * 5)
    for i in range(0, 5, batch_size):
        repo.store_batch(readings[i : i + batch_size])
    (device,) = repo.devices()
    assert device["count"] == 5
    assert (device["first_seen"], device["last_seen"]) == (readings[0].ts, readings[-1].ts)
    assert device["last_temperature"] == 5.0
