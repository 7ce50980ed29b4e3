"""The dialects' hot-path writers: literal SQL on MySQL, executemany on SQLite, same results."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import text

from weatherpipe.reading import Reading
from weatherpipe.storage.dialects import base, mysql
from weatherpipe.storage.repository import Repository, Scored
from weatherpipe.testing import DEVICE_A, DEVICE_B, series


def rows(repo: Repository, sql: str) -> list[tuple[object, ...]]:
    with repo.engine.connect() as conn:
        return [tuple(r) for r in conn.execute(text(sql))]


@pytest.mark.parametrize("count", [3, mysql.SMALL_SCORE_BATCH + 1, 500])
def test_scores_land_on_exactly_the_scored_rows(repo: Repository, count: int) -> None:
    repo.store_batch(series([20.0 + i % 7 for i in range(count + 5)]))
    scored = repo.readings_after(DEVICE_A, None, count)
    kinds = ("spike", "dip", "stuck")  # every other reading says what it is, the rest ""
    results = [
        Scored(rid, i / 10, i % 3 == 0, *((kinds[i % 3], "high") if i % 2 else ("", "")))
        for i, (rid, *_) in enumerate(scored)
    ]
    repo.save_detection("bench", DEVICE_A, scored[-1][1], "{}", results)
    stored = rows(
        repo, "SELECT id, is_anomaly, anomaly_score, kind, severity FROM readings ORDER BY id"
    )
    expected = {
        s.reading_id: (s.is_anomaly, s.score, s.kind or None, s.severity or None) for s in results
    }
    assert any(kind for *_, kind, _ in expected.values())
    for rid, flag, score, kind, severity in stored:
        if rid in expected:
            assert (bool(flag), score, kind, severity) == expected[rid]
        else:
            assert (flag, score, kind, severity) == (None, None, None, None)
    assert rows(repo, "SELECT COUNT(*) FROM readings WHERE detector = 'bench'") == [(count,)]


def test_rollups_and_device_span_match_the_readings_across_batches(repo: Repository) -> None:
    start = datetime(2026, 11, 27, 23, 59, 30, 123000, tzinfo=UTC)  # across a day boundary
    batch = [
        Reading(device, start + timedelta(seconds=s), 10.0 + (s * 37 % 11) / 4, 1.5, -2.25, s)
        for s in range(90)
        for device in (DEVICE_A, DEVICE_B)
    ]
    for first in range(0, len(batch), 41):
        repo.store_batch(batch[first : first + 41])
    minute = rows(
        repo,
        "SELECT device_id, SUM(n), MIN(t_min), MAX(t_max) FROM readings_minute "
        "GROUP BY device_id ORDER BY device_id",
    )
    scan = rows(
        repo,
        "SELECT device_id, COUNT(*), MIN(temperature), MAX(temperature) FROM readings "
        "GROUP BY device_id ORDER BY device_id",
    )
    assert minute == scan
    assert rows(repo, "SELECT COUNT(*) FROM readings_daily") == [(4,)]
    device = next(d for d in repo.devices() if d["device_id"] == DEVICE_A)
    assert (device["first_seen"], device["last_seen"]) == (start, start + timedelta(seconds=89))
    assert (device["latitude"], device["longitude"]) == (1.5, -2.25)


def test_strings_that_are_not_uuids_are_escaped() -> None:
    assert mysql.quote("6b4fa32e-a7f5-4ec2-8820-6581468ef36b") == (
        "'6b4fa32e-a7f5-4ec2-8820-6581468ef36b'"
    )
    assert mysql.quote("it's; DROP TABLE readings") == "'it\\'s; DROP TABLE readings'"


def test_non_finite_numbers_are_refused_not_rendered() -> None:
    with pytest.raises(ValueError, match="non-finite"):
        base.number(float("nan"))
    assert base.number(21.37) == "21.37"


def test_a_moving_device_is_placed_where_its_latest_reading_was(repo: Repository) -> None:
    start = datetime(2026, 11, 28, 10, 59, 58, tzinfo=UTC)
    path = [(s, 50.0 + s, 8.0 - s) for s in range(5)]  # crosses a minute boundary
    batch = [
        Reading(DEVICE_A, start + timedelta(seconds=s), 20.0, lat, lon, s) for s, lat, lon in path
    ]
    repo.store_batch([batch[3], batch[4], batch[0], batch[2], batch[1]])  # out of order
    device = next(d for d in repo.devices() if d["device_id"] == DEVICE_A)
    assert (device["first_seen"], device["last_seen"]) == (start, start + timedelta(seconds=4))
    assert (device["latitude"], device["longitude"]) == (54.0, 4.0)
