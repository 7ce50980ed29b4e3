"""The API's answer cache and number tidying (api/answers.py), and what a client sees of them."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from fastapi.testclient import TestClient

from weatherpipe.api.answers import MAX_KEYS, AnswerCache, tidy
from weatherpipe.compose import make_api
from weatherpipe.config import load_settings
from weatherpipe.storage.repository import Repository
from weatherpipe.testing import DEVICE_A, series

DEADLINE = 10.0


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_callers_of_one_key_share_one_computation() -> None:
    release, calls = threading.Event(), []

    def compute() -> bytes:
        calls.append(1)
        assert release.wait(DEADLINE), "the test never released the computation"
        return b"answer"

    async def scenario() -> list[bytes]:
        cache = AnswerCache(ttl=1.0)
        callers = [asyncio.create_task(cache.get("k", compute)) for _ in range(20)]
        deadline = time.monotonic() + DEADLINE
        while not calls:  # the first caller's computation has started in the thread pool
            assert time.monotonic() < deadline
            await asyncio.sleep(0)
        await asyncio.sleep(0)  # every other caller has found it pending
        release.set()
        return await asyncio.gather(*callers)

    assert asyncio.run(scenario()) == [b"answer"] * 20
    assert len(calls) == 1


def test_an_answer_is_kept_for_ttl_seconds_then_computed_again() -> None:
    clock, calls = FakeClock(), []

    def compute() -> bytes:
        calls.append(clock.now)
        return str(len(calls)).encode()

    async def scenario() -> list[bytes]:
        cache = AnswerCache(ttl=1.0, clock=clock)
        first = await cache.get("k", compute)
        clock.now += 0.9
        kept = await cache.get("k", compute)
        clock.now += 0.2
        fresh = await cache.get("k", compute)
        return [first, kept, fresh]

    assert asyncio.run(scenario()) == [b"1", b"1", b"2"]


def test_ttl_zero_computes_every_time_and_failures_are_not_kept() -> None:
    calls: list[int] = []

    def compute() -> bytes:
        calls.append(1)
        if len(calls) == 1:
            raise RuntimeError("database away")
        return b"ok"

    async def scenario(cache: AnswerCache) -> bytes:
        with pytest.raises(RuntimeError):
            await cache.get("k", compute)
        return await cache.get("k", compute)

    assert asyncio.run(scenario(AnswerCache(ttl=1.0))) == b"ok"
    calls.clear()
    off = AnswerCache(ttl=0)
    asyncio.run(scenario(off))
    asyncio.run(off.get("k", compute))
    assert len(calls) == 3


def test_the_cache_holds_at_most_max_keys() -> None:
    cache = AnswerCache(ttl=60.0, clock=FakeClock())

    async def fill() -> None:
        for n in range(MAX_KEYS + 50):
            await cache.get(n, lambda: b"x")

    asyncio.run(fill())
    assert len(cache._answers) <= MAX_KEYS


def test_tidy_rounds_temperatures_to_the_sensor_resolution() -> None:
    rows = [
        {
            "device_id": "a",
            "max_temperature": 14.790000000000001,
            "t_mean": 21.333333333333332,
            "anomaly_score": 0.987654321,
            "count": 3,
            "readings": [{"temperature": 0.30000000000000004, "seq": 7}],
        }
    ]
    assert tidy(rows) == [
        {
            "device_id": "a",
            "max_temperature": 14.79,
            "t_mean": 21.33,
            "anomaly_score": 0.9877,
            "count": 3,
            "readings": [{"temperature": 0.3, "seq": 7}],
        }
    ]


@pytest.fixture
def noisy(sqlite_repo: Repository) -> Repository:
    """A device whose readings' mean and maximum carry binary noise."""
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=2)
    sqlite_repo.store_batch(series([14.790000000000001, 0.1 + 0.2, 7.0], DEVICE_A, start=start))
    return sqlite_repo


def client_of(repo: Repository, cache_seconds: float) -> TestClient:
    settings = load_settings(
        database_url=str(repo.engine.url), api_cache_seconds=cache_seconds
    )
    return TestClient(make_api(settings, repo))


@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/stats/max-temperature",
        "/api/v1/devices",
        f"/api/v1/readings?device_id={DEVICE_A}",
        f"/api/v1/series?device_id={DEVICE_A}&resolution=minute",
    ],
)
def test_answers_carry_no_float_noise(noisy: Repository, path: str) -> None:
    with client_of(noisy, 1.0) as client:
        answer = client.get(path)
    assert answer.status_code == 200
    assert "14.79" in answer.text or "0.3" in answer.text
    assert "0000000" not in answer.text
    assert "14.790000000000001" not in answer.text


def test_a_fleet_analysis_is_shared_for_a_second_and_fresh_with_the_cache_off(
    noisy: Repository,
) -> None:
    later = datetime.now(UTC).replace(microsecond=0)
    with client_of(noisy, 3600.0) as cached, client_of(noisy, 0) as uncached:
        before = cached.get("/api/v1/stats/counts").json()
        noisy.store_batch(series([20.0], DEVICE_A, start=later))
        assert cached.get("/api/v1/stats/counts").json() == before
        assert uncached.get("/api/v1/stats/counts").json() == [
            {"device_id": DEVICE_A, "name": None, "count": before[0]["count"] + 1}
        ]


@pytest.fixture
def metrics_client(sqlite_repo: Repository) -> Iterator[TestClient]:
    with client_of(sqlite_repo, 1.0) as client:
        yield client


def test_request_latency_is_recorded_by_route_template_and_status(
    metrics_client: TestClient,
) -> None:
    assert metrics_client.get("/api/v1/readings?device_id=nosuch").status_code == 404
    assert metrics_client.get("/healthz").status_code == 200
    text = metrics_client.get("/metrics").text
    assert 'route="/api/v1/readings",status="404"' in text
    assert 'route="/healthz",status="200"' in text


def test_a_write_through_the_api_clears_the_shared_answers(noisy: Repository) -> None:
    later = datetime.now(UTC).replace(microsecond=0)
    with client_of(noisy, 3600.0) as cached:
        before = cached.get("/api/v1/stats/counts").json()
        noisy.store_batch(series([20.0], DEVICE_A, start=later))
        assert cached.get("/api/v1/stats/counts").json() == before
        cached.post("/login", data={"token": "x"}, follow_redirects=False)  # any write
        assert cached.get("/api/v1/stats/counts").json()[0]["count"] == before[0]["count"] + 1


def test_an_answer_computed_across_a_clear_is_not_kept() -> None:
    cache, calls = AnswerCache(ttl=60.0), []

    def compute() -> bytes:
        calls.append(1)
        if len(calls) == 1:
            cache.clear()  # a write lands while the first answer is computed
        return str(len(calls)).encode()

    async def scenario() -> list[bytes]:
        return [await cache.get("k", compute), await cache.get("k", compute)]

    assert asyncio.run(scenario()) == [b"1", b"2"]
