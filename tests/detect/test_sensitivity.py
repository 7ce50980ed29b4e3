"""One sensitivity setting (expected false alarms per device per day), with a per-device override
that the running job applies on its next pass."""

from __future__ import annotations

import logging
import math
import random
from datetime import UTC, datetime
from typing import Any, Self

import pytest
from sqlalchemy import text
from typer.testing import CliRunner

from weatherpipe.cli import app
from weatherpipe.config import load_settings
from weatherpipe.detect import DETECTORS
from weatherpipe.detect.base import DEFAULT_FALSE_ALARMS_PER_DAY, Detector, Verdict
from weatherpipe.detect.job import DetectionJob
from weatherpipe.errors import ConfigError
from weatherpipe.storage.repository import Repository
from weatherpipe.testing import DEVICE_A, DEVICE_B, series

START = datetime(2026, 11, 28, 8, 0, tzinfo=UTC)


class RateLine(Detector):
    """A jump detector whose line is set by the sensitivity, as a calibrated detector's is:
    the Gaussian tail of one reading a second that leaves `false_alarms_per_day` a day."""

    name = "rate-line"

    def __init__(self, false_alarms_per_day: float = DEFAULT_FALSE_ALARMS_PER_DAY) -> None:
        self.false_alarms_per_day = false_alarms_per_day
        self.line = math.sqrt(2 * math.log(86_400 / false_alarms_per_day))  # in noise widths
        self.prev: float | None = None

    def score_one(self, ts: float, value: float) -> float:
        return 0.0 if self.prev is None else abs(value - self.prev) / self.line

    def learn_one(self, ts: float, value: float) -> None:
        self.prev = value

    def process_one(self, ts: float, value: float) -> Verdict:
        score = self.score_one(ts, value)
        self.learn_one(ts, value)
        return Verdict(min(score, 1.0), score >= 1.0, *(("noise", "low") if score >= 1 else ()))

    @property
    def warming_up(self) -> bool:
        return self.prev is None

    def to_state(self) -> dict[str, Any]:
        return {"version": 1, "fapd": self.false_alarms_per_day, "prev": self.prev}

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> Self:
        if state.get("version") != 1:
            raise ValueError("rate-line: unknown version")
        detector = cls(state["fapd"])
        detector.prev = state["prev"]
        return detector


@pytest.fixture(autouse=True)
def _rate_line(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(DETECTORS, "rate-line", RateLine)


def noisy(n: int) -> list[float]:
    # Deterministic, heavy-tailed jitter: most steps small, a few large (a noisy sensor).
    return [20.0 + 3.0 * math.sin(i * i * 0.7) ** 9 for i in range(n)]


def flags(repo: Repository, device: str) -> int:
    with repo.engine.connect() as conn:
        sql = "SELECT COUNT(*) FROM readings WHERE is_anomaly = :t AND device_id = :d"
        return int(conn.execute(text(sql), {"d": device, "t": True}).scalar() or 0)


def test_a_device_with_fewer_false_alarms_a_day_gets_fewer_flags(repo: Repository) -> None:
    for device in (DEVICE_A, DEVICE_B):
        repo.store_batch(series(noisy(2000), device, start=START))
    assert repo.set_sensitivity(DEVICE_B, 1e-6)
    DetectionJob(repo, "rate-line", settle_seconds=0, false_alarms_per_day=5000).run_once()
    assert flags(repo, DEVICE_A) > 20
    assert flags(repo, DEVICE_B) < flags(repo, DEVICE_A) / 4


def test_a_changed_override_applies_on_the_next_pass_with_one_warning(
    repo: Repository, caplog: pytest.LogCaptureFixture
) -> None:
    readings = series(noisy(3000), DEVICE_A, start=START)
    repo.store_batch(readings[:1000])
    job = DetectionJob(repo, "rate-line", settle_seconds=0, false_alarms_per_day=5000)
    job.run_once()
    before = flags(repo, DEVICE_A)
    repo.set_sensitivity(DEVICE_A, 1e-6)
    with caplog.at_level(logging.WARNING):
        job.run_once()  # no new readings: the reset is saved all the same
        repo.store_batch(readings[1000:2000])
        job.run_once()
        DetectionJob(repo, "rate-line", settle_seconds=0, false_alarms_per_day=5000).run_once()
    (line,) = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert DEVICE_A in line and "5000 -> 1e-06" in line
    assert flags(repo, DEVICE_A) - before < before / 4  # same stream, far fewer new flags
    assert repo.detector_states("rate-line")[DEVICE_A][2] == 1e-6
    repo.set_sensitivity(DEVICE_A, None)  # cleared: back to the global setting
    repo.store_batch(readings[2000:])
    job.run_once()
    assert repo.detector_states("rate-line")[DEVICE_A][2] == 5000


def test_the_setting_reaches_every_detector_and_defaults_to_the_detectors_own(
    repo: Repository,
) -> None:
    repo.store_batch(series(noisy(10), DEVICE_A, start=START))
    job = DetectionJob(repo, "default", settle_seconds=0, false_alarms_per_day=2.5)
    job.run_once()
    assert job._cursors is not None
    assert job._cursors[DEVICE_A].detector.false_alarms_per_day == 2.5  # type: ignore[attr-defined]
    assert load_settings().false_alarms_per_day is None  # None: the detector's own default


@pytest.mark.parametrize("bad", ["0", "-1", "nan", "inf", "lots"])
def test_a_bad_setting_is_one_line_naming_the_variable(
    monkeypatch: pytest.MonkeyPatch, bad: str
) -> None:
    monkeypatch.setenv("WEATHERPIPE_FALSE_ALARMS_PER_DAY", bad)
    with pytest.raises(ConfigError) as caught:
        load_settings()
    message = str(caught.value)
    assert message.startswith("WEATHERPIPE_FALSE_ALARMS_PER_DAY: ") and "\n" not in message


def test_the_cli_sets_and_clears_a_devices_sensitivity(sqlite_repo: Repository) -> None:
    sqlite_repo.store_batch(series([20.0], DEVICE_A, start=START))
    url = str(sqlite_repo.engine.url)
    run = CliRunner().invoke
    ok = run(app, ["devices", "sensitivity", DEVICE_A, "0.2", "--database-url", url])
    assert ok.exit_code == 0, ok.output
    assert sqlite_repo.sensitivity_overrides() == {DEVICE_A: 0.2}
    assert (
        run(app, ["devices", "sensitivity", DEVICE_A, "--clear", "--database-url", url]).exit_code
        == 0
    )
    assert sqlite_repo.sensitivity_overrides() == {}
    for args in (["--", "-1"], ["0"], ["nan"], [], ["1", "--clear"]):
        result = run(app, ["devices", "sensitivity", "--database-url", url, DEVICE_A, *args])
        assert isinstance(result.exception, ConfigError), args
        assert str(result.exception).startswith("devices sensitivity: ")
    assert sqlite_repo.sensitivity_overrides() == {}
    result = run(app, ["devices", "sensitivity", DEVICE_B, "1", "--database-url", url])
    assert isinstance(result.exception, ConfigError) and "no device" in str(result.exception)


def heavy_tailed(n: int, seed: int = 7) -> list[float]:
    """A slow daily-ish swing with 0.1 °C noise, one reading in a hundred five times as loud,
    quantised to 0.01 °C: normal weather for a cheap sensor, nothing to flag."""
    rng = random.Random(seed)
    return [
        round(10 + 2 * math.sin(i / 3600) + rng.gauss(0, 0.1) * (1 + 4 * (rng.random() < 0.01)), 2)
        for i in range(n)
    ]


def test_the_default_detector_flags_less_where_fewer_false_alarms_are_wanted(
    repo: Repository,
) -> None:
    # Two hours of the same noisy stream on two devices; everything flagged is a false alarm.
    for device in (DEVICE_A, DEVICE_B):
        repo.store_batch(series(heavy_tailed(7200), device, start=START))
    repo.set_sensitivity(DEVICE_B, 0.001)
    DetectionJob(repo, "default", settle_seconds=0, false_alarms_per_day=1000).run_once()
    assert flags(repo, DEVICE_A) >= 10
    assert flags(repo, DEVICE_B) <= flags(repo, DEVICE_A) // 4
