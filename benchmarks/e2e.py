"""End to end: sensors → NATS → `weatherpipe ingest` and `weatherpipe detect` → MariaDB, timed
from each reading's sensor time to the moment it is visible stored and visible scored."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime

from sqlalchemy import Engine, create_engine, text

from benchmarks.base import (
    BenchOptions,
    Processes,
    Result,
    percentile,
    scratch_mariadb,
    scratch_stream,
    stage_env,
)
from benchmarks.sensors import run_fleet

POLL_SECONDS = 0.1
SETTLE_SECONDS = 30.0
STORED_P99_TARGET = 1.0
FLAGGED_P99_TARGET = 5.0


@dataclass
class _Watch:
    """Per device, the newest timestamp seen stored (devices.last_seen) and scored
    (detector_state.last_ts); both commit in the same transaction as the rows they describe.
    A device's readings are 1 s apart from its first_seen, so each poll knows exactly which
    readings became visible since the previous one."""

    first: dict[str, float] = field(default_factory=dict)
    stored_upto: dict[str, float] = field(default_factory=dict)
    flagged_upto: dict[str, float] = field(default_factory=dict)
    stored: list[tuple[float, float]] = field(default_factory=list)  # (sensor ts, latency)
    flagged: list[tuple[float, float]] = field(default_factory=list)

    def advance(
        self, seen: dict[str, float], upto: dict[str, float], out: list[tuple[float, float]]
    ) -> None:
        now = time.time()
        for device, newest in seen.items():
            if device not in self.first:
                continue
            t = upto.get(device, self.first[device] - 1.0) + 1.0
            while t <= newest + 0.5:
                out.append((t, now - t))
                t += 1.0
            upto[device] = t - 1.0

    def latencies(self, which: list[tuple[float, float]], after: float) -> list[float]:
        return [lag for ts, lag in which if ts >= after]


def _poll(engine: Engine, watch: _Watch) -> None:
    with engine.connect() as conn:
        rows = conn.execute(text("SELECT id, first_seen, last_seen FROM devices")).all()
        scored = conn.execute(text("SELECT device_id, last_ts FROM detector_state")).all()
    for device, first, _ in rows:
        watch.first.setdefault(device, _epoch(first))
    watch.advance({d: _epoch(last) for d, _, last in rows}, watch.stored_upto, watch.stored)
    watch.advance({d: _epoch(ts) for d, ts in scored}, watch.flagged_upto, watch.flagged)


def _epoch(naive_utc: datetime) -> float:
    return naive_utc.replace(tzinfo=UTC).timestamp()


def end_to_end(options: BenchOptions) -> Result:
    """1,000 devices at 1 Hz for 60 s (quick: 100 for 10 s). Stored latency: wall clock when a
    poll (every 0.1 s) first sees a reading's device with last_seen ≥ its timestamp, minus its
    sensor timestamp; flagged latency likewise with the detector's committed position. The
    first 5 s (process start-up) are left out. received_at - ts is reported as well."""
    n = int(options.size(1000, 100, options.devices))
    seconds = options.size(60.0, 10.0, options.seconds)
    warmup = min(5.0, seconds / 3)
    with (
        scratch_mariadb(options.mariadb_url, options.tag) as url,
        scratch_stream(options.nats_url) as topic,
    ):
        env = stage_env(url, options.nats_url, topic, "e2e")
        engine = create_engine(url)
        try:
            with Processes() as children:
                children.start(["ingest"], env)
                children.start(["detect"], env)
                watch = asyncio.run(_run(options, topic, n, seconds, engine, children))
            after = min(watch.first.values(), default=0.0) + warmup
            received = _received_lag(engine, after)
        finally:
            engine.dispose()
    stored = watch.latencies(watch.stored, after)
    flagged = watch.latencies(watch.flagged, after)
    stored_p99, flagged_p99 = percentile(stored, 99), percentile(flagged, 99)
    expected = n * int(seconds - warmup)
    return Result(
        "e2e",
        f"{n:,} devices, sensor time → stored p99 (flagged p99 in details)",
        stored_p99,
        "s",
        f"stored p99 < {STORED_P99_TARGET:.0f} s, flagged p99 < {FLAGGED_P99_TARGET:.0f} s",
        stored_p99 < STORED_P99_TARGET
        and flagged_p99 < FLAGGED_P99_TARGET
        and len(stored) >= expected
        and len(flagged) >= expected,
        runs=[stored_p99],
        ratios={"stored p99 of 1 s": stored_p99 / STORED_P99_TARGET},
        details={
            "readings_measured": expected,
            "stored_seen": len(stored),
            "flagged_seen": len(flagged),
            "stored_p50_s": percentile(stored, 50),
            "stored_p99_s": stored_p99,
            "flagged_p50_s": percentile(flagged, 50),
            "flagged_p99_s": flagged_p99,
            "received_at_minus_ts_p99_s": received,
            "poll_interval_s": POLL_SECONDS,
        },
    )


async def _run(
    options: BenchOptions, topic: str, n: int, seconds: float, engine: Engine, children: Processes
) -> _Watch:
    from weatherpipe.bus.nats import NatsBus

    watch = _Watch()
    async with NatsBus(options.nats_url, topic, topic + "_sensors") as bus:
        sensors = asyncio.create_task(run_fleet(bus, n, seconds))
        while not sensors.done():
            await asyncio.to_thread(_poll, engine, watch)
            children.check()
            await asyncio.sleep(POLL_SECONDS)
        await sensors
    expected = n * int(seconds)
    deadline = time.monotonic() + SETTLE_SECONDS
    while min(len(watch.stored), len(watch.flagged)) < expected and time.monotonic() < deadline:
        await asyncio.to_thread(_poll, engine, watch)
        await asyncio.sleep(POLL_SECONDS)
    return watch


def _received_lag(engine: Engine, after: float) -> float:
    """p99 of received_at - ts: when ingest began the batch's transaction (a lower bound of
    the stored latency; the commit follows within the batch's write time)."""
    since = datetime.fromtimestamp(after, UTC).replace(tzinfo=None)
    lag = text(
        "SELECT TIMESTAMPDIFF(MICROSECOND, ts, received_at) FROM readings WHERE ts >= :since"
    )
    with engine.connect() as conn:
        lags = [float(v) / 1e6 for (v,) in conn.execute(lag, {"since": since})]
    return percentile(lags, 99) if lags else float("nan")
