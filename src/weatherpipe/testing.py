"""Test doubles users need too: a reading factory, a fleet seeder, and a check for a server
that may be absent."""

from __future__ import annotations

import os
import socket
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, Protocol

from weatherpipe.reading import Reading

if TYPE_CHECKING:
    from weatherpipe.storage.rows import Detection, Row

BASE_TIME = datetime(2026, 11, 28, 0, 0, tzinfo=UTC)
DEVICE_A = "6b4fa32e-a7f5-4ec2-8820-6581468ef36b"
DEVICE_B = "2f8d9b1a-3c4e-4f60-8a7b-9c0d1e2f3a4b"


def make_reading(
    device_id: str = DEVICE_A,
    seconds: float = 0.0,
    temperature: float = 20.0,
    *,
    start: datetime = BASE_TIME,
    seq: int | None = None,
) -> Reading:
    """A valid reading `seconds` after `start` (1 Hz series are easy to build with a loop)."""
    return Reading(device_id, start + timedelta(seconds=seconds), temperature, 52.52, 13.405, seq)


def series(
    values: list[float], device_id: str = DEVICE_A, start: datetime = BASE_TIME
) -> list[Reading]:
    """One reading per second with the given temperatures."""
    return [make_reading(device_id, i, v, start=start, seq=i) for i, v in enumerate(values)]


class FleetSeedable(Protocol):
    """The repository's writes `seed_fleet` uses."""

    def store_batch(self, batch: Sequence[Reading]) -> Any: ...

    def name_devices(self, names: Mapping[str, str]) -> None: ...

    def readings_after_many(
        self, cursors: Mapping[str, datetime | None], limit: int
    ) -> dict[str, list[Row]]: ...

    def save_detections(self, detector: str, passes: Sequence[Detection]) -> None: ...


def port_open(host: str, port: int, timeout: float = 1.0) -> bool:
    """Whether something accepts TCP connections at host:port."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def server_missing(name: str, host: str, port: int) -> str | None:
    """Why a test of `name` cannot run, or None if the server answers.

    Under CI=true a missing server is a failure, not a skip: the caller raises it.
    """
    if port_open(host, port):
        return None
    return f"{name} is not answering on {host}:{port}"


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() in ("1", "true", "yes")


KINDS = ("spike", "dip", "shift", "drift", "stuck", "noise", "gap", "range")
SEVERITIES = ("low", "medium", "high")


@dataclass(frozen=True)
class Fleet:
    """What `seed_fleet` stored: device ids in order, their registry names, the flagged ones."""

    ids: list[str]
    names: dict[str, str]
    flagged: dict[str, tuple[str, str]]  # device id -> (kind, severity) of its one flag
    warming_up: set[str]
    not_started: set[str]


def fleet_device_id(i: int) -> str:
    return f"fleet-{i:05d}"


def seed_fleet(
    store: FleetSeedable,
    devices: int,
    *,
    readings_per_device: int = 3,
    flag_every: int = 10,
    now: datetime | None = None,
    chunk: int = 20_000,
) -> Fleet:
    """Store a fleet of `devices` devices quickly through the repository's own write paths.

    Device i is `fleet-0000i`, named "station NNNNN" in an order unlike the ids'; its last
    reading is i % 3600 seconds before `now`. Every `flag_every`-th device has its last reading
    flagged (kinds and severities in turn); every 7th is warming up, every 11th not started.
    """
    now = (now or datetime.now(UTC)).replace(microsecond=0)
    ids = [fleet_device_id(i) for i in range(devices)]
    names = {d: f"station {(i * 7919) % devices:05d}" for i, d in enumerate(ids)}
    batch: list[Reading] = []
    for i, device in enumerate(ids):
        last = now - timedelta(seconds=i % 3600)
        for j in range(readings_per_device):
            ts = last - timedelta(seconds=readings_per_device - 1 - j)
            temperature = 10.0 + i % 20 + j / 10
            batch.append(Reading(device, ts, temperature, 40.0 + i % 10, 10.0 + i % 7, j))
        if len(batch) >= chunk:
            store.store_batch(batch)
            batch = []
    if batch:
        store.store_batch(batch)
    store.name_devices(names)
    return _seed_detection(store, ids, names, flag_every, now)


def _seed_detection(
    store: FleetSeedable, ids: list[str], names: dict[str, str], flag_every: int, now: datetime
) -> Fleet:
    from weatherpipe.storage.rows import Detection, Scored

    flagged: dict[str, tuple[str, str]] = {}
    warming, not_started = set(), set()
    flag_ids = [d for i, d in enumerate(ids) if flag_every and i % flag_every == 0]
    rows = store.readings_after_many(dict.fromkeys(flag_ids), 100_000)
    passes = []
    for i, device in enumerate(ids):
        if i % 11 == 0:  # no state, so no flags either
            not_started.add(device)
            continue
        results = []
        if rows.get(device):
            label = (KINDS[i % len(KINDS)], SEVERITIES[i % len(SEVERITIES)])
            flagged[device] = label
            results.append(Scored(rows[device][-1][0], 0.9 + (i % 10) / 100, True, *label))
        if i % 7 == 0:
            warming.add(device)
        last = now - timedelta(seconds=i % 3600)
        passes.append(Detection(device, last, "{}", results, warming_up=i % 7 == 0))
    for start in range(0, len(passes), 2000):
        store.save_detections("default", passes[start : start + 2000])
    return Fleet(ids, names, flagged, warming, not_started)
