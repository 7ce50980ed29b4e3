"""Every start-up failure is one line naming what failed and where, and a non-zero exit."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from tests.bus.conftest import free_port
from tests.conftest import MARIADB_ROOT, require

PASSWORD = "Wrong-pw-3Jd8"
CLOSED = "127.0.0.1:1"  # nothing listens on port 1


def weatherpipe(
    *args: str, env: dict[str, str], cwd: Path, timeout: float = 90
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "weatherpipe", *args],
        env={**os.environ, "WEATHERPIPE_API_PORT": str(free_port()), **env},
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def one_line(result: subprocess.CompletedProcess[str]) -> str:
    """The single line a failed command printed (and nothing on stdout)."""
    assert result.returncode != 0, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert result.stdout == ""
    assert lines[0].startswith("weatherpipe: ")
    return lines[0]


@pytest.fixture
def wrong_password_url() -> Iterator[str]:
    """A real MariaDB user with a password, and a URL that gives the wrong one."""
    require("MariaDB", "127.0.0.1", 3306)
    name = f"wp_fail_{uuid.uuid4().hex[:8]}"
    admin = create_engine(MARIADB_ROOT)
    with admin.begin() as conn:
        for host in ("%", "localhost"):
            conn.execute(text(f"CREATE USER '{name}'@'{host}' IDENTIFIED BY 'the-right-one'"))
    try:
        yield f"mysql+pymysql://{name}:{PASSWORD}@127.0.0.1:3306/{name}"
    finally:
        with admin.begin() as conn:
            for host in ("%", "localhost"):
                conn.execute(text(f"DROP USER IF EXISTS '{name}'@'{host}'"))
        admin.dispose()


DATABASE_COMMANDS = [
    ["db", "upgrade"],
    ["status"],
    ["detect"],
    ["api"],
    ["up", "--duration", "30"],
    ["sensors", "--backfill", "1m", "--to-db"],
    ["query", "devicemax"],
]


@pytest.mark.parametrize("command", DATABASE_COMMANDS, ids=" ".join)
def test_a_wrong_database_password_is_one_line(
    command: list[str], wrong_password_url: str, tmp_path: Path
) -> None:
    result = weatherpipe(
        *command, env={"WEATHERPIPE_DATABASE_URL": wrong_password_url}, cwd=tmp_path
    )
    line = one_line(result)
    assert ":***@127.0.0.1:3306/" in line and "Access denied" in line
    assert PASSWORD not in line


@pytest.mark.parametrize("command", [*DATABASE_COMMANDS, ["ingest"]], ids=" ".join)
def test_an_unreachable_database_is_one_line(command: list[str], tmp_path: Path) -> None:
    env = {
        "WEATHERPIPE_DATABASE_URL": f"mysql+pymysql://weather:{PASSWORD}@{CLOSED}/weather",
        "WEATHERPIPE_BUS_URL": "nats://127.0.0.1:4222",  # ingest refuses memory:// first
    }
    line = one_line(weatherpipe(*command, env=env, cwd=tmp_path))
    assert f"weather:***@{CLOSED}/weather" in line and "Can't connect" in line


@pytest.mark.parametrize(
    "command",
    [["ingest"], ["bus", "setup"], ["up", "--duration", "30"], ["up", "--processes"]],
    ids=" ".join,
)
def test_an_unreachable_broker_is_one_line(command: list[str], tmp_path: Path) -> None:
    env = {
        "WEATHERPIPE_DATABASE_URL": f"sqlite:///{tmp_path}/weather.db",
        "WEATHERPIPE_BUS_URL": f"nats://user:{PASSWORD}@{CLOSED}",
    }
    line = one_line(weatherpipe(*command, env=env, cwd=tmp_path))
    assert f"nats://{CLOSED}" in line and "unreachable" in line
    assert PASSWORD not in line


@pytest.mark.parametrize(
    "command", [["api"], ["up", "--duration", "30"], ["up", "--processes"]], ids=" ".join
)
def test_a_taken_port_is_one_line(command: list[str], tmp_path: Path) -> None:
    require("NATS", "127.0.0.1", 4222)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        env = {
            "WEATHERPIPE_DATABASE_URL": f"sqlite:///{tmp_path}/weather.db",
            "WEATHERPIPE_API_PORT": str(port),
            "WEATHERPIPE_BUS_URL": "nats://127.0.0.1:4222"
            if "--processes" in command
            else "memory://",
        }
        line = one_line(weatherpipe(*command, env=env, cwd=tmp_path))
    assert line.startswith(f"weatherpipe: WEATHERPIPE_API_PORT: cannot listen on 127.0.0.1:{port}")


def test_debug_shows_the_traceback(tmp_path: Path) -> None:
    url = f"mysql+pymysql://weather:{PASSWORD}@{CLOSED}/weather"
    plain = weatherpipe("db", "upgrade", env={"WEATHERPIPE_DATABASE_URL": url}, cwd=tmp_path)
    assert "Traceback" not in plain.stderr
    for debug in (["--debug", "db", "upgrade"], ["db", "upgrade"]):
        env = {"WEATHERPIPE_DATABASE_URL": url}
        if "--debug" not in debug:
            env["WEATHERPIPE_DEBUG"] = "1"
        result = weatherpipe(*debug, env=env, cwd=tmp_path)
        assert result.returncode != 0
        assert "Traceback" in result.stderr and "StorageUnavailable" in result.stderr
