"""The fault suite's tools: private servers to stop and start, stage processes, polling, counts."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import create_engine, text

from weatherpipe.bus.nats import NatsBus

T = TypeVar("T")
NATS_SERVER = "/usr/sbin/nats-server"
MARIADBD = "/usr/sbin/mariadbd"
MARIADB_INSTALL = "/usr/bin/mariadb-install-db"
# The time bounds this suite asserts (docs/reliability.md, "Time bounds"). Only STOP_SECONDS is
# a promise (SIGTERM: 8 s of grace, then SIGKILL); the others are generous bounds, many times
# the measured figures, so that a busy shared 2-core machine does not fail a correct pipeline.
# The suite's correctness checks are counts (stored once, acked, dead letters), never times.
STOP_SECONDS = 10.0
RESUME_SECONDS = 30.0  # database back -> ingest acking again (measured 1.7-2.1 s)
STALL_SECONDS = 30.0  # longest time without stored progress while draining (measured <= 0.6 s)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def port_open(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


def wait_for(check: Callable[[], T], seconds: float, what: str, every: float = 0.1) -> T:
    """Poll `check` until it returns something truthy; fail after `seconds` naming `what`."""
    deadline = time.monotonic() + seconds
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {seconds:.0f}s: {what}")
        time.sleep(every)


def stop_process(process: subprocess.Popen[bytes], grace: float = 15.0) -> None:
    """SIGTERM, then SIGKILL after `grace` seconds: nothing a test starts outlives it."""
    if process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=15)


class Stage:
    """One `python -m weatherpipe ARGS...` process; its stdout and stderr go to a log file."""

    def __init__(self, args: list[str], env: dict[str, str], log_path: Path) -> None:
        self.args = args
        self.log_path = log_path
        self._log = log_path.open("ab")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "weatherpipe", *args],
            env=env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            cwd=log_path.parent,
        )
        self.started = time.monotonic()

    @property
    def pid(self) -> int:
        return self.process.pid

    def running(self) -> bool:
        return self.process.poll() is None

    def kill(self) -> None:
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=15)

    def terminate(self, timeout: float = 30.0) -> float:
        """SIGTERM and wait; returns how long the stage took to exit."""
        sent = time.monotonic()
        self.process.send_signal(signal.SIGTERM)
        self.process.wait(timeout=timeout)
        return time.monotonic() - sent

    def log(self) -> str:
        self._log.flush()
        return self.log_path.read_text(encoding="utf-8", errors="replace")

    def close(self) -> None:
        stop_process(self.process)
        self._log.close()


@dataclass
class PrivateNats:
    """A nats-server of the test's own (JetStream on disk), to stop and start at will."""

    store: Path
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"nats://127.0.0.1:{self.port}"

    def start(self) -> float:
        """Start (again, same port and store); returns seconds until it accepts connections."""
        started = time.monotonic()
        log = (self.store.parent / "nats-server.log").open("ab")
        self.process = subprocess.Popen(
            [NATS_SERVER, "-a", "127.0.0.1", "-p", str(self.port), "-js", "-sd", str(self.store)],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        log.close()
        wait_for(lambda: port_open(self.port), 30, f"nats-server on {self.port}", every=0.02)
        return time.monotonic() - started

    def stop(self) -> None:
        if self.process is not None:
            stop_process(self.process)
            self.process = None


@dataclass
class PrivateMariaDB:
    """A mariadbd of the test's own, so stopping it disturbs nobody else's database."""

    root: Path
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"mysql+pymysql://root@127.0.0.1:{self.port}/weather"

    def install(self) -> None:
        subprocess.run(
            [
                MARIADB_INSTALL,
                "--no-defaults",
                f"--datadir={self.root / 'data'}",
                "--user=root",
                "--auth-root-authentication-method=normal",
                "--skip-test-db",
            ],
            check=True,
            capture_output=True,
            timeout=120,
        )

    def start(self) -> float:
        started = time.monotonic()
        self.process = subprocess.Popen(
            [
                MARIADBD,
                "--no-defaults",
                f"--datadir={self.root / 'data'}",
                f"--socket={self.root / 'sock'}",
                f"--port={self.port}",
                "--bind-address=127.0.0.1",
                "--user=root",
                f"--pid-file={self.root / 'pid'}",
                f"--log-error={self.root / 'error.log'}",
                "--innodb-buffer-pool-size=128M",
                "--skip-log-bin",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_for(lambda: port_open(self.port), 60, f"mariadbd on {self.port}", every=0.02)
        return time.monotonic() - started

    def stop(self) -> None:
        if self.process is not None:
            stop_process(self.process, grace=60)
            self.process = None

    def create_database(self) -> None:
        engine = create_engine(self.url.rsplit("/", 1)[0])
        with engine.begin() as conn:
            conn.execute(text("CREATE DATABASE IF NOT EXISTS weather"))
        engine.dispose()


def tool_missing(path: str) -> bool:
    return shutil.which(path) is None and not os.path.exists(path)


class Database:
    """Counting queries against the database a test fills."""

    def __init__(self, url: str) -> None:
        self.engine = create_engine(url, pool_pre_ping=True)

    def scalar(self, sql: str) -> int:
        with self.engine.connect() as conn:
            return int(conn.execute(text(sql)).scalar() or 0)

    def rows(self, sql: str) -> list[tuple[Any, ...]]:
        with self.engine.connect() as conn:
            return [tuple(r) for r in conn.execute(text(sql))]

    def stored(self) -> int:
        try:
            return self.scalar("SELECT COUNT(*) FROM readings")
        except Exception:  # the table appears once ingest has migrated the database
            return 0

    def assert_exactly_once(self, expected: int) -> None:
        """`expected` distinct readings, no duplicates, and rollups that count each once."""
        assert self.scalar("SELECT COUNT(*) FROM readings") == expected
        assert (
            self.scalar("SELECT COUNT(*) FROM (SELECT DISTINCT device_id, ts FROM readings) k")
            == expected
        )
        assert self.scalar("SELECT SUM(n) FROM readings_minute") == expected
        assert self.scalar("SELECT SUM(n) FROM readings_daily") == expected

    def seq_runs(self) -> dict[str, list[int]]:
        """Per device, the lengths of its runs of seq 1, 2, 3, ... in time order; raises if a
        run has a gap or a repeat (a lost or doubled reading)."""
        runs: dict[str, list[int]] = {}
        last: dict[str, int] = {}
        for device, seq in self.rows("SELECT device_id, seq FROM readings ORDER BY device_id, ts"):
            if seq == 1:
                runs.setdefault(device, []).append(1)
            else:
                assert seq == last.get(device, 0) + 1, (
                    f"{device}: seq {seq} after {last.get(device)}"
                )
                runs[device][-1] += 1
            last[device] = seq
        return runs

    def close(self) -> None:
        self.engine.dispose()


class Consumer:
    """The JetStream consumer ingest reads, seen from the outside."""

    def __init__(self, url: str, topic: str, subscription: str) -> None:
        self.bus = NatsBus(url, topic, subscription)

    def _info(self) -> Any:
        async def ask() -> Any:
            async with self.bus:
                js = self.bus._jetstream()
                return await js.consumer_info(self.bus.stream, self.bus.consumer)

        return asyncio.run(ask())

    def pending(self) -> tuple[int, int, int]:
        """(waiting, delivered but unacked, acked floor stream sequence)."""
        info = self._info()
        return int(info.num_pending), int(info.num_ack_pending), int(info.ack_floor.stream_seq)

    def deliveries(self) -> int:
        """Messages handed to consumers so far, redeliveries included."""
        return int(self._info().delivered.consumer_seq)

    def settled(self) -> bool:
        waiting, unacked, _ = self.pending()
        return waiting == 0 and unacked == 0

    def stream_messages(self) -> int:
        async def ask() -> int:
            async with self.bus:
                info = await self.bus._jetstream().stream_info(self.bus.stream)
                return int(info.state.messages)

        return asyncio.run(ask())

    def setup(self) -> None:
        async def run() -> None:
            async with self.bus:
                await self.bus.setup()

        asyncio.run(run())

    def delete(self) -> None:
        async def run() -> None:
            async with self.bus:
                await self.bus.delete()

        asyncio.run(run())

    def publish(self, items: list[tuple[bytes, dict[str, str] | None]]) -> float:
        """Publish and wait for the broker's acks; returns seconds taken."""

        async def run() -> float:
            async with self.bus:
                started = time.monotonic()
                await self.bus.publish_many(items)
                return time.monotonic() - started

        return asyncio.run(run())


class Report:
    """Measured numbers for docs/reliability.md, appended as JSON lines to
    $WEATHERPIPE_FAULT_REPORT when set (always printed, so `pytest -s` shows them)."""

    def __init__(self, test: str) -> None:
        self.test = test
        self.values: dict[str, Any] = {}

    def __setitem__(self, key: str, value: Any) -> None:
        self.values[key] = round(value, 2) if isinstance(value, float) else value

    def write(self) -> None:
        line = json.dumps({"test": self.test, **self.values})
        print(line)
        target = os.environ.get("WEATHERPIPE_FAULT_REPORT")
        if target:
            with open(target, "a", encoding="utf-8") as fh:
                fh.write(line + "\n")
