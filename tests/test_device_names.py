"""Device names live in the database: whoever runs the simulator writes them as devices appear."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime

from weatherpipe.compose import fleet_names
from weatherpipe.runner import name_devices_when_stored
from weatherpipe.storage.repository import Repository
from weatherpipe.testing import DEVICE_A, DEVICE_B, series

START = datetime(2026, 11, 1, tzinfo=UTC)


def names_in(repo: Repository) -> dict[str, str | None]:
    return {d["device_id"]: d["name"] for d in repo.devices()}


def test_devices_are_named_as_ingest_creates_them_then_the_task_ends(
    sqlite_repo: Repository,
) -> None:
    names = {DEVICE_A: "Rooftop", DEVICE_B: "Cellar"}
    sqlite_repo.store_batch(series([1.0, 2.0], DEVICE_A, start=START))

    async def scenario() -> None:
        stop = asyncio.Event()
        task = asyncio.create_task(name_devices_when_stored(sqlite_repo, names, stop))
        deadline = time.monotonic() + 10
        while names_in(sqlite_repo) != {DEVICE_A: "Rooftop"}:
            assert time.monotonic() < deadline, names_in(sqlite_repo)
            await asyncio.sleep(0.05)
        assert not task.done()  # B is not stored yet: the task keeps watching
        await asyncio.to_thread(sqlite_repo.store_batch, series([3.0], DEVICE_B, start=START))
        await asyncio.wait_for(task, timeout=10)
        assert not stop.is_set()

    asyncio.run(scenario())
    assert names_in(sqlite_repo) == names


def test_the_fleet_names_are_the_simulators_default_places() -> None:
    assert fleet_names(3, seed=0) == {
        DEVICE_B: "Longyearbyen",
        DEVICE_A: "Berlin",
        "c3e1f5a7-9b2d-4e6f-8a1c-3d5e7f9a1b2c": "Dubai",
    }
