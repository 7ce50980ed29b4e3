"""`weatherpipe status`: what is stored, what waits on the bus, and where each stage stands."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from weatherpipe.compose import open_bus
from weatherpipe.config import Settings
from weatherpipe.errors import BusError
from weatherpipe.storage.repository import Repository

log = logging.getLogger(__name__)


@dataclass
class DeviceStatus:
    device_id: str
    name: str | None
    count: int
    last_ts: datetime | None
    last_temperature: float | None
    detection: str  # not_started, warming_up or monitoring (the configured detector)


@dataclass
class Status:
    stored: int
    anomalies: int
    dead_letters: int
    dead_letters_pending: int
    lag: int | None
    lag_note: str
    devices: list[DeviceStatus] = field(default_factory=list)
    detectors: list[dict[str, Any]] = field(default_factory=list)


async def consumer_lag(settings: Settings) -> tuple[int | None, str]:
    """Messages waiting for ingest, or None and why the broker could not say."""
    bus = open_bus(settings)
    if not bus.crosses_processes:
        return None, f"{bus.scheme}:// lives inside one process; no other process can see its queue"
    try:
        async with bus:
            lag = await bus.lag()
    except BusError as exc:
        return None, f"bus unavailable: {exc}"
    return lag, "" if lag is not None else "this broker does not report it"


async def gather(settings: Settings, repo: Repository) -> Status:
    totals = repo.totals()
    lag, note = await consumer_lag(settings)
    return Status(
        stored=totals["stored"],
        anomalies=totals["anomalies"],
        dead_letters=totals["dead_letters"],
        dead_letters_pending=repo.pending_dead_letters(),
        lag=lag,
        lag_note=note,
        devices=[
            DeviceStatus(
                d["device_id"],
                d["name"],
                d["count"],
                d["last_ts"],
                d["last_temperature"],
                d["detection"],
            )
            for d in repo.devices(settings.detector)
        ],
        detectors=sorted(repo.detector_positions(), key=lambda p: (p["detector"], p["device_id"])),
    )
