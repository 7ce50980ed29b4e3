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
from pathlib import Path

import pytest

from tests.containers.podman import Compose, docker_api, inspect, run
from tests.faults.harness import free_port, wait_for

pytestmark = pytest.mark.slow

REPORT = os.environ.get("WEATHERPIPE_CONTAINER_REPORT")  # append the figures here as JSON


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
            assert stored_via_api(port, "wrong") == -1  # 401 without the token

            victim = compose.container("ingest", 0)
            restarts = crash(victim)
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
            figures = {"published": published, "stored": stored(), "devices": len(rows)}
            assert figures["stored"] == published
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
