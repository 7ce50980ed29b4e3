"""No configured password or token appears in anything a command prints or logs."""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from urllib.parse import quote

import httpx
import pytest
from sqlalchemy import create_engine, text

from tests.bus.conftest import free_port
from tests.conftest import MARIADB_ROOT, require
from weatherpipe.config import load_settings
from weatherpipe.logjson import JsonFormatter
from weatherpipe.redact import MASK, RedactingFormatter, Redactor, mask_url, secrets_of

DB_PASSWORD = "Db-pw-7Qx9Zk"
BUS_PASSWORD = "Bus-pw-4Hm2Wv"
TOKEN = "Api-token-8Ns5Tq"
SECRETS = (DB_PASSWORD, BUS_PASSWORD, TOKEN)


def test_a_url_shows_everything_but_its_password() -> None:
    assert mask_url("mysql+pymysql://weather:s3cr%40t@db:3306/weather") == (
        "mysql+pymysql://weather:***@db:3306/weather"
    )
    assert mask_url("nats://127.0.0.1:4222") == "nats://127.0.0.1:4222"
    line = "lost nats://u:pw1234@10.0.0.1:4222 and mysql://root@h/x"
    assert mask_url(line) == "lost nats://u:***@10.0.0.1:4222 and mysql://root@h/x"


def test_settings_hold_secrets_in_types_that_do_not_print_them() -> None:
    settings = load_settings(
        database_url=f"mysql+pymysql://weather:{DB_PASSWORD}@db/weather",
        bus_url=f"nats://u:{BUS_PASSWORD}@broker:4222",
        api_token=TOKEN,
    )
    shown = repr(settings) + str(settings)
    assert not any(secret in shown for secret in SECRETS)
    assert settings.database_url.endswith("@db/weather")  # still the URL to connect with
    assert sorted(secrets_of(settings)) == sorted(SECRETS)


def test_the_log_formatter_redacts_every_library_line_and_traceback() -> None:
    formatter = RedactingFormatter(logging.Formatter("%(message)s"), Redactor([TOKEN]))
    try:
        raise RuntimeError(f"cannot reach nats://u:{BUS_PASSWORD}@h:4222 with {TOKEN}")
    except RuntimeError:
        record = logging.makeLogRecord(
            {"msg": "GET /?token=%s", "args": (TOKEN,), "exc_info": sys.exc_info()}
        )
    line = formatter.format(record)
    assert MASK in line and not any(secret in line for secret in SECRETS)


def test_a_password_that_is_also_a_word_masks_only_itself() -> None:
    redact = Redactor(["weather"])
    line = redact("pip install 'weatherpipe[mysql]' as weather:weather@db; token=weather.")
    assert line == f"pip install 'weatherpipe[mysql]' as {MASK}:{MASK}@db; token={MASK}."


def test_a_secret_with_quotes_and_backslashes_is_masked_in_json_lines_and_urls() -> None:
    secret = 'pa"ss\\word%/x'
    formatter = RedactingFormatter(JsonFormatter(), Redactor([secret]))
    record = logging.makeLogRecord({"msg": "login with %s", "args": (secret,)})
    line = formatter.format(record)
    assert MASK in line and json.loads(line)["message"] == f"login with {MASK}"
    in_url = Redactor([secret])(f"GET /api?token={quote(secret, safe='')} 401")
    assert in_url == f"GET /api?token={MASK} 401"


@pytest.fixture
def secret_env(tmp_path: Path) -> Iterator[dict[str, str]]:
    """A MariaDB user with a password, NATS with credentials, and an API token."""
    require("MariaDB", "127.0.0.1", 3306)
    require("NATS", "127.0.0.1", 4222)
    name = f"wp_sec_{uuid.uuid4().hex[:8]}"
    admin = create_engine(MARIADB_ROOT)
    with admin.begin() as conn:
        conn.execute(text(f"CREATE DATABASE {name}"))
        for host in ("%", "localhost"):
            conn.execute(text(f"CREATE USER '{name}'@'{host}' IDENTIFIED BY '{DB_PASSWORD}'"))
            conn.execute(text(f"GRANT ALL ON {name}.* TO '{name}'@'{host}'"))
    env = {
        **os.environ,
        "WEATHERPIPE_DATABASE_URL": f"mysql+pymysql://{name}:{DB_PASSWORD}@127.0.0.1:3306/{name}",
        "WEATHERPIPE_BUS_URL": f"nats://{name}:{BUS_PASSWORD}@127.0.0.1:4222",
        "WEATHERPIPE_TOPIC": name,
        "WEATHERPIPE_SUBSCRIPTION": name,
        "WEATHERPIPE_API_TOKEN": TOKEN,
        "WEATHERPIPE_API_PORT": str(free_port()),
        "WEATHERPIPE_LOG_LEVEL": "DEBUG",
        "WEATHERPIPE_SPOOL_PATH": str(tmp_path / "spool"),
    }
    try:
        yield env
    finally:
        with admin.begin() as conn:
            conn.execute(text(f"DROP DATABASE IF EXISTS {name}"))
            for host in ("%", "localhost"):
                conn.execute(text(f"DROP USER IF EXISTS '{name}'@'{host}'"))
        admin.dispose()
        _delete_stream(env)


def _delete_stream(env: dict[str, str]) -> None:
    script = (
        "import asyncio, os\n"
        "from weatherpipe.bus import create_bus\n"
        "async def main():\n"
        "    bus = create_bus(os.environ['WEATHERPIPE_BUS_URL'], os.environ['WEATHERPIPE_TOPIC'])\n"
        "    async with bus:\n"
        "        await bus.delete()\n"
        "asyncio.run(main())\n"
    )
    subprocess.run([sys.executable, "-c", script], env=env, timeout=30, check=False)


def run(env: dict[str, str], *args: str, status: int = 0) -> str:
    result = subprocess.run(
        [sys.executable, "-m", "weatherpipe", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == status, result.stderr
    return result.stdout + result.stderr


def run_until(
    env: dict[str, str], args: list[str], log: Path, done: Callable[[], bool], seconds: float = 60
) -> str:
    """Start a long-running command, poll `done` (with a deadline), SIGTERM it; its output."""
    with log.open("w") as fh:
        process = subprocess.Popen(
            [sys.executable, "-m", "weatherpipe", *args], env=env, stdout=fh, stderr=fh
        )
    try:
        deadline = time.monotonic() + seconds
        while not done():
            assert process.poll() is None, log.read_text()
            assert time.monotonic() < deadline, f"{args} not done in {seconds}s: {log.read_text()}"
            time.sleep(0.1)
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    return log.read_text()


def stored(env: dict[str, str]) -> int:
    engine = create_engine(env["WEATHERPIPE_DATABASE_URL"])
    try:
        with engine.connect() as conn:
            return int(conn.execute(text("SELECT COUNT(*) FROM readings")).scalar_one())
    finally:
        engine.dispose()


def assert_no_secret(output: str) -> None:
    for secret in SECRETS:
        assert secret not in output, f"{secret!r} printed in:\n{output}"


@pytest.mark.slow
def test_no_command_prints_a_configured_password_or_token(
    secret_env: dict[str, str], tmp_path: Path
) -> None:
    env = secret_env
    outputs = [
        run(env, "db", "upgrade"),
        run(env, "bus", "setup"),
        run(env, "sensors", "--duration", "2"),
        run(env, "status"),
        run(env, "status", "--json"),
        run(env, "query", "devicemax"),
        run(env, "dead-letters", "list"),
        run(env, "dead-letters", "replay", "--all"),
        run(env, "score", status=1),  # nothing to score yet: one line, still no secret
        run_until(env, ["ingest"], tmp_path / "ingest.log", lambda: stored(env) == 6),
    ]
    detect_log = tmp_path / "detect.log"
    outputs.append(
        run_until(env, ["detect"], detect_log, lambda: "resumes" in detect_log.read_text())
    )
    port = env["WEATHERPIPE_API_PORT"]
    api = subprocess.Popen(
        [sys.executable, "-m", "weatherpipe", "api"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        site = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(f"{site}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline and api.poll() is None, "api did not come up"
            time.sleep(0.1)
        assert httpx.get(f"{site}/api/v1/devices", headers={"Authorization": f"Bearer {TOKEN}"})
        assert httpx.post(f"{site}/login", data={"token": TOKEN}).status_code == 303
        assert httpx.get(f"{site}/readyz", headers={"Authorization": f"Bearer {TOKEN}"})
    finally:
        api.send_signal(signal.SIGTERM)
        rest, _ = api.communicate(timeout=30)
    outputs.append(rest)
    assert "GET /api/v1/devices" in rest  # the access log was on, and is clean
    up_env = {**env, "WEATHERPIPE_API_PORT": str(free_port())}
    outputs.append(run(up_env, "up", "--duration", "3"))
    # Every stage as a child process, each logging at DEBUG with the secrets in its environment.
    children_env = {**env, "WEATHERPIPE_API_PORT": str(free_port())}
    ready = f"http://127.0.0.1:{children_env['WEATHERPIPE_API_PORT']}/healthz"

    def api_up() -> bool:
        try:
            return httpx.get(ready, timeout=1).status_code == 200
        except httpx.TransportError:
            return False

    outputs.append(run_until(children_env, ["up", "--processes"], tmp_path / "up.log", api_up))
    assert "started api" in outputs[-1]
    for output in outputs:
        assert_no_secret(output)


def test_a_failure_line_masks_the_password(tmp_path: Path) -> None:
    require("MariaDB", "127.0.0.1", 3306)
    env = {
        **os.environ,
        "WEATHERPIPE_DATABASE_URL": f"mysql+pymysql://root:{DB_PASSWORD}@127.0.0.1:3306/x",
        "WEATHERPIPE_API_TOKEN": TOKEN,
    }
    result = subprocess.run(
        [sys.executable, "-m", "weatherpipe", "status"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        cwd=tmp_path,
    )
    assert result.returncode == 1
    assert "root:***@127.0.0.1:3306" in result.stderr
    assert_no_secret(result.stdout + result.stderr)
