"""The API in-process: each analysis equals the same question asked in SQL; bad input is a 4xx."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text

from weatherpipe.api.app import create_app
from weatherpipe.config import load_settings
from weatherpipe.storage.repository import Repository, Scored
from weatherpipe.testing import DEVICE_A, DEVICE_B, series

NOW = datetime.now(UTC).replace(microsecond=0)


@pytest.fixture
def client(repo: Repository) -> Iterator[TestClient]:
    repo.store_batch(series([10.0, 14.5, 12.0], DEVICE_A, start=NOW - timedelta(minutes=3)))
    repo.store_batch(series([30.0, 31.0], DEVICE_B, start=NOW - timedelta(days=40)))
    rows = repo.readings_after(DEVICE_A, None, 10)
    repo.save_detection("t", DEVICE_A, rows[-1][1], b"", [Scored(rows[1][0], 0.97, True)])
    settings = load_settings(database_url=str(repo.engine.url))
    with TestClient(create_app(settings, repo)) as test_client:
        yield test_client


def sql_rows(repo: Repository, sql: str, **params: object) -> list[tuple[object, ...]]:
    with repo.engine.connect() as conn:
        return [tuple(r) for r in conn.execute(text(sql), params)]


def test_counts_equal_sql(client: TestClient, repo: Repository) -> None:
    answer = client.get("/api/v1/stats/counts").json()
    expected = sql_rows(
        repo, "SELECT device_id, COUNT(*) FROM readings GROUP BY device_id ORDER BY 1"
    )
    assert [(r["device_id"], r["count"]) for r in answer] == expected


def test_max_temperature_equals_sql(client: TestClient, repo: Repository) -> None:
    answer = client.get("/api/v1/stats/max-temperature").json()
    expected = sql_rows(
        repo, "SELECT device_id, MAX(temperature) FROM readings GROUP BY device_id ORDER BY 1"
    )
    assert [(r["device_id"], r["max_temperature"]) for r in answer] == expected


def test_daily_max_equals_sql_and_is_empty_without_data(client: TestClient) -> None:
    day = NOW - timedelta(minutes=3)
    answer = client.get(f"/api/v1/stats/daily-max?day={day.day}&month={day.month}").json()
    assert {"device_id": DEVICE_A, "max_temperature": 14.5} in answer
    other = (day + timedelta(days=100)).date()
    assert client.get(f"/api/v1/stats/daily-max?day={other.day}&month={other.month}").json() == []


def test_anomalies_in_the_last_minutes(client: TestClient) -> None:
    answer = {r["device_id"]: r for r in client.get("/api/v1/anomalies?minutes=30").json()}
    assert answer[DEVICE_A]["count"] == 1
    assert answer[DEVICE_A]["readings"][0]["temperature"] == 14.5
    assert answer[DEVICE_B]["count"] == 0
    only_b = client.get(f"/api/v1/anomalies?minutes=30&device_id={DEVICE_B}").json()
    assert [r["device_id"] for r in only_b] == [DEVICE_B]


def test_devices_and_readings_pages(client: TestClient) -> None:
    devices = {d["device_id"]: d for d in client.get("/api/v1/devices").json()}
    assert devices[DEVICE_A]["name"] == "Berlin" and devices[DEVICE_A]["count"] == 3
    page = client.get(f"/api/v1/readings?device_id={DEVICE_A}&limit=2").json()
    assert [r["temperature"] for r in page["items"]] == [10.0, 14.5]
    after = page["next_after"].replace("+00:00", "Z")
    rest = client.get(f"/api/v1/readings?device_id={DEVICE_A}&after={after}").json()
    assert [r["temperature"] for r in rest["items"]] == [12.0]
    assert rest["next_after"] is None


@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/stats/daily-max?day=32&month=1",
        "/api/v1/stats/daily-max?day=30&month=2",
        "/api/v1/stats/daily-max?day=1",
        "/api/v1/stats/daily-max?day=x&month=1",
        "/api/v1/stats/daily-max?day=1&month=1%20OR%201=1",
        "/api/v1/anomalies?minutes=-5",
        "/api/v1/anomalies?minutes=abc",
        "/api/v1/anomalies?device_id=1%27%3B%20DROP%20TABLE%20readings%3B--",
        "/api/v1/readings?device_id=nope",
        f"/api/v1/readings?device_id={DEVICE_A}&start=yesterday",
        f"/api/v1/readings?device_id={DEVICE_A}&start=2026-01-01T00:00:00",
        f"/api/v1/readings?device_id={DEVICE_A}&limit=0",
    ],
)
def test_bad_parameters_get_a_422_with_a_message(client: TestClient, path: str) -> None:
    response = client.get(path)
    assert response.status_code == 422, response.text
    assert response.json()["detail"]


def test_unknown_device_is_404(client: TestClient) -> None:
    response = client.get("/api/v1/readings?device_id=00000000-0000-0000-0000-000000000000")
    assert response.status_code == 404


def test_home_page_names_every_device_and_works_without_scripts(client: TestClient) -> None:
    page = client.get("/").text
    assert "Berlin" in page and DEVICE_B[:8] in page
    assert "14.50" in page


def test_health_and_readiness(client: TestClient) -> None:
    assert client.get("/healthz").json()["status"] == "ok"
    assert client.get("/readyz").json() == {"status": "ok", "checks": {"database": "ok"}}
