"""Runs the stages: each on its own (one process per stage) or all together for `weatherpipe up`."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import socket
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import uvicorn

from weatherpipe.api.server import SHUTDOWN_GRACE, ApiServer, StageServer, listen_socket
from weatherpipe.compose import (
    load_alerts_config,
    make_alerts,
    make_api,
    make_detection,
    make_ingest,
    make_pruner,
    make_sensors,
    open_bus,
    open_repository,
)
from weatherpipe.config import Settings
from weatherpipe.errors import BusUnavailable, StorageUnavailable
from weatherpipe.ingest.worker import IngestStats, IngestWorker
from weatherpipe.lifecycle import pause, quiet_collector, stop_on_signals
from weatherpipe.metrics import Metrics
from weatherpipe.reading import decode, format_ts
from weatherpipe.sensors.publisher import SensorRunner, SensorStats
from weatherpipe.sensors.spool import Item
from weatherpipe.storage.repository import Repository

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Status:
    """What the status line shows."""

    readings_per_second: float
    stored: int
    anomalies: int
    dead_letters: int


async def run_ingest(
    settings: Settings, stop: asyncio.Event | None = None, metrics_port: int | None = None
) -> IngestStats:
    """`weatherpipe ingest`: until SIGTERM/Ctrl-C, which finishes and acks the batch in hand.

    With `metrics_port`, Prometheus metrics are served at http://API_HOST:PORT/metrics.
    """
    stop = stop or stop_on_signals()
    quiet_collector()
    repo = open_repository(settings)
    metrics = Metrics() if metrics_port is not None else None
    server = metrics.serve(metrics_port, settings.api_host) if metrics and metrics_port else None
    try:
        async with open_bus(settings) as bus:
            worker = make_ingest(settings, bus, repo, metrics)
            if metrics is None:
                return await worker.run(stop)
            lag = asyncio.create_task(metrics.watch_lag(bus, stop), name="lag")
            try:
                return await worker.run(stop)
            finally:
                stop.set()
                await lag
    finally:
        if server is not None:
            server.close()
        repo.close()


async def run_detect(settings: Settings, stop: asyncio.Event | None = None) -> None:
    """`weatherpipe detect`: flag new readings every detect_interval seconds."""
    stop = stop or stop_on_signals()
    repo = open_repository(settings)
    try:
        await make_detection(settings, repo).run(stop, settings.detect_interval)
    finally:
        repo.close()


async def run_alerts(
    settings: Settings, stop: asyncio.Event | None = None, metrics_port: int | None = None
) -> None:
    """`weatherpipe alerts run`: evaluate rules and deliver notifications until SIGTERM."""
    stop = stop or stop_on_signals()
    config = load_alerts_config(settings)  # a bad or missing file: before the database opens
    repo = open_repository(settings)
    metrics = Metrics() if metrics_port is not None else None
    try:
        job = make_alerts(settings, repo, metrics, config)
        server = None
        if metrics is not None and metrics_port is not None:
            server = metrics.serve(metrics_port, settings.api_host)
        try:
            await job.run(stop)
        finally:
            if server is not None:
                server.close()
    finally:
        repo.close()


def run_api(settings: Settings) -> None:
    """`weatherpipe api`: serve until SIGTERM or Ctrl-C (exit status 0 either way)."""
    sock = listen_socket(settings.api_host, settings.api_port)
    try:
        repo = open_repository(settings)
    except BaseException:
        sock.close()
        raise
    bus = open_bus(settings)
    # Another process's in-process bus is invisible from here: /readyz has no bus to check.
    application = make_api(settings, repo, bus if bus.crosses_processes else None)
    try:
        serve(application, settings, sock)
    finally:
        repo.close()


def serve(application: Any, settings: Settings, sock: socket.socket) -> None:
    """Serve an ASGI app on `sock` as `weatherpipe api` does, until SIGTERM or Ctrl-C (the
    api-load benchmark serves its minimal baseline app through this too)."""
    # With JSON logs, uvicorn's loggers go through ours instead of its own formatter.
    log_config = None if settings.log_json else uvicorn.config.LOGGING_CONFIG
    config = uvicorn.Config(
        application,
        log_level="info",
        log_config=log_config,
        timeout_graceful_shutdown=SHUTDOWN_GRACE,
    )
    StageServer(config).run(sockets=[sock])


async def run_pipeline(
    settings: Settings,
    *,
    devices: int = 3,
    rate: float = 1.0,
    seed: int = 0,
    anomaly_rate: float = 4.0,
    duration: float | None = None,
    on_status: Callable[[Status], None] | None = None,
    on_ready: Callable[[], None] | None = None,
    stop: asyncio.Event | None = None,
) -> None:
    """`weatherpipe up`: sensors, ingest, detection, the API and (with an alerts file) alerts
    in one process.

    Every part is opened (port, database, bus) before `on_ready` is called, so a start-up
    failure is one error and nothing else.
    """
    stop = stop or stop_on_signals()
    quiet_collector()
    alerts_config = load_alerts_config(settings) if settings.alerts_file else None
    api_socket = listen_socket(settings.api_host, settings.api_port)
    try:
        repo = open_repository(settings)
    except BaseException:
        api_socket.close()
        raise
    bus = open_bus(settings)
    try:
        await bus.connect()
        await bus.setup()
    except BaseException:
        api_socket.close()
        repo.close()
        raise
    sensors = make_sensors(settings, bus, devices, rate, seed, anomaly_rate)
    metrics = Metrics()
    alerts = make_alerts(settings, repo, metrics, alerts_config) if alerts_config else None
    ingest = make_ingest(settings, bus, repo, metrics)
    detect = make_detection(settings, repo)
    api = ApiServer(make_api(settings, repo, bus, metrics), sock=api_socket)
    api.start()
    if on_ready:
        on_ready()
    tasks = [
        asyncio.create_task(sensors.run(duration, stop), name="sensors"),
        asyncio.create_task(ingest.run(stop), name="ingest"),
        asyncio.create_task(detect.run(stop, settings.detect_interval), name="detect"),
        asyncio.create_task(_report(repo, sensors, ingest, stop, on_status), name="status"),
    ]
    if settings.prune_every > 0:
        pruner = make_pruner(settings, repo)
        tasks.append(asyncio.create_task(pruner.run(stop, settings.prune_every), name="prune"))
    if alerts is not None:
        tasks.append(asyncio.create_task(alerts.run(stop), name="alerts"))
    try:
        await _until_stopped_or_failed(tasks, stop)
    finally:
        stop.set()
        for task in tasks:
            with contextlib.suppress(Exception):
                await task
        await asyncio.to_thread(repo.record_injected, sensors.take_truth())
        # Ingest has stored its last batch and nothing else writes here, so nothing is in
        # flight: one last pass scores every reading, not only the settled ones.
        detect.settle_seconds = 0.0
        with contextlib.suppress(StorageUnavailable):
            await asyncio.to_thread(detect.run_once)
        api.stop()
        await bus.close()
        repo.close()


async def _until_stopped_or_failed(tasks: list[asyncio.Task[Any]], stop: asyncio.Event) -> None:
    stopper = asyncio.create_task(stop.wait())
    done, _ = await asyncio.wait([*tasks, stopper], return_when=asyncio.FIRST_COMPLETED)
    stopper.cancel()
    for task in done:
        if task is not stopper and task.exception() is not None:
            raise task.exception()  # type: ignore[misc]


async def _report(
    repo: Repository,
    sensors: SensorRunner,
    ingest: IngestWorker,
    stop: asyncio.Event,
    on_status: Callable[[Status], None] | None,
) -> None:
    """Once a second: record the simulator's ground truth, name devices, report status."""
    named = False
    last_stored, last_time = 0, time.monotonic()
    while not stop.is_set():
        await pause(1.0, stop)
        await asyncio.to_thread(repo.record_injected, sensors.take_truth())
        if not named and ingest.stats.stored:
            names = {d.device_id: d.name for d in sensors.devices}
            named = await asyncio.to_thread(name_stored_devices, repo, names)
        totals = await asyncio.to_thread(repo.totals)
        now = time.monotonic()
        rate = (ingest.stats.stored - last_stored) / max(now - last_time, 1e-9)
        last_stored, last_time = ingest.stats.stored, now
        if on_status:
            on_status(Status(rate, totals["stored"], totals["anomalies"], totals["dead_letters"]))


def name_stored_devices(repo: Repository, names: Mapping[str, str]) -> bool:
    """Write the display names of the devices stored so far; True once all of them are."""
    repo.name_devices(names)
    named = {d["device_id"] for d in repo.devices() if d["name"]}
    return all(device_id in named for device_id in names)


async def name_devices_when_stored(
    repo: Repository, names: Mapping[str, str], stop: asyncio.Event
) -> None:
    """Name the fleet's devices as ingest (in another process) creates them, then return."""
    while not stop.is_set():
        with contextlib.suppress(StorageUnavailable):
            if await asyncio.to_thread(name_stored_devices, repo, names):
                return
        await pause(1.0, stop)


@dataclass(frozen=True)
class SimulateOptions:
    devices: int = 3
    rate: float = 1.0
    seed: int = 0
    anomaly_rate: float = 4.0
    truth_file: Path | None = None


def _write_truth(path: Path | None, sensors: SensorRunner) -> None:
    truth = sensors.take_truth()
    if path is None or not truth:
        return
    with path.open("a", encoding="utf-8") as fh:
        for device_id, kind, start, end in truth:
            fh.write(
                json.dumps(
                    {
                        "device_id": device_id,
                        "kind": kind,
                        "start": format_ts(start),
                        "end": format_ts(end),
                    }
                )
                + "\n"
            )


async def run_sensors(
    settings: Settings,
    options: SimulateOptions,
    duration: float | None = None,
    stop: asyncio.Event | None = None,
) -> SensorStats:
    """`weatherpipe sensors`: publish in real time until the duration ends or SIGTERM."""
    stop = stop or stop_on_signals()
    bus = open_bus(settings)
    try:
        await bus.connect()
    except BusUnavailable as exc:
        # Sensors must not lose readings to a broker that is down when they start: spool them.
        log.warning("bus unavailable at start (%s); spooling to %s", exc, settings.spool_path)
    sensors = make_sensors(
        settings, bus, options.devices, options.rate, options.seed, options.anomaly_rate
    )
    try:
        return await sensors.run(duration, stop)
    finally:
        _write_truth(options.truth_file, sensors)
        await bus.close()


async def run_backfill(
    settings: Settings,
    options: SimulateOptions,
    start: datetime,
    end: datetime,
    to_db: bool,
    on_progress: Callable[[int], None] | None = None,
) -> SensorStats:
    """`weatherpipe sensors --backfill`: a past time range as fast as the sink takes it;
    `on_progress` hears how many readings each chunk wrote once it is written."""
    async with open_bus(settings) as bus:
        sensors = make_sensors(
            settings, bus, options.devices, options.rate, options.seed, options.anomaly_rate
        )
        if not to_db:
            stats = await sensors.backfill(start, end, _counted(sensors.send, on_progress))
        else:
            repo = open_repository(settings)
            try:
                sink = _counted(_store_directly(repo), on_progress)
                stats = await sensors.backfill(start, end, sink)
                repo.record_injected(sensors.take_truth())
                repo.name_devices({d.device_id: d.name for d in sensors.devices})
            finally:
                repo.close()
        _write_truth(options.truth_file, sensors)
        return stats


def _counted(
    sink: Callable[[list[Item]], Awaitable[None]], on_progress: Callable[[int], None] | None
) -> Callable[[list[Item]], Awaitable[None]]:
    if on_progress is None:
        return sink

    async def counted(items: list[Item]) -> None:
        await sink(items)
        on_progress(len(items))

    return counted


def _store_directly(repo: Repository) -> Callable[[list[Item]], Awaitable[None]]:
    async def sink(items: list[Item]) -> None:
        batch = [decode(data) for data, _ in items]
        for i in range(0, len(batch), 5000):
            await asyncio.to_thread(repo.store_batch, batch[i : i + 5000])

    return sink
