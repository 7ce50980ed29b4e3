"""Each small lie of issue 13, as the user meets it: a real command, its output, its exit status."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from tests.bus.conftest import free_port
from tests.conftest import require
from weatherpipe.cli import app
from weatherpipe.storage.repository import Repository
from weatherpipe.testing import series


def weatherpipe(
    *args: str, cwd: Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "weatherpipe", *args],
        env={**os.environ, **(env or {})},
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def one_line(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode != 0, result.stdout + result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and result.stdout == "", result.stdout + result.stderr
    return lines[0]


def test_a_standalone_api_is_ready_with_a_real_bus(tmp_path: Path) -> None:
    require("NATS", "127.0.0.1", 4222)
    name = f"ready{uuid.uuid4().hex[:8]}"
    port = free_port()
    env = {
        "WEATHERPIPE_DATABASE_URL": f"sqlite:///{tmp_path}/weather.db",
        "WEATHERPIPE_BUS_URL": "nats://127.0.0.1:4222",
        "WEATHERPIPE_TOPIC": name,
        "WEATHERPIPE_SUBSCRIPTION": name,
        "WEATHERPIPE_API_PORT": str(port),
    }
    assert weatherpipe("bus", "setup", cwd=tmp_path, env=env).returncode == 0
    api = subprocess.Popen(
        [sys.executable, "-m", "weatherpipe", "api"],
        env={**os.environ, **env},
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 30
        answer = None
        while answer is None or answer.status_code != 200:
            assert time.monotonic() < deadline, answer and answer.text
            assert api.poll() is None, "api exited"
            try:
                answer = httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=5)
            except httpx.TransportError:
                time.sleep(0.1)
        assert answer.json() == {"status": "ok", "checks": {"database": "ok", "bus": "ok"}}
    finally:
        api.send_signal(signal.SIGTERM)
        api.wait(timeout=30)
        script = (
            "import asyncio, sys\nfrom weatherpipe.bus import create_bus\n"
            "async def main():\n"
            "    async with create_bus('nats://127.0.0.1:4222', sys.argv[1]) as bus:\n"
            "        await bus.delete()\n"
            "asyncio.run(main())\n"
        )
        subprocess.run([sys.executable, "-c", script, name], timeout=30, check=False)


@pytest.mark.parametrize(
    "command", [["status"], ["query", "devicemax"], ["score"], ["dead-letters", "list"]]
)
def test_reading_commands_do_not_create_an_empty_database(
    command: list[str], tmp_path: Path
) -> None:
    env = {"WEATHERPIPE_DATABASE_URL": "sqlite:///weather.db"}
    line = one_line(weatherpipe(*command, cwd=tmp_path, env=env))
    assert f"no database at {tmp_path / 'weather.db'}" in line
    assert "weatherpipe db upgrade" in line
    assert not (tmp_path / "weather.db").exists()


@pytest.mark.parametrize(
    "command",
    [["sensors", "--backfill", "1h"], ["sensors", "--duration", "2"], ["bus", "setup"], ["ingest"]],
    ids=" ".join,
)
def test_standalone_stages_refuse_the_in_process_bus(command: list[str], tmp_path: Path) -> None:
    env = {"WEATHERPIPE_BUS_URL": "memory://", "WEATHERPIPE_DATABASE_URL": "sqlite:///w.db"}
    result = weatherpipe(*command, cwd=tmp_path, env=env)
    line = one_line(result)
    assert result.returncode == 2
    assert "memory:// only works inside `weatherpipe up`" in line


def test_a_backfill_straight_to_the_database_needs_no_bus(tmp_path: Path) -> None:
    env = {"WEATHERPIPE_BUS_URL": "memory://", "WEATHERPIPE_DATABASE_URL": "sqlite:///w.db"}
    result = weatherpipe("sensors", "--backfill", "1m", "--to-db", cwd=tmp_path, env=env)
    assert result.returncode == 0, result.stderr
    # Off a terminal the progress bar is printed once, when done, above the summary line.
    assert result.stderr.splitlines()[-1] == "wrote 180 readings of 3 devices"
    assert result.stderr.count("180/180") == 1
    assert Repository.from_url(f"sqlite:///{tmp_path}/w.db").totals()["stored"] == 180


def test_score_with_nothing_to_score_says_so(tmp_path: Path) -> None:
    env = {"WEATHERPIPE_DATABASE_URL": "sqlite:///w.db"}
    assert weatherpipe("db", "upgrade", cwd=tmp_path, env=env).returncode == 0
    line = one_line(weatherpipe("score", cwd=tmp_path, env=env))
    assert line.startswith("weatherpipe: nothing to score") and "F1" not in line


def test_evaluate_of_an_empty_folder_says_nothing_to_score(tmp_path: Path) -> None:
    (tmp_path / "data").mkdir()
    (tmp_path / "windows.json").write_text("{}")
    result = weatherpipe("evaluate", "data", "--windows", "windows.json", cwd=tmp_path)
    line = one_line(result)
    assert line == "weatherpipe: nothing to score: no CSV files under data"


def test_a_day_the_month_lacks_is_one_line_like_the_api(tmp_path: Path) -> None:
    line = one_line(weatherpipe("query", "daymax", "--day", "31", "--month", "2", cwd=tmp_path))
    assert line == "weatherpipe: day 31 does not exist in month 2"
    leap = weatherpipe(
        "query", "daymax", "--day", "29", "--month", "2", "--year", "2023", cwd=tmp_path
    )
    assert one_line(leap) == "weatherpipe: day 29 does not exist in month 2 2023"


def test_the_printed_script_carries_the_options_given() -> None:
    runner = CliRunner()
    daymax = runner.invoke(app, ["query", "daymax", "--sql", "--day", "29", "--month", "2"])
    assert "SET @day = 29;\nSET @month = 2;\nSET @year = NULL;" in daymax.output
    anomalies = runner.invoke(app, ["query", "deviceanomalies", "--sql", "--minutes", "5"])
    assert "SET @since = UTC_TIMESTAMP(3) - INTERVAL 5 MINUTE;" in anomalies.output
    assert "INTERVAL 30 MINUTE" not in anomalies.output


def test_an_option_the_analysis_cannot_use_is_refused(tmp_path: Path) -> None:
    line = one_line(weatherpipe("query", "devicemax", "--sql", "--minutes", "5", cwd=tmp_path))
    assert line == "weatherpipe: devicemax does not take --minutes"


def test_help_names_the_variables_behind_the_options() -> None:
    result = CliRunner().invoke(app, ["ingest", "--help"], terminal_width=200)
    for name in ("DATABASE_URL", "BUS_URL", "TOPIC", "SUBSCRIPTION", "BATCH_SIZE"):
        assert f"[env: WEATHERPIPE_{name}]" in result.output
    assert "WEATHERPIPE_DEBUG" in CliRunner().invoke(app, ["--help"]).output


def test_weatherpipe_runs_without_the_mysql_driver(tmp_path: Path) -> None:
    script = (
        "import sys\n"
        "sys.modules['pymysql'] = None  # as if the mysql extra were not installed\n"
        "from weatherpipe.cli import main\n"
        "main()\n"
    )
    env = {**os.environ, "WEATHERPIPE_DATABASE_URL": "sqlite:///w.db"}
    for args in (["db", "upgrade"], ["query", "devicemax"], ["status"]):
        result = subprocess.run(
            [sys.executable, "-c", script, *args],
            env=env,
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert result.returncode == 0, result.stderr


def test_a_plain_postgresql_url_works(postgresql_url: str, tmp_path: Path) -> None:
    # Once a clear "not supported" line; PostgreSQL is supported now, so postgresql:// works
    # (psycopg, the postgres extra), and a database that cannot be reached is one line.
    url = "postgresql://" + postgresql_url.split("://", 1)[1]
    env = {"WEATHERPIPE_DATABASE_URL": url}
    assert weatherpipe("db", "upgrade", cwd=tmp_path, env=env).returncode == 0
    result = weatherpipe("status", "--json", cwd=tmp_path, env=env)
    assert result.returncode == 0 and '"stored": 0' in result.stdout, result.stderr
    down = {"WEATHERPIPE_DATABASE_URL": "postgresql://postgres:pw@127.0.0.1:1/x"}
    assert "127.0.0.1:1" in one_line(weatherpipe("status", cwd=tmp_path, env=down))


def test_values_print_rounded(sqlite_repo: Repository) -> None:
    sqlite_repo.store_batch(series([0.1 + 0.2, 42.16 + 1e-12]))
    url = str(sqlite_repo.engine.url)
    result = CliRunner().invoke(app, ["query", "devicemax", "--database-url", url])
    assert result.exit_code == 0
    assert '"max_temperature": 42.16}' in result.output
