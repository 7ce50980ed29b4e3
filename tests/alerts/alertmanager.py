"""A real Prometheus Alertmanager for the tests (Debian's prometheus-alertmanager), started on a
free loopback port with a throwaway config and storage, stopped afterwards."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from weatherpipe.testing import in_ci

BINARY = "prometheus-alertmanager"
CONFIG = """route:
  receiver: "nobody"
  group_wait: 1s
receivers:
  - name: "nobody"
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Alertmanager:
    def __init__(self, url: str) -> None:
        self.url = url

    def alerts(self) -> list[dict[str, Any]]:
        """The alerts it holds as active (resolved ones drop out)."""
        answer = httpx.get(f"{self.url}/api/v2/alerts", timeout=5)
        answer.raise_for_status()
        alerts: list[dict[str, Any]] = answer.json()
        return alerts


def binary() -> str:
    """The Alertmanager binary; a loud skip on a laptop without it, a failure under CI=true."""
    found = shutil.which(BINARY) or (
        f"/usr/bin/{BINARY}" if Path(f"/usr/bin/{BINARY}").exists() else None
    )
    if found:
        return found
    reason = f"{BINARY} is not installed (apt-get install prometheus-alertmanager)"
    if in_ci():
        pytest.fail(f"{reason} (CI=true: a missing server is a failure)")
    pytest.skip(f"SKIPPED LOUDLY: {reason}")


@contextmanager
def alertmanager(tmp_path: Path) -> Iterator[Alertmanager]:
    program = binary()
    config = tmp_path / "alertmanager.yml"
    config.write_text(CONFIG)
    port = free_port()
    log = (tmp_path / "alertmanager.log").open("w")
    process = subprocess.Popen(
        [
            program,
            f"--config.file={config}",
            f"--storage.path={tmp_path / 'alertmanager-data'}",
            f"--web.listen-address=127.0.0.1:{port}",
            "--cluster.listen-address=",  # no gossip port: one instance, loopback only
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            assert process.poll() is None, (tmp_path / "alertmanager.log").read_text()
            try:
                if httpx.get(f"{url}/-/ready", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, "Alertmanager not ready in 30 s"
            time.sleep(0.1)
        yield Alertmanager(url)
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)
        log.close()
