"""Ingest's resident memory under steady load: does `weatherpipe ingest` grow over time?"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from benchmarks.base import (
    BenchOptions,
    Processes,
    Result,
    scratch_mariadb,
    scratch_stream,
    stage_env,
)
from benchmarks.sensors import run_fleet

SAMPLE_SECONDS = 1.0
GROWTH_LIMIT = 0.10


def rss_bytes(pid: int) -> int:
    """Resident set size of a process (Linux /proc)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError(f"no VmRSS for process {pid}")


def ingest_memory(options: BenchOptions) -> Result:
    """5,000 readings/s (5,000 devices at 1 Hz) for 10 minutes (quick: 500 for 30 s) through
    one `weatherpipe ingest`; growth = RSS at the end over RSS once warm (after the first
    tenth of the run: pools, caches and the first batches are in place by then)."""
    devices = int(options.size(5000, 500, options.devices))
    seconds = options.size(600.0, 30.0, options.seconds)
    with (
        scratch_mariadb(options.mariadb_url, options.tag) as url,
        scratch_stream(options.nats_url) as topic,
    ):
        env = stage_env(url, options.nats_url, topic, "memory")
        with Processes() as children:
            child = children.start(["ingest"], env)
            samples = asyncio.run(_load(options, topic, devices, seconds, child.pid, children))
    warm_at = seconds / 10
    warm = next(rss for t, rss in samples if t >= warm_at)
    final = samples[-1][1]
    growth = final / warm - 1
    return Result(
        "memory",
        f"ingest RSS growth at {devices:,} readings/s over {seconds / 60:.0f} min",
        100 * growth,
        "%",
        f"< {100 * GROWTH_LIMIT:.0f}% growth",
        growth < GROWTH_LIMIT,
        runs=[100 * growth],
        baselines={"RSS once warm (MiB)": warm / 2**20},
        ratios={"end / warm": final / warm},
        details={
            "rss_final_mib": final / 2**20,
            "rss_peak_mib": max(rss for _, rss in samples) / 2**20,
            "samples": len(samples),
        },
    )


async def _load(
    options: BenchOptions, topic: str, devices: int, seconds: float, pid: int, children: Processes
) -> list[tuple[float, int]]:
    from weatherpipe.bus.nats import NatsBus

    samples: list[tuple[float, int]] = []
    async with NatsBus(options.nats_url, topic, topic + "_sensors") as bus:
        started = time.monotonic()
        sensors = asyncio.create_task(run_fleet(bus, devices, seconds))
        while not sensors.done():
            children.check()
            samples.append((time.monotonic() - started, rss_bytes(pid)))
            await asyncio.sleep(SAMPLE_SECONDS)
        await sensors
    return samples
