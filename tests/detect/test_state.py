"""Detector state in the database is versioned JSON: a pickle is never loaded, state of another
version starts the device afresh with one warning, and neither ever stops the job."""

from __future__ import annotations

import logging
import pickle
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest
from sqlalchemy import text

from weatherpipe.detect.job import DetectionJob
from weatherpipe.storage.engine import upgrade
from weatherpipe.storage.repository import Repository
from weatherpipe.testing import DEVICE_A, DEVICE_B, series

START = datetime(2026, 11, 28, 8, 0, tzinfo=UTC)
WARNING = "stored default detector state not used"


class Planted:
    """Unpickling this creates a file: the proof that code ran."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __reduce__(self) -> tuple[Any, ...]:
        return (open, (str(self.path), "w"))


def calm(n: int) -> list[float]:
    return [20.0 + 0.05 * ((i * 7) % 5) for i in range(n)]


def stored_state(repo: Repository, device: str = DEVICE_A) -> tuple[Any, Any]:
    with repo.engine.connect() as conn:
        sql = "SELECT state, warming_up FROM detector_state WHERE device_id = :d"
        state, warming_up = conn.execute(text(sql), {"d": device}).one()
    return state, warming_up


def overwrite_state(repo: Repository, state: str | bytes) -> None:
    with repo.engine.begin() as conn:
        conn.execute(text("UPDATE detector_state SET state = :s"), {"s": state})


def warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]


def test_a_malicious_pickle_in_the_database_is_never_run(
    repo: Repository, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    control, planted = tmp_path / "control", tmp_path / "planted"
    pickle.loads(pickle.dumps(Planted(control), protocol=0))
    assert control.exists()  # the blob runs code when unpickled
    readings = series(calm(630), DEVICE_A, start=START)
    repo.store_batch(readings[:600])
    DetectionJob(repo, settle_seconds=0).run_once()
    overwrite_state(repo, pickle.dumps(Planted(planted), protocol=0).decode("ascii"))
    repo.store_batch(readings[600:])

    with caplog.at_level(logging.WARNING):
        scored = DetectionJob(repo, settle_seconds=0).run_once()  # a new process loads it

    assert not planted.exists()
    assert scored == 30  # the device goes on from where it was, with a fresh detector
    (line,) = warnings(caplog)
    assert DEVICE_A in line and "not JSON" in line and WARNING in line
    state, warming_up = stored_state(repo)
    assert orjson.loads(state)["version"] >= 1 and warming_up


def test_state_of_another_version_starts_afresh_with_one_warning(
    repo: Repository, caplog: pytest.LogCaptureFixture
) -> None:
    readings = series(calm(900), DEVICE_A, start=START)
    repo.store_batch(readings[:600])
    DetectionJob(repo, settle_seconds=0).run_once()
    state, warming_up = stored_state(repo)
    assert not warming_up
    overwrite_state(repo, orjson.dumps({**orjson.loads(state), "version": 999}).decode())
    repo.store_batch(readings[600:])

    with caplog.at_level(logging.WARNING):
        job = DetectionJob(repo, settle_seconds=0)
        assert job.run_once() == 300
        repo.store_batch(series(calm(30), DEVICE_A, start=START + timedelta(seconds=900)))
        assert job.run_once() == 30

    (line,) = warnings(caplog)
    assert DEVICE_A in line and "999" in line
    assert orjson.loads(stored_state(repo)[0])["version"] != 999


def test_damaged_state_of_the_right_version_does_not_stop_the_job(
    repo: Repository, caplog: pytest.LogCaptureFixture
) -> None:
    repo.store_batch(series(calm(100), DEVICE_A, start=START))
    repo.store_batch(series(calm(100), DEVICE_B, start=START))
    DetectionJob(repo, settle_seconds=0).run_once()
    state = orjson.loads(stored_state(repo)[0])
    with repo.engine.begin() as conn:
        damaged = orjson.dumps({"version": state["version"], "detector": state["detector"]})
        sql = "UPDATE detector_state SET state = :s WHERE device_id = :d"
        conn.execute(text(sql), {"s": damaged.decode(), "d": DEVICE_A})
    repo.store_batch(series(calm(10), DEVICE_A, start=START + timedelta(seconds=100)))

    with caplog.at_level(logging.WARNING):
        assert DetectionJob(repo, settle_seconds=0).run_once() == 10

    (line,) = warnings(caplog)
    assert DEVICE_A in line and "damaged" in line


def test_pickles_left_by_an_older_version_are_replaced_on_upgrade_unread(
    database_url: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    planted = tmp_path / "planted"
    repo = Repository.from_url(database_url)
    try:
        upgrade(repo.engine, "0001")  # the schema whose detector state was a pickle
        with repo.engine.begin() as conn:
            conn.execute(
                text("INSERT INTO detector_state VALUES (:d, 'default', :ts, :state, :ts)"),
                {
                    "d": DEVICE_A,
                    "ts": START.replace(tzinfo=None),
                    "state": pickle.dumps(Planted(planted)),
                },
            )
        upgrade(repo.engine)
        repo.store_batch(series(calm(50), DEVICE_A, start=START - timedelta(seconds=20)))
        with caplog.at_level(logging.WARNING):
            assert DetectionJob(repo, settle_seconds=0).run_once() == 29  # after its position
        (line,) = warnings(caplog)
        assert DEVICE_A in line and "pickle" in line
        assert not planted.exists()
        assert orjson.loads(stored_state(repo)[0])["version"] >= 1
    finally:
        repo.close()
