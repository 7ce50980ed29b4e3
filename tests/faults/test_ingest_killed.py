"""SIGKILL the ingest process again and again while it drains NATS: every reading stored once,
and every bad message one dead letter."""

from __future__ import annotations

import random
import time
import uuid
from collections import Counter

import pytest

from weatherpipe.reading import encode
from weatherpipe.testing import make_reading

from .conftest import StartStage
from .harness import Consumer, Database, Report, wait_for

READINGS = 100_000
DEVICES = 20
KILLS = 5
# One bad message after every 100th reading, four kinds over and over: a batch redelivered after
# its commit brings its dead letters back, and equal bytes are still distinct messages.
BAD_KINDS = [b"not json", b"{}", b'{"v": 1}', b"\xff\xfe"]
BAD = [BAD_KINDS[i % len(BAD_KINDS)] for i in range(READINGS // 100)]


def backlog() -> list[tuple[bytes, dict[str, str] | None]]:
    devices = [str(uuid.uuid4()) for _ in range(DEVICES)]
    messages: list[tuple[bytes, dict[str, str] | None]] = []
    for i in range(READINGS):
        device, n = devices[i % DEVICES], i // DEVICES
        messages.append((encode(make_reading(device, n, 20.0 + i % 7, seq=n + 1)), None))
        if i % 100 == 99:
            messages.append((BAD[i // 100], None))
    return messages


@pytest.mark.slow
def test_five_sigkills_while_draining_100000_readings_store_each_exactly_once(
    shared_nats: Consumer, server_url: str, start_stage: StartStage, report: Report
) -> None:
    messages = backlog()
    report["publish_seconds"] = shared_nats.publish(messages)
    assert shared_nats.pending()[0] == len(messages)
    db = Database(server_url)
    settings = {
        "database_url": server_url,
        "bus_url": shared_nats.bus.url,
        "topic": shared_nats.bus.topic,
        "subscription": shared_nats.bus.subscription,
        # Small batches (two writers, three in hand at most), so each kill lands mid-drain:
        # with the default 20,000 one process holds 60% of what is left after the 4th kill.
        "batch_size": "2000",
    }
    started = time.monotonic()
    killed_at: list[int] = []
    jitter = random.Random(5)
    for kill in range(KILLS):
        ingest = start_stage("ingest", log=f"ingest-{kill}", **settings)
        # Kills spread evenly over the first 5/7 of the backlog, each after progress since the
        # last one, so every process dies with work left.
        target = max((kill + 1) * READINGS // (KILLS + 2), (killed_at[-1] if killed_at else 0) + 1)
        wait_for(
            lambda t=target: db.stored() >= t, 120, f"ingest #{kill} storing past {target}", 0.02
        )
        assert ingest.running(), ingest.log()
        # The time from one commit seen to the next, on this machine and now; a random delay
        # within it lands the kill anywhere in a batch's cycle (between commit and ack too),
        # not always right after a commit, and never far past the target on a fast machine.
        seen, since = db.stored(), time.monotonic()
        wait_for(lambda s=seen: db.stored() > s, 120, f"ingest #{kill} committing again", 0.005)
        time.sleep(jitter.uniform(0.0, time.monotonic() - since))
        ingest.kill()
        killed_at.append(db.stored())
    last_kill = time.monotonic()
    assert killed_at == sorted(killed_at) and killed_at[-1] < READINGS, killed_at

    final = start_stage("ingest", log="ingest-final", **settings)
    wait_for(shared_nats.settled, 120, "the subscription drained and every message acked", 0.2)
    drained = time.monotonic()
    report["stop_seconds"] = final.terminate()
    assert final.process.returncode == 0, final.log()

    db.assert_exactly_once(READINGS)
    assert all(runs == [READINGS // DEVICES] for runs in db.seq_runs().values())
    dead = db.rows("SELECT data FROM dead_letters")
    assert Counter(bytes(data) for (data,) in dead) == Counter(BAD)
    report["kills"] = KILLS
    report["stored_at_each_kill"] = killed_at
    report["redeliveries"] = shared_nats.deliveries() - len(messages)
    report["dead_letters"] = len(dead)
    report["stored"] = db.scalar("SELECT COUNT(*) FROM readings")
    report["rollup_count"] = db.scalar("SELECT SUM(n) FROM readings_daily")
    report["drain_seconds_total"] = drained - started
    report["seconds_from_last_kill_to_drained"] = drained - last_kill
    report["final_process_summary"] = final.log().strip().splitlines()[-1]
    report.write()
    db.close()
