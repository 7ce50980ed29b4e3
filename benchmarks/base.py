"""What every benchmark scenario shares: options, the result record, medians, scratch servers."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import create_engine, text

from weatherpipe.reading import Reading, encode
from weatherpipe.sensors.model import Fleet
from weatherpipe.sensors.profiles import fleet

log = logging.getLogger(__name__)
PROCESS_STOP_SECONDS = 30.0


@dataclass(frozen=True)
class BenchOptions:
    """Where the servers are and how big a run is; `quick` shrinks every size for a smoke run."""

    quick: bool = False
    nats_url: str = "nats://127.0.0.1:4222"
    mariadb_url: str = "mysql+pymysql://root@127.0.0.1:3306"
    postgresql_url: str = "postgresql+psycopg://postgres@127.0.0.1:5432"
    repeats: int = 3
    # Sizes; None means the scenario's full (or quick) default.
    backlog: int | None = None
    devices: int | None = None
    seconds: float | None = None
    # Goes into scratch database names, so a caller can find (and count) its own.
    tag: str = ""
    # The databases a scenario that runs on several measures (api-load); empty: all three
    # (SQLite alone when quick).
    databases: tuple[str, ...] = ()

    def size(self, full: float, quick: float, given: float | None = None) -> float:
        if given is not None:
            return given
        return quick if self.quick else full


@dataclass
class Result:
    """One scenario's figures: `value` is the median of `runs`; ratios are against baselines
    measured in the same run (value / baseline)."""

    scenario: str
    metric: str
    value: float | None
    unit: str
    target: str
    met: bool | None
    runs: list[float] = field(default_factory=list)
    baselines: dict[str, float] = field(default_factory=dict)
    ratios: dict[str, float] = field(default_factory=dict)
    details: dict[str, Any] = field(default_factory=dict)
    note: str = ""

    def as_dict(self) -> dict[str, Any]:
        return {
            "scenario": self.scenario,
            "metric": self.metric,
            "value": self.value,
            "unit": self.unit,
            "target": self.target,
            "met": self.met,
            "runs": self.runs,
            "baselines": self.baselines,
            "ratios": self.ratios,
            "details": self.details,
            "note": self.note,
        }


def median(values: Sequence[float]) -> float:
    return float(statistics.median(values))


def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile (0-100) by nearest rank."""
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    rank = max(0, min(len(ordered) - 1, round(q / 100 * len(ordered) + 0.5) - 1))
    return ordered[rank]


def scratch_name(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex[:10]}"


def migrate(database_url: str) -> None:
    """Create the schema as `weatherpipe db upgrade` does."""
    from weatherpipe.compose import open_repository
    from weatherpipe.config import load_settings

    open_repository(load_settings(database_url=database_url), migrate=True).close()


@contextlib.contextmanager
def scratch_mariadb(root_url: str, tag: str = "") -> Iterator[str]:
    """A fresh MariaDB database with the schema, dropped afterwards; yields its URL."""
    name = scratch_name(f"wp_bench{'_' + tag if tag else ''}")
    admin = create_engine(root_url)
    with admin.begin() as conn:
        conn.execute(text(f"CREATE DATABASE {name} CHARACTER SET utf8mb4"))
    url = f"{root_url}/{name}"
    try:
        migrate(url)
        yield url
    finally:
        with admin.begin() as conn:
            conn.execute(text(f"DROP DATABASE IF EXISTS {name}"))
        admin.dispose()


@contextlib.contextmanager
def scratch_postgresql(root_url: str, tag: str = "") -> Iterator[str]:
    """A fresh PostgreSQL database with the schema, dropped afterwards; yields its URL."""
    name = scratch_name(f"wp_bench{'_' + tag if tag else ''}")
    admin = create_engine(f"{root_url}/postgres", isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f"CREATE DATABASE {name}"))
    url = f"{root_url}/{name}"
    try:
        migrate(url)
        yield url
    finally:
        with admin.connect() as conn:
            conn.execute(text(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        admin.dispose()


@contextlib.contextmanager
def scratch_stream(nats_url: str) -> Iterator[str]:
    """A NATS subject with its own JetStream stream, deleted afterwards; yields the subject."""
    from weatherpipe.bus.nats import NatsBus

    topic = scratch_name("wpbench")

    async def setup() -> None:
        async with NatsBus(nats_url, topic, topic + "_setup") as bus:
            await bus.setup()

    async def delete() -> None:
        async with NatsBus(nats_url, topic, topic + "_setup") as bus:
            await bus.delete()

    asyncio.run(setup())
    try:
        yield topic
    finally:
        asyncio.run(delete())


def stage_env(database_url: str, nats_url: str, topic: str, prefix: str) -> dict[str, str]:
    """The variables of a `weatherpipe` stage process on this run's database and stream, with
    a fresh durable consumer of its own."""
    return {
        "WEATHERPIPE_DATABASE_URL": database_url,
        "WEATHERPIPE_BUS_URL": nats_url,
        "WEATHERPIPE_TOPIC": topic,
        "WEATHERPIPE_SUBSCRIPTION": new_subscription(nats_url, topic, prefix),
    }


def new_subscription(nats_url: str, topic: str, prefix: str) -> str:
    """A fresh durable consumer on `topic` that starts at the stream's first message."""
    from weatherpipe.bus.nats import NatsBus

    name = scratch_name(prefix)

    async def setup() -> None:
        async with NatsBus(nats_url, topic, name) as bus:
            await bus.setup()

    asyncio.run(setup())
    return name


def fleet_payloads(devices: int, ticks: int, start: float, seed: int = 0) -> list[bytes]:
    """Readings of `devices` simulated sensors over `ticks` seconds, in the order they are
    published in real time (tick by tick), encoded for the wire."""
    catalogue = fleet(devices, seed)
    model = Fleet(catalogue, seed=seed, anomaly_rate=0.0)
    out: list[bytes] = []
    for tick in range(ticks):
        t = start + tick
        ts = datetime.fromtimestamp(t, UTC)
        for device, value in zip(catalogue, model.tick(t), strict=True):
            out.append(
                encode(
                    Reading(
                        device.device_id,
                        ts,
                        float(value),
                        device.latitude,
                        device.longitude,
                        tick + 1,
                    )
                )
            )
    return out


async def publish_all(nats_url: str, topic: str, payloads: Sequence[bytes]) -> float:
    """Publish every payload (acknowledged by the stream); returns the seconds it took."""
    from weatherpipe.bus.nats import NatsBus

    started = time.perf_counter()
    async with NatsBus(nats_url, topic, topic + "_publisher") as bus:
        for first in range(0, len(payloads), 20_000):
            await bus.publish_many([(p, None) for p in payloads[first : first + 20_000]])
    return time.perf_counter() - started


class Processes:
    """`weatherpipe` commands as child processes, stopped with SIGTERM (then SIGKILL) on exit."""

    def __init__(self) -> None:
        self.children: list[subprocess.Popen[bytes]] = []

    def start(
        self, args: Sequence[str], env: dict[str, str], module: str = "weatherpipe"
    ) -> subprocess.Popen[bytes]:
        child = subprocess.Popen(
            [sys.executable, "-m", module, *args],
            env={**os.environ, "WEATHERPIPE_LOG_LEVEL": "WARNING", **env},
            stdout=subprocess.DEVNULL,
        )
        self.children.append(child)
        return child

    def stop(self) -> None:
        for child in self.children:
            if child.poll() is None:
                child.send_signal(signal.SIGTERM)
        for child in self.children:
            try:
                child.wait(PROCESS_STOP_SECONDS)
            except subprocess.TimeoutExpired:
                child.kill()
                child.wait()
        self.children.clear()

    def check(self) -> None:
        for child in self.children:
            if child.poll() is not None:
                raise RuntimeError(f"{child.args!r} exited early with {child.returncode}")

    def __enter__(self) -> Processes:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def poll_until(
    probe: Callable[[], bool], timeout: float, interval: float = 0.05, what: str = "condition"
) -> None:
    """Call `probe` until it returns True; raise TimeoutError past `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not probe():
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what} not reached within {timeout:.0f}s")
        time.sleep(interval)


def _figure(value: float | None, unit: str) -> str:
    if value is None:
        return "-"
    if not unit:
        return f"{value:,.0f}" if abs(value) >= 100 else f"{value:,.3g}"
    if unit in ("s", "ms", "%"):
        return f"{value:,.3g} {unit}" if abs(value) < 100 else f"{value:,.0f} {unit}"
    return f"{value:,.0f} {unit}"


def markdown_table(results: Sequence[Result]) -> str:
    """The table docs/performance.md shows: figure, target, baselines and ratios."""
    lines = [
        "| scenario | what | median | target | met | baseline (same run) | ratio |",
        "| --- | --- | ---: | --- | --- | --- | --- |",
    ]
    for r in results:
        # A baseline named with its own unit in parentheses is printed without the result's.
        base = "; ".join(
            f"{k}: {_figure(v, '' if k.endswith(')') else r.unit)}" for k, v in r.baselines.items()
        )
        base = base or "-"
        ratios = "; ".join(f"{k}: {v:.2f}" for k, v in r.ratios.items()) or "-"
        met = {True: "yes", False: "NO", None: "-"}[r.met]
        what = r.metric + (f" ({r.note})" if r.note else "")
        lines.append(
            f"| {r.scenario} | {what} | {_figure(r.value, r.unit)} | {r.target} | {met} | "
            f"{base} | {ratios} |"
        )
    return "\n".join(lines) + "\n"
