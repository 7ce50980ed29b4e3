"""The dashboard in headless Chromium: devices, charts, anomaly marks, the form, scripts off."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from weatherpipe.compose import make_api
from weatherpipe.config import load_settings
from weatherpipe.runner import ApiServer
from weatherpipe.storage.repository import Detection, Repository, Scored
from weatherpipe.testing import DEVICE_A, DEVICE_B, in_ci, series

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
DEVICE_C = "9a1c3e5f-7b9d-4f1a-8c3e-5f7a9b1c3d5e"
NAMES = {DEVICE_A: "Berlin", DEVICE_B: "Svalbard", DEVICE_C: "Quito"}
TOKEN = "browser-secret"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def chromium() -> Path:
    """Debian's Chromium; a laptop without it skips loudly, CI fails."""
    if CHROMIUM.exists():
        return CHROMIUM
    reason = f"{CHROMIUM} is missing (apt-get install -y chromium)"
    if in_ci():
        pytest.fail(f"{reason} (CI=true: a missing browser is a failure)")
    pytest.skip(f"SKIPPED LOUDLY: {reason}")


@pytest.fixture
def site(sqlite_repo: Repository) -> Iterator[str]:
    """A running API over three devices' last 20 minutes, one reading of Berlin flagged (a
    high spike), Berlin monitored, Svalbard warming up, Quito not started."""
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=20)
    for n, device in enumerate(NAMES):
        values = [10.0 * n + (i % 60) / 10 for i in range(1200)]
        sqlite_repo.store_batch(series(values, device, start=start))
    sqlite_repo.name_devices(NAMES)
    rows = sqlite_repo.readings_after(DEVICE_A, None, 2000)
    spike = rows[600]
    flag = Scored(spike[0], 0.99, True, "spike", "high")
    sqlite_repo.save_detections(
        "default",
        [
            Detection(DEVICE_A, rows[-1][1], "{}", [flag]),  # monitoring
            Detection(DEVICE_B, start, "{}", [], warming_up=True),
        ],  # and Quito not started
    )
    port = free_port()
    settings = load_settings(database_url=str(sqlite_repo.engine.url), api_token=TOKEN)
    server = ApiServer(make_api(settings, sqlite_repo), "127.0.0.1", port)
    server.start()
    try:
        wait_until_up(f"http://127.0.0.1:{port}/healthz")
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop()


def sign_in(page: Any, site: str) -> None:
    """The login form, as a person uses it: the token is typed, never put in a URL."""
    page.goto(f"{site}/")
    page.fill("#login-form input[name=token]", TOKEN)
    with page.expect_navigation():
        page.click("#login-form button")


def wait_until_up(url: str, seconds: float = 15.0) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            if httpx.get(url, timeout=1.0).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.05)  # polling with a deadline, not waiting for a guess
    raise AssertionError(f"{url} did not come up in {seconds}s")


@pytest.fixture
def browser(chromium: Path) -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=str(chromium), headless=True, args=CHROMIUM_ARGS
        )
        try:
            yield launched
        finally:
            launched.close()


def test_dashboard_names_every_device_draws_charts_and_marks_the_anomaly(
    browser: Any, site: str
) -> None:
    page = browser.new_page(viewport={"width": 1280, "height": 1400})
    errors: list[str] = []
    requested: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.on("request", lambda request: requested.append(request.url))
    sign_in(page, site)
    page.wait_for_selector("body[data-charts=drawn]", timeout=20_000)
    names = page.locator(".device .name").all_inner_texts()
    assert sorted(names) == sorted(NAMES.values())
    for device in NAMES:
        chart = page.locator(f'.device[data-device-id="{device}"] svg')
        assert int(chart.get_attribute("data-points") or 0) > 0
        assert len(chart.locator("polyline.line").get_attribute("points") or "") > 100
    marks = page.locator(f'.device[data-device-id="{DEVICE_A}"] svg circle.anomaly')
    assert marks.count() == 1
    assert marks.get_attribute("data-kind") == "spike"
    assert marks.locator("title").text_content().startswith("spike (high) ")  # type: ignore[union-attr]
    assert page.locator("#anomalies").inner_text().count("spike (high)") == 1
    detection = {
        device: page.locator(f'.device[data-device-id="{device}"] .detection').inner_text()
        for device in NAMES
    }
    assert detection == {DEVICE_A: "monitoring", DEVICE_B: "warming up", DEVICE_C: "not started"}
    assert page.locator(f'.device[data-device-id="{DEVICE_B}"] svg circle.anomaly').count() == 0
    assert "live" in page.locator("#updated").inner_text()
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "dashboard.png"), full_page=True)
    assert errors == []
    assert [url for url in requested if not url.startswith(site)] == []  # no CDN, nothing else


def test_api_docs_render_from_the_package(browser: Any, site: str) -> None:
    page = browser.new_page()
    requested: list[str] = []
    page.on("request", lambda request: requested.append(request.url))
    sign_in(page, site)
    page.goto(f"{site}/docs")
    page.wait_for_selector(".swagger-ui .opblock", timeout=20_000)
    assert "weatherpipe" in page.locator(".swagger-ui .info .title").inner_text()
    assert page.locator(".swagger-ui .opblock").count() >= 10
    assert [url for url in requested if not url.startswith(site)] == []


def test_dashboard_form_answers_and_says_no_data_found(browser: Any, site: str) -> None:
    page = browser.new_page()
    sign_in(page, site)
    today = datetime.now(UTC) - timedelta(minutes=10)
    page.fill("#daymax-form input[name=day]", str(today.day))
    page.fill("#daymax-form input[name=month]", str(today.month))
    with page.expect_navigation():
        page.click("#daymax-form button")
    assert "Quito" in page.locator("#daymax").inner_text()
    later = today + timedelta(days=120)
    page.fill("#daymax-form input[name=day]", str(later.day))
    page.fill("#daymax-form input[name=month]", str(later.month))
    with page.expect_navigation():
        page.click("#daymax-form button")
    answer = page.locator("#daymax").inner_text()
    assert "No data found" in answer and "Quito" not in answer


def test_dashboard_tables_work_with_scripts_off(browser: Any, site: str) -> None:
    context = browser.new_context(java_script_enabled=False)
    page = context.new_page()
    sign_in(page, site)
    counts = page.locator("#counts").inner_text()
    assert all(name in counts for name in NAMES.values()) and "1200" in counts
    assert "Berlin" in page.locator("#anomalies").inner_text()
    assert "spike (high)" in page.locator("#anomalies").inner_text()
    card = page.locator(f'.device[data-device-id="{DEVICE_B}"] .detection')
    assert card.inner_text() == "warming up"
    context.close()


def test_dashboard_refuses_a_browser_without_the_token(browser: Any, site: str) -> None:
    page = browser.new_page()
    response = page.goto(site)
    assert response is not None and response.status == 401
