"""Podman and docker-compose for the container tests: build, run, compose, always clean up."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
STANDINS = Path(__file__).with_name("standins")
OVERRIDE = Path(__file__).with_name("compose.test.yaml")
IMAGE = "localhost/weatherpipe:test"
# Test-only images of the servers compose.yaml names, built from Debian's packages (no Docker Hub).
STANDIN_IMAGES = {
    "mariadb": "localhost/wp-test-mariadb:latest",
    "nats": "localhost/wp-test-nats:latest",
    "postgres": "localhost/wp-test-postgres:latest",
}
# Variables compose.yaml reads: only the test's own values may reach it, not the caller's shell.
COMPOSE_VARIABLES = ("WEATHERPIPE_", "PUBSUB_EMULATOR_HOST", "API_", "COMPOSE_")


def missing_tools() -> str | None:
    for tool in ("podman", "docker-compose", "make"):
        if shutil.which(tool) is None:
            return f"{tool} is not installed (run .ci/containers)"
    return None


def run(*args: str, timeout: float = 120, env: dict[str, str] | None = None) -> str:
    """Run a command; its stdout, or an AssertionError carrying its stderr."""
    done = subprocess.run(
        args, capture_output=True, text=True, timeout=timeout, env=env, check=False, cwd=ROOT
    )
    if done.returncode != 0:
        raise AssertionError(f"{' '.join(args)} exited {done.returncode}:\n{done.stderr[-3000:]}")
    return done.stdout


def build_image() -> float:
    """`make image` (the command users run), tagged for the tests; seconds it took."""
    start = time.monotonic()
    run("make", "--no-print-directory", "image", f"IMAGE={IMAGE}", "ENGINE=podman", timeout=1200)
    return time.monotonic() - start


def build_standins() -> None:
    for name, tag in STANDIN_IMAGES.items():
        folder = STANDINS / name
        run(
            "podman", "build", "--format", "docker", "--network", "host", "-q", "-t", tag,
            "-f", str(folder / "Containerfile"), str(folder), timeout=900,
        )  # fmt: skip


def inspect(name: str, kind: str = "container") -> dict[str, object]:
    return dict(json.loads(run("podman", kind, "inspect", name))[0])


@contextmanager
def docker_api(folder: Path) -> Iterator[str]:
    """Podman's Docker-compatible API on a private socket, for docker-compose; stopped after."""
    socket = folder / "podman.sock"
    service = subprocess.Popen(
        ["podman", "system", "service", "--time=0", f"unix://{socket}"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 30
        while not socket.exists():
            if time.monotonic() > deadline or service.poll() is not None:
                raise AssertionError("podman system service did not open its socket in 30 s")
            time.sleep(0.1)
        yield f"unix://{socket}"
    finally:
        service.terminate()
        try:
            service.wait(timeout=15)
        except subprocess.TimeoutExpired:
            service.kill()
            service.wait()


class Compose:
    """docker-compose over compose.yaml plus the stand-ins override, in a project of its own."""

    def __init__(self, docker_host: str, env: dict[str, str]) -> None:
        self.project = f"wptest{uuid.uuid4().hex[:8]}"
        inherited = {k: v for k, v in os.environ.items() if not k.startswith(COMPOSE_VARIABLES)}
        self.env = {**inherited, "DOCKER_HOST": docker_host, "WEATHERPIPE_IMAGE": IMAGE, **env}

    def __call__(self, *args: str, timeout: float = 300) -> str:
        files = ["-f", str(ROOT / "compose.yaml"), "-f", str(OVERRIDE)]
        return run(
            "docker-compose", "-p", self.project, *files, *args, timeout=timeout, env=self.env
        )

    def container(self, service: str, index: int = 0) -> str:
        ids = sorted(self("ps", "-q", service).split())
        assert len(ids) > index, f"no container {index} for {service}: {ids}"
        return ids[index]

    def down(self) -> None:
        """Stop and remove everything, volumes included; never raises (it runs in finally)."""
        try:
            self("down", "--volumes", "--remove-orphans", "--timeout", "10", timeout=180)
        except (AssertionError, subprocess.TimeoutExpired) as exc:
            print(f"compose down failed: {exc}")
