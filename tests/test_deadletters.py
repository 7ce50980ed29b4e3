"""Dead letters for operators: listed with a safe preview, replayed to the bus after a fix."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from pathlib import Path

from typer.testing import CliRunner

from weatherpipe.bus import create_bus
from weatherpipe.cli import app
from weatherpipe.deadletters import REPLAY_OF, listing, preview, replay
from weatherpipe.ingest.worker import IngestWorker
from weatherpipe.reading import encode
from weatherpipe.signing import DeviceKeys, Signer, Verifier
from weatherpipe.storage.repository import DeadLetter, Repository
from weatherpipe.testing import DEVICE_A, DEVICE_B, make_reading


def test_a_preview_escapes_control_characters_and_bad_utf8_and_is_cut_short() -> None:
    assert preview(b'{"v": 1}') == '{"v": 1}'
    assert preview(b"\x1b[2J\x07bell\r\n") == "\\x1b[2J\\x07bell\\x0d\\x0a"
    assert preview(b"\xff\xfeok") == "\\xff\\xfeok"
    assert preview(b"x" * 100, limit=10) == "x" * 10 + "… (+90 bytes)"
    assert preview("température".encode()) == "température"


def test_the_cli_lists_dead_letters_without_replaying_terminal_escapes(
    sqlite_repo: Repository, sqlite_url: str
) -> None:
    sqlite_repo.store_batch([], [DeadLetter(b"\x1b]0;pwned\x07" + b"A" * 200, "not valid JSON")])
    result = CliRunner().invoke(app, ["dead-letters", "list", "--database-url", sqlite_url])
    assert result.exit_code == 0, result.output
    assert "not valid JSON" in result.output and "\x1b" not in result.output
    assert "\\x1b]0;pwned\\x07" in result.output and "(+130 bytes)" in result.output
    as_json = CliRunner().invoke(
        app, ["dead-letters", "list", "--json", "--database-url", sqlite_url]
    )
    (row,) = [json.loads(line) for line in as_json.output.splitlines()]
    assert (row["id"], row["bytes"], row["reason"]) == (1, 210, "not valid JSON")


def test_replay_after_adding_a_key_stores_the_readings_and_marks_them_replayed(
    repo: Repository, tmp_path: Path
) -> None:
    keys_file = tmp_path / "keys"
    keys_file.write_text(f"{DEVICE_A} {'aa' * 32}\n")
    b_key = "bb" * 32
    signer_b = Signer(DeviceKeys({DEVICE_B: [bytes.fromhex(b_key)]}))
    bodies = [encode(make_reading(DEVICE_B, i)) for i in range(3)]

    async def ingest_all(bus_url: str) -> None:
        async with create_bus(bus_url) as bus:
            worker = IngestWorker(
                bus, repo, batch_seconds=0.05, verifier=Verifier(DeviceKeys.load(keys_file))
            )
            stop = asyncio.Event()
            task = asyncio.create_task(worker.run(stop))
            deadline = time.monotonic() + 30
            while await bus.lag() or worker.stats.received < 3:
                assert time.monotonic() < deadline, f"received {worker.stats.received} of 3"
                assert not task.done(), task
                await asyncio.sleep(0.01)
            stop.set()
            await task

    async def publish(bus_url: str) -> None:
        async with create_bus(bus_url) as bus:
            await bus.publish_many([(b, signer_b(DEVICE_B, b)) for b in bodies])

    async def replay_all(bus_url: str) -> int:
        async with create_bus(bus_url) as bus:
            return (await replay(bus, repo)).replayed

    bus_url = "memory://replay"
    asyncio.run(publish(bus_url))
    asyncio.run(ingest_all(bus_url))
    assert [r["reason"][:29] for r in listing(repo, 10, True)] == [
        "signature cannot be checked: "
    ] * 3

    keys_file.write_text(f"{DEVICE_A} {'aa' * 32}\n{DEVICE_B} {b_key}\n")  # the fix
    assert asyncio.run(replay_all(bus_url)) == 3
    asyncio.run(ingest_all(bus_url))

    assert repo.totals()["stored"] == 3
    assert listing(repo, 10, pending_only=True) == []
    assert all(r["replayed_at"] for r in listing(repo, 10, pending_only=False))
    assert asyncio.run(replay_all(bus_url)) == 0  # nothing pending: replay is idempotent


def test_replay_of_chosen_ids_leaves_the_others_pending(sqlite_repo: Repository) -> None:
    sqlite_repo.store_batch([], [DeadLetter(b"one", "bad"), DeadLetter(b"two", "bad")])

    async def scenario() -> tuple[int, int]:
        async with create_bus("memory://chosen") as bus:
            stats = await replay(bus, sqlite_repo, ids=[2, 99])
            return stats.replayed, stats.missing

    assert asyncio.run(scenario()) == (1, 1)
    assert [r["id"] for r in listing(sqlite_repo, 10, pending_only=True)] == [1]


def test_the_cli_refuses_to_replay_onto_the_in_process_bus(sqlite_url: str) -> None:
    result = CliRunner().invoke(
        app, ["dead-letters", "replay", "--all", "--database-url", sqlite_url]
    )
    assert result.exit_code != 0
    assert "memory:// lives inside one process" in str(result.exception)


def test_a_replay_still_refused_on_mqtt_is_a_new_dead_letter(repo: Repository) -> None:
    """MQTT has no message ids, so a dead letter's key is its message's attributes and bytes;
    the replay's own attribute keeps a still-bad replay from passing for a redelivery."""
    from tests.bus.conftest import MQTT_URL, require_server

    require_server("Mosquitto", MQTT_URL)
    name = f"wp_replay_{uuid.uuid4().hex[:10]}"

    async def ingest(expected: int) -> None:
        async with create_bus(MQTT_URL, name, f"{name}_sub") as bus:
            worker = IngestWorker(bus, repo, batch_seconds=0.05)
            stop = asyncio.Event()
            task = asyncio.create_task(worker.run(stop))
            deadline = time.monotonic() + 30
            while worker.stats.received < expected:
                assert time.monotonic() < deadline, f"received {worker.stats.received}"
                assert not task.done(), task
                await asyncio.sleep(0.01)
            stop.set()
            await task

    async def publish_bad() -> None:
        async with create_bus(MQTT_URL, name, f"{name}_sub") as bus:
            await bus.setup()
            await bus.publish(b"still not json", {"origin": "test"})

    async def replay_all() -> int:
        async with create_bus(MQTT_URL, name, f"{name}_sub") as bus:
            return (await replay(bus, repo)).replayed

    asyncio.run(publish_bad())
    asyncio.run(ingest(1))
    assert asyncio.run(replay_all()) == 1
    asyncio.run(ingest(1))
    rows = repo.dead_letters(limit=10, pending_only=False)
    assert [(r["data"], r["replayed_at"] is None) for r in rows] == [
        (b"still not json", False),
        (b"still not json", True),
    ]
    assert rows[1]["attributes"] == {"origin": "test", REPLAY_OF: str(rows[0]["id"])}
