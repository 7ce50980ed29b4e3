"""http-ingest: readings/s through POST /api/v1/telemetry (a real `weatherpipe api` process on
MariaDB) in batches of 1 (at several numbers of requests in flight) and of 100, beside the NATS
path (`weatherpipe ingest` draining a backlog) on the same readings, in the same interleaved
rounds."""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import Sequence
from typing import Any

import orjson

from benchmarks.base import (
    BenchOptions,
    Processes,
    Result,
    fleet_payloads,
    median,
    publish_all,
    scratch_mariadb,
    scratch_stream,
)
from benchmarks.drain import BACKLOG_START, drain_rate

TOKEN = "bench-gateway-token"
CONCURRENCY = 8  # requests in flight at once, as several devices posting at the same time
# Batch-1 requests in flight: one device alone, a few, a fleet posting at once (group commit
# folds the requests that wait into one transaction, so the rate should grow with these).
SINGLE_CONCURRENCY = (1, 8, 32)
START_SECONDS = 60.0


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def _post_all(url: str, batches: Sequence[bytes], concurrency: int) -> float:
    """Seconds to POST every batch, `concurrency` at a time; each must answer 202."""
    import httpx

    queue = list(reversed(batches))
    headers = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}

    async def worker(client: httpx.AsyncClient) -> None:
        while queue:
            body = queue.pop()
            answer = await client.post("/api/v1/telemetry", content=body, headers=headers)
            if answer.status_code != 202:
                raise RuntimeError(f"telemetry answered {answer.status_code}: {answer.text[:200]}")

    # A new connection per request, as a device posting now and then opens one (and because a
    # kept-alive connection to `weatherpipe api` waits ~40-50 ms per request, see
    # docs/performance.md: that would be measured instead of ingestion).
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=0)
    async with httpx.AsyncClient(base_url=url, timeout=60, limits=limits) as client:
        started = time.perf_counter()
        await asyncio.gather(*(worker(client) for _ in range(concurrency)))
        return time.perf_counter() - started


def http_rate(
    database_url: str, payloads: Sequence[bytes], batch: int, concurrency: int = CONCURRENCY
) -> float:
    """Readings/s stored through a fresh `weatherpipe api` (started before the clock runs)."""
    import httpx

    port = _free_port()
    env = {
        "WEATHERPIPE_DATABASE_URL": database_url,
        "WEATHERPIPE_API_TOKEN": TOKEN,
        "WEATHERPIPE_API_PORT": str(port),
        "WEATHERPIPE_TELEMETRY_RATE": "1000000000",
        "WEATHERPIPE_TELEMETRY_BURST": "1000000",
    }
    items: list[Any] = [orjson.loads(p) for p in payloads]
    bodies = [
        orjson.dumps(items[i] if batch == 1 else items[i : i + batch])
        for i in range(0, len(items), batch)
    ]
    url = f"http://127.0.0.1:{port}"
    with Processes() as children:
        children.start(["api"], env)
        deadline = time.monotonic() + START_SECONDS
        while True:
            children.check()
            try:
                if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise TimeoutError("the API did not start")
            time.sleep(0.1)
        seconds = asyncio.run(_post_all(url, bodies, concurrency))
    return len(payloads) / seconds


def http_ingest(options: BenchOptions) -> Result:
    """`POST /api/v1/telemetry` in batches of 1 (at 1, 8 and 32 requests in flight) and of 100
    (readings/s, each answered after its commit), beside the same readings drained from NATS by
    `weatherpipe ingest`."""
    devices = int(options.size(100, 20, options.devices))
    singles_n = int(options.size(3_000, 300))
    batched_n = int(options.size(50_000, 4_000, options.backlog))
    batched = fleet_payloads(devices, max(1, batched_n // devices), BACKLOG_START)
    singles = fleet_payloads(devices, max(1, singles_n // devices), BACKLOG_START)
    ones: dict[int, list[float]] = {c: [] for c in SINGLE_CONCURRENCY}
    hundreds, drains = [], []
    with scratch_stream(options.nats_url) as topic:
        publish_seconds = asyncio.run(publish_all(options.nats_url, topic, batched))
        for _ in range(options.repeats):
            for concurrency in SINGLE_CONCURRENCY:
                with scratch_mariadb(options.mariadb_url, options.tag) as url:
                    ones[concurrency].append(http_rate(url, singles, 1, concurrency))
            with scratch_mariadb(options.mariadb_url, options.tag) as url:
                hundreds.append(http_rate(url, batched, 100))
            with scratch_mariadb(options.mariadb_url, options.tag) as url:
                drains.append(drain_rate(options, url, topic, len(batched), 1))
    hundred, drain = median(hundreds), median(drains)
    one = {c: median(runs) for c, runs in ones.items()}
    baselines = {"NATS → ingest drain": drain}
    baselines.update({f"HTTP, batches of 1, {c} in flight": rate for c, rate in one.items()})
    return Result(
        "http-ingest",
        f"POST /api/v1/telemetry → MariaDB, batches of 100 ({len(batched):,} readings, "
        f"{CONCURRENCY} requests in flight)",
        hundred,
        "readings/s",
        "reported beside the NATS drain",
        None,
        runs=hundreds,
        baselines=baselines,
        ratios={name: hundred / rate for name, rate in baselines.items()},
        details={
            "batch_1_runs": {str(c): runs for c, runs in ones.items()},
            "batch_1_per_s": {str(c): rate for c, rate in one.items()},
            "batch_1_readings": len(singles),
            "nats_drain_runs": drains,
            "nats_publish_per_s": len(batched) / publish_seconds,
            "devices": devices,
            "concurrency": CONCURRENCY,
        },
        note="each 202 is answered after its transaction commits",
    )
