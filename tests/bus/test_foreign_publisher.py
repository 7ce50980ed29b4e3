"""A publisher that knows only the topic name and the wire format, on each real broker.

It uses the broker's own client library, not weatherpipe: 20,000 valid readings, 500 of them
re-sent, and 100 malformed messages, shuffled. `weatherpipe ingest` runs as its own process.
MariaDB must end with exactly 20,000 readings and 100 dead letters: one per bad message on
NATS and Pub/Sub, one per distinct bad payload (10) on MQTT, which gives a redelivered message
no identity of its own, so byte-identical bad messages share one dead letter's key
(docs/reliability.md).
"""

from __future__ import annotations

import asyncio
import os
import random
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from tests.bus.conftest import NATS_URL, require_server
from weatherpipe.reading import Reading, encode

pytestmark = pytest.mark.slow
VALID, RESENT, MALFORMED = 20_000, 500, 100
DISTINCT_MALFORMED = 10


def messages(seed: int = 7) -> list[bytes]:
    rng = random.Random(seed)
    devices = [str(uuid.UUID(int=rng.getrandbits(128), version=4)) for _ in range(10)]
    start = datetime(2026, 3, 1, tzinfo=UTC)
    valid = [
        encode(
            Reading(
                devices[i % 10], start + timedelta(seconds=i // 10), 15 + rng.random(), 48.1, 11.6
            )
        )
        for i in range(VALID)
    ]
    malformed = [
        b" ",
        b"\x00\xff\xfe",
        b"[]",
        b"{}",
        b'{"v": 1}',
        b'{"v": 2, "device_id": "x"}',
        b'{"v":1,"device_id":"' + devices[0].encode() + b'","ts":"soon","temperature":1,'
        b'"latitude":0,"longitude":0}',
        b'{"v":1,"device_id":"' + devices[0].encode() + b'","ts":"2026-03-01T00:00:00Z",'
        b'"temperature":-300,"latitude":0,"longitude":0}',
        b'{"v":1,"device_id":"' + devices[0].encode() + b'","ts":"2026-03-01T00:00:00Z",'
        b'"temperature":"warm","latitude":0,"longitude":0}',
        b"x" * 70_000,
    ]
    assert len(set(malformed)) == DISTINCT_MALFORMED
    batch = (
        valid
        + rng.sample(valid, RESENT)
        + [malformed[i % len(malformed)] for i in range(MALFORMED)]
    )
    rng.shuffle(batch)
    return batch


async def publish_nats(url: str, topic: str, batch: list[bytes]) -> None:
    import nats

    nc = await nats.connect(url)
    js = nc.jetstream()
    for i in range(0, len(batch), 500):
        await asyncio.gather(*(js.publish(topic, data) for data in batch[i : i + 500]))
    await nc.close()


def publish_mqtt(url: str, topic: str, batch: list[bytes]) -> None:
    import paho.mqtt.client as mqtt
    from paho.mqtt.enums import CallbackAPIVersion

    host, port = url.split("//", 1)[1].split("?")[0].split(":")
    client = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
    client.connect(host, int(port))
    client.loop_start()
    for info in [client.publish(topic, data, qos=1) for data in batch]:
        info.wait_for_publish(timeout=120)
    client.loop_stop()
    client.disconnect()


def publish_pubsub(project: str, topic: str, batch: list[bytes]) -> None:
    from google.cloud import pubsub_v1

    client = pubsub_v1.PublisherClient()
    path = client.topic_path(project, topic)
    for future in [client.publish(path, data) for data in batch]:
        future.result(timeout=120)


@pytest.fixture(params=["nats", "mqtt", "pubsub"])
def bus_env(
    request: pytest.FixtureRequest, mariadb_url: str, tmp_path: Path
) -> Iterator[dict[str, str]]:
    name = f"fp{uuid.uuid4().hex[:8]}"
    env = {
        **os.environ,
        "WEATHERPIPE_DATABASE_URL": mariadb_url,
        "WEATHERPIPE_TOPIC": f"{name}_topic",
        "WEATHERPIPE_SUBSCRIPTION": f"{name}_sub",
    }
    if request.param == "nats":
        require_server("NATS", NATS_URL)
        env["WEATHERPIPE_BUS_URL"] = NATS_URL
    elif request.param == "mqtt":
        tuned = request.getfixturevalue("tuned_mosquitto")  # the settings docs/brokers.md asks for
        env["WEATHERPIPE_BUS_URL"] = f"mqtt://127.0.0.1:{tuned.port}"
        env["TMPDIR"] = str(tmp_path)  # this test's own MQTT client-id slots
    else:
        env["PUBSUB_EMULATOR_HOST"] = request.getfixturevalue("pubsub_emulator")
        env["WEATHERPIPE_BUS_URL"] = "pubsub://weatherpipe-test"
    yield env
    if request.param != "mqtt":  # MQTT sessions die with the private broker
        subprocess.run([sys.executable, "-c", _DELETE], env=env, check=False, timeout=60)


_DELETE = """
import asyncio, os
from weatherpipe.bus import create_bus
async def main():
    async with create_bus(os.environ["WEATHERPIPE_BUS_URL"], os.environ["WEATHERPIPE_TOPIC"],
                          os.environ["WEATHERPIPE_SUBSCRIPTION"]) as bus:
        await bus.delete()
asyncio.run(main())
"""


def cli(env: dict[str, str], *args: str) -> None:
    subprocess.run([sys.executable, "-m", "weatherpipe", *args], env=env, check=True, timeout=120)


def test_a_foreign_publisher_is_stored_exactly_once(
    bus_env: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cli(bus_env, "db", "upgrade")
    cli(bus_env, "bus", "setup")
    log = (tmp_path / "ingest.log").open("w")
    ingest = subprocess.Popen(
        [sys.executable, "-m", "weatherpipe", "ingest"],
        env=bus_env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    engine = create_engine(bus_env["WEATHERPIPE_DATABASE_URL"])
    url, topic = bus_env["WEATHERPIPE_BUS_URL"], bus_env["WEATHERPIPE_TOPIC"]
    batch = messages()
    try:
        if url.startswith("nats"):
            asyncio.run(publish_nats(url, topic, batch))
        elif url.startswith("mqtt"):
            publish_mqtt(url, topic, batch)
        else:
            monkeypatch.setenv("PUBSUB_EMULATOR_HOST", bus_env["PUBSUB_EMULATOR_HOST"])
            publish_pubsub("weatherpipe-test", topic, batch)

        def counts() -> tuple[int, int]:
            with engine.connect() as conn:
                stored = conn.execute(text("SELECT COUNT(*) FROM readings")).scalar_one()
                dead = conn.execute(text("SELECT COUNT(*) FROM dead_letters")).scalar_one()
            return int(stored), int(dead)

        expected = (VALID, DISTINCT_MALFORMED if url.startswith("mqtt") else MALFORMED)
        deadline = time.monotonic() + 180
        while counts() != expected and time.monotonic() < deadline:
            assert ingest.poll() is None, (tmp_path / "ingest.log").read_text()
            time.sleep(0.5)
        stored, dead = counts()
    finally:
        ingest.send_signal(signal.SIGTERM)
        code = ingest.wait(timeout=30)
        log.close()
    assert (stored, dead) == expected, (tmp_path / "ingest.log").read_text()[-3000:]
    assert code == 0
    with engine.connect() as conn:
        rollup = conn.execute(text("SELECT SUM(n) FROM readings_daily")).scalar_one()
        reasons = conn.execute(text("SELECT COUNT(DISTINCT reason) FROM dead_letters")).scalar_one()
    assert int(rollup) == VALID
    assert reasons >= 8
    engine.dispose()
