"""Fault-suite fixtures: unique names on the shared NATS, private servers, stage processes."""

from __future__ import annotations

import contextlib
import os
import shutil
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.conftest import require
from weatherpipe.testing import in_ci

from .harness import (
    MARIADB_INSTALL,
    MARIADBD,
    NATS_SERVER,
    Consumer,
    PrivateMariaDB,
    PrivateNats,
    Report,
    Stage,
)

SHARED_NATS = "nats://127.0.0.1:4222"

StartStage = Callable[..., Stage]


def need_tool(path: str) -> None:
    if os.path.exists(path):
        return
    if in_ci():
        pytest.fail(f"{path} is missing (CI=true: the fault suite needs it)")
    pytest.skip(f"SKIPPED LOUDLY: {path} is not installed")


@pytest.fixture(params=["mariadb", "postgresql"])
def server_url(request: pytest.FixtureRequest) -> str:
    """A fresh database on each server weatherpipe runs on (MariaDB, PostgreSQL)."""
    return str(request.getfixturevalue(f"{request.param}_url"))


@pytest.fixture
def names() -> dict[str, str]:
    tag = uuid.uuid4().hex[:10]
    return {"topic": f"wp_fault_{tag}", "subscription": f"wp_fault_{tag}_sub"}


@pytest.fixture
def shared_nats(names: dict[str, str]) -> Iterator[Consumer]:
    """The shared NATS with this test's own stream and consumer, deleted afterwards; a 5 s
    ack_wait, so a killed process's messages come back quickly."""
    yield from _consumer(names, ack_wait=5)


def _consumer(names: dict[str, str], ack_wait: int) -> Iterator[Consumer]:
    require("NATS", "127.0.0.1", 4222)
    url = f"{SHARED_NATS}?ack_wait={ack_wait}"
    consumer = Consumer(url, names["topic"], names["subscription"])
    consumer.setup()
    yield consumer
    with contextlib.suppress(Exception):
        consumer.delete()


@pytest.fixture
def private_nats(tmp_path: Path) -> Iterator[PrivateNats]:
    need_tool(NATS_SERVER)
    server = PrivateNats(tmp_path / "nats-store")
    server.store.mkdir()
    server.start()
    yield server
    server.stop()


@pytest.fixture
def private_mariadb(tmp_path: Path) -> Iterator[PrivateMariaDB]:
    need_tool(MARIADBD)
    need_tool(MARIADB_INSTALL)
    server = PrivateMariaDB(tmp_path / "mariadb")
    server.root.mkdir()
    server.install()
    try:
        server.start()
        server.create_database()
        yield server
    finally:
        server.stop()
        shutil.rmtree(server.root, ignore_errors=True)


def stage_env(**settings: str) -> dict[str, str]:
    """The environment of a stage: ours without any WEATHERPIPE_* leaking in, plus `settings`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("WEATHERPIPE_")}
    env.update({f"WEATHERPIPE_{k.upper()}": v for k, v in settings.items()})
    return env


@pytest.fixture
def start_stage(tmp_path: Path) -> Iterator[StartStage]:
    """Start `weatherpipe ARGS` processes; every one is stopped when the test ends."""
    started: list[Stage] = []

    def start(*args: str, log: str, **settings: str) -> Stage:
        stage = Stage(list(args), stage_env(**settings), tmp_path / f"{log}.log")
        started.append(stage)
        return stage

    yield start
    for stage in started:
        stage.close()


@pytest.fixture
def report(request: pytest.FixtureRequest) -> Report:
    return Report(request.node.name)
