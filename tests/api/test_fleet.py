"""GET /api/v1/fleet and the event stream on SQLite, MariaDB and PostgreSQL: paging, search,
sort, each device's figures, the fleet's totals and the pipeline's health; bad input is a 422."""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import orjson
import pytest
from fastapi.testclient import TestClient
from tests.api.test_dashboard_browser import free_port, wait_until_up

from weatherpipe.api.server import SHUTDOWN_GRACE
from weatherpipe.compose import make_api
from weatherpipe.config import load_settings
from weatherpipe.health import HealthSampler
from weatherpipe.runner import ApiServer
from weatherpipe.storage.repository import DeadLetter, Repository
from weatherpipe.testing import Fleet, make_reading, seed_fleet

DEVICES = 40
NOW = datetime.now(UTC).replace(microsecond=0)
AHEAD = "provisioned-ahead"


@pytest.fixture
def fleet(repo: Repository) -> Fleet:
    seeded = seed_fleet(repo, DEVICES, now=NOW, flag_every=4)
    repo.add_device(AHEAD, name="Never Sent")
    return seeded


@pytest.fixture
def client(repo: Repository, fleet: Fleet) -> Iterator[TestClient]:
    settings = load_settings(database_url=str(repo.engine.url))
    with TestClient(make_api(settings, repo)) as test_client:
        yield test_client


def get(client: TestClient, **params: Any) -> dict[str, Any]:
    response = client.get("/api/v1/fleet", params=params)
    assert response.status_code == 200, response.text
    answer: dict[str, Any] = response.json()
    return answer


def ids(answer: dict[str, Any]) -> list[str]:
    return [d["device_id"] for d in answer["devices"]]


def last_seen(fleet: Fleet) -> dict[str, datetime]:
    """When seed_fleet put each device's newest reading."""
    return {d: NOW - timedelta(seconds=i % 3600) for i, d in enumerate(fleet.ids)}


def test_pages_cover_every_device_once(client: TestClient, fleet: Fleet) -> None:
    seen: list[str] = []
    first = get(client, per_page=7)
    assert (first["total"], first["pages"], first["per_page"]) == (DEVICES + 1, 6, 7)
    for page in range(1, first["pages"] + 1):
        seen += ids(get(client, page=page, per_page=7))
    assert sorted(seen) == sorted([*fleet.ids, AHEAD])
    assert get(client, page=99, per_page=7)["devices"] == []


def test_sorts_by_registry_name_either_way(client: TestClient, fleet: Fleet) -> None:
    names = {**fleet.names, AHEAD: "Never Sent"}
    by_name = sorted(names, key=lambda d: (names[d].lower(), d))
    assert ids(get(client, per_page=500)) == by_name
    assert [d["name"] for d in get(client, per_page=3)["devices"]] == [
        names[d] for d in by_name[:3]
    ]
    descending = ids(get(client, per_page=500, order="desc"))
    assert descending == by_name[::-1]


def test_sorts_by_last_seen_and_silence_never_seen_last(client: TestClient, fleet: Fleet) -> None:
    seen = last_seen(fleet)
    newest_first = sorted(fleet.ids, key=lambda d: (-seen[d].timestamp(), d))
    oldest_first = sorted(fleet.ids, key=lambda d: (seen[d].timestamp(), d))
    assert ids(get(client, per_page=500, sort="last_seen", order="desc")) == [*newest_first, AHEAD]
    assert ids(get(client, per_page=500, sort="last_seen")) == [*oldest_first, AHEAD]
    assert ids(get(client, per_page=500, sort="silence")) == [*newest_first, AHEAD]
    most_silent = get(client, per_page=500, sort="silence", order="desc")["devices"]
    assert [d["device_id"] for d in most_silent] == [*oldest_first, AHEAD]
    assert most_silent[0]["silence_seconds"] >= (DEVICES - 1) - 1
    assert most_silent[-1]["silence_seconds"] is None


def test_sorts_by_anomalies_flagged_first(client: TestClient, fleet: Fleet) -> None:
    answer = get(client, per_page=len(fleet.flagged), sort="anomalies", order="desc")
    assert sorted(ids(answer)) == sorted(fleet.flagged)
    for device in answer["devices"]:
        kind, severity = fleet.flagged[device["device_id"]]
        assert (device["anomalies_30m"], device["anomalies_24h"]) == (1, 1)
        assert device["worst_24h"]["kind"] == kind
        assert device["worst_24h"]["severity"] == severity
        assert device["worst_30m"] == device["worst_24h"]
        assert 0.9 <= device["worst_24h"]["score"] < 1.0
    calm = get(client, per_page=3, sort="anomalies")["devices"]
    assert all(d["anomalies_24h"] == 0 and d["worst_24h"] is None for d in calm)


def test_searches_name_and_id_ignoring_case(client: TestClient, fleet: Fleet) -> None:
    wanted = fleet.ids[5]
    by_name = get(client, q=fleet.names[wanted].upper())
    assert ids(by_name) == [wanted] and by_name["total"] == 1
    by_id = get(client, q="FLEET-0001")
    assert sorted(ids(by_id)) == [d for d in fleet.ids if d.startswith("fleet-0001")]
    assert get(client, q="never")["devices"][0]["device_id"] == AHEAD
    assert get(client, q="%")["total"] == 0  # a wildcard is taken as the character it is
    assert get(client, q="_")["total"] == 0


def test_device_figures_and_fleet_totals(client: TestClient, fleet: Fleet) -> None:
    answer = get(client, per_page=500)
    devices = {d["device_id"]: d for d in answer["devices"]}
    first = devices[fleet.ids[1]]
    assert first["name"] == fleet.names[fleet.ids[1]]
    assert first["last_temperature"] == pytest.approx(10.0 + 1 + 0.2)
    assert first["last_seen"].startswith((NOW - timedelta(seconds=1)).strftime("%Y-%m-%dT%H:%M:%S"))
    for device in fleet.ids:
        expected = "not_started" if device in fleet.not_started else "monitoring"
        expected = "warming_up" if device in fleet.warming_up else expected
        assert devices[device]["detection"] == expected
    assert devices[AHEAD]["last_seen"] is None and devices[AHEAD]["last_temperature"] is None
    totals = answer["fleet"]
    assert totals["devices"] == DEVICES + 1
    assert totals["never_seen"] == 1
    assert totals["warming_up"] == len(fleet.warming_up)
    assert totals["not_started"] == len(fleet.not_started) + 1
    assert totals["anomalies_24h"] == totals["anomalous_30m"] == len(fleet.flagged)
    assert totals["reporting"] + totals["silent"] + totals["never_seen"] == DEVICES + 1


def test_health_carries_totals_lag_note_and_detection(
    client: TestClient, repo: Repository, fleet: Fleet
) -> None:
    health = get(client)["health"]
    assert health["stored"] == DEVICES * 3
    assert health["anomalies"] == len(fleet.flagged)
    assert health["dead_letters"] == 0 and health["lag"] is None and health["lag_note"]
    detection = health["detection"]
    assert detection["devices"] == DEVICES - len(fleet.not_started)
    assert detection["warming_up"] == len(fleet.warming_up)
    # The newest reading is fleet-00000's, a device detection has not started on; the newest
    # position is fleet-00001's last reading, a second older.
    assert detection["behind_seconds"] == 1.0
    metrics = client.get("/metrics").text
    assert f"weatherpipe_database_stored {float(health['stored'])}" in metrics


def test_ingest_rate_is_the_growth_of_the_stored_total(repo: Repository, fleet: Fleet) -> None:
    now = [100.0]
    sampler = HealthSampler(repo, "default", every=1.0, clock=lambda: now[0])
    first = asyncio.run(sampler.current())
    assert first["health"]["ingest_rate"] is None  # one sample says nothing about a rate
    repo.store_batch([make_reading("fleet-00001", i, start=NOW) for i in range(1, 21)])
    repo.store_batch([], [DeadLetter(b"{", "not JSON")])
    now[0] += 0.5
    assert asyncio.run(sampler.current()) is first  # younger than `every`: the same sample
    now[0] += 4.5
    second = asyncio.run(sampler.current())["health"]
    assert second["ingest_rate"] == pytest.approx(20 / 5.0)
    assert (second["dead_letters"], second["dead_letters_pending"]) == (1, 1)


@pytest.mark.parametrize(
    "params",
    [
        {"page": 0},
        {"per_page": 0},
        {"per_page": 501},
        {"sort": "temperature"},
        {"order": "up"},
        {"q": "x" * 101},
        {"page": "two"},
    ],
)
def test_bad_parameters_are_422(client: TestClient, params: dict[str, Any]) -> None:
    for path in ("/api/v1/fleet", "/api/v1/events"):
        response = client.get(path, params=params)
        assert response.status_code == 422, response.text
        assert response.json()["detail"]


def test_event_stream_pushes_the_page_again_with_new_readings(
    repo: Repository, fleet: Fleet
) -> None:
    settings = load_settings(database_url=str(repo.engine.url))
    port = free_port()
    server = ApiServer(make_api(settings, repo), "127.0.0.1", port)
    server.start()
    site = f"http://127.0.0.1:{port}"
    device = fleet.ids[2]
    try:
        wait_until_up(f"{site}/healthz")
        url = f"{site}/api/v1/events?q={device}&every=0.5"
        with httpx.stream("GET", url, timeout=10.0) as response:
            assert response.headers["content-type"].startswith("text/event-stream")
            events = fleet_events(response.iter_lines())
            first = next(events)
            assert ids(first) == [device] and first["devices"][0]["last_temperature"] == 12.2
            repo.store_batch([make_reading(device, 1, 99.5, start=NOW)])
            deadline = datetime.now(UTC) + timedelta(seconds=10)
            while datetime.now(UTC) < deadline:
                if next(events)["devices"][0]["last_temperature"] == 99.5:
                    break
            else:
                raise AssertionError("no event carried the new reading within 10 s")
    finally:
        server.stop()


def fleet_events(lines: Iterator[str]) -> Iterator[dict[str, Any]]:
    """The data of each `fleet` event of a server-sent event stream."""
    event, data = "", ""
    for line in lines:
        if line.startswith("event: "):
            event = line[7:]
        elif line.startswith("data: "):
            data = line[6:]
        elif not line and event == "fleet":
            yield orjson.loads(data)
            event, data = "", ""


def test_a_stopping_server_does_not_wait_for_an_open_event_stream(
    repo: Repository, fleet: Fleet
) -> None:
    settings = load_settings(database_url=str(repo.engine.url))
    port = free_port()
    server = ApiServer(make_api(settings, repo), "127.0.0.1", port)
    server.start()
    wait_until_up(f"http://127.0.0.1:{port}/healthz")
    opened = threading.Event()

    def listen() -> None:
        url = f"http://127.0.0.1:{port}/api/v1/events?every=0.5"
        with contextlib.suppress(httpx.HTTPError), httpx.stream("GET", url, timeout=30) as answer:
            for _ in answer.iter_lines():
                opened.set()

    listener = threading.Thread(target=listen, daemon=True)
    listener.start()
    assert opened.wait(10), "the stream did not open"
    started = time.monotonic()
    server.stop()
    assert not server.thread.is_alive(), "the server still waits for the stream"
    assert time.monotonic() - started < SHUTDOWN_GRACE + 5
    listener.join(10)
    assert not listener.is_alive()
