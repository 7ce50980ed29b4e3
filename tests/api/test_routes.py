"""The API in-process: each analysis equals the same question asked in SQL; bad input is a 4xx."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text

from weatherpipe.compose import make_api
from weatherpipe.config import load_settings
from weatherpipe.storage.repository import Repository, Scored
from weatherpipe.testing import DEVICE_A, DEVICE_B, series

NOW = datetime.now(UTC).replace(microsecond=0)


@pytest.fixture
def client(repo: Repository) -> Iterator[TestClient]:
    repo.store_batch(series([10.0, 14.5, 12.0], DEVICE_A, start=NOW - timedelta(minutes=3)))
    repo.store_batch(series([30.0, 31.0], DEVICE_B, start=NOW - timedelta(days=40)))
    # A name only the database knows (the simulator calls this device Berlin): names come
    # from the devices table, never from the simulator's catalogue.
    repo.name_devices({DEVICE_A: "Rooftop"})
    rows = repo.readings_after(DEVICE_A, None, 10)
    repo.save_detection("t", DEVICE_A, rows[-1][1], "{}", [Scored(rows[1][0], 0.97, True)])
    settings = load_settings(database_url=str(repo.engine.url))
    with TestClient(make_api(settings, repo)) as test_client:
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


def day_and_month(repo: Repository) -> tuple[str, str]:
    """The original scripts' DAY(time) and MONTH(time), spelled for this database."""
    if repo.dialect == "sqlite":
        return "CAST(strftime('%d', time) AS INTEGER)", "CAST(strftime('%m', time) AS INTEGER)"
    if repo.dialect == "postgresql":
        return "EXTRACT(DAY FROM time)", "EXTRACT(MONTH FROM time)"
    return "DAY(time)", "MONTH(time)"


def test_daily_max_equals_sql_and_is_empty_without_data(
    client: TestClient, repo: Repository
) -> None:
    day_of, month_of = day_and_month(repo)
    for when in (NOW - timedelta(minutes=3), NOW - timedelta(days=40)):
        answer = client.get(f"/api/v1/stats/daily-max?day={when.day}&month={when.month}").json()
        expected = sql_rows(
            repo,
            "SELECT deviceid, MAX(temperature) FROM weather_trans "
            f"WHERE {day_of} = :d AND {month_of} = :m GROUP BY deviceid ORDER BY 1",
            d=when.day,
            m=when.month,
        )
        assert [(r["device_id"], r["max_temperature"]) for r in answer] == expected
        assert expected
    other = (NOW + timedelta(days=100)).date()
    assert client.get(f"/api/v1/stats/daily-max?day={other.day}&month={other.month}").json() == []


def test_anomalies_equal_sql_over_weather_trans(client: TestClient, repo: Repository) -> None:
    for minutes in (1, 30, 60 * 24 * 60):
        since = datetime.now(UTC) - timedelta(minutes=minutes)
        answer = client.get(f"/api/v1/anomalies?minutes={minutes}").json()
        expected = dict(
            sql_rows(
                repo,
                "SELECT deviceid, COUNT(*) FROM weather_trans WHERE isanomal = 1 AND time >= :s "
                "GROUP BY deviceid",
                s=since.replace(tzinfo=None),
            )
        )
        assert {r["device_id"]: r["count"] for r in answer if r["count"]} == expected


def test_devices_equal_sql(client: TestClient, repo: Repository) -> None:
    answer = client.get("/api/v1/devices").json()
    expected = sql_rows(
        repo,
        "SELECT deviceid, COUNT(*), MAX(temperature) FROM weather_trans GROUP BY deviceid "
        "ORDER BY 1",
    )
    assert [(d["device_id"], d["count"], d["max_temperature"]) for d in answer] == expected
    last = sql_rows(
        repo,
        "SELECT w.deviceid, w.temperature FROM weather_trans w WHERE w.time = "
        "(SELECT MAX(time) FROM weather_trans v WHERE v.deviceid = w.deviceid) ORDER BY 1",
    )
    assert [(d["device_id"], d["last_temperature"]) for d in answer] == last


def test_series_equals_sql_at_every_resolution(client: TestClient, repo: Repository) -> None:
    start, end = NOW - timedelta(minutes=10), NOW + timedelta(minutes=1)
    query = f"device_id={DEVICE_A}&start={rfc(start)}&end={rfc(end)}"
    raw = client.get(f"/api/v1/series?{query}&resolution=raw").json()
    assert [p["t_mean"] for p in raw["points"]] == [
        t
        for (t,) in sql_rows(
            repo,
            "SELECT temperature FROM weather_trans WHERE deviceid = :d AND time >= :s "
            "AND time < :e ORDER BY time",
            d=DEVICE_A,
            s=start.replace(tzinfo=None),
            e=end.replace(tzinfo=None),
        )
    ]
    minute = client.get(f"/api/v1/series?{query}&resolution=minute").json()
    hour = client.get(f"/api/v1/series?{query}&resolution=hour").json()
    day = client.get(f"/api/v1/series?{query}&resolution=day").json()
    everything = sql_rows(
        repo,
        "SELECT COUNT(*), MIN(temperature), MAX(temperature) FROM weather_trans "
        "WHERE deviceid = :d",
        d=DEVICE_A,
    )
    for answer in (minute, hour, day):
        points = answer["points"]
        assert [
            (
                sum(p["n"] for p in points),
                min(p["t_min"] for p in points),
                max(p["t_max"] for p in points),
            )
        ] == everything
    assert [a["temperature"] for a in raw["anomalies"]] == [14.5]
    assert client.get(f"/api/v1/series?device_id={DEVICE_A}").json()["resolution"] == "minute"


def test_series_picks_rollups_for_long_ranges(client: TestClient) -> None:
    week = client.get(
        f"/api/v1/series?device_id={DEVICE_B}&start={rfc(NOW - timedelta(days=60))}"
    ).json()
    assert week["resolution"] == "day"
    assert [p["t_max"] for p in week["points"]] == [31.0]
    days = client.get(
        f"/api/v1/series?device_id={DEVICE_B}&start={rfc(NOW - timedelta(days=41))}"
        f"&end={rfc(NOW - timedelta(days=39))}"
    ).json()
    assert days["resolution"] == "hour"
    four_days = f"start={rfc(NOW - timedelta(days=4))}&end={rfc(NOW)}"
    assert client.get(f"/api/v1/series?device_id={DEVICE_B}&{four_days}").json()["resolution"] == (
        "day"
    )
    points = days["points"]
    assert sum(p["n"] for p in points) == 2
    assert (min(p["t_min"] for p in points), max(p["t_max"] for p in points)) == (30.0, 31.0)


def rfc(ts: datetime) -> str:
    return ts.strftime("%Y-%m-%dT%H:%M:%SZ")


def test_anomalies_in_the_last_minutes(client: TestClient) -> None:
    answer = {r["device_id"]: r for r in client.get("/api/v1/anomalies?minutes=30").json()}
    assert answer[DEVICE_A]["count"] == 1
    assert answer[DEVICE_A]["readings"][0]["temperature"] == 14.5
    assert answer[DEVICE_B]["count"] == 0
    only_b = client.get(f"/api/v1/anomalies?minutes=30&device_id={DEVICE_B}").json()
    assert [r["device_id"] for r in only_b] == [DEVICE_B]


def test_devices_and_readings_pages(client: TestClient) -> None:
    devices = {d["device_id"]: d for d in client.get("/api/v1/devices").json()}
    assert devices[DEVICE_A]["name"] == "Rooftop" and devices[DEVICE_A]["count"] == 3
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
        "/api/v1/readings?device_id=no%20pe",
        f"/api/v1/readings?device_id={DEVICE_A}&start=yesterday",
        f"/api/v1/readings?device_id={DEVICE_A}&start=2026-01-01T00:00:00",
        f"/api/v1/readings?device_id={DEVICE_A}&limit=0",
        f"/api/v1/readings?device_id={DEVICE_A}&start=0001-01-01T00:00:00%2B01:00",
        f"/api/v1/readings?device_id={DEVICE_A}&end=1969-12-31T23:59:59Z",
        f"/api/v1/readings?device_id={DEVICE_A}&after=9999-12-31T23:59:59-01:00",
        "/api/v1/readings?device_id=",
        "/api/v1/series?device_id=x%2Fy",
        f"/api/v1/series?device_id={DEVICE_A}&resolution=week",
        f"/api/v1/series?device_id={DEVICE_A}&start=2024-01-01T00:00:00Z"
        "&end=2026-01-01T00:00:00Z&resolution=hour",
        f"/api/v1/series?device_id={DEVICE_A}&start=2026-01-02T00:00:00Z&end=2026-01-01T00:00:00Z",
        f"/api/v1/series?device_id={DEVICE_A}&start=2026-01-01T00:00:00Z"
        "&end=2026-01-02T00:00:00Z&resolution=raw",
        f"/api/v1/series?device_id={DEVICE_A}&start=2026-01-01T00:00:00Z"
        "&end=2026-03-01T00:00:00Z&resolution=minute",
        "/api/v1/stats/daily-max?day=1&month=1&year=99999",
        "/api/v1/stats/daily-max?day=1.5&month=1",
        "/api/v1/anomalies?minutes=0",
        "/api/v1/anomalies?minutes=99999999999999999999",
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
    # A device without a registry name is shown by its whole id.
    assert "Rooftop" in page and "Berlin" not in page and f">{DEVICE_B}</a>" in page
    assert "12.00 °C" in page
    assert 'src="/static/fleet.js"' in page and "cdn" not in page.lower()
    assert client.get("/?page=x&per_page=-3&sort=nope&order=up").status_code == 200


def test_home_page_leads_to_the_four_analyses(client: TestClient) -> None:
    home = client.get("/").text.split('id="analyses-section"')[1]
    analyses = client.get("/analyses").text
    for anchor in ("counts-section", "max-section", "anomalies-section"):
        assert f'href="/analyses#{anchor}"' in home and f'id="{anchor}"' in analyses
    assert 'action="/analyses"' in home
    assert all(f'name="{field}"' in home for field in ("day", "month", "year"))


def test_device_page_names_the_device_and_loads_the_vendored_chart(client: TestClient) -> None:
    page = client.get(f"/devices/{DEVICE_A.upper()}").text
    assert '<h2 class="name">Rooftop</h2>' in page
    assert 'src="/static/vendor/uplot/uPlot.iife.min.js"' in page and "cdn" not in page.lower()
    assert client.get("/devices/no-such-device").status_code == 404


def test_analyses_form_answers_a_day_and_says_when_there_is_no_data(client: TestClient) -> None:
    today = NOW - timedelta(minutes=3)
    answered = client.get(f"/analyses?day={today.day}&month={today.month}").text
    daymax = answered.split('id="daymax"')[1]
    assert "Rooftop" in daymax and "14.50" in daymax
    other = NOW + timedelta(days=100)
    empty = client.get(f"/analyses?day={other.day}&month={other.month}").text
    assert "No data found" in empty.split('id="daymax"')[1]
    assert "does not exist" in client.get("/analyses?day=31&month=2").text
    assert "whole numbers" in client.get("/analyses?day=x&month=2").text


def test_api_docs_load_swagger_ui_from_the_package_not_a_cdn(client: TestClient) -> None:
    docs = client.get("/docs").text
    assert "/static/swagger-ui/swagger-ui-bundle.js" in docs and "cdn" not in docs.lower()
    assert client.get("/static/swagger-ui/swagger-ui-bundle.js").status_code == 200
    assert client.get("/redoc").status_code == 404


def test_static_assets_come_from_the_installed_package(client: TestClient) -> None:
    script = client.get("/static/fleet.js")
    assert script.status_code == 200 and "new EventSource" in script.text
    assert "new uPlot" in client.get("/static/device.js").text
    assert client.get("/static/dashboard.css").status_code == 200
    uplot = client.get("/static/vendor/uplot/uPlot.iife.min.js")
    assert uplot.status_code == 200 and "uPlot" in uplot.text
    assert "MIT" in client.get("/static/vendor/uplot/LICENSE").text


def test_health_and_readiness(client: TestClient) -> None:
    assert client.get("/healthz").json()["status"] == "ok"
    assert client.get("/readyz").json() == {"status": "ok", "checks": {"database": "ok"}}


def test_home_page_escapes_what_the_database_holds(client: TestClient, repo: Repository) -> None:
    repo.name_devices({DEVICE_B: "<script>alert(1)</script>"})
    page = client.get("/analyses?day=<b>&month=1").text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in client.get("/").text
    assert "<script>alert(1)" not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert 'value="&lt;b&gt;"' in page and "whole numbers" in page
