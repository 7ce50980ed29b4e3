"""The broker stopped for 15 s under running sensors: they spool to a file, the spool survives a
restart of the sensors, and everything is sent and stored once the broker is back."""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest

from weatherpipe.sensors.spool import Spool

from .conftest import StartStage
from .harness import Consumer, Database, PrivateNats, Report, Stage, wait_for

OUTAGE_SECONDS = 15.0
DEVICES = 20
RATE = 10.0


def spooled(path: Path) -> int:
    """Lines in the spool file now (another process writes it)."""
    return len(Spool(path))


def ticks(stage: Stage) -> int:
    match = re.search(r"published [\d,]+ readings, spooled [\d,]+, ([\d,]+) ticks", stage.log())
    assert match, stage.log()
    return int(match.group(1).replace(",", ""))


@pytest.mark.slow
def test_sensors_spool_through_a_broker_outage_and_a_restart_and_nothing_is_lost(
    private_nats: PrivateNats,
    mariadb_url: str,
    start_stage: StartStage,
    tmp_path: Path,
    report: Report,
) -> None:
    consumer = Consumer(private_nats.url + "?ack_wait=5", "wp_outage", "wp_outage_sub")
    consumer.setup()
    spool = tmp_path / "sensors.spool"
    settings = {
        "bus_url": consumer.bus.url,
        "topic": "wp_outage",
        "subscription": "wp_outage_sub",
        "spool_path": str(spool),
    }
    sensor_args = [f"--devices={DEVICES}", f"--rate={RATE}", "--anomaly-rate=0"]
    first = start_stage("sensors", *sensor_args, log="sensors-1", **settings)
    ingest = start_stage("ingest", log="ingest", database_url=mariadb_url, **settings)
    db = Database(mariadb_url)
    wait_for(lambda: db.stored() >= 1_000, 60, "readings flowing before the outage")

    private_nats.stop()
    down = time.monotonic()
    wait_for(lambda: spooled(spool) > 0, 20, "the sensors spooling while the broker is down")
    report["first_spool_seconds"] = time.monotonic() - down
    time.sleep(max(0.0, down + 6.0 - time.monotonic()))  # part of the outage
    report["sensors_stop_seconds_broker_down"] = first.terminate()
    assert first.process.returncode == 0, first.log()
    spooled_by_first = spooled(spool)
    assert spooled_by_first > 0

    second = start_stage("sensors", *sensor_args, log="sensors-2", **settings)
    wait_for(lambda: spooled(spool) > spooled_by_first, 20, "the restarted sensors spooling too")
    time.sleep(max(0.0, down + OUTAGE_SECONDS - time.monotonic()))  # the rest of the outage

    report["spooled_when_broker_back"] = spooled(spool)
    private_nats.start()
    back = time.monotonic()
    wait_for(lambda: not spool.exists(), 30, "the spool sent and removed", 0.05)
    report["spool_sent_seconds_after_broker_back"] = time.monotonic() - back
    report["spooled_by_first_sensors"] = spooled_by_first
    time.sleep(2.0)  # fresh readings after the outage, too
    report["sensors_stop_seconds"] = second.terminate()
    wait_for(consumer.settled, 120, "ingest storing everything", 0.2)
    report["ingest_stop_seconds"] = ingest.terminate()

    expected = [ticks(first), ticks(second)]
    runs = db.seq_runs()
    assert len(runs) == DEVICES
    assert all(device_runs == expected for device_runs in runs.values()), (expected, runs)
    db.assert_exactly_once(sum(expected) * DEVICES)
    report["ticks_per_run"] = expected
    report["stored"] = db.scalar("SELECT COUNT(*) FROM readings")
    report["stream_messages_incl_resent"] = consumer.stream_messages()
    report.write()
    db.close()
