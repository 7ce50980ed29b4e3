"""Prometheus metrics of one process: ingest, bus lag, stored totals, API latency, alerts."""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Iterator
from typing import Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    start_http_server,
)
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from weatherpipe.bus.base import Bus
from weatherpipe.errors import WeatherpipeError
from weatherpipe.lifecycle import pause
from weatherpipe.storage.repository import BatchResult, Repository

log = logging.getLogger(__name__)
CONTENT_TYPE = CONTENT_TYPE_LATEST
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
LAG_INTERVAL = 5.0


class Metrics:
    """The metrics of one process in a registry of its own (so tests and apps never clash).

    Ingest feeds `on_batch` (the IngestWorker hook); the bus lag is sampled by `watch_lag`;
    database totals are read when scraped, if a repository is attached.
    """

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.stored = Counter(
            "weatherpipe_readings_stored",
            "Readings stored by ingest in this process (rate() of it is the ingest rate).",
            registry=self.registry,
        )
        self.duplicates = Counter(
            "weatherpipe_readings_duplicate",
            "Redelivered readings ingest dropped because their key was stored already.",
            registry=self.registry,
        )
        self.dead = Counter(
            "weatherpipe_dead_letters",
            "Messages ingest refused and stored as dead letters in this process.",
            registry=self.registry,
        )
        self.batch_seconds = Histogram(
            "weatherpipe_ingest_batch_seconds",
            "Time from pulling a batch to its commit and ack.",
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.lag = Gauge(
            "weatherpipe_bus_lag_messages",
            "Messages waiting in the subscription (where the broker reports it).",
            registry=self.registry,
        )
        self.api_seconds = Histogram(
            "weatherpipe_api_request_seconds",
            "API request latency by route template, method and status.",
            ["route", "method", "status"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.alert_attempts = Counter(
            "weatherpipe_alert_attempts",
            "Alert delivery attempts by receiver and outcome (delivered, retry, failed).",
            ["receiver", "outcome"],
            registry=self.registry,
        )
        self.alert_delivery_seconds = Histogram(
            "weatherpipe_alert_delivery_seconds",
            "Time from an alert notification being queued to its delivery.",
            buckets=(*LATENCY_BUCKETS, 10.0, 30.0, 60.0, 300.0),
            registry=self.registry,
        )
        self._database: _DatabaseTotals | None = None

    def on_batch(self, result: BatchResult, elapsed: float) -> None:
        """The IngestWorker hook: called once per committed batch."""
        self.stored.inc(result.stored)
        self.duplicates.inc(result.duplicates)
        self.dead.inc(result.dead)
        self.batch_seconds.observe(elapsed)

    def on_alert_attempt(self, receiver: str, outcome: str, queued_seconds: float) -> None:
        """The alerts Deliverer hook: called once per delivery attempt."""
        self.alert_attempts.labels(receiver, outcome).inc()
        if outcome == "delivered":
            self.alert_delivery_seconds.observe(queued_seconds)

    def observe_request(self, route: str, method: str, status: int, seconds: float) -> None:
        self.api_seconds.labels(route, method, str(status)).observe(seconds)

    def watch_database(self, repo: Repository) -> None:
        """Report the database's totals (stored, anomalies, dead letters) on every scrape."""
        if self._database is None:
            self._database = _DatabaseTotals(repo)
            self.registry.register(self._database)

    async def sample_lag(self, bus: Bus) -> int | None:
        """Ask the bus how many messages wait, record it, and return it (None: unknown)."""
        try:
            lag = await bus.lag()
        except WeatherpipeError as exc:
            log.debug("bus lag unavailable: %s", exc)
            return None
        if lag is not None:
            self.lag.set(lag)
        return lag

    async def watch_lag(self, bus: Bus, stop: asyncio.Event) -> None:
        """Sample the bus lag every LAG_INTERVAL seconds until `stop` is set."""
        while not stop.is_set():
            await self.sample_lag(bus)
            await pause(LAG_INTERVAL, stop)

    def exposition(self) -> bytes:
        return generate_latest(self.registry)

    def serve(self, port: int, host: str = "127.0.0.1") -> MetricsServer:
        """Serve /metrics on its own port in a thread (for `weatherpipe ingest --metrics-port`)."""
        server, thread = start_http_server(port, addr=host, registry=self.registry)
        return MetricsServer(server, thread)


class MetricsServer:
    """The standalone metrics HTTP server; `close` stops it."""

    def __init__(self, server: Any, thread: threading.Thread) -> None:
        self.server = server
        self.thread = thread

    @property
    def port(self) -> int:
        return int(self.server.server_port)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)


class _DatabaseTotals(Collector):
    """Gauges read from the database at scrape time (every process sees the same totals)."""

    def __init__(self, repo: Repository) -> None:
        self.repo = repo

    def describe(self) -> list[Any]:
        return []

    def collect(self) -> Iterator[GaugeMetricFamily]:
        try:
            totals = self.repo.totals()
        except WeatherpipeError as exc:
            log.warning("metrics: database totals unavailable: %s", exc)
            return
        help_of = {
            "stored": "Readings in the database.",
            "anomalies": "Readings flagged as anomalies in the database.",
            "dead_letters": "Dead letters in the database.",
        }
        for key, text in help_of.items():
            yield GaugeMetricFamily(f"weatherpipe_database_{key}", text, value=totals[key])
