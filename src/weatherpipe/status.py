"""`weatherpipe status`: what is stored, what waits on the bus, and where each stage stands."""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from weatherpipe.compose import open_bus
from weatherpipe.config import Settings
from weatherpipe.errors import BusError
from weatherpipe.storage.repository import Repository

log = logging.getLogger(__name__)
# A device with no reading for this long counts as silent in the summary.
SILENT_AFTER = timedelta(minutes=5)


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


def report_lines(state: Status, bus: str, top: int = 10, now: datetime | None = None) -> list[str]:
    """`status` as text: the totals, the devices as counts by state and silence, then the
    `top` devices silent longest (or all of them when they are that few), and where each
    detector stands. The same few lines at 3 devices or 10,000."""
    lag = f"{state.lag:,}" if state.lag is not None else f"unknown ({state.lag_note})"
    lines = [
        f"stored        {state.stored:,} readings, {state.anomalies:,} flagged anomalous",
        f"consumer lag  {lag} on {bus}",
        f"dead letters  {state.dead_letters:,} ({state.dead_letters_pending:,} not replayed)",
        f"devices       {len(state.devices):,}{_device_summary(state.devices, now)}",
    ]
    shown = sorted(state.devices, key=_silence_order)[:top]
    if len(shown) < len(state.devices):
        lines.append(f"  the {len(shown)} silent longest (--top N, --all for every device):")
    lines += [_device_line(d) for d in shown]
    return lines + _detector_lines(state.detectors, top)


def _device_summary(devices: list[DeviceStatus], now: datetime | None) -> str:
    if not devices:
        return ""
    now = now or datetime.now(UTC)
    by_state = Counter(d.detection.replace("_", " ") for d in devices)
    silent = sum(1 for d in devices if d.last_ts is None or now - d.last_ts > SILENT_AFTER)
    parts = [f"{n:,} {name}" for name, n in sorted(by_state.items())]
    minutes = int(SILENT_AFTER.total_seconds() // 60)
    return f": {', '.join(parts)}; {silent:,} silent for over {minutes} min"


def _silence_order(device: DeviceStatus) -> tuple[int, datetime, str]:
    """Never heard from first, then the longest silent."""
    return (device.last_ts is not None, device.last_ts or datetime.min, device.device_id)


def _device_line(d: DeviceStatus) -> str:
    last = "-"
    if d.last_ts is not None:
        temperature = f"{d.last_temperature:.2f} °C" if d.last_temperature is not None else ""
        last = f"{d.last_ts:%Y-%m-%d %H:%M:%S}Z {temperature}".rstrip()
    return (
        f"  {d.device_id}  {d.name or '':14} {d.count:>10,}  last {last}  "
        f"detection {d.detection.replace('_', ' ')}"
    )


def _detector_lines(positions: list[dict[str, Any]], top: int) -> list[str]:
    """Each device's position when they are few; else per detector, the range of positions."""
    if len(positions) <= top:
        return [
            f"detector      {p['detector']} {p['device_id']} at {p['last_ts']:%Y-%m-%d %H:%M:%S}Z"
            for p in positions
        ]
    lines = []
    for name in sorted({p["detector"] for p in positions}):
        times = [p["last_ts"] for p in positions if p["detector"] == name]
        lines.append(
            f"detector      {name}: {len(times):,} devices, positions from "
            f"{min(times):%Y-%m-%d %H:%M:%S}Z to {max(times):%Y-%m-%d %H:%M:%S}Z"
        )
    return lines
