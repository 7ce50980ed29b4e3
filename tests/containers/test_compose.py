"""compose.yaml on real servers: every reading the sensors made is stored exactly once, across
a crash (SIGKILL) of one of the two ingest containers.

The servers run from stand-in images built from Debian's packages under test-only names
(tests/containers/compose.test.yaml says why), not from the official images compose.yaml names.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import signal
import subprocess
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.containers.podman import Compose, docker_api, inspect, run
from tests.faults.harness import free_port, wait_for

pytestmark = pytest.mark.slow

REPORT = os.environ.get("WEATHERPIPE_CONTAINER_REPORT")  # append the figures here as JSON
# How long the sensors run (the kill comes half-way); the 10-minute run is 600.
RUN_SECONDS = float(os.environ.get("WEATHERPIPE_CONTAINER_RUN_SECONDS", "20"))


def stored_via_api(port: int, token: str) -> int:
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/api/v1/stats/counts",
        headers={"Authorization": f"Bearer {token}"},
    )
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return sum(int(row["count"]) for row in json.load(response))
    except OSError:
        return -1


def sql(compose: Compose, query: str) -> list[list[str]]:
    out = run(
        "podman", "exec", compose.container("mariadb"),
        "mariadb", "-uweather", "-pweather", "weather", "-N", "-B", "-e", query,
    )  # fmt: skip
    return [line.split("\t") for line in out.splitlines()]


def sensors_report(compose: Compose) -> tuple[int, int, int]:
    """(published, ticks, devices) from the line the sensors print when they stop."""
    logs = subprocess.run(
        ["podman", "logs", compose.container("sensors")], capture_output=True, text=True
    )
    found = re.findall(
        r"published ([\d,]+) readings, spooled [\d,]+, ([\d,]+) ticks of (\d+) devices",
        logs.stdout + logs.stderr,
    )
    assert len(found) == 1, f"expected one run of the sensors, found {len(found)}"
    published, ticks, devices = (int(x.replace(",", "")) for x in found[0])
    return published, ticks, devices


def nats_monitor(compose: Compose, path: str) -> dict[str, Any]:
    out = run(
        "podman", "exec", compose.container("nats"),
        "wget", "-q", "-O", "-", f"http://127.0.0.1:8222/{path}",
    )  # fmt: skip
    return dict(json.loads(out))


def busiest_ingest(compose: Compose) -> str:
    """The ingest container NATS has delivered the most to: the one sure to hold a batch."""
    delivered = {c["ip"]: c["out_msgs"] for c in nats_monitor(compose, "connz")["connections"]}

    def address(container: str) -> str:
        networks = inspect(container)["NetworkSettings"]["Networks"]  # type: ignore[index]
        return str(next(iter(networks.values()))["IPAddress"])

    ingest = compose("ps", "-q", "ingest").split()
    assert len(ingest) == 2, f"two ingest containers expected, found {ingest}"
    return max(ingest, key=lambda container: int(delivered.get(address(container), 0)))


def consumer_figures(compose: Compose) -> dict[str, int]:
    """The durable consumer's redelivered and pending counts, from NATS's monitoring port."""
    found = nats_monitor(compose, "jsz?consumers=true")
    for account in found.get("account_details", []):
        for stream in account.get("stream_detail", []):
            for consumer in stream.get("consumer_detail", []):
                delivered = consumer["delivered"]
                # Deliveries counted by the consumer, redeliveries included, less the stream's
                # last sequence delivered (num_redelivered counts only those still unacked).
                return {
                    "redelivered": int(delivered["consumer_seq"]) - int(delivered["stream_seq"]),
                    "ack_pending": int(consumer.get("num_ack_pending", 0)),
                    "waiting": int(consumer.get("num_pending", 0)),
                }
    raise AssertionError(f"no consumer in {str(found)[:500]}")


def held_steady(compose: Compose) -> Callable[[], bool]:
    """True once readings are pulled and unacked, the same number twice in a row: every
    ingest container is blocked on the frozen database with a batch in hand."""
    seen: list[int] = []

    def check() -> bool:
        seen.append(consumer_figures(compose)["ack_pending"])
        return len(seen) >= 2 and seen[-1] == seen[-2] > 0

    return check


def crash(container: str) -> int:
    """SIGKILL the container's main process from the host, as the OOM killer would.

    (`podman kill` would count as a stop by the user, which no restart policy undoes.)"""
    pid = int(inspect(container)["State"]["Pid"])  # type: ignore[index]
    restarts = int(str(inspect(container)["RestartCount"]))
    os.kill(pid, signal.SIGKILL)
    return restarts


def test_the_stack_stores_every_reading_once_across_an_ingest_crash(
    image: str, standins: None, tmp_path: Path
) -> None:
    token = secrets.token_hex(16)
    (tmp_path / "api.env").write_text(f"WEATHERPIPE_API_TOKEN={token}\n")
    port = free_port()
    started = time.monotonic()
    figures: dict[str, object] = {}
    with docker_api(tmp_path) as docker_host:
        compose = Compose(
            docker_host, {"API_ENV_FILE": str(tmp_path / "api.env"), "API_PUBLISH_PORT": str(port)}
        )
        try:
            compose("up", "-d", "--no-build")
            setup = inspect(compose.container("setup"))
            assert setup["State"]["ExitCode"] == 0  # type: ignore[index]
            wait_for(lambda: stored_via_api(port, token) >= 500, 180, "500 readings via the API")
            flowing = time.monotonic()
            assert stored_via_api(port, "wrong") == -1  # 401 without the token
            half = flowing + RUN_SECONDS / 2
            wait_for(lambda: time.monotonic() >= half, RUN_SECONDS, "half the run", every=1)

            # Freeze the database so both ingest containers hold pulled, unacked readings (a
            # slow insert), then crash one: what it held must come back and be stored once.
            database = compose.container("mariadb")
            run("podman", "pause", database)
            try:
                wait_for(held_steady(compose), 60, "ingest holding readings it cannot store", 1)
                victim = busiest_ingest(compose)
                restarts = crash(victim)
            finally:
                run("podman", "unpause", database)
            killed_at = stored_via_api(port, token)
            wait_for(
                lambda: (
                    int(str(inspect(victim)["RestartCount"])) > restarts
                    and inspect(victim)["State"]["Running"]
                ),  # type: ignore[index]
                60,
                "the crashed ingest container restarted by its policy",
            )
            wait_for(lambda: stored_via_api(port, token) >= killed_at + 1000, 120, "more stored")
            end = flowing + RUN_SECONDS
            wait_for(lambda: time.monotonic() >= end, RUN_SECONDS, "the end of the run", every=1)
            compose("stop", "--timeout", "30", "sensors")
            published, ticks, devices = sensors_report(compose)
            assert published == ticks * devices > 0

            def stored() -> int:
                return int(sql(compose, "SELECT COUNT(*) FROM readings")[0][0])

            # What the crashed process held unacked comes back after the consumer's ack_wait (60 s).
            wait_for(lambda: stored() >= published, 180, f"{published} readings stored", every=2)
            rows = sql(
                compose,
                "SELECT device_id, COUNT(*), COUNT(DISTINCT ts), COUNT(DISTINCT seq), MIN(seq),"
                " MAX(seq) FROM readings GROUP BY device_id",
            )
            figures = {
                "published": published,
                "stored": stored(),
                "devices": len(rows),
                "stored_when_killed": killed_at,
                **consumer_figures(compose),
            }
            assert figures["stored"] == published
            assert int(str(figures["redelivered"])) > 0, "the crash lost no in-flight reading"
            assert len(rows) == devices
            for device, n, distinct_ts, distinct_seq, first, last in rows:
                # every tick of every device exactly once: seq 1..ticks, no gap, no repeat
                assert (int(n), int(distinct_ts), int(distinct_seq)) == (ticks, ticks, ticks), (
                    device
                )
                assert (int(first), int(last)) == (1, ticks), device
        finally:
            compose.down()
    figures["seconds"] = round(time.monotonic() - started, 1)
    print(f"compose stack: {figures}")
    if REPORT:
        with open(REPORT, "a", encoding="utf-8") as fh:
            fh.write(json.dumps(figures) + "\n")


def test_the_postgres_profile_stores_the_readings_in_postgresql(
    image: str, standins: None, tmp_path: Path
) -> None:
    token = secrets.token_hex(16)
    (tmp_path / "api.env").write_text(f"WEATHERPIPE_API_TOKEN={token}\n")
    port = free_port()
    env = {
        "API_ENV_FILE": str(tmp_path / "api.env"),
        "API_PUBLISH_PORT": str(port),
        "COMPOSE_PROFILES": "postgres",
        "WEATHERPIPE_DATABASE_URL": "postgresql+psycopg://weather:weather@postgres:5432/weather",
    }
    with docker_api(tmp_path) as docker_host:
        compose = Compose(docker_host, env)
        try:
            compose("up", "-d", "--no-build")
            wait_for(lambda: stored_via_api(port, token) >= 300, 180, "300 readings via the API")
            out = run(
                "podman", "exec", compose.container("postgres"),
                "psql", "-U", "weather", "-d", "weather", "-tAc", "SELECT COUNT(*) FROM readings",
            )  # fmt: skip
            assert int(out.strip()) >= 300
            # ... and none in MariaDB, which the profile leaves running but unused.
            assert sql(compose, "SHOW TABLES") == []
        finally:
            compose.down()
