"""Node-RED runs the flow of docs/devices.md, headless on a loopback port, against a running
`weatherpipe api`; its reading lands under the device's registered name. Node-RED is installed
with npm once (see conftest.npm_package)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.devices.conftest import Api, free_port, npm_package

NODE_RED_VERSION = "4.1.15"  # the newest line that runs on Node.js 18-20 (5.x needs 22.9)
DOCS = Path(__file__).parents[2] / "docs" / "devices.md"
SECONDS = 60

SETTINGS = """module.exports = {
    uiHost: "127.0.0.1",
    uiPort: %(port)d,
    flowFile: "flows.json",
    credentialSecret: false,
    logging: {console: {level: "info", metrics: false, audit: false}},
};
"""


@pytest.fixture(scope="module")
def node_red() -> Path:
    """The node-red launcher."""
    return npm_package("node-red", NODE_RED_VERSION) / "node_modules" / ".bin" / "node-red"


def documented_flow() -> list[dict[str, object]]:
    """The flow JSON block of docs/devices.md's Node-RED section, as a user imports it."""
    section = DOCS.read_text().split("### Node-RED", 1)[1]
    block = re.search(r"```json\n(.*?)\n```", section, re.DOTALL)
    assert block, "docs/devices.md has no ```json flow under ### Node-RED"
    flow = json.loads(block.group(1))
    assert isinstance(flow, list)
    return flow


@pytest.fixture
def running_flow(node_red: Path, api: Api, tmp_path: Path) -> Iterator[tuple[Api, Path]]:
    token = api.token_of("node-red-1", name="Potting shed", latitude=51.5, longitude=-0.12)
    port = free_port()
    (tmp_path / "settings.js").write_text(SETTINGS % {"port": port})
    (tmp_path / "flows.json").write_text(json.dumps(documented_flow()))
    env = {
        "PATH": os.environ["PATH"],
        "HOME": str(tmp_path),
        "WEATHERPIPE_TELEMETRY_URL": f"{api.url}/api/v1/telemetry",
        "WEATHERPIPE_DEVICE_TOKEN": token,
    }
    log_path = tmp_path / "node-red.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [node_red, "--settings", "settings.js", "--userDir", tmp_path, "--no-telemetry"],
            env=env,
            cwd=tmp_path,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            yield api, log_path
        finally:
            process.terminate()
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def test_the_documented_node_red_flow_posts_a_named_devices_readings(
    running_flow: tuple[Api, Path],
) -> None:
    api, log_path = running_flow
    deadline = time.monotonic() + SECONDS
    while True:
        devices = httpx.get(f"{api.url}/api/v1/devices", headers=api.admin.headers).json()
        mine = [d for d in devices if d["device_id"] == "node-red-1"]
        if mine and mine[0]["count"] >= 1:
            break
        assert time.monotonic() < deadline, log_path.read_text()[-4000:]
        time.sleep(0.2)
    assert mine[0]["name"] == "Potting shed"
    assert (mine[0]["latitude"], mine[0]["longitude"]) == (51.5, -0.12)  # from the registry
    page = api.admin.get("/api/v1/readings", params={"device_id": "node-red-1"}).json()
    readings = page["items"]
    assert readings and readings[0]["temperature"] == 21.4
    # The flow's debug node prints each answer to the console (util.inspect of the body).
    answered = re.compile(r"\[debug:answer\]\s*\{[^}]*stored: 1,")
    while not answered.search(log_path.read_text()):
        assert time.monotonic() < deadline, log_path.read_text()[-4000:]
        time.sleep(0.2)
