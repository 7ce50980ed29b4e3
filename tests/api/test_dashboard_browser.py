"""The dashboard in Debian's headless Chromium, at 3 and at 1,000 devices: the fleet overview
over one event stream (requests counted), search, sort and paging, live updates, the health
strip, the device page's uPlot chart with its marks and tooltip, and the pages without scripts."""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from weatherpipe.bus import create_bus
from weatherpipe.compose import make_api
from weatherpipe.config import load_settings
from weatherpipe.runner import ApiServer
from weatherpipe.storage.repository import DeadLetter, Detection, Repository, Scored
from weatherpipe.testing import DEVICE_A, DEVICE_B, in_ci, make_reading, seed_fleet, series

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
WAITING = 5  # messages left on the bus, for the consumer lag
SECONDS = 20_000  # Playwright's waits, ms


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


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
def chromium() -> Path:
    """Debian's Chromium; a laptop without it skips loudly, CI fails."""
    if CHROMIUM.exists():
        return CHROMIUM
    reason = f"{CHROMIUM} is missing (apt-get install -y chromium)"
    if in_ci():
        pytest.fail(f"{reason} (CI=true: a missing browser is a failure)")
    pytest.skip(f"SKIPPED LOUDLY: {reason}")


@dataclass
class Site:
    url: str
    repo: Repository
    devices: int
    names: dict[str, str]  # every device's registry name
    start: datetime = field(default_factory=lambda: datetime.now(UTC))


def store_named_devices(repo: Repository, start: datetime) -> None:
    """Berlin: 20 minutes, monitored, a high spike and a medium dip flagged (both in the last
    30 minutes). Svalbard: 20 minutes, warming up. Quito: 3 hours, monitored, two flags in one
    minute 110 minutes ago and one 20 minutes ago."""
    for n, device in enumerate((DEVICE_A, DEVICE_B)):
        values = [10.0 * n + (i % 60) / 10 for i in range(1200)]
        repo.store_batch(series(values, device, start=start))
    early = start - timedelta(hours=2, minutes=40)
    repo.store_batch(series([20.0 + (i % 600) / 100 for i in range(10_800)], DEVICE_C, early))
    repo.name_devices(NAMES)
    berlin = repo.readings_after(DEVICE_A, None, 2000)
    quito = repo.readings_after(DEVICE_C, None, 20_000)
    repo.save_detections(
        "default",
        [
            Detection(
                DEVICE_A,
                berlin[-1][1],
                "{}",
                [
                    Scored(berlin[600][0], 0.99, True, "spike", "high"),
                    Scored(berlin[900][0], 0.8, True, "dip", "medium"),
                ],
            ),
            Detection(DEVICE_B, start, "{}", [], warming_up=True),
            Detection(
                DEVICE_C,
                quito[-1][1],
                "{}",
                [
                    Scored(quito[3000][0], 0.97, True, "spike", "high"),
                    Scored(quito[3001][0], 0.6, True, "spike", "low"),
                    Scored(quito[9600][0], 0.7, True, "drift", "medium"),
                ],
            ),
        ],
    )


def waiting_bus() -> Any:
    """An in-process bus with WAITING messages nobody pulled (the strip's consumer lag)."""
    bus = create_bus("memory://", f"browser-{time.monotonic_ns()}", "sub")

    async def fill() -> None:
        await bus.connect()
        await bus.setup()
        await bus.publish_many([(b"{}", {})] * WAITING)

    # In a thread of its own: Playwright's sync API keeps an event loop running in this one.
    with ThreadPoolExecutor(1) as pool:
        pool.submit(asyncio.run, fill()).result()
    return bus


@pytest.fixture(params=[3, 1000], ids=["3-devices", "1000-devices"])
def site(request: pytest.FixtureRequest, sqlite_repo: Repository) -> Iterator[Site]:
    """A running API over the three named devices, and 997 more for the 1,000 case; one dead
    letter; five messages waiting on the bus."""
    # Whole minutes, so Quito's two flags a second apart share a minute.
    start = datetime.now(UTC).replace(second=0, microsecond=0) - timedelta(minutes=20)
    store_named_devices(sqlite_repo, start)
    names = dict(NAMES)
    if request.param > 3:
        fleet = seed_fleet(sqlite_repo, request.param - 3, flag_every=0)
        names.update(fleet.names)
    sqlite_repo.store_batch([], [DeadLetter(b"oops", "not JSON")])
    port = free_port()
    settings = load_settings(database_url=str(sqlite_repo.engine.url), api_token=TOKEN)
    server = ApiServer(make_api(settings, sqlite_repo, waiting_bus()), "127.0.0.1", port)
    server.start()
    try:
        wait_until_up(f"http://127.0.0.1:{port}/healthz")
        yield Site(f"http://127.0.0.1:{port}", sqlite_repo, request.param, names, start)
    finally:
        server.stop()


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


@dataclass
class Tab:
    page: Any
    requests: list[str]
    errors: list[str]

    def api(self) -> list[str]:
        return [url for url in self.requests if "/api/" in url]


@pytest.fixture
def tab(browser: Any, site: Site) -> Iterator[Tab]:
    """A signed-in page that records every request and script error; closed (and so its
    event stream) before the server stops."""
    context = browser.new_context(viewport={"width": 1280, "height": 1000})
    page = context.new_page()
    opened = Tab(page, [], [])
    page.on("request", lambda request: opened.requests.append(request.url))
    page.on("pageerror", lambda exc: opened.errors.append(str(exc)))
    page.goto(f"{site.url}/")
    page.fill("#login-form input[name=token]", TOKEN)  # typed, never put in a URL
    with page.expect_navigation():
        page.click("#login-form button")
    try:
        wait_for_events(opened, 1)  # the overview's stream is open: its request is counted
        yield opened
        assert opened.errors == []
        assert [url for url in opened.requests if not url.startswith(site.url)] == []  # no CDN
    finally:
        context.close()


def events(tab: Tab) -> int:
    return int(tab.page.locator("body").get_attribute("data-events") or 0)


def wait_for_events(tab: Tab, n: int) -> None:
    tab.page.wait_for_function(f"Number(document.body.dataset.events || 0) >= {n}", timeout=SECONDS)


def rows(tab: Tab) -> list[str]:
    return tab.page.locator("#fleet tbody tr .name a").all_inner_texts()


def by_name(site: Site) -> list[str]:
    return sorted(site.names.values(), key=str.lower)


def test_overview_is_one_event_stream_never_a_request_per_device(tab: Tab, site: Site) -> None:
    tab.requests.clear()
    tab.page.goto(f"{site.url}/?every=0.5")
    wait_for_events(tab, 4)  # four refreshes of the whole page
    assert len(rows(tab)) == min(site.devices, 50)
    assert rows(tab) == by_name(site)[:50]
    api = tab.api()
    assert len(api) == 1 and "/api/v1/events?" in api[0], api
    assert len(tab.requests) == 4, tab.requests  # the page, its CSS, its script, the stream
    size = len(httpx.get(f"{site.url}/", headers={"Authorization": f"Bearer {TOKEN}"}).content)
    assert size < 60_000, f"the overview is {size} bytes at {site.devices} devices"
    print(f"overview at {site.devices} devices: {size} bytes, {len(api)} API request")
    ARTIFACTS.mkdir(exist_ok=True)
    tab.page.screenshot(path=str(ARTIFACTS / f"fleet-{site.devices}.png"), full_page=True)


def test_search_sort_and_paging_each_open_one_stream(tab: Tab, site: Site) -> None:
    tab.page.goto(f"{site.url}/?every=1&per_page=2")
    wait_for_events(tab, 1)
    page = tab.page

    def one_request(action: Any, expect: list[str]) -> None:
        before = len(tab.requests)
        action()
        page.wait_for_function(
            "names => [...document.querySelectorAll('#fleet tbody tr .name a')]"
            ".map(a => a.textContent).join('|') === names.join('|')",
            arg=expect,
            timeout=SECONDS,
        )
        added = tab.requests[before:]
        assert len(added) == 1 and "/api/v1/events?" in added[0], added

    one_request(lambda: page.click('#pager a[rel="next"]'), by_name(site)[2:4])
    assert "page 2 of" in page.locator("#page-note").inner_text()
    assert "page=2" in page.url  # the address keeps the page, for a reload or a link

    def search() -> None:
        page.fill("#fleet-form input[name=q]", "svAL")
        page.press("#fleet-form input[name=q]", "Enter")

    one_request(search, ["Svalbard"])
    page.fill("#fleet-form input[name=q]", "")
    # Fewest first, ties by id: Svalbard (none), then Quito (1 in 30 min) or fleet-00000.
    calm = ["Svalbard", "Quito" if site.devices == 3 else "station 00000"]
    one_request(lambda: page.select_option("#fleet-form select[name=sort]", "anomalies"), calm)
    # Most anomalies in 30 minutes first: Berlin has 2 (and 2 in 24 h), Quito 1 (and 3).
    one_request(
        lambda: page.select_option("#fleet-form select[name=order]", "desc"), ["Berlin", "Quito"]
    )
    first = page.locator("#fleet tbody tr").first
    assert (first.locator(".a30").inner_text(), first.locator(".a24").inner_text()) == ("2", "2")
    assert first.locator(".worst").inner_text() == "spike (high) 0.99"


def test_the_stream_brings_a_new_reading_without_another_request(tab: Tab, site: Site) -> None:
    tab.page.goto(f"{site.url}/?every=0.5&q=Quito")
    wait_for_events(tab, 1)
    quito = tab.page.locator(f'#fleet tr[data-device-id="{DEVICE_C}"]')
    assert quito.locator(".last").inner_text() == "25.99 °C"
    before = len(tab.requests)
    site.repo.store_batch([make_reading(DEVICE_C, 1, 77.7, start=datetime.now(UTC))])
    tab.page.wait_for_function(
        f"document.querySelector('#fleet tr[data-device-id=\"{DEVICE_C}\"] .last')"
        ".textContent === '77.70 °C'",
        timeout=SECONDS,
    )
    assert tab.requests[before:] == []


def test_health_strip_shows_rate_lag_dead_letters_and_detection(tab: Tab, site: Site) -> None:
    tab.page.goto(f"{site.url}/?every=0.5")
    strip = tab.page.locator("#health")
    stored = 1200 * 2 + 10_800 + 3 * (site.devices - 3)
    assert f"{stored:,}" in strip.locator('[data-field="stored"]').inner_text()
    assert strip.locator('[data-field="lag"]').inner_text() == f"{WAITING} messages"
    assert strip.locator('[data-field="dead_letters"]').inner_text() == "1 (1 pending)"
    assert strip.locator('[data-field="detection"]').inner_text().startswith("at 20")
    warming = 1 + (len([i for i in range(site.devices - 3) if i % 7 == 0 and i % 11]))
    assert strip.locator('[data-field="warming_up"]').inner_text() == f"{warming} devices"
    assert f"{site.devices:,}:" in strip.locator('[data-field="devices"]').inner_text()
    # The ingest rate needs two samples of the stored total; then it is a number.
    site.repo.store_batch([make_reading(DEVICE_A, i, start=datetime.now(UTC)) for i in range(50)])
    tab.page.wait_for_function(
        "document.querySelector('#health [data-field=ingest_rate]').textContent"
        ".endsWith('readings/s')",
        timeout=SECONDS,
    )


def test_device_page_draws_the_chart_with_marks_and_their_tooltip(tab: Tab, site: Site) -> None:
    page = tab.page
    page.goto(f"{site.url}/?q=Berlin")
    with page.expect_navigation():
        page.click("#fleet tbody a:text('Berlin')")
    page.wait_for_selector("body[data-chart=drawn]", timeout=SECONDS)
    chart = page.locator("#chart")
    assert page.locator("h2.name").inner_text() == "Berlin"
    assert chart.get_attribute("data-resolution") == "raw"
    assert int(chart.get_attribute("data-points") or 0) == 1200
    assert chart.get_attribute("data-marks") == "2"
    legend = page.locator(".u-legend").inner_text()
    assert "temperature °C" in legend and "anomalies" in legend and "time (UTC)" in legend
    hover_mark(page, 0)
    tip = page.locator("#tooltip")
    assert tip.inner_text().startswith("spike (high) · score 0.99 · ")
    assert tip.inner_text().endswith(" UTC")
    page.uncheck("#utc")
    page.wait_for_selector("#chart[data-tz=local]")
    assert "time (local)" in page.locator(".u-legend").inner_text()
    hover_mark(page, 1)
    assert tip.inner_text().startswith("dip (medium) · score 0.80 · ")
    assert tip.inner_text().endswith(" local")
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"device-{site.devices}.png"), full_page=True)


def chart_end(page: Any) -> str:
    return str(page.locator("#chart").get_attribute("data-end"))


def hover_mark(page: Any, n: int) -> None:
    """Move the mouse onto the n-th anomaly mark of the chart."""
    x, y = page.evaluate(
        """n => {
          const u = window.weatherpipeChart, box = u.over.getBoundingClientRect();
          const i = u.data[4].map((v, i) => v === null ? -1 : i).filter(i => i >= 0)[n];
          return [box.left + u.valToPos(u.data[0][i], "x"),
                  box.top + u.valToPos(u.data[4][i], "y")];
        }""",
        n,
    )
    page.mouse.move(x - 3, y - 3)
    page.mouse.move(x, y, steps=3)
    page.wait_for_selector("#tooltip:not([hidden])", timeout=SECONDS)


def test_ranges_fit_a_young_device_and_long_ranges_group_marks(tab: Tab, site: Site) -> None:
    page = tab.page
    requests = len(tab.requests)
    page.goto(f"{site.url}/devices/{DEVICE_A}")
    page.wait_for_selector("body[data-chart=drawn]", timeout=SECONDS)
    assert len([u for u in tab.requests[requests:] if "/api/v1/series" in u]) == 1
    # "day" of a device that is 20 minutes old: the 20 minutes fill the chart.
    drawn = chart_end(page)
    page.click("button[data-range='24h']")
    page.wait_for_function(f"document.querySelector('#chart').dataset.end !== '{drawn}'")
    assert page.locator("#chart").get_attribute("data-resolution") == "raw"
    left, right = page.evaluate(
        """() => { const u = window.weatherpipeChart, xs = u.data[0];
          return [u.valToPos(xs[0], "x") / u.bbox.width * devicePixelRatio,
                  u.valToPos(xs[xs.length - 1], "x") / u.bbox.width * devicePixelRatio]; }"""
    )
    # From its first reading to now: its last reading is up to a minute old (whole minutes).
    assert left < 0.02 and right > 0.9, (left, right)
    # Drag across the middle of the plot: it zooms in.
    box = page.locator("#chart .u-over").bounding_box()
    page.mouse.move(box["x"] + box["width"] * 0.3, box["y"] + box["height"] / 2)
    page.mouse.down()
    page.mouse.move(box["x"] + box["width"] * 0.6, box["y"] + box["height"] / 2, steps=5)
    page.mouse.up()
    page.wait_for_selector("#chart[data-zoomed=true]", timeout=SECONDS)
    low, high = page.evaluate(
        "() => [window.weatherpipeChart.scales.x.min, window.weatherpipeChart.scales.x.max]"
    )
    assert high - low < 0.5 * 20 * 60
    # Quito's three hours come from the minute rollups, its two flags of one minute as one mark.
    page.goto(f"{site.url}/devices/{DEVICE_C}")
    page.wait_for_selector("body[data-chart=drawn]", timeout=SECONDS)
    chart = page.locator("#chart")
    assert chart.get_attribute("data-resolution") == "minute"
    assert chart.get_attribute("data-marks") == "2"
    hover_mark(page, 0)
    assert (
        page.locator("#tooltip")
        .inner_text()
        .startswith("2 flagged readings in this minute; worst: spike (high) · score 0.97")
    )


def test_a_device_warming_up_says_so(tab: Tab, site: Site) -> None:
    tab.page.goto(f"{site.url}/devices/{DEVICE_B}")
    assert "Warming up" in tab.page.locator("#warming").inner_text()
    assert tab.page.locator(".figures .detection").inner_text() == "warming up"
    tab.page.goto(f"{site.url}/?q=Svalbard")
    row = tab.page.locator(f'#fleet tr[data-device-id="{DEVICE_B}"]')
    assert row.locator(".detection").inner_text() == "warming up"
    assert tab.page.goto(f"{site.url}/devices/no-such-device").status == 404  # type: ignore[union-attr]


def test_pages_work_with_scripts_off(browser: Any, site: Site) -> None:
    context = browser.new_context(java_script_enabled=False)
    page = context.new_page()
    page.goto(f"{site.url}/")
    page.fill("#login-form input[name=token]", TOKEN)
    with page.expect_navigation():
        page.click("#login-form button")
    try:
        assert page.locator("#fleet tbody tr .name a").all_inner_texts() == by_name(site)[:50]
        page.fill("#fleet-form input[name=q]", "quito")
        with page.expect_navigation():
            page.click("#fleet-form button")
        assert page.locator("#fleet tbody tr .name a").all_inner_texts() == ["Quito"]
        assert page.locator("#fleet tbody tr .worst").inner_text() == "spike (high) 0.97"
        assert "5 messages" in page.locator("#health").inner_text()
        page.goto(f"{site.url}/analyses")
        assert "spike (high)" in page.locator("#anomalies").inner_text()
        assert "Berlin" in page.locator("#counts").inner_text()
    finally:
        context.close()


def test_analyses_form_answers_and_says_no_data_found(tab: Tab, site: Site) -> None:
    page = tab.page
    page.goto(f"{site.url}/analyses")
    today = site.start
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


def test_api_docs_render_from_the_package(tab: Tab, site: Site) -> None:
    tab.page.goto(f"{site.url}/docs")
    tab.page.wait_for_selector(".swagger-ui .opblock", timeout=SECONDS)
    assert "weatherpipe" in tab.page.locator(".swagger-ui .info .title").inner_text()
    assert tab.page.locator(".swagger-ui .opblock").count() >= 10


def test_dashboard_refuses_a_browser_without_the_token(browser: Any, site: Site) -> None:
    page = browser.new_page()
    response = page.goto(site.url)
    assert response is not None and response.status == 401
    page.close()
