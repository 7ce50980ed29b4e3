"""`weatherpipe status`: stored, consumer lag, last reading per device, dead letters, detector."""

from __future__ import annotations

import asyncio
import json
import uuid
from datetime import UTC, datetime, timedelta

from typer.testing import CliRunner

from tests.conftest import require
from weatherpipe.bus import create_bus
from weatherpipe.cli import app
from weatherpipe.config import load_settings
from weatherpipe.reading import encode
from weatherpipe.status import DeviceStatus, Status, consumer_lag, report_lines
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


def fleet_status(n: int, now: datetime) -> Status:
    devices = [
        DeviceStatus(f"dev-{i:05d}", None, 100, now - timedelta(seconds=i), 20.0, "monitoring")
        for i in range(n)
    ]
    devices[7] = DeviceStatus("never-heard", None, 0, None, None, "not_started")
    positions = [
        {"detector": "default", "device_id": d.device_id, "last_ts": now} for d in devices[1:]
    ]
    return Status(100 * n, 3, 0, 0, None, "memory", devices, positions)


def test_status_stays_short_at_a_thousand_devices() -> None:
    now = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)
    lines = report_lines(fleet_status(1000, now), "memory:// 'sub'", top=10, now=now)
    assert len(lines) <= 20
    assert "devices       1,000: 999 monitoring, 1 not started; 700 silent for over 5 min" in lines
    shown = [line for line in lines if line.startswith("  ") and "silent longest" not in line]
    # Never heard from first, then the longest silent.
    assert "never-heard" in shown[0] and "dev-00999" in shown[1] and len(shown) == 10
    assert any("--all" in line for line in lines)
    assert [line for line in lines if line.startswith("detector")] == [
        "detector      default: 999 devices, positions from 2026-12-07 12:00:00Z to "
        "2026-12-07 12:00:00Z"
    ]
    every = report_lines(fleet_status(1000, now), "memory:// 'sub'", top=10**9, now=now)
    assert len([line for line in every if line.startswith("  dev-")]) == 999


def test_status_command_shows_top_n_devices(sqlite_repo: Repository, sqlite_url: str) -> None:
    sqlite_repo.store_batch([make_reading(DEVICE_A, 0), make_reading(DEVICE_B, 0)])
    result = CliRunner().invoke(app, ["status", "--top", "1", "--database-url", sqlite_url])
    assert result.exit_code == 0, result.output
    assert "the 1 silent longest" in result.output
    assert (DEVICE_A in result.output) != (DEVICE_B in result.output)
