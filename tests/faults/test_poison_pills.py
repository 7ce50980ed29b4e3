"""The issue's poison pills amid valid readings on NATS into MariaDB: every valid reading stored
once, exactly the pills dead-lettered, and one ingest process that never exits.

Each pill, before this work, failed its batch on every restart (0 of 100,000 stored). CI runs
20,000 valid readings; `WEATHERPIPE_PILL_READINGS=100000` runs the issue's size by hand.
"""

from __future__ import annotations

import json
import os
import random
import time
import uuid
from collections import Counter

from weatherpipe.ingest.refusals import MAX_ATTRIBUTES_BYTES
from weatherpipe.reading import encode
from weatherpipe.testing import make_reading

from .conftest import StartStage
from .harness import Consumer, Database, Report, wait_for

READINGS = int(os.environ.get("WEATHERPIPE_PILL_READINGS", "20000"))
DEVICES = 20
# A 40,000-character header whose JSON (each `"` and `\` escaped) is 80,013 bytes: more than
# MySQL's TEXT column holds. NATS takes headers up to 64 KiB.
LONG_HEADER = '"\\' * 20_000


def pill(device: str, second: float, **changes: object) -> bytes:
    body = json.loads(encode(make_reading(device, second, 15.0, seq=1)))
    body.update(changes)
    return json.dumps(body).encode()


def pills(devices: list[str]) -> list[tuple[bytes, dict[str, str] | None]]:
    """The issue's four pills (the fourth is two messages) and the header pill. Their own
    timestamps fall between the valid readings', so only their values can refuse them."""
    device = devices[0]
    return [
        (pill(device, 0.5, seq=9223372036854775808), None),
        (pill(device, 1.5, ts="0001-01-01T00:00:00+01:00"), None),
        (pill(device, 2.5, ts="9999-12-31T23:59:59-01:00"), None),
        (pill(devices[1], 3.5, temperature=1e308), None),
        (pill(devices[1], 4.5, temperature=1e308), None),
        (b'{"v": 1, "device_id": ', {"x-pill": LONG_HEADER}),
    ]


def test_poison_pills_are_dead_lettered_and_every_valid_reading_is_stored_once(
    shared_nats: Consumer, mariadb_url: str, start_stage: StartStage, report: Report
) -> None:
    devices = [str(uuid.uuid4()) for _ in range(DEVICES)]
    valid = [
        encode(make_reading(devices[i % DEVICES], i // DEVICES, 15.0, seq=i // DEVICES + 1))
        for i in range(READINGS)
    ]
    bad = pills(devices)
    messages: list[tuple[bytes, dict[str, str] | None]] = [(m, None) for m in valid] + bad
    random.Random(13).shuffle(messages)
    report["readings"] = READINGS
    report["publish_seconds"] = shared_nats.publish(messages)
    db = Database(mariadb_url)
    ingest = start_stage(
        "ingest",
        log="ingest",
        database_url=mariadb_url,
        bus_url=shared_nats.bus.url,
        topic=shared_nats.bus.topic,
        subscription=shared_nats.bus.subscription,
    )
    started = time.monotonic()

    def drained() -> bool:
        assert ingest.running(), f"ingest exited:\n{ingest.log()[-3000:]}"
        return shared_nats.settled()

    wait_for(drained, 600, "ingest drains the stream with the pills", every=0.5)
    report["drain_seconds"] = time.monotonic() - started
    report["redeliveries"] = shared_nats.deliveries() - len(messages)
    report["readings_per_second"] = READINGS / report.values["drain_seconds"]
    assert ingest.running()  # the one process we started, never restarted
    report["stop_seconds"] = ingest.terminate()
    assert ingest.process.returncode == 0

    db.assert_exactly_once(READINGS)
    assert db.scalar("SELECT COUNT(*) FROM readings WHERE temperature > 1e4 OR seq > 5000") == 0
    letters = db.rows("SELECT data, reason, attributes FROM dead_letters")
    assert Counter(bytes(data) for data, _, _ in letters) == Counter(data for data, _ in bad)
    reasons = {bytes(data): reason for data, reason, _ in letters}
    for data, _ in bad:
        assert reasons[data].strip(), data
    (header_pill,) = [attrs for data, _, attrs in letters if bytes(data) == bad[-1][0]]
    assert len(header_pill.encode()) <= MAX_ATTRIBUTES_BYTES
    assert json.loads(header_pill)["x-pill"].startswith('"\\"\\')
    report["dead_letters"] = len(letters)
    report["reasons"] = sorted(reason[:90] for _, reason, _ in letters)
    report.write()
    db.close()
