"""Every stage as its own OS process over NATS and MariaDB, configured only by its environment."""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TypeVar

import httpx
import pytest
from sqlalchemy import create_engine, text

from tests.bus.conftest import free_port
from tests.conftest import require
from weatherpipe.bus import create_bus
from weatherpipe.sensors.profiles import DEFAULT_DEVICES

pytestmark = pytest.mark.slow
T = TypeVar("T")


class Stage:
    """A `weatherpipe` command running as a child process, stopped at the end of the test."""

    def __init__(self, args: list[str], env: dict[str, str], log: Path) -> None:
        self.log = log
        with log.open("w") as fh:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "weatherpipe", *args],
                env=env,
                stdout=fh,
                stderr=subprocess.STDOUT,
            )

    def stop(self, timeout: float = 15.0) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout=timeout)

    def output(self) -> str:
        return self.log.read_text()


@pytest.fixture
def stack_env(mariadb_url: str, tmp_path: Path) -> Iterator[dict[str, str]]:
    require("NATS", "127.0.0.1", 4222)
    name = f"e2e{uuid.uuid4().hex[:8]}"
    env = {
        **os.environ,
        "WEATHERPIPE_DATABASE_URL": mariadb_url,
        "WEATHERPIPE_BUS_URL": "nats://127.0.0.1:4222",
        "WEATHERPIPE_TOPIC": f"{name}_topic",
        "WEATHERPIPE_SUBSCRIPTION": f"{name}_sub",
        "WEATHERPIPE_SPOOL_PATH": str(tmp_path / "sensors.spool"),
        "WEATHERPIPE_API_PORT": str(free_port()),
    }
    yield env
    asyncio.run(_delete_stream(f"{name}_topic", f"{name}_sub"))


async def _delete_stream(topic: str, subscription: str) -> None:
    async with create_bus("nats://127.0.0.1:4222", topic, subscription) as bus:
        await bus.delete()  # type: ignore[attr-defined]


def poll(check: Callable[[], T], seconds: float, what: str) -> T:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        with contextlib.suppress(httpx.HTTPError):
            value = check()
            if value:
                return value
        time.sleep(0.2)
    raise AssertionError(what)


def stored_by(stage: Stage) -> int:
    match = re.search(r"stored ([\d,]+)", stage.output())
    assert match, stage.output()
    return int(match.group(1).replace(",", ""))


def test_each_stage_in_its_own_process(stack_env: dict[str, str], tmp_path: Path) -> None:
    for command in (["db", "upgrade"], ["bus", "setup"]):
        subprocess.run(
            [sys.executable, "-m", "weatherpipe", *command], env=stack_env, check=True, timeout=60
        )
    stages = {
        "ingest-1": Stage(["ingest", "--batch-size", "50"], stack_env, tmp_path / "ingest-1.log"),
        "ingest-2": Stage(["ingest", "--batch-size", "50"], stack_env, tmp_path / "ingest-2.log"),
        "detect": Stage(["detect"], stack_env, tmp_path / "detect.log"),
        "api": Stage(["api"], stack_env, tmp_path / "api.log"),
    }
    sensors = Stage(
        ["sensors", "--rate", "20", "--duration", "8"], stack_env, tmp_path / "sensors.log"
    )
    engine = create_engine(stack_env["WEATHERPIPE_DATABASE_URL"])
    base = f"http://127.0.0.1:{stack_env['WEATHERPIPE_API_PORT']}"
    try:
        assert sensors.process.wait(timeout=60) == 0, sensors.output()
        published = int(
            re.search(r"published ([\d,]+)", sensors.output()).group(1).replace(",", "")
        )  # type: ignore[union-attr]
        assert published >= 3 * 20 * 7

        def count() -> int:
            with engine.connect() as conn:
                return int(conn.execute(text("SELECT COUNT(*) FROM readings")).scalar_one())

        poll(lambda: count() == published, 60, f"stored never reached {published}")

        def scored() -> bool:
            with engine.connect() as conn:
                sql = "SELECT COUNT(*) FROM readings WHERE anomaly_score IS NULL"
                return conn.execute(text(sql)).scalar_one() == 0

        poll(scored, 30, "detection did not score every reading")
        counts = poll(lambda: httpx.get(f"{base}/api/v1/stats/counts").json(), 30, "no API")
        assert {r["device_id"] for r in counts} == {d.device_id for d in DEFAULT_DEVICES}
        assert sum(r["count"] for r in counts) == published
    finally:
        codes = {name: stage.stop() for name, stage in stages.items()}
        engine.dispose()
    assert codes == {name: 0 for name in stages}, {n: s.output()[-2000:] for n, s in stages.items()}
    shares = [stored_by(stages["ingest-1"]), stored_by(stages["ingest-2"])]
    assert sum(shares) == published and min(shares) > 0  # both processes took part
