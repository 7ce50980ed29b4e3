"""SIGTERM stops every stage within 10 s, and ingest finishes and acks the batch in hand."""

from __future__ import annotations

import re
import signal
import uuid
from pathlib import Path

import httpx
import pytest

from weatherpipe.reading import encode
from weatherpipe.testing import make_reading

from .conftest import StartStage
from .harness import STOP_SECONDS, Consumer, Database, Report, free_port, wait_for

READINGS = 60_000


def bus_settings(consumer: Consumer) -> dict[str, str]:
    return {
        "bus_url": consumer.bus.url,
        "topic": consumer.bus.topic,
        "subscription": consumer.bus.subscription,
    }


@pytest.mark.slow
def test_sigterm_stops_ingest_after_it_stores_and_acks_the_batch_in_hand(
    shared_nats: Consumer, server_url: str, start_stage: StartStage, report: Report
) -> None:
    devices = [str(uuid.uuid4()) for _ in range(10)]
    shared_nats.publish(
        [(encode(make_reading(devices[i % 10], i // 10)), None) for i in range(READINGS)]
    )
    db = Database(server_url)
    # 2,000-reading batches, so the batches in hand at the signal are well short of the backlog.
    ingest = start_stage(
        "ingest",
        log="ingest",
        database_url=server_url,
        batch_size="2000",
        **bus_settings(shared_nats),
    )
    wait_for(lambda: db.stored() >= 10_000, 60, "ingest in the middle of the backlog", 0.02)

    report["stop_seconds"] = ingest.terminate()
    assert ingest.process.returncode == 0, ingest.log()
    assert report.values["stop_seconds"] < STOP_SECONDS

    stored = db.stored()
    waiting, unacked, _ = shared_nats.pending()
    # Whatever was stored was acked, whatever was pulled and not stored was handed back.
    assert unacked == 0
    assert stored + waiting == READINGS
    assert stored < READINGS, "the test meant to stop ingest mid-drain"
    report["stored_at_stop"] = stored
    report["waiting_at_stop"] = waiting
    report.write()
    db.close()


@pytest.mark.slow
def test_sigterm_stops_the_sensors_with_every_reading_published(
    shared_nats: Consumer, start_stage: StartStage, tmp_path: Path, report: Report
) -> None:
    spool = tmp_path / "spool"
    sensors = start_stage(
        "sensors",
        "--devices=20",
        "--rate=10",
        log="sensors",
        spool_path=str(spool),
        **bus_settings(shared_nats),
    )
    wait_for(lambda: shared_nats.stream_messages() >= 400, 60, "the sensors publishing")

    report["stop_seconds"] = sensors.terminate()
    assert sensors.process.returncode == 0, sensors.log()
    assert report.values["stop_seconds"] < STOP_SECONDS
    match = re.search(r"published ([\d,]+) readings, spooled 0, ([\d,]+) ticks", sensors.log())
    assert match, sensors.log()
    published = int(match.group(1).replace(",", ""))
    assert published == int(match.group(2).replace(",", "")) * 20
    assert shared_nats.stream_messages() == published
    assert not spool.exists()
    report["published"] = published
    report.write()


@pytest.mark.slow
def test_sigterm_stops_detection_within_10_seconds(
    server_url: str, start_stage: StartStage, report: Report
) -> None:
    backfill = start_stage(
        "sensors",
        "--devices=20",
        "--backfill=1h",
        "--to-db",
        log="backfill",
        database_url=server_url,
    )
    assert backfill.process.wait(timeout=120) == 0, backfill.log()
    db = Database(server_url)
    detect = start_stage("detect", log="detect", database_url=server_url)
    wait_for(lambda: db.scalar("SELECT COUNT(*) FROM detector_state") > 0, 60, "detection running")

    report["stop_seconds"] = detect.terminate()
    assert detect.process.returncode == 0, detect.log()
    assert report.values["stop_seconds"] < STOP_SECONDS
    report["readings"] = db.stored()
    report.write()
    db.close()


@pytest.mark.slow
def test_sigterm_stops_the_api_within_10_seconds(
    mariadb_url: str, start_stage: StartStage, report: Report
) -> None:
    port = free_port()
    api = start_stage("api", f"--port={port}", log="api", database_url=mariadb_url)

    def healthy() -> bool:
        try:
            return httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    wait_for(healthy, 60, "the API answering")
    report["stop_seconds"] = api.terminate()
    # uvicorn shuts down cleanly, then re-raises the signal so the exit status names it.
    assert api.process.returncode in (0, -signal.SIGTERM), api.log()
    assert "Application shutdown complete" in api.log()
    assert report.values["stop_seconds"] < STOP_SECONDS
    report.write()
