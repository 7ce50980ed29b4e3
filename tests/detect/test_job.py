"""The detection job: flags in the database, resumes after a restart, waits for late readings."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import text

from weatherpipe.detect.job import DetectionJob, settled
from weatherpipe.storage.repository import Repository
from weatherpipe.testing import series

NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)


def scores(repo: Repository) -> list[tuple[float | None, bool | None]]:
    with repo.engine.connect() as conn:
        sql = "SELECT anomaly_score, is_anomaly FROM readings ORDER BY ts"
        return [(s, None if f is None else bool(f)) for s, f in conn.execute(text(sql))]


def scores_from_scratch(repo: Repository) -> list[tuple[float | None, bool | None]]:
    """Forget every flag and detector state, score everything again in one pass: the answer
    an uninterrupted job gives."""
    with repo.engine.begin() as conn:
        conn.execute(text("UPDATE readings SET anomaly_score = NULL, is_anomaly = NULL"))
        conn.execute(text("DELETE FROM detector_state"))
    DetectionJob(repo, settle_seconds=0).run_once()
    return scores(repo)


def wave(n: int, spike_at: int | None = None) -> list[float]:
    values = [20.0 + 0.3 * ((i * 37) % 11) / 11 for i in range(n)]
    if spike_at is not None:
        values[spike_at] += 15.0
    return values


def test_a_restarted_job_resumes_and_gives_the_same_flags(repo: Repository) -> None:
    readings = series(wave(1500, spike_at=1200), start=NOW - timedelta(days=1))
    repo.store_batch(readings[:800])
    DetectionJob(repo, settle_seconds=0).run_once()
    repo.store_batch(readings[800:])
    DetectionJob(repo, settle_seconds=0).run_once()  # a new process: state from the database
    resumed = scores(repo)

    assert scores_from_scratch(repo) == resumed
    assert all(s is not None for s, _ in resumed)
    assert resumed[1200][1] is True
    assert sum(bool(f) for _, f in resumed) <= 3


def test_running_twice_changes_nothing(sqlite_repo: Repository) -> None:
    sqlite_repo.store_batch(series(wave(400), start=NOW - timedelta(days=1)))
    job = DetectionJob(sqlite_repo, settle_seconds=0)
    assert job.run_once() == 400
    assert job.run_once() == 0


def test_newest_readings_wait_until_they_are_settled() -> None:
    t0 = NOW - timedelta(seconds=10)
    row = lambda i, received: (i, t0 + timedelta(seconds=i), 20.0, received)  # noqa: E731
    fresh = [row(i, NOW) for i in range(5)]  # stored just now, 5 s of sensor time
    assert [r[0] for r in settled(fresh, NOW, 2.0)] == [0, 1, 2]
    old = [row(i, NOW - timedelta(seconds=5)) for i in range(5)]
    assert settled(old, NOW, 2.0) == old
    assert settled([], NOW, 2.0) == []


def test_a_reading_stored_late_is_still_scored(sqlite_repo: Repository) -> None:
    clock = [NOW]
    readings = series(wave(60), start=NOW - timedelta(seconds=60))  # the last one at NOW - 1 s
    late = readings.pop(-2)  # in another ingest process's batch for a moment longer
    sqlite_repo.store_batch(readings, received_at=NOW)
    job = DetectionJob(sqlite_repo, settle_seconds=2.0, clock=lambda: clock[0])
    assert job.run_once() == 58  # all but the newest: it may still have older company
    sqlite_repo.store_batch([late], received_at=NOW + timedelta(seconds=0.5))
    clock[0] = NOW + timedelta(seconds=3)
    assert job.run_once() == 2
    assert all(score is not None for score, _ in scores(sqlite_repo))


def test_one_pass_pages_through_a_backlog_of_many_devices(repo: Repository) -> None:
    # Pages of 120 readings shared by 7 devices: 17 per device and page, just stored (so each
    # page holds back its last second as unsettled), and still one pass scores all but each
    # device's newest second, exactly once.
    devices = [f"00000000-0000-4000-8000-00000000000{i}" for i in range(7)]
    start = NOW - timedelta(minutes=5)
    for device in devices:
        repo.store_batch(series(wave(100), start=start, device_id=device), received_at=NOW)
    job = DetectionJob(repo, batch=120, settle_seconds=1.0, clock=lambda: NOW)
    assert job.run_once() == 7 * 99
    assert job.run_once() == 0
    assert sum(score is None for score, _ in scores(repo)) == 7


def test_a_save_that_fails_leaves_the_detectors_as_last_committed(sqlite_repo: Repository) -> None:
    readings = series(wave(600, spike_at=500), start=NOW - timedelta(days=1))
    sqlite_repo.store_batch(readings[:300])
    job = DetectionJob(sqlite_repo, settle_seconds=0)
    job.run_once()
    sqlite_repo.store_batch(readings[300:])
    save = sqlite_repo.save_detections
    sqlite_repo.save_detections = lambda *args: 1 / 0  # type: ignore[method-assign]
    with pytest.raises(ZeroDivisionError):
        job.run_once()  # the detector saw readings 300-599, then the save failed
    sqlite_repo.save_detections = save  # type: ignore[method-assign]
    job.run_once()
    resumed = scores(sqlite_repo)

    assert scores_from_scratch(sqlite_repo) == resumed
