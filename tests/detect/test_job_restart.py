"""A real `weatherpipe detect` process, stopped and started again, resumes from its saved state."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import text

from weatherpipe.detect.job import DetectionJob
from weatherpipe.storage.engine import upgrade
from weatherpipe.storage.repository import Repository
from weatherpipe.testing import series

SENTINEL = -1.0  # no detector gives this score: a reading holding it was not scored again


def wave(n: int, spike_at: int) -> list[float]:
    values = [20.0 + 0.3 * ((i * 37) % 11) / 11 for i in range(n)]
    values[spike_at] += 15.0
    return values


def scores(repo: Repository) -> list[tuple[float | None, bool | None]]:
    with repo.engine.connect() as conn:
        sql = "SELECT anomaly_score, is_anomaly FROM readings ORDER BY ts"
        return [(s, None if f is None else bool(f)) for s, f in conn.execute(text(sql))]


def wait_for(
    check: Callable[[], bool], seconds: float, what: str, process: subprocess.Popen[str]
) -> None:
    deadline = time.monotonic() + seconds
    while not check():
        assert process.poll() is None, f"detect exited while waiting for {what}"
        assert time.monotonic() < deadline, f"no {what} within {seconds}s"
        time.sleep(0.1)


def run_detect_until(url: str, done: Callable[[], bool], log: Path) -> str:
    """`weatherpipe detect` as its own process until `done`, then SIGTERM; its log."""
    env = {**os.environ, "WEATHERPIPE_DATABASE_URL": url, "WEATHERPIPE_DETECT_INTERVAL": "0.2"}
    with log.open("w") as fh:
        process = subprocess.Popen(
            [sys.executable, "-m", "weatherpipe", "detect"],
            env=env,
            stdout=fh,
            stderr=fh,
            text=True,
        )
    try:
        wait_for(done, 90, "scored readings", process)
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=30) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    return log.read_text()


def test_a_restarted_detect_process_resumes_from_its_saved_state(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/weather.db"
    repo = Repository.from_url(url)
    upgrade(repo.engine)
    received = datetime.now(UTC) - timedelta(minutes=10)  # settled: nothing is held back
    readings = series(wave(1500, spike_at=1200), start=received - timedelta(days=1))
    repo.store_batch(readings[:800], received_at=received)

    def scored(n: int) -> Callable[[], bool]:
        return lambda: sum(s is not None for s, _ in scores(repo)) == n

    run_detect_until(url, scored(800), tmp_path / "first.log")
    with repo.engine.begin() as conn:  # mark what the first process scored
        conn.execute(text("UPDATE readings SET anomaly_score = :s"), {"s": SENTINEL})
    repo.store_batch(readings[800:], received_at=received)
    second = run_detect_until(url, scored(1500), tmp_path / "second.log")
    resumed = scores(repo)
    repo.close()

    assert "resumes 1 devices" in second
    assert [s for s, _ in resumed[:800]] == [SENTINEL] * 800, "the restart scored old readings"
    # What an uninterrupted detector gives for the new readings: the restored state matters.
    fresh = Repository.from_url(f"sqlite:///{tmp_path}/fresh.db")
    upgrade(fresh.engine)
    fresh.store_batch(readings, received_at=received)
    DetectionJob(fresh, settle_seconds=0).run_once()
    uninterrupted = scores(fresh)
    fresh.close()
    assert resumed[800:] == uninterrupted[800:]
    assert resumed[1200][1] is True
