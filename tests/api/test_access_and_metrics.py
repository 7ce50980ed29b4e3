"""Access (bearer token, CORS) and Prometheus metrics of the API, ingest and `up`."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Iterator
from datetime import UTC, datetime

import httpx
import pytest
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from weatherpipe.bus import create_bus
from weatherpipe.compose import make_api
from weatherpipe.config import load_settings
from weatherpipe.ingest.worker import IngestWorker
from weatherpipe.metrics import Metrics
from weatherpipe.reading import encode
from weatherpipe.storage.repository import BatchResult, Repository
from weatherpipe.testing import DEVICE_A, series

TOKEN = "s3cret-token"


def samples(text: str) -> dict[str, float]:
    """name{labels} -> value of every sample in a Prometheus text exposition."""
    out = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            labels = ",".join(f"{k}={v}" for k, v in sorted(sample.labels.items()))
            out[f"{sample.name}{{{labels}}}" if labels else sample.name] = sample.value
    return out


@pytest.fixture
def guarded(sqlite_repo: Repository) -> Iterator[TestClient]:
    sqlite_repo.store_batch(series([1.0, 2.0]))
    settings = load_settings(database_url=str(sqlite_repo.engine.url), api_token=TOKEN)
    with TestClient(make_api(settings, sqlite_repo)) as client:
        yield client


@pytest.mark.parametrize(
    "path",
    [
        "/",
        "/metrics",
        "/readyz",
        "/docs",
        "/openapi.json",
        "/api/v1/devices",
        "/api/v1/stats/counts",
        "/static/fleet.js",
        "/api/v1/fleet",
        "/analyses",
    ],
)
def test_with_a_token_set_every_path_but_healthz_needs_it(guarded: TestClient, path: str) -> None:
    assert guarded.get(path).status_code == 401
    wrong = guarded.get(path, headers={"Authorization": "Bearer nope"})
    assert wrong.status_code == 401 and wrong.headers["www-authenticate"] == "Bearer"
    right = guarded.get(path, headers={"Authorization": f"Bearer {TOKEN}"})
    assert right.status_code == 200


def test_the_event_stream_and_device_pages_need_the_token_too(guarded: TestClient) -> None:
    # (With the token the stream never ends: tests/api/test_fleet.py reads it from a server.)
    for path in ("/api/v1/events", f"/devices/{DEVICE_A}"):
        assert guarded.get(path).status_code == 401


def test_healthz_stays_open_for_probes(guarded: TestClient) -> None:
    assert guarded.get("/healthz").status_code == 200


def test_the_dashboard_signs_in_with_a_form_and_keeps_the_token_in_a_cookie(
    guarded: TestClient,
) -> None:
    page = guarded.get("/")
    assert page.status_code == 401 and 'action="/login"' in page.text
    wrong = guarded.post("/login", data={"token": "nope"}, follow_redirects=False)
    assert wrong.status_code == 401 and "set-cookie" not in wrong.headers
    signed_in = guarded.post("/login", data={"token": TOKEN}, follow_redirects=False)
    assert signed_in.status_code == 303 and signed_in.headers["location"] == "/"
    cookie = signed_in.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=strict" in cookie
    assert "secure" not in cookie  # plain http here; https adds it
    # The test client keeps the cookie, as a browser does for the page's own requests.
    assert guarded.get("/").status_code == 200
    assert guarded.get("/api/v1/devices").status_code == 200
    guarded.cookies.clear()
    assert guarded.get("/api/v1/devices").status_code == 401


def test_the_cookie_is_secure_when_the_site_is_served_over_https(sqlite_repo: Repository) -> None:
    settings = load_settings(database_url=str(sqlite_repo.engine.url), api_token=TOKEN)
    with TestClient(make_api(settings, sqlite_repo), base_url="https://testserver") as client:
        answer = client.post("/login", data={"token": TOKEN}, follow_redirects=False)
        assert "secure" in answer.headers["set-cookie"].lower()


def test_a_token_in_a_url_counts_nowhere(sqlite_repo: Repository) -> None:
    settings = load_settings(database_url=str(sqlite_repo.engine.url), api_token=TOKEN)
    with TestClient(make_api(settings, sqlite_repo)) as client:
        assert client.get(f"/?token={TOKEN}").status_code == 401
        assert "set-cookie" not in client.get(f"/?token={TOKEN}").headers
        assert client.get(f"/api/v1/devices?token={TOKEN}").status_code == 401


def test_cors_is_off_unless_origins_are_configured(sqlite_repo: Repository) -> None:
    origin = {"Origin": "https://example.org"}
    url = str(sqlite_repo.engine.url)
    with TestClient(make_api(load_settings(database_url=url), sqlite_repo)) as client:
        assert "access-control-allow-origin" not in client.get("/healthz", headers=origin).headers
    settings = load_settings(database_url=url, cors_origins="https://example.org")
    with TestClient(make_api(settings, sqlite_repo)) as client:
        answer = client.get("/healthz", headers=origin)
        assert answer.headers["access-control-allow-origin"] == "https://example.org"
        other = client.get("/healthz", headers={"Origin": "https://evil.example"})
        assert "access-control-allow-origin" not in other.headers


def test_metrics_show_api_latency_and_database_totals(sqlite_repo: Repository) -> None:
    sqlite_repo.store_batch(series([1.0, 2.0, 3.0]))
    settings = load_settings(database_url=str(sqlite_repo.engine.url))
    with TestClient(make_api(settings, sqlite_repo)) as client:
        client.get("/api/v1/stats/counts")
        client.get("/api/v1/stats/daily-max?day=40&month=1")
        answer = client.get("/metrics")
    assert answer.headers["content-type"].startswith("text/plain")
    got = samples(answer.text)
    assert got["weatherpipe_database_stored"] == 3
    assert got["weatherpipe_database_dead_letters"] == 0
    counted = (
        "weatherpipe_api_request_seconds_count{method=GET,route=/api/v1/stats/counts,status=200}"
    )
    assert got[counted] == 1
    rejected = (
        "weatherpipe_api_request_seconds_count{method=GET,route=/api/v1/stats/daily-max,status=422}"
    )
    assert got[rejected] == 1


def test_metrics_count_ingest_batches_and_bus_lag(sqlite_repo: Repository) -> None:
    metrics = Metrics()
    topic = f"metrics-{datetime.now(UTC).timestamp()}"

    async def ingest_some() -> None:
        async with create_bus("memory://", topic, "sub") as bus:
            await bus.setup()
            await bus.publish_many([(encode(r), {}) for r in series([1.0, 2.0, 3.0])])
            await bus.publish_many([(b"not json", {})])
            worker = IngestWorker(bus, sqlite_repo, batch_seconds=0.05, on_batch=metrics.on_batch)
            stop = asyncio.Event()
            task = asyncio.create_task(worker.run(stop))
            deadline = asyncio.get_running_loop().time() + 10
            while worker.stats.received < 4 and asyncio.get_running_loop().time() < deadline:
                await asyncio.sleep(0.01)
            stop.set()
            await task
            await metrics.sample_lag(bus)

    asyncio.run(ingest_some())
    got = samples(metrics.exposition().decode())
    assert got["weatherpipe_readings_stored_total"] == 3
    assert got["weatherpipe_dead_letters_total"] == 1
    assert got["weatherpipe_ingest_batch_seconds_count"] >= 1
    assert "weatherpipe_bus_lag_messages" in got


def test_a_standalone_ingest_serves_metrics_on_its_own_port() -> None:
    metrics = Metrics()
    metrics.on_batch(BatchResult(stored=5, duplicates=1, dead=0), 0.02)
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = int(sock.getsockname()[1])
    server = metrics.serve(port)
    try:
        text = httpx.get(f"http://127.0.0.1:{server.port}/metrics", timeout=5).text
    finally:
        server.close()
    got = samples(text)
    assert got["weatherpipe_readings_stored_total"] == 5
    assert got["weatherpipe_readings_duplicate_total"] == 1
    assert DEVICE_A not in text  # no per-device label explosion
