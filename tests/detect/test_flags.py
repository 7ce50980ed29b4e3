"""Flags say what they are, from the detection job through the database into the API, and the
API says which devices are still warming up."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from fastapi.testclient import TestClient

from weatherpipe.compose import make_api
from weatherpipe.config import load_settings
from weatherpipe.detect.job import DetectionJob
from weatherpipe.status import gather
from weatherpipe.storage.repository import Repository
from weatherpipe.testing import DEVICE_A, DEVICE_B, series


def now() -> datetime:
    """The clock when the test runs (not at import: the suite may run for longer than the
    analyses' windows)."""
    return datetime.now(UTC).replace(microsecond=0)


def calm(n: int) -> list[float]:
    return [20.0 + 0.05 * ((i * 7) % 5) for i in range(n)]


@pytest.fixture
def api(repo: Repository) -> Iterator[tuple[TestClient, str]]:
    """A client of the API over `repo`, and the detector it reports on."""
    settings = load_settings(database_url=str(repo.engine.url), detector="kmeans-minute")
    with TestClient(make_api(settings, repo)) as client:
        yield client, settings.detector


def test_kind_and_severity_go_from_the_job_into_the_api(
    repo: Repository, api: tuple[TestClient, str]
) -> None:
    client, detector = api
    values = calm(300)
    values[130] += 8.0  # one reading far above its minute: kmeans-minute calls it a spike
    values[200] -= 8.0  # and one far below: a dip
    start = now().replace(second=0) - timedelta(minutes=10)
    repo.store_batch(series(values, DEVICE_A, start=start))
    DetectionJob(repo, detector, settle_seconds=0).run_once()

    (device,) = client.get("/api/v1/anomalies", params={"minutes": 15}).json()
    flags = {(r["temperature"], r["kind"], r["severity"]) for r in device["readings"]}
    assert flags == {(values[130], "spike", "low"), (values[200], "dip", "low")}
    page = client.get("/api/v1/readings", params={"device_id": DEVICE_A}).json()["items"]
    assert [(r["kind"], r["severity"]) for r in page if r["is_anomaly"]] == [
        ("spike", "low"),
        ("dip", "low"),
    ]
    assert {(r["kind"], r["severity"]) for r in page if not r["is_anomaly"]} == {(None, None)}
    series_answer = client.get(
        "/api/v1/series", params={"device_id": DEVICE_A, "start": start.isoformat()}
    ).json()
    assert [m["kind"] for m in series_answer["anomalies"]] == ["spike", "dip"]
    analyses = client.get("/analyses").text
    assert "spike (low), dip (low)" in analyses or "dip (low), spike (low)" in analyses


def detection(client: TestClient) -> dict[str, str]:
    return {d["device_id"]: d["detection"] for d in client.get("/api/v1/devices").json()}


def test_a_new_device_is_shown_warming_up_then_monitoring(repo: Repository) -> None:
    # The default detector monitors within 5 minutes of a device's first reading; 30 s of
    # readings are too few for any of them, 10 minutes are enough for all.
    # The detection job writes beside the API here: no shared answers (api/answers.py).
    settings = load_settings(database_url=str(repo.engine.url), api_cache_seconds=0)
    start = now() - timedelta(hours=1)
    repo.store_batch(series(calm(30), DEVICE_A, start=start))
    repo.store_batch(series(calm(30), DEVICE_B, start=start))
    job = DetectionJob(repo, settings.detector, settle_seconds=0)
    with TestClient(make_api(settings, repo)) as client:
        assert detection(client) == {DEVICE_A: "not_started", DEVICE_B: "not_started"}
        job.run_once()
        assert detection(client) == {DEVICE_A: "warming_up", DEVICE_B: "warming_up"}
        assert 'class="detection">warming up<' in client.get("/").text
        repo.store_batch(series(calm(630), DEVICE_A, start=start)[30:])
        job.run_once()
        assert detection(client) == {DEVICE_A: "monitoring", DEVICE_B: "warming_up"}
    status = asyncio.run(gather(settings.model_copy(update={"bus_url": "memory://"}), repo))
    assert {d.device_id: d.detection for d in status.devices} == {
        DEVICE_A: "monitoring",
        DEVICE_B: "warming_up",
    }
