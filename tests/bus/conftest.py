"""Bus fixtures: one factory parametrised over every backend, each test on fresh names."""

from __future__ import annotations

import asyncio
import getpass
import os
import shutil
import signal
import socket
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from tests.conftest import require
from weatherpipe.bus import Bus, create_bus
from weatherpipe.testing import in_ci, port_open

NATS_URL = os.environ.get("WEATHERPIPE_TEST_NATS_URL", "nats://127.0.0.1:4222")
# A short session expiry so the sessions tests leave behind vanish from the broker by themselves.
MQTT_URL = os.environ.get("WEATHERPIPE_TEST_MQTT_URL", "mqtt://127.0.0.1:1883?session_expiry=600")
EMULATOR = Path(
    os.environ.get(
        "WEATHERPIPE_TEST_PUBSUB_EMULATOR",
        "/usr/lib/google-cloud-sdk/platform/pubsub-emulator/bin/cloud-pubsub-emulator",
    )
)
EMULATOR_START_SECONDS = 90.0
BACKENDS = ["memory", "nats", "mqtt", "pubsub"]

BusFactory = Callable[[], Bus]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for_port(host: str, port: int, timeout: float, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + timeout
    while not port_open(host, port):
        if process.poll() is not None:
            raise RuntimeError(f"{process.args!r} exited with {process.returncode}")
        if time.monotonic() > deadline:
            raise TimeoutError(f"nothing listens on {host}:{port} after {timeout:.0f}s")
        time.sleep(0.1)


def require_server(name: str, url: str) -> None:
    """Skip loudly when a server is missing; under CI=true a missing server fails the run."""
    parts = urlsplit(url)
    require(name, parts.hostname or "127.0.0.1", parts.port or 0)


def debian_13() -> bool:
    """Whether this is Debian 13 (trixie), whose images cannot carry the Pub/Sub emulator."""
    try:
        release = Path("/etc/os-release").read_text()
    except OSError:
        return False
    return "ID=debian" in release and 'VERSION_ID="13"' in release


def stop_process_group(process: subprocess.Popen[bytes]) -> None:
    """Stop a server and every child it started (the emulator is a script around Java)."""
    if process.poll() is not None:
        return
    os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=15)


@pytest.fixture(scope="session")
def pubsub_emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Start the Pub/Sub emulator on a free port for the session; `host:port` for the clients."""
    if not EMULATOR.exists() or shutil.which("java") is None:
        reason = f"the Pub/Sub emulator is not installed at {EMULATOR}"
        if in_ci() and not debian_13():
            pytest.fail(f"{reason} (CI=true: only Debian 13 images, which lack it, may skip)")
        pytest.skip(
            f"SKIPPED LOUDLY: {reason}: Google's emulator comes with the Cloud SDK, which has no "
            "Debian 13 (trixie) package and no Java runtime it supports there"
        )
    port = free_port()
    log = (tmp_path_factory.mktemp("pubsub") / "emulator.log").open("wb")
    process = subprocess.Popen(
        [str(EMULATOR), "--host=127.0.0.1", f"--port={port}"],
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,  # its own process group, so stopping it stops Java too
    )
    try:
        wait_for_port("127.0.0.1", port, EMULATOR_START_SECONDS, process)
        yield f"127.0.0.1:{port}"
    finally:
        stop_process_group(process)
        log.close()


def backend_url(request: pytest.FixtureRequest, backend: str) -> str:
    if backend == "memory":
        return f"memory://test-{uuid.uuid4().hex[:8]}"
    if backend == "nats":
        require_server("NATS", NATS_URL)
        return NATS_URL
    if backend == "mqtt":
        require_server("Mosquitto", MQTT_URL)
        return MQTT_URL
    emulator: str = request.getfixturevalue("pubsub_emulator")
    request.getfixturevalue("monkeypatch").setenv("PUBSUB_EMULATOR_HOST", emulator)
    return "pubsub://weatherpipe-test"


async def _clean_up(bus: Bus) -> None:
    delete = getattr(bus, "delete", None)
    if delete is None:
        return  # memory dies with the test; MQTT sessions expire (MQTT_URL's session_expiry)
    async with bus:
        await delete()


@pytest.fixture(params=BACKENDS)
def bus_factory(request: pytest.FixtureRequest) -> Iterator[BusFactory]:
    """Make buses of one backend on this test's own fresh topic and subscription.

    Every bus it makes shares the names, so a second one is "another process" on the same
    subscription. The topic and subscription are set up once before the test.
    """
    url = backend_url(request, request.param)
    name = f"t{uuid.uuid4().hex[:10]}"

    def make() -> Bus:
        return create_bus(url, topic=f"{name}_topic", subscription=f"{name}_sub")

    async def set_up() -> None:
        async with make() as bus:
            await bus.setup()

    asyncio.run(set_up())
    try:
        yield make
    finally:
        asyncio.run(_clean_up(make()))


class PrivateServer:
    """A broker of our own on a free loopback port, restartable, stopped at the end."""

    def __init__(self, command: Callable[[int], list[str]], workdir: Path) -> None:
        self.command = command
        self.workdir = workdir
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        log = (self.workdir / "server.log").open("ab")
        self.process = subprocess.Popen(
            self.command(self.port), stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
        log.close()
        wait_for_port("127.0.0.1", self.port, 30.0, self.process)

    def stop(self) -> None:
        if self.process is not None:
            stop_process_group(self.process)
            self.process = None


def private_server(
    name: str, binary: str, command: Callable[[int], list[str]], workdir: Path
) -> Iterator[PrivateServer]:
    if shutil.which(binary) is None:
        reason = f"{name} ({binary}) is not installed: cannot start a private broker"
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail(reason)
        pytest.skip(f"SKIPPED LOUDLY: {reason}")
    server = PrivateServer(command, workdir)
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def private_nats(tmp_path: Path) -> Iterator[PrivateServer]:
    """nats-server with JetStream on its own store, for outage tests."""

    def command(port: int) -> list[str]:
        store = str(tmp_path / "jetstream")
        return ["nats-server", "-js", "-a", "127.0.0.1", "-p", str(port), "-sd", store]

    yield from private_server("NATS", "nats-server", command, tmp_path)


def mosquitto_fixture(tmp_path: Path, settings: str) -> Iterator[PrivateServer]:
    def command(port: int) -> list[str]:
        config = tmp_path / "mosquitto.conf"
        config.write_text(
            # `user`: started as root, mosquitto would switch to a user who cannot write here.
            f"listener {port} 127.0.0.1\nallow_anonymous true\nuser {getpass.getuser()}\n"
            f"persistence true\npersistence_location {tmp_path}/\n{settings}\n"
        )
        return ["mosquitto", "-c", str(config)]

    yield from private_server("Mosquitto", "mosquitto", command, tmp_path)


@pytest.fixture
def tuned_mosquitto(tmp_path: Path) -> Iterator[PrivateServer]:
    """Mosquitto with the settings docs/brokers.md asks a deployment for."""
    yield from mosquitto_fixture(
        tmp_path, "max_queued_messages 0\nmax_inflight_messages 1000\nmax_queued_bytes 0"
    )


@pytest.fixture
def default_mosquitto(tmp_path: Path) -> Iterator[PrivateServer]:
    """Mosquitto as installed: 1,000 queued messages per client, 20 in flight."""
    yield from mosquitto_fixture(tmp_path, "")
