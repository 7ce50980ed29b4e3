"""MariaDB stopped for 15 s under a running pipeline: ingest holds its batch unacked, resumes by
itself once the database is back, and loses nothing."""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest

from .conftest import StartStage
from .harness import RESUME_SECONDS, Consumer, Database, PrivateMariaDB, Report, wait_for

OUTAGE_SECONDS = 15.0
DEVICES = 50
RATE = 20.0  # readings per second per device: 1,000 a second in all


def published(log: str) -> int:
    match = re.search(r"published ([\d,]+) readings", log)
    assert match, log
    return int(match.group(1).replace(",", ""))


@pytest.mark.slow
def test_ingest_waits_out_a_database_outage_without_acking_and_loses_nothing(
    shared_nats: Consumer,
    private_mariadb: PrivateMariaDB,
    start_stage: StartStage,
    tmp_path: Path,
    report: Report,
) -> None:
    bus = {
        "bus_url": shared_nats.bus.url,
        "topic": shared_nats.bus.topic,
        "subscription": shared_nats.bus.subscription,
    }
    sensors = start_stage(
        "sensors",
        f"--devices={DEVICES}",
        f"--rate={RATE}",
        "--anomaly-rate=0",
        log="sensors",
        spool_path=str(tmp_path / "spool"),
        **bus,
    )
    ingest = start_stage("ingest", log="ingest", database_url=private_mariadb.url, **bus)
    db = Database(private_mariadb.url)
    wait_for(lambda: db.stored() >= 3_000, 60, "ingest storing readings")
    db.close()

    private_mariadb.stop()
    down = time.monotonic()
    time.sleep(2.0)  # the outage itself: a span of time, not a condition to poll for
    _, _, floor_early = shared_nats.pending()
    time.sleep(OUTAGE_SECONDS - 2.0 - 1.0)
    waiting, held_late, floor_late = shared_nats.pending()
    assert floor_late == floor_early, "ingest acked while the database was down"
    assert held_late > 0 and waiting > 0, "ingest should hold its batch, sensors keep publishing"
    time.sleep(max(0.0, down + OUTAGE_SECONDS - time.monotonic()))

    report["database_start_seconds"] = private_mariadb.start()
    back = time.monotonic()
    wait_for(
        lambda: shared_nats.pending()[2] > floor_late, RESUME_SECONDS, "ingest acking again", 0.05
    )
    resumed = time.monotonic() - back
    assert ingest.running(), ingest.log()

    time.sleep(2.0)  # readings keep flowing after the outage too
    report["sensors_stop_seconds"] = sensors.terminate()
    sent = published(sensors.log())
    wait_for(shared_nats.settled, 120, "ingest catching up", 0.2)
    report["ingest_stop_seconds"] = ingest.terminate()

    db = Database(private_mariadb.url)
    db.assert_exactly_once(sent)
    assert shared_nats.stream_messages() == sent
    runs = db.seq_runs()
    assert len(runs) == DEVICES and all(len(r) == 1 for r in runs.values())
    assert "database unavailable" in ingest.log()
    report["outage_seconds"] = OUTAGE_SECONDS
    report["unacked_held_during_outage"] = held_late
    report["resumed_seconds_after_database_back"] = resumed
    report["published"] = sent
    report["stored"] = db.scalar("SELECT COUNT(*) FROM readings")
    report.write()
    db.close()
