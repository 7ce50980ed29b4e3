"""Signed sensors and a forger on one NATS subject: only the sensors' readings are stored, the
forgeries are dead letters, and no key shows up in any process's log."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from weatherpipe.reading import encode
from weatherpipe.sensors.profiles import fleet
from weatherpipe.signing import KEY_ID, SIGNATURE, signature
from weatherpipe.testing import make_reading

from .conftest import StartStage, stage_env
from .harness import Consumer, Database, Report, wait_for

DEVICES = 5
FORGED_TEMPERATURE = 99.5


def forgeries(keys: dict[str, str]) -> list[tuple[bytes, dict[str, str] | None]]:
    victim, other = fleet(DEVICES)[0].device_id, fleet(DEVICES)[1].device_id

    def body(second: int) -> bytes:
        return encode(make_reading(victim, second, FORGED_TEMPERATURE))

    return [
        (body(1), None),  # unsigned
        (body(2), {SIGNATURE: signature(b"guessed-key-0123", body(2)), KEY_ID: victim}),
        (body(3), {SIGNATURE: signature(bytes.fromhex(keys[other]), body(3)), KEY_ID: other}),
    ]


@pytest.mark.slow
def test_forged_messages_over_nats_never_reach_readings(
    shared_nats: Consumer,
    mariadb_url: str,
    start_stage: StartStage,
    tmp_path: Path,
    report: Report,
) -> None:
    key_file = tmp_path / "device-keys"
    made = subprocess.run(
        [sys.executable, "-m", "weatherpipe", "keys", "new", f"--devices={DEVICES}"],
        env=stage_env(),
        capture_output=True,
        text=True,
        check=True,
    )
    key_file.write_text(made.stdout)
    keys = dict(line.split() for line in made.stdout.splitlines() if not line.startswith("#"))
    settings = {
        "bus_url": shared_nats.bus.url,
        "topic": shared_nats.bus.topic,
        "subscription": shared_nats.bus.subscription,
        "device_keys": str(key_file),
        "log_level": "DEBUG",
    }
    sensors = start_stage(
        "sensors",
        f"--devices={DEVICES}",
        "--rate=10",
        "--anomaly-rate=0",
        log="sensors",
        spool_path=str(tmp_path / "spool"),
        **settings,
    )
    ingest = start_stage("ingest", log="ingest", database_url=mariadb_url, **settings)
    db = Database(mariadb_url)
    wait_for(lambda: db.stored() >= 100, 60, "signed readings stored")
    shared_nats.publish(forgeries(keys))
    wait_for(lambda: db.scalar("SELECT COUNT(*) FROM dead_letters") == 3, 30, "three refusals")
    sensors.terminate()
    wait_for(shared_nats.settled, 60, "ingest caught up")
    ingest.terminate()

    ticks = int(re.search(r"([\d,]+) ticks", sensors.log()).group(1))  # type: ignore[union-attr]
    db.assert_exactly_once(ticks * DEVICES)
    assert db.scalar(f"SELECT COUNT(*) FROM readings WHERE temperature = {FORGED_TEMPERATURE}") == 0
    reasons = sorted(reason for (reason,) in db.rows("SELECT reason FROM dead_letters"))
    assert [r.split(":")[0].split(" ")[0] for r in reasons] == ["forged", "signed", "unsigned"]
    logs = sensors.log() + ingest.log()
    assert "loaded keys of 5 devices" in logs
    assert not any(key in logs or key[:16] in logs for key in keys.values())
    report["stored"] = ticks * DEVICES
    report["dead_letters"] = reasons
    report.write()
    db.close()
