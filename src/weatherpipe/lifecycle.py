"""Stopping stages cleanly: the stop event set by signals, and waits that a stop cuts short."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import signal

# Allocations between young-generation collections (CPython's default is 700).
YOUNG_COLLECTION_EVERY = 20_000


def stop_on_signals() -> asyncio.Event:
    """An event set by SIGINT or SIGTERM (Ctrl-C), so every stage can finish its batch."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    return stop


async def pause(seconds: float, stop: asyncio.Event | None) -> None:
    """Sleep `seconds`, or less if `stop` is set meanwhile."""
    if stop is None:
        await asyncio.sleep(seconds)
        return
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), timeout=seconds)


def quiet_collector() -> None:
    """Make the cyclic garbage collector cheap for a long-running stage.

    Ingest allocates a few objects per reading (tens of thousands a second) and frees them
    by reference counting; with CPython's defaults the collector still runs every 700
    allocations and walks every object the imports made. Freezing those and collecting the
    young generation less often gave ingest about 10% more throughput (docs/performance.md).
    """
    gc.collect()
    gc.freeze()
    gc.set_threshold(YOUNG_COLLECTION_EVERY, 50, 100)
