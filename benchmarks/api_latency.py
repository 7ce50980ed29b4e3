"""The API latency benchmark: p99 per endpoint over months of readings, against full scans."""

from __future__ import annotations

import asyncio
import logging
import math
import statistics
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from fastapi import FastAPI
from sqlalchemy import Engine, create_engine, text

from weatherpipe.compose import make_api
from weatherpipe.config import load_settings
from weatherpipe.storage.repository import Repository, Scored

log = logging.getLogger(__name__)
# Every 97th reading of the newest half hour is flagged, so anomaly answers are not empty.
FLAG_EVERY = 97


@dataclass(frozen=True)
class EndpointTiming:
    """One endpoint's latency, and the original full-scan query answering the same question."""

    name: str
    path: str
    p50_ms: float
    p99_ms: float
    baseline_sql: str | None = None
    baseline_ms: float | None = None

    @property
    def ratio(self) -> float | None:
        """How many times faster the endpoint's p99 is than the full scan's median."""
        if self.baseline_ms is None:
            return None
        return self.baseline_ms / max(self.p99_ms, 1e-9)


@dataclass
class ApiBench:
    """A benchmark run over one database."""

    database: str
    readings: int
    fill_seconds: float | None
    requests: int
    timings: list[EndpointTiming] = field(default_factory=list)

    def passed(self, p99_ms: float = 50.0, ratio: float = 100.0) -> bool:
        return all(
            t.p99_ms < p99_ms and (t.ratio is None or t.ratio >= ratio) for t in self.timings
        )

    def markdown(self) -> str:
        """The table docs/api.md and docs/performance.md show."""
        lines = [
            f"{self.database}, {self.readings:,} readings, {self.requests} requests per endpoint"
            + (f", filled in {self.fill_seconds:.0f} s" if self.fill_seconds else ""),
            "",
            "| endpoint | p50 ms | p99 ms | full-scan query, median ms | p99 faster by |",
            "| --- | ---: | ---: | ---: | ---: |",
        ]
        for t in self.timings:
            base = f"{t.baseline_ms:,.0f}" if t.baseline_ms is not None else "-"
            ratio = f"{t.ratio:,.0f}x" if t.ratio is not None else "-"
            lines.append(f"| `{t.name}` | {t.p50_ms:.1f} | {t.p99_ms:.1f} | {base} | {ratio} |")
        return "\n".join(lines) + "\n"


def run(
    database_url: str,
    *,
    days: float = 30,
    devices: int = 3,
    requests: int = 200,
    scans: int = 3,
    fill: bool = True,
) -> ApiBench:
    """Benchmark every read endpoint over `database_url`.

    An already-filled database is reused (filling 7.8 million readings takes minutes); a
    missing or partial one is filled up to `days` of `devices` at 1 Hz by the simulator's
    backfill. Each endpoint is asked `requests` times in process (p50 and p99); each original
    full-scan query over weather_trans runs `scans` times in the same run (median).
    """
    from weatherpipe.compose import open_repository

    settings = load_settings(database_url=database_url)
    repo = open_repository(settings)
    try:
        fill_seconds = _fill(repo, database_url, days, devices) if fill else None
        _flag_recent(repo)
        bench = ApiBench(repo.dialect, repo.totals()["stored"], fill_seconds, requests)
        app = make_api(settings, repo)
        engine = create_engine(database_url)
        try:
            for name, path, baseline in _cases(repo, full_scan_queries(engine.dialect.name)):
                p50, p99 = asyncio.run(_latency(app, path, requests))
                base_sql, base_ms = None, None
                if baseline is not None:
                    base_sql = baseline[0]
                    base_ms = 1000 * _median_seconds(engine, baseline, scans)
                bench.timings.append(EndpointTiming(name, path, p50, p99, base_sql, base_ms))
                log.info("%s: p99 %.1f ms", name, p99)
        finally:
            engine.dispose()
        return bench
    finally:
        repo.close()


def full_scan_queries(dialect: str) -> dict[str, str]:
    """The original deployment's queries over the weather_trans view (full scans)."""
    if dialect == "sqlite":
        day_of, month_of = (f"CAST(strftime('%{p}', time) AS INTEGER)" for p in "dm")
    elif dialect == "postgresql":
        day_of, month_of = "EXTRACT(DAY FROM time)", "EXTRACT(MONTH FROM time)"
    else:
        day_of, month_of = "DAY(time)", "MONTH(time)"
    return {
        "devices": (
            "SELECT deviceid, COUNT(*), MAX(temperature), MAX(time) FROM weather_trans "
            "GROUP BY deviceid"
        ),
        "devicedata": "SELECT deviceid, COUNT(*) FROM weather_trans GROUP BY deviceid",
        "devicemax": "SELECT deviceid, MAX(temperature) FROM weather_trans GROUP BY deviceid",
        "daymax": (
            "SELECT deviceid, MAX(temperature) FROM weather_trans "
            f"WHERE {day_of} = :day AND {month_of} = :month GROUP BY deviceid"
        ),
        "deviceanomalies": (
            "SELECT deviceid, COUNT(*) FROM weather_trans "
            "WHERE isanomal = 1 AND time >= :since GROUP BY deviceid"
        ),
    }


def _fill(repo: Repository, database_url: str, days: float, devices: int) -> float | None:
    """Backfill what is missing of `days` x `devices` at 1 Hz; None when nothing was."""
    from weatherpipe.runner import SimulateOptions, run_backfill

    expected = int(days * 86400 * devices)
    stored = repo.totals()["stored"]
    if stored >= expected * 0.99:
        log.info("reusing %s readings already stored", f"{stored:,}")
        return None
    now = datetime.now(UTC).replace(microsecond=0)
    newest = max((d["last_seen"] for d in repo.devices()), default=None)
    start = now - timedelta(days=days) if newest is None else newest + timedelta(seconds=1)
    log.info("filling %s readings from %s", f"{expected - stored:,}", start)
    started = time.perf_counter()
    settings = load_settings(database_url=database_url)
    asyncio.run(run_backfill(settings, SimulateOptions(devices=devices), start, now, to_db=True))
    return time.perf_counter() - started


def _flag_recent(repo: Repository) -> None:
    """Flag a few of the newest readings as anomalies (what the detector would do)."""
    for device in repo.devices():
        if device["last_ts"] is None:
            continue
        since = device["last_ts"] - timedelta(minutes=30)
        rows = repo.readings_page(device["device_id"], start=since, limit=1800)
        flags = [Scored(r["id"], 0.99, True) for r in rows[::FLAG_EVERY]]
        repo.save_detection("bench", device["device_id"], device["last_ts"], "{}", flags)


Baseline = tuple[str, dict[str, Any]] | None


def _cases(repo: Repository, scans: dict[str, str]) -> list[tuple[str, str, Baseline]]:
    """(name, path, original full-scan query) for every read endpoint."""
    devices = repo.devices()
    device = devices[0]
    last = device["last_ts"]
    newest = max(d["last_ts"] for d in devices if d["last_ts"] is not None)
    # The anomaly window covers the newest half hour of data, however old the data is.
    minutes = int((datetime.now(UTC) - newest).total_seconds() // 60) + 30
    since = datetime.now(UTC) - timedelta(minutes=minutes)
    day = last - timedelta(days=1)

    def at(ts: datetime) -> str:
        return ts.strftime("%Y-%m-%dT%H:%M:%SZ")

    did = device["device_id"]
    return [
        ("GET /api/v1/devices", "/api/v1/devices", (scans["devices"], {})),
        ("GET /api/v1/stats/counts", "/api/v1/stats/counts", (scans["devicedata"], {})),
        (
            "GET /api/v1/stats/max-temperature",
            "/api/v1/stats/max-temperature",
            (scans["devicemax"], {}),
        ),
        (
            "GET /api/v1/stats/daily-max",
            f"/api/v1/stats/daily-max?day={day.day}&month={day.month}",
            (scans["daymax"], {"day": day.day, "month": day.month}),
        ),
        (
            "GET /api/v1/anomalies",
            f"/api/v1/anomalies?minutes={minutes}",
            # The schema stores UTC without a zone.
            (scans["deviceanomalies"], {"since": since.replace(tzinfo=None)}),
        ),
        (
            "GET /api/v1/readings (1,000)",
            f"/api/v1/readings?device_id={did}&start={at(last - timedelta(hours=2))}&limit=1000",
            None,
        ),
        (
            "GET /api/v1/series (15 min, raw)",
            f"/api/v1/series?device_id={did}&start={at(last - timedelta(minutes=15))}"
            f"&end={at(last)}",
            None,
        ),
        (
            "GET /api/v1/series (1 h, minutes)",
            f"/api/v1/series?device_id={did}&start={at(last - timedelta(hours=1))}&end={at(last)}",
            None,
        ),
        (
            "GET /api/v1/series (1 day, hours)",
            f"/api/v1/series?device_id={did}&start={at(last - timedelta(days=1))}&end={at(last)}",
            None,
        ),
        (
            "GET /api/v1/series (3 days, hours)",
            f"/api/v1/series?device_id={did}&start={at(last - timedelta(days=3))}&end={at(last)}",
            None,
        ),
        (
            "GET /api/v1/series (7 days, days)",
            f"/api/v1/series?device_id={did}&start={at(last - timedelta(days=7))}&end={at(last)}",
            None,
        ),
        (
            "GET /api/v1/series (7 days, resolution=hour)",
            f"/api/v1/series?device_id={did}&start={at(last - timedelta(days=7))}&end={at(last)}"
            "&resolution=hour",
            None,
        ),
        (
            "GET /api/v1/series (30 days, days)",
            f"/api/v1/series?device_id={did}&start={at(last - timedelta(days=30))}&end={at(last)}",
            None,
        ),
        ("GET / (dashboard)", "/", None),
    ]


async def _latency(app: FastAPI, path: str, requests: int) -> tuple[float, float]:
    """p50 and p99 in milliseconds of `requests` GETs of `path` (after a short warm-up),
    in process through ASGI: the app's time, without a network stack's noise."""
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://bench") as client:
        for _ in range(3):
            await _get(client, path)
        samples = []
        for _ in range(requests):
            started = time.perf_counter()
            await _get(client, path)
            samples.append((time.perf_counter() - started) * 1000)
    return percentiles(samples)


def percentiles(samples: list[float]) -> tuple[float, float]:
    """The median and the nearest-rank 99th percentile of `samples`."""
    ordered = sorted(samples)
    return statistics.median(ordered), ordered[math.ceil(len(ordered) * 0.99) - 1]


async def _get(client: httpx.AsyncClient, path: str) -> None:
    response = await client.get(path)
    if response.status_code != 200:
        raise RuntimeError(f"{path} answered {response.status_code}: {response.text[:200]}")


def _median_seconds(engine: Engine, query: tuple[str, dict[str, Any]], repeats: int) -> float:
    """Median seconds of running one literal read-only statement to its last row."""
    sql, params = query
    times = []
    with engine.connect() as conn:
        for _ in range(repeats):
            started = time.perf_counter()
            conn.execute(text(sql), params).all()
            times.append(time.perf_counter() - started)
    return statistics.median(times)
