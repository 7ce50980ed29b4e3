"""The composition root: every stage's parts built from the settings, in this one place.

`cli`, `runner` (each stage alone, and `up`) and `supervisor` call these; nothing else reads
the settings to decide which bus, database, keys or detector a stage gets. The parts themselves
take what they need as arguments (`IngestWorker(bus, store)`, `create_app(settings, repo, ...)`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

from weatherpipe.bus import create_bus
from weatherpipe.bus.base import Bus
from weatherpipe.config import Settings
from weatherpipe.detect.job import DetectionJob
from weatherpipe.ingest.worker import IngestWorker
from weatherpipe.metrics import Metrics
from weatherpipe.sensors.profiles import fleet
from weatherpipe.sensors.publisher import SensorRunner
from weatherpipe.sensors.spool import Spool
from weatherpipe.signing import DeviceKeys, Signer, Verifier
from weatherpipe.storage.engine import require_current, upgrade
from weatherpipe.storage.repository import Repository

if TYPE_CHECKING:
    from fastapi import FastAPI


def open_bus(settings: Settings) -> Bus:
    """The bus of WEATHERPIPE_BUS_URL (not connected yet; its backend imported only now)."""
    return create_bus(settings.bus_url, settings.topic, settings.subscription)


def open_repository(settings: Settings, migrate: bool | None = None) -> Repository:
    """The repository; the schema upgraded first, or only checked with `settings.migrate` off."""
    repo = Repository.from_url(settings.database_url)
    try:
        if settings.migrate if migrate is None else migrate:
            upgrade(repo.engine)
        else:
            require_current(repo.engine)
    except BaseException:
        repo.close()
        raise
    return repo


def _keys(settings: Settings) -> DeviceKeys | None:
    return DeviceKeys.load(settings.device_keys) if settings.device_keys else None


def make_ingest(
    settings: Settings, bus: Bus, repo: Repository, metrics: Metrics | None = None
) -> IngestWorker:
    """The ingest worker: batches from the settings, a verifier when device keys are set."""
    keys = _keys(settings)
    return IngestWorker(
        bus,
        repo,
        batch_size=settings.batch_size,
        batch_seconds=settings.batch_seconds,
        writers=1 if repo.dialect == "sqlite" else settings.writers,  # SQLite has one writer
        verifier=Verifier(keys) if keys else None,
        on_batch=metrics.on_batch if metrics else None,
    )


def make_sensors(
    settings: Settings, bus: Bus, devices: int, rate: float, seed: int, anomaly_rate: float
) -> SensorRunner:
    """The simulated fleet publishing to `bus`, spooling when it is down, signing with keys."""
    keys = _keys(settings)
    return SensorRunner(
        bus,
        fleet(devices, seed),
        rate=rate,
        seed=seed,
        anomaly_rate=anomaly_rate,
        spool=Spool(settings.spool_path),
        signer=Signer(keys) if keys else None,
    )


def fleet_names(devices: int, seed: int) -> Mapping[str, str]:
    """The simulated fleet's display names by device id, for the devices table."""
    return {d.device_id: d.name for d in fleet(devices, seed)}


def make_detection(settings: Settings, repo: Repository) -> DetectionJob:
    """The detection job with the configured detector."""
    return DetectionJob(repo, settings.detector)


def make_api(
    settings: Settings,
    repo: Repository,
    bus: Bus | None = None,
    metrics: Metrics | None = None,
) -> FastAPI:
    """The API app over `repo`, with /metrics reporting the database's totals. `bus` is what
    /readyz checks; pass the process's `metrics` when ingest runs beside it (`up`) so /metrics
    shows its rates too."""
    from weatherpipe.api.app import create_app

    metrics = metrics or Metrics()
    metrics.watch_database(repo)
    return create_app(settings, repo, metrics, bus)
