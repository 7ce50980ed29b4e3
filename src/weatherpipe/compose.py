"""The composition root: every stage's parts built from the settings, in this one place.

`cli`, `runner` (each stage alone, and `up`) and `supervisor` call these; nothing else reads
the settings to decide which bus, database, keys or detector a stage gets. The parts themselves
take what they need as arguments (`IngestWorker(bus, store)`, `create_app(settings, repo, ...)`).
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError

from weatherpipe.bus import create_bus
from weatherpipe.bus.base import Bus
from weatherpipe.config import Settings
from weatherpipe.detect.job import DetectionJob
from weatherpipe.errors import ConfigError, StorageError, StorageUnavailable
from weatherpipe.ingest.admission import Admission
from weatherpipe.ingest.worker import IngestWorker
from weatherpipe.metrics import Metrics
from weatherpipe.reading import Window, decode_many
from weatherpipe.redact import mask_url
from weatherpipe.retention import OnBatch, Policy, Pruner
from weatherpipe.sensors.profiles import fleet
from weatherpipe.sensors.publisher import SensorRunner
from weatherpipe.sensors.spool import Spool
from weatherpipe.signing import DeviceKeys, RegistryVerifier, Signer, Verifier
from weatherpipe.storage.engine import require_current, upgrade
from weatherpipe.storage.repository import Repository

if TYPE_CHECKING:
    from fastapi import FastAPI

    from weatherpipe.alerts.job import AlertsJob
    from weatherpipe.alerts.rules import AlertsConfig


def open_bus(settings: Settings) -> Bus:
    """The bus of WEATHERPIPE_BUS_URL (not connected yet; its backend imported only now),
    listening on per-device topics too where the backend has them."""
    bus = create_bus(settings.bus_url, settings.topic, settings.subscription)
    if bus.per_device_topics:
        bus.device_topic = settings.device_topic
    return bus


def open_repository(
    settings: Settings, migrate: bool | None = None, must_exist: bool = False
) -> Repository:
    """The repository; the schema upgraded first, or only checked with `settings.migrate` off.

    A database that cannot be reached is one StorageUnavailable naming it (password masked).
    With `must_exist`, a SQLite file that is not there is an error instead of a new empty
    database (for commands that only read, run from the wrong folder).
    """
    url = settings.database_url
    if must_exist:
        missing = missing_sqlite_file(url)
        if missing is not None:
            raise ConfigError(
                f"WEATHERPIPE_DATABASE_URL: no database at {missing}: "
                "run `weatherpipe db upgrade` first, or point WEATHERPIPE_DATABASE_URL at it"
            )
    repo = Repository.from_url(url)
    try:
        if settings.migrate if migrate is None else migrate:
            upgrade(repo.engine)
        else:
            require_current(repo.engine)
    except SQLAlchemyError as exc:
        repo.close()
        raise StorageUnavailable(f"database {mask_url(url)}: {db_reason(exc)}") from exc
    except StorageError as exc:
        repo.close()
        raise type(exc)(f"database {mask_url(url)}: {exc}") from exc
    except BaseException:
        repo.close()
        raise
    return repo


def missing_sqlite_file(url: str) -> Path | None:
    """The file a sqlite:/// URL names, if it does not exist (None for other databases)."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite" or parsed.database in (None, "", ":memory:"):
        return None
    path = Path(parsed.database).resolve()
    return None if path.exists() else path


def db_reason(exc: SQLAlchemyError) -> str:
    """The driver's own words, e.g. `Access denied for user 'weather'@'localhost'`."""
    orig = getattr(exc, "orig", None)
    args: tuple[Any, ...] = tuple(getattr(orig, "args", ()))
    if len(args) == 2 and isinstance(args[1], str):
        return args[1]  # PyMySQL's (code, message)
    return str(orig if orig is not None else exc).strip().splitlines()[0]


def _keys(settings: Settings) -> DeviceKeys | None:
    return DeviceKeys.load(settings.device_keys) if settings.device_keys else None


def make_ingest(
    settings: Settings, bus: Bus, repo: Repository, metrics: Metrics | None = None
) -> IngestWorker:
    """The ingest worker: batches from the settings; signatures checked against the registry's
    HMAC keys and the key file's; the registry admitting readings (disabled devices refused,
    registered places filled in)."""
    keys = _keys(settings)
    window = Window(settings.oldest_ts, timedelta(seconds=settings.max_clock_ahead))
    admission = Admission(repo)
    return IngestWorker(
        bus,
        repo,
        decoder=functools.partial(decode_many, window=window),
        batch_size=settings.batch_size,
        batch_seconds=settings.batch_seconds,
        writers=1 if repo.dialect == "sqlite" else settings.writers,  # SQLite has one writer
        verifier=RegistryVerifier(admission, Verifier(keys) if keys else None),
        on_batch=metrics.on_batch if metrics else None,
        admission=admission,
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
    """The detection job with the configured detector and sensitivity."""
    return DetectionJob(repo, settings.detector, false_alarms_per_day=settings.false_alarms_per_day)


def load_alerts_config(settings: Settings) -> AlertsConfig:
    """The alerts file of WEATHERPIPE_ALERTS_FILE, checked (ConfigError if unset or bad)."""
    from weatherpipe.alerts.rules import load_alerts

    if not settings.alerts_file:
        raise ConfigError(
            "WEATHERPIPE_ALERTS_FILE: not set; alerts need a file of rules and receivers"
        )
    return load_alerts(settings.alerts_file)


def make_alerts(
    settings: Settings,
    repo: Repository,
    metrics: Metrics | None = None,
    config: AlertsConfig | None = None,
) -> AlertsJob:
    """The alerts stage over `repo`: the rules of `config` (default: WEATHERPIPE_ALERTS_FILE
    read now), attempts counted in `metrics`, detection lag measured against the configured
    detector."""
    from weatherpipe.alerts.job import AlertsJob

    config = config or load_alerts_config(settings)
    return AlertsJob(repo, config, settings.detector, metrics)


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


def make_pruner(settings: Settings, repo: Repository, on_batch: OnBatch | None = None) -> Pruner:
    """The pruner with the retention settings (days per table, batch size, pause)."""
    return Pruner(repo, Policy.from_settings(settings), on_batch)
