"""`weatherpipe status`: stored, consumer lag, last reading per device, dead letters, detector."""

from __future__ import annotations

import asyncio
import json
import uuid
from datetime import UTC, datetime

from typer.testing import CliRunner

from tests.conftest import require
from weatherpipe.bus import create_bus
from weatherpipe.cli import app
from weatherpipe.config import load_settings
from weatherpipe.reading import encode
from weatherpipe.status import consumer_lag
from weatherpipe.storage.repository import DeadLetter, Repository
from weatherpipe.testing import DEVICE_A, DEVICE_B, make_reading


def test_status_shows_totals_devices_dead_letters_and_the_detector(
    sqlite_repo: Repository, sqlite_url: str
) -> None:
    sqlite_repo.store_batch(
        [make_reading(DEVICE_A, i, 20.0 + i) for i in range(5)] + [make_reading(DEVICE_B, 0)],
        [DeadLetter(b"x", "not valid JSON")],
    )
    sqlite_repo.save_detection("default", DEVICE_A, datetime(2026, 11, 28, tzinfo=UTC), "{}", [])
    sqlite_repo.mark_replayed([1])
    result = CliRunner().invoke(app, ["status", "--database-url", sqlite_url])
    assert result.exit_code == 0, result.output
    assert "stored        6 readings" in result.output
    assert "dead letters  1 (0 not replayed)" in result.output
    assert "memory:// lives inside one process" in result.output
    assert f"{DEVICE_A}" in result.output and "24.00 °C" in result.output
    assert f"detector      default {DEVICE_A} at 2026-11-28 00:00:00Z" in result.output

    as_json = json.loads(
        CliRunner().invoke(app, ["status", "--json", "--database-url", sqlite_url]).output
    )
    assert as_json["stored"] == 6 and as_json["lag"] is None
    assert {d["device_id"]: d["count"] for d in as_json["devices"]} == {DEVICE_A: 5, DEVICE_B: 1}


def test_status_reports_the_nats_consumer_lag() -> None:
    require("NATS", "127.0.0.1", 4222)
    tag = uuid.uuid4().hex[:10]
    settings = load_settings(
        bus_url="nats://127.0.0.1:4222", topic=f"wp_status_{tag}", subscription=f"wp_status_{tag}"
    )

    async def scenario() -> tuple[int | None, str]:
        bus = create_bus(settings.bus_url, settings.topic, settings.subscription)
        async with bus:
            await bus.setup()
            await bus.publish_many([(encode(make_reading(DEVICE_A, i)), None) for i in range(7)])
            try:
                return await consumer_lag(settings)
            finally:
                await bus.delete()  # type: ignore[attr-defined]

    assert asyncio.run(scenario()) == (7, "")


def test_status_says_why_when_the_broker_is_down() -> None:
    settings = load_settings(bus_url="nats://127.0.0.1:1", topic="wp_down", subscription="wp_down")
    lag, note = asyncio.run(consumer_lag(settings))
    assert lag is None and note.startswith("bus unavailable")
