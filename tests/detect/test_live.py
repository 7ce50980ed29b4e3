"""A simulated run scored against its own ground truth: live precision and recall."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

from weatherpipe.bus import create_bus
from weatherpipe.detect.job import DetectionJob
from weatherpipe.detect.live import format_score, score_run
from weatherpipe.reading import decode
from weatherpipe.sensors.model import KINDS
from weatherpipe.sensors.profiles import DEFAULT_DEVICES
from weatherpipe.sensors.publisher import SensorRunner
from weatherpipe.sensors.spool import Item
from weatherpipe.storage.repository import Repository


def backfill(repo: Repository, hours: float, anomaly_rate: float, seed: int) -> None:
    async def store(items: list[Item]) -> None:
        repo.store_batch([decode(data) for data, _ in items])

    async def run() -> None:
        async with create_bus("memory://live") as bus:
            runner = SensorRunner(bus, DEFAULT_DEVICES, seed=seed, anomaly_rate=anomaly_rate)
            start = datetime(2026, 5, 1, tzinfo=UTC)
            await runner.backfill(start, start + timedelta(hours=hours), store)
            repo.record_injected(runner.take_truth())

    asyncio.run(run())


def test_default_detector_finds_the_simulators_anomalies(sqlite_repo: Repository) -> None:
    backfill(sqlite_repo, hours=4, anomaly_rate=6, seed=11)
    DetectionJob(sqlite_repo, "default").run_once()
    score = score_run(sqlite_repo, "default")
    counts = score.overall
    assert counts.true_positives + counts.false_negatives >= 50
    assert set(score.caught) | set(score.missed) == set(KINDS)
    assert counts.f1 >= 0.8, format_score(score)


def test_nothing_is_scored_before_the_detector_has_run(sqlite_repo: Repository) -> None:
    backfill(sqlite_repo, hours=1, anomaly_rate=6, seed=12)
    assert score_run(sqlite_repo, "default").overall.true_positives == 0
    assert "caught 0" in format_score(score_run(sqlite_repo))
