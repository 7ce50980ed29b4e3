"""api-load: the API under 100 concurrent connections (wrk on loopback), each endpoint's
requests/s as a ratio to a minimal FastAPI app served the same way in the same run, and its p99,
on SQLite, MariaDB and PostgreSQL, at 3 devices with a day of readings and at 1,000 devices."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import re
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from benchmarks.base import (
    BenchOptions,
    Processes,
    Result,
    median,
    migrate,
    poll_until,
    scratch_mariadb,
    scratch_postgresql,
)

log = logging.getLogger(__name__)
CONNECTIONS = 100
THREADS = 2
RATE_TARGET = 0.5  # of the minimal app's requests/s
P99_TARGET_MS = 100.0
START_SECONDS = 60.0
FLEET_PATH = "/api/v1/fleet"
ALL_DATABASES = ("sqlite", "mariadb", "postgresql")


@dataclass(frozen=True)
class Dataset:
    """`devices` simulated sensors at 1 Hz over the `seconds` up to now."""

    name: str
    devices: int
    seconds: int


@dataclass(frozen=True)
class WrkRun:
    requests_per_s: float
    p99_ms: float
    requests: int
    errors: int  # non-2xx answers and socket errors


@dataclass
class Row:
    database: str
    dataset: str
    endpoint: str
    requests_per_s: float
    ratio: float
    p99_ms: float
    runs: list[float]
    p99_runs: list[float]

    @property
    def met(self) -> bool:
        return self.ratio >= RATE_TARGET and self.p99_ms < P99_TARGET_MS


def datasets(options: BenchOptions) -> list[Dataset]:
    if options.quick:
        return [Dataset("3 devices, 10 min", 3, 600), Dataset("100 devices, 1 min", 100, 60)]
    fleet = int(options.devices or 1000)
    return [
        Dataset("3 devices, 1 day", 3, 86_400),
        Dataset(f"{fleet:,} devices, 10 min", fleet, 600),
    ]


def api_load(options: BenchOptions) -> Result:
    """The API at 100 connections (wrk): requests/s per endpoint over a minimal FastAPI app in
    the same run, and p99, on each database."""
    if shutil.which("wrk") is None:
        raise RuntimeError("api-load needs wrk (Debian: apt-get install wrk)")
    # Quick: two seconds per endpoint, no warm-up, settling 10 s at most, on SQLite unless a
    # database is named: a smoke run of the machinery (tests/benchmarks/test_scenarios.py).
    seconds = 2.0 if options.quick else options.seconds or 5.0
    databases = options.databases or (("sqlite",) if options.quick else ALL_DATABASES)
    load_before = os.getloadavg()
    rows: list[Row] = []
    minimal: dict[str, float] = {}
    for database in databases:
        for dataset in datasets(options):
            with scratch_database(database, options) as url:
                fill(url, dataset)
                found, base = measure(url, options.repeats, seconds, quick=options.quick)
            label = f"{database}, {dataset.name}"
            minimal[label] = base
            rows += [Row(database, dataset.name, *figures) for figures in found]
    load_after = os.getloadavg()
    worst = min(rows, key=lambda r: r.ratio)
    slowest = max(rows, key=lambda r: r.p99_ms)
    return Result(
        "api-load",
        f"worst requests/s ratio to a minimal FastAPI app, {CONNECTIONS} connections (wrk), "
        f"{', '.join(databases)}",
        worst.ratio,
        "",
        f"≥ {RATE_TARGET} x minimal, p99 < {P99_TARGET_MS:.0f} ms",
        all(r.met for r in rows),
        runs=[r.ratio for r in rows],
        baselines={f"minimal FastAPI, {k} (req/s)": v for k, v in minimal.items()},
        ratios={
            f"{db}, worst endpoint": min(r.ratio for r in rows if r.database == db)
            for db in databases
        },
        details={
            "rows": [asdict(r) | {"met": r.met} for r in rows],
            "worst_ratio": f"{worst.database} {worst.dataset} {worst.endpoint}",
            "worst_p99_ms": slowest.p99_ms,
            "worst_p99": f"{slowest.database} {slowest.dataset} {slowest.endpoint}",
            "seconds_per_run": seconds,
            "load_average_before": load_before,
            "load_average_after": load_after,
            "markdown": markdown(rows, minimal),
        },
        note=f"worst {worst.endpoint} ({worst.database}, {worst.dataset}); "
        f"slowest p99 {slowest.p99_ms:.0f} ms",
    )


def markdown(rows: list[Row], minimal: dict[str, float]) -> str:
    lines = [
        "| database | data | endpoint | requests/s | of minimal | p99 ms | met |",
        "| --- | --- | --- | ---: | ---: | ---: | --- |",
    ]
    for row in rows:
        lines.append(
            f"| {row.database} | {row.dataset} | `{row.endpoint}` | {row.requests_per_s:,.0f} | "
            f"{row.ratio:.2f} | {row.p99_ms:.1f} | {'yes' if row.met else 'NO'} |"
        )
    lines.append("")
    lines += [f"minimal FastAPI, {k}: {v:,.0f} requests/s" for k, v in minimal.items()]
    return "\n".join(lines) + "\n"


@contextlib.contextmanager
def scratch_database(kind: str, options: BenchOptions) -> Iterator[str]:
    """A fresh database of `kind` (sqlite, mariadb, postgresql) with the schema; its URL."""
    if kind == "sqlite":
        with tempfile.TemporaryDirectory(prefix="wp_bench_api_") as folder:
            url = f"sqlite:///{Path(folder) / 'weather.db'}"
            migrate(url)
            yield url
    elif kind == "mariadb":
        with scratch_mariadb(options.mariadb_url, options.tag) as url:
            yield url
    elif kind == "postgresql":
        with scratch_postgresql(options.postgresql_url, options.tag) as url:
            yield url
    else:
        raise ValueError(f"unknown database {kind!r}: sqlite, mariadb or postgresql")


def fill(url: str, dataset: Dataset) -> None:
    """The simulator's backfill up to now (with its injected anomalies and device names), and
    a few of the newest readings flagged, so anomaly answers are not empty."""
    from benchmarks.api_latency import _flag_recent
    from weatherpipe.compose import open_repository
    from weatherpipe.config import load_settings
    from weatherpipe.runner import SimulateOptions, run_backfill

    settings = load_settings(database_url=url)
    end = datetime.now(UTC).replace(microsecond=0)
    started = time.perf_counter()
    start = end - timedelta(seconds=dataset.seconds)
    options = SimulateOptions(devices=dataset.devices)
    asyncio.run(run_backfill(settings, options, start, end, to_db=True))
    repo = open_repository(settings)
    try:
        _flag_recent(repo)
    finally:
        repo.close()
    log.info("%s: filled in %.0f s", dataset.name, time.perf_counter() - started)


def endpoints(api: str) -> list[tuple[str, str]]:
    """(name, path) of each endpoint measured, with parameters that find data."""
    import httpx

    devices = httpx.get(f"{api}/api/v1/devices", timeout=30).json()
    device = devices[0]["device_id"]
    now = datetime.now(UTC)
    since = (now - timedelta(minutes=10)).strftime("%Y-%m-%dT%H:%M:%SZ")
    found = [
        ("/healthz", "/healthz"),
        ("/api/v1/devices", "/api/v1/devices"),
        ("/api/v1/stats/counts", "/api/v1/stats/counts"),
        ("/api/v1/stats/max-temperature", "/api/v1/stats/max-temperature"),
        ("/api/v1/stats/daily-max", f"/api/v1/stats/daily-max?day={now.day}&month={now.month}"),
        ("/api/v1/anomalies", "/api/v1/anomalies?minutes=30"),
        ("/api/v1/readings (100)", f"/api/v1/readings?device_id={device}&start={since}&limit=100"),
    ]
    # The fleet endpoint (issue 16 part 1), once the API has it.
    if httpx.get(f"{api}{FLEET_PATH}", timeout=30).status_code == 200:
        found.append((FLEET_PATH, FLEET_PATH))
    return found


def measure(
    url: str, repeats: int, seconds: float, quick: bool = False
) -> tuple[list[tuple[Any, ...]], float]:
    """Each endpoint of `weatherpipe api` on `url` and the minimal app, interleaved over
    `repeats` rounds; (name, median req/s, ratio, median p99, runs, p99 runs) per endpoint,
    and the minimal app's median req/s."""
    with serving(url) as (api, minimal):
        paths = endpoints(api)
        base_runs: list[float] = []
        runs: dict[str, list[WrkRun]] = {name: [] for name, _ in paths}
        for _ in range(repeats):
            warm_up = 0.0 if quick else 1.0
            base_runs.append(wrk(f"{minimal}/", seconds, warm_up).requests_per_s)
            for name, path in paths:
                runs[name].append(wrk(f"{api}{path}", seconds, warm_up))
                # uvicorn finishes requests whose client has gone: an endpoint slower than
                # the load leaves work queued that would be billed to the next one.
                settle(api, timeout=10.0 if quick else 60.0)
    base = median(base_runs)
    out = []
    for name, measured in runs.items():
        rates = [r.requests_per_s for r in measured]
        p99s = [r.p99_ms for r in measured]
        out.append((name, median(rates), median(rates) / base, median(p99s), rates, p99s))
    return out, base


@contextlib.contextmanager
def serving(database_url: str) -> Iterator[tuple[str, str]]:
    """`weatherpipe api` on the database and the minimal app (benchmarks.minimal_api), each a
    child process on a free loopback port; yields their base URLs once both answer."""
    api_port, minimal_port = free_port(), free_port()
    env = {
        "WEATHERPIPE_DATABASE_URL": database_url,
        "WEATHERPIPE_API_HOST": "127.0.0.1",
        "WEATHERPIPE_API_PORT": str(api_port),
        "WEATHERPIPE_MIGRATE": "false",
    }
    api, minimal = f"http://127.0.0.1:{api_port}", f"http://127.0.0.1:{minimal_port}"
    with Processes() as children:
        children.start(["api"], env)
        children.start([str(minimal_port)], {}, module="benchmarks.minimal_api")
        for probe in (f"{api}/healthz", f"{minimal}/"):
            poll_until(_answers(probe, children), START_SECONDS, 0.1, f"{probe} answering")
        yield api, minimal


def _answers(url: str, children: Processes) -> Any:
    import httpx

    def probe() -> bool:
        children.check()
        try:
            return httpx.get(url, timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    return probe


def settle(api: str, quick_ms: float = 100.0, timeout: float = 60.0) -> None:
    """Wait until /healthz answers within `quick_ms` twice in a row (the server is idle)."""
    import httpx

    deadline, quick = time.monotonic() + timeout, 0
    while quick < 2 and time.monotonic() < deadline:
        started = time.perf_counter()
        with contextlib.suppress(httpx.HTTPError):
            httpx.get(f"{api}/healthz", timeout=timeout)
        quick = quick + 1 if (time.perf_counter() - started) * 1000 < quick_ms else 0
        time.sleep(0.2)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wrk(url: str, seconds: float, warm_up: float = 1.0) -> WrkRun:
    """wrk's requests/s and p99 over `seconds` at CONNECTIONS connections, after a warm-up
    run; an answer other than 2xx or a socket error fails the benchmark."""
    command = ["wrk", f"-t{THREADS}", f"-c{CONNECTIONS}", "--latency", "--timeout", "10s"]
    if warm_up > 0:
        subprocess.run([*command, f"-d{warm_up:.0f}s", url], capture_output=True, check=True)
    out = subprocess.run(
        [*command, f"-d{max(1, round(seconds))}s", url], capture_output=True, text=True, check=True
    ).stdout
    run = parse_wrk(out)
    if run.errors:
        raise RuntimeError(f"{url}: {run.errors} failed requests under load:\n{out}")
    if run.requests == 0:  # not one answer within the run: its p99 is at least the run
        return WrkRun(0.0, 1000 * max(1, round(seconds)), 0, 0)
    return run


def parse_wrk(out: str) -> WrkRun:
    """The figures of wrk's report (`--latency`)."""
    rate = re.search(r"Requests/sec:\s+([\d.]+)", out)
    p99 = re.search(r"99%\s+([\d.]+)(us|ms|s)\b", out)
    total = re.search(r"(\d+) requests in", out)
    if rate is None or p99 is None or total is None:
        raise RuntimeError(f"cannot read wrk's report:\n{out}")
    scale = {"us": 0.001, "ms": 1.0, "s": 1000.0}[p99.group(2)]
    errors = sum(int(n) for n in re.findall(r"Non-2xx or 3xx responses:\s+(\d+)", out))
    socket_errors = re.search(
        r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out
    )
    if socket_errors:
        errors += sum(int(n) for n in socket_errors.groups())
    return WrkRun(float(rate.group(1)), float(p99.group(1)) * scale, int(total.group(1)), errors)
