"""What the device tests share: a running `weatherpipe api` (uvicorn on a free port, SQLite)
whose admin API provisions the devices, and npm packages (Node-RED, JSONata) installed once.

npm packages go to ~/.cache/weatherpipe/NAME-VERSION (WEATHERPIPE_TEST_CACHE moves the root), so
later runs, and CI with that directory cached, do not install them again. Without npm a test
that needs one is skipped loudly (a failure under CI=true)."""

from __future__ import annotations

import os
import shutil
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from weatherpipe.testing import in_ci

API_TOKEN = "admin-secret-token-for-tests"
RATE, BURST = 50, 300


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Api:
    url: str
    db: Path
    admin: httpx.Client

    def token_of(self, device_id: str, **fields: object) -> str:
        answer = self.admin.post(
            "/api/v1/admin/devices", json={"device_id": device_id, "token": True, **fields}
        )
        assert answer.status_code == 201, answer.text
        return str(answer.json()["token"])

    def dead_letters(self) -> list[tuple[bytes, str]]:
        with sqlite3.connect(self.db) as conn:
            return list(conn.execute("SELECT data, reason FROM dead_letters ORDER BY id"))

    def count(self, device_id: str) -> int:
        with sqlite3.connect(self.db) as conn:
            query = "SELECT COUNT(*) FROM readings WHERE device_id = ?"
            return int(conn.execute(query, (device_id,)).fetchone()[0])


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Api]:
    folder = tmp_path_factory.mktemp("telemetry")
    db = folder / "weather.db"
    port = free_port()
    env = {
        "PATH": os.environ["PATH"],
        "WEATHERPIPE_DATABASE_URL": f"sqlite:///{db}",
        "WEATHERPIPE_API_TOKEN": API_TOKEN,
        "WEATHERPIPE_TELEMETRY_RATE": str(RATE),
        "WEATHERPIPE_TELEMETRY_BURST": str(BURST),
        "WEATHERPIPE_TELEMETRY_MAX_BYTES": str(256 * 1024),
    }
    log = (folder / "api.log").open("wb")
    process = subprocess.Popen(
        [sys.executable, "-m", "weatherpipe", "api", "--port", str(port)],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        cwd=folder,
    )
    url = f"http://127.0.0.1:{port}"
    admin = httpx.Client(base_url=url, headers={"Authorization": f"Bearer {API_TOKEN}"})
    try:
        deadline = time.monotonic() + 30
        while True:
            assert process.poll() is None, (folder / "api.log").read_text()
            try:
                if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, "the API did not answer within 30 s"
            time.sleep(0.1)
        yield Api(url, db, admin)
    finally:
        admin.close()
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()


NPM_INSTALL_SECONDS = 600


def npm_package(name: str, version: str) -> Path:
    """The folder whose node_modules holds `name@version`, installed with npm on first use."""
    root = os.environ.get("WEATHERPIPE_TEST_CACHE") or Path.home() / ".cache" / "weatherpipe"
    folder = Path(root) / f"{name}-{version}"
    installed = folder / "node_modules" / name / "package.json"
    if installed.exists():
        return folder
    npm = shutil.which("npm")
    if npm is None or shutil.which("node") is None:
        reason = f"npm/node not found: {name} cannot be installed"
        if in_ci():
            pytest.fail(f"{reason} (CI=true: a missing tool is a failure)")
        pytest.skip(f"SKIPPED LOUDLY: {reason}")
    folder.mkdir(parents=True, exist_ok=True)
    quiet = ["--no-audit", "--no-fund", "--omit=dev"]
    done = subprocess.run(
        [npm, "install", "--prefix", str(folder), f"{name}@{version}", *quiet],
        capture_output=True,
        text=True,
        timeout=NPM_INSTALL_SECONDS,
    )
    assert done.returncode == 0 and installed.exists(), done.stderr[-2000:]
    return folder
