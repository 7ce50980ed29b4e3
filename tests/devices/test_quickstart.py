"""docs/devices.md's "Your first device, with curl", run as written: `weatherpipe up` on a fresh
SQLite file, the section's shell blocks with bash, curl and the CLI; the device's readings are on
the dashboard under its name and the warm reading is flagged, with nothing else configured."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.devices.conftest import free_port

DOCS = Path(__file__).parents[2] / "docs" / "devices.md"
SECONDS = 90


def section_blocks() -> list[str]:
    section = DOCS.read_text().split("## Your first device, with curl\n", 1)[1]
    section = section.split("\n## ", 1)[0]
    return re.findall(r"```sh\n(.*?)\n```", section, re.DOTALL)


@pytest.fixture
def up(tmp_path: Path) -> Iterator[tuple[str, Path, dict[str, str]]]:
    """`weatherpipe up` as the section's first block has it, on a free port, in a fresh folder."""
    first = section_blocks()[0]
    assert first.split("#")[0].strip() == "weatherpipe up"
    port = free_port()
    env = {
        "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}",
        "HOME": str(tmp_path),
        "WEATHERPIPE_API_PORT": str(port),
    }
    log = (tmp_path / "up.log").open("wb")
    process = subprocess.Popen(
        [sys.executable, "-m", "weatherpipe", "up", "--devices", "1"],
        env=env,
        cwd=tmp_path,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + SECONDS
        while True:
            assert process.poll() is None, (tmp_path / "up.log").read_text()
            try:
                if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, "weatherpipe up did not answer"
            time.sleep(0.2)
        yield url, tmp_path, {**env, "API": url}
    finally:
        process.terminate()
        try:
            process.wait(20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()


def bash(script: str, folder: Path, env: dict[str, str]) -> str:
    done = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", script],
        cwd=folder,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_the_first_device_section_runs_as_written(
    up: tuple[str, Path, dict[str, str]],
) -> None:
    url, folder, env = up
    _, send, check, one_more = section_blocks()
    answer = bash(f"RANDOM=7  # the same noise every run\n{send}", folder, env)
    assert '"stored":600' in answer, answer
    deadline = time.monotonic() + SECONDS
    while True:
        flagged = httpx.get(
            f"{url}/api/v1/anomalies", params={"minutes": 30, "device_id": "greenhouse-01"}
        ).json()
        if flagged and flagged[0]["count"] >= 1:
            break
        assert time.monotonic() < deadline, "the warm reading was not flagged"
        time.sleep(0.5)
    (device,) = flagged
    assert device["name"] == "Greenhouse"
    assert [r["temperature"] for r in device["readings"]] == [30.5]  # and nothing else
    assert '"name":"Greenhouse"' in bash(check, folder, env)
    token = bash("weatherpipe devices key greenhouse-01", folder, env).strip()  # a new one
    assert '"stored":1' in bash(one_more, folder, {**env, "TOKEN": token})
    devices = httpx.get(f"{url}/api/v1/devices").json()
    (mine,) = [d for d in devices if d["device_id"] == "greenhouse-01"]
    assert (mine["name"], mine["count"]) == ("Greenhouse", 601)
    assert "Greenhouse" in httpx.get(f"{url}/").text  # the dashboard
