"""Message authenticity: signed readings are stored, unsigned and forged ones are dead letters."""

from __future__ import annotations

import asyncio
import logging
import time
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import text

from weatherpipe.bus import create_bus
from weatherpipe.bus.base import Bus, Message
from weatherpipe.compose import make_ingest, make_sensors
from weatherpipe.config import load_settings
from weatherpipe.errors import ConfigError
from weatherpipe.ingest.worker import IngestWorker
from weatherpipe.reading import encode
from weatherpipe.sensors.profiles import fleet
from weatherpipe.signing import KEY_ID, SIGNATURE, DeviceKeys, Signer, Verifier, signature
from weatherpipe.storage.repository import Repository
from weatherpipe.testing import BASE_TIME, DEVICE_A, DEVICE_B, make_reading

KEY_A = "a1" * 32
KEY_B = "b2" * 32


def key_file(tmp_path: Path, lines: list[str]) -> Path:
    path = tmp_path / "device-keys"
    path.write_text("# weatherpipe device keys\n" + "\n".join(lines) + "\n", encoding="utf-8")
    return path


@pytest.fixture
def keys(tmp_path: Path) -> DeviceKeys:
    return DeviceKeys.load(key_file(tmp_path, [f"{DEVICE_A} {KEY_A}", f"{DEVICE_B} {KEY_B}"]))


async def drain(bus: Bus, repo: Repository, verifier: Verifier) -> IngestWorker:
    """Ingest until the subscription is empty and settled."""
    worker = IngestWorker(bus, repo, batch_seconds=0.05, verifier=verifier)
    stop = asyncio.Event()
    task = asyncio.create_task(worker.run(stop))
    deadline = time.monotonic() + 10  # the callers' assertions say what was not drained
    while time.monotonic() < deadline and not task.done():
        if await bus.lag() == 0 and worker.stats.received > 0:
            break
        await asyncio.sleep(0.01)
    stop.set()
    await task
    return worker


def rows(repo: Repository, sql: str) -> list[tuple[object, ...]]:
    with repo.engine.connect() as conn:
        return [tuple(row) for row in conn.execute(text(sql))]


def publish_and_ingest(repo: Repository, keys: DeviceKeys, messages: list[Message]) -> None:
    async def scenario() -> None:
        async with create_bus("memory://signing") as bus:
            for message in messages:
                await bus.publish(message.data, message.attributes)
            await drain(bus, repo, Verifier(keys))

    asyncio.run(scenario())


def signed(body: bytes, key_hex: str, key_id: str | None = None) -> Message:
    attributes = {SIGNATURE: signature(bytes.fromhex(key_hex), body)}
    if key_id is not None:
        attributes[KEY_ID] = key_id
    return Message(body, attributes)


def test_a_forged_reading_never_reaches_readings(repo: Repository, keys: DeviceKeys) -> None:
    genuine = encode(make_reading(DEVICE_A, 0, 20.0))
    tampered = encode(make_reading(DEVICE_A, 1, 99.0))
    messages = [
        signed(genuine, KEY_A, DEVICE_A),
        # A good signature of one body copied onto another.
        Message(tampered, signed(encode(make_reading(DEVICE_A, 1, 21.0)), KEY_A).attributes),
        # Signed by someone guessing a key.
        signed(encode(make_reading(DEVICE_A, 2, 99.0)), "00" * 32, DEVICE_A),
        # No signature at all.
        Message(encode(make_reading(DEVICE_A, 3, 99.0)), {}),
    ]
    publish_and_ingest(repo, keys, messages)

    assert rows(repo, "SELECT temperature FROM readings") == [(20.0,)]
    reasons = [r for (r,) in rows(repo, "SELECT reason FROM dead_letters ORDER BY id")]
    assert len(reasons) == 3
    assert reasons[0].startswith("forged") and reasons[1].startswith("forged")
    assert reasons[2].startswith("unsigned")


def test_a_message_signed_with_another_devices_key_is_refused(
    repo: Repository, keys: DeviceKeys
) -> None:
    in_a_name = encode(make_reading(DEVICE_A, 0, 99.0))
    messages = [
        signed(in_a_name, KEY_B, DEVICE_B),  # honest key id, wrong device
        signed(in_a_name, KEY_B, DEVICE_A),  # lying key id
        signed(in_a_name, KEY_B),  # no key id
    ]
    publish_and_ingest(repo, keys, messages)

    assert rows(repo, "SELECT COUNT(*) FROM readings") == [(0,)]
    reasons = [r for (r,) in rows(repo, "SELECT reason FROM dead_letters ORDER BY id")]
    assert reasons[0].startswith(f"signed with the key of '{DEVICE_B}'")
    assert reasons[1].startswith("forged") and reasons[2].startswith("forged")


def test_a_device_without_a_key_is_refused(repo: Repository, tmp_path: Path) -> None:
    only_a = DeviceKeys.load(key_file(tmp_path, [f"{DEVICE_A} {KEY_A}"]))
    body = encode(make_reading(DEVICE_B, 0, 20.0))
    publish_and_ingest(repo, only_a, [signed(body, KEY_B, DEVICE_B)])
    assert rows(repo, "SELECT COUNT(*) FROM readings") == [(0,)]
    (reason,) = rows(repo, "SELECT reason FROM dead_letters")[0]
    assert "no key for device" in reason


def test_a_rotated_key_is_accepted_while_both_are_listed(tmp_path: Path) -> None:
    new_key = "c3" * 32
    keys = DeviceKeys.load(key_file(tmp_path, [f"{DEVICE_A} {KEY_A}", f"{DEVICE_A} {new_key}"]))
    body = encode(make_reading(DEVICE_A))
    verify = Verifier(keys)
    assert verify(signed(body, KEY_A)) is None
    assert verify(signed(body, new_key)) is None
    assert Signer(keys)(DEVICE_A, body) == {
        SIGNATURE: signature(bytes.fromhex(new_key), body),
        KEY_ID: DEVICE_A,
    }


def test_the_simulated_sensors_sign_and_ingest_accepts_them(
    sqlite_repo: Repository, tmp_path: Path
) -> None:
    devices = fleet(5, seed=3)
    path = key_file(tmp_path, [f"{d.device_id} {KEY_A[:-2]}{i:02x}" for i, d in enumerate(devices)])
    settings = load_settings(
        bus_url="memory://signed-fleet", device_keys=str(path), spool_path=str(tmp_path / "spool")
    )

    async def scenario() -> IngestWorker:
        async with create_bus(settings.bus_url) as bus:
            sensors = make_sensors(settings, bus, 5, 1.0, 3, 0.0)
            await sensors.backfill(BASE_TIME, BASE_TIME + timedelta(seconds=60))
            worker = make_ingest(settings, bus, sqlite_repo)
            assert worker.verifier is not None
            return await drain(bus, sqlite_repo, worker.verifier)  # type: ignore[arg-type]

    worker = asyncio.run(scenario())
    assert (worker.stats.stored, worker.stats.dead) == (300, 0)


def test_keys_never_appear_in_logs(
    repo: Repository, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    path = key_file(tmp_path, [f"{DEVICE_A} {KEY_A}", f"{DEVICE_B} {KEY_B}"])
    keys = DeviceKeys.load(path)
    signer = Signer(keys)
    body = encode(make_reading(DEVICE_A))
    messages = [
        Message(body, signer(DEVICE_A, body) or {}),
        signed(encode(make_reading(DEVICE_A, 1)), KEY_B, DEVICE_B),
        Message(encode(make_reading(DEVICE_A, 2)), {}),
    ]
    signer(str(DEVICE_B).replace("2f", "ff"), body)  # an unkeyed device is logged
    publish_and_ingest(repo, keys, messages)
    problems = []
    for bad_line in [f"{DEVICE_A} {KEY_A} extra", f"{DEVICE_A} {KEY_A[:-1]}z", f"{DEVICE_A} ab"]:
        with pytest.raises(ConfigError) as error:
            DeviceKeys.load(key_file(tmp_path, [bad_line]))
        problems.append(str(error.value))

    stored_text = " ".join(
        str(cell)
        for row in rows(repo, "SELECT reason, attributes FROM dead_letters")
        for cell in row
    )
    everything = caplog.text + " ".join(problems) + repr(keys) + str(keys) + stored_text
    assert "no key for device" in caplog.text and "loaded keys of 2 devices" in caplog.text
    for key in (KEY_A, KEY_B, KEY_A[:16], KEY_B[:16], KEY_A[:-1]):
        assert key not in everything
    assert all("line 2" in problem for problem in problems)


def test_a_bad_key_file_is_a_config_error_naming_the_variable(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="WEATHERPIPE_DEVICE_KEYS"):
        DeviceKeys.load(tmp_path / "missing")
    with pytest.raises(ConfigError, match="holds no keys"):
        DeviceKeys.load(key_file(tmp_path, ["# nothing yet"]))
    with pytest.raises(ConfigError, match="shorter than 16 bytes"):
        DeviceKeys.load(key_file(tmp_path, [f"{DEVICE_A} abcd"]))
