"""The four sql/*.sql scripts run unchanged through the mariadb client, their PostgreSQL twins
through psql, and agree with the API."""

from __future__ import annotations

import shutil
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy.engine import make_url

from weatherpipe.storage.engine import upgrade
from weatherpipe.storage.repository import Repository, Scored
from weatherpipe.testing import DEVICE_A, DEVICE_B, in_ci, series

SQL = Path(__file__).resolve().parents[2] / "sql"


def mariadb(url: str, script: Path) -> list[list[str]]:
    client = shutil.which("mariadb") or shutil.which("mysql")
    if client is None:
        reason = "no mariadb/mysql client on PATH (Debian: apt-get install mariadb-client)"
        if in_ci():
            pytest.fail(f"{reason}; CI=true: .ci/run installs it")
        pytest.skip(f"SKIPPED LOUDLY: {reason}")
    parsed = make_url(url)
    with script.open() as stdin:
        out = subprocess.run(
            [
                client,
                "-u",
                str(parsed.username),
                "-h",
                str(parsed.host),
                "-P",
                str(parsed.port),
                "--batch",
                "--skip-column-names",
                str(parsed.database),
            ],
            stdin=stdin,
            capture_output=True,
            text=True,
            check=True,
            timeout=30,
        ).stdout
    return [line.split("\t") for line in out.splitlines()]


@pytest.fixture
def filled(mariadb_url: str) -> Repository:
    repo = Repository.from_url(mariadb_url)
    upgrade(repo.engine)
    now = datetime.now(UTC).replace(microsecond=0)
    midnight = now.replace(hour=0, minute=0, second=0)
    start = max(now - timedelta(minutes=2), midnight)  # daymax.sql asks about today (UTC)
    repo.store_batch(series([10.0, 17.25, 12.0], DEVICE_A, start=start))
    repo.store_batch(series([30.0, 31.5], DEVICE_B, start=start))
    rows = repo.readings_after(DEVICE_A, None, 10)
    repo.save_detection("t", DEVICE_A, rows[-1][1], "{}", [Scored(rows[1][0], 0.9, True)])
    return repo


def test_each_script_shows_every_device(filled: Repository, mariadb_url: str) -> None:
    expected = {
        "devicedata.sql": {DEVICE_A: "3", DEVICE_B: "2"},
        "devicemax.sql": {DEVICE_A: "17.25", DEVICE_B: "31.5"},
        "daymax.sql": {DEVICE_A: "17.25", DEVICE_B: "31.5"},
        "deviceanomalies.sql": {DEVICE_A: "1", DEVICE_B: "0"},
    }
    for script, answer in expected.items():
        rows = mariadb(mariadb_url, SQL / script)
        assert {r[0]: r[1] for r in rows} == answer, script
    filled.close()


def psql(url: str, script: Path, *variables: str) -> list[list[str]]:
    client = shutil.which("psql")
    if client is None:
        pytest.skip("SKIPPED LOUDLY: no psql client on PATH")
    parsed = make_url(url)
    command = [client, "-h", str(parsed.host), "-p", str(parsed.port), "-U", str(parsed.username)]
    command += ["-d", str(parsed.database), "-X", "-q", "-A", "-t", "-F", "\t"]
    command += [f"-v{v}" for v in variables] + ["-v", "ON_ERROR_STOP=1", "-f", str(script)]
    out = subprocess.run(command, capture_output=True, text=True, check=True, timeout=30).stdout
    return [line.split("\t") for line in out.splitlines() if line]


def test_each_postgresql_script_shows_every_device(postgresql_url: str) -> None:
    repo = Repository.from_url(postgresql_url)
    upgrade(repo.engine)
    now = datetime.now(UTC).replace(microsecond=0)
    start = max(now - timedelta(minutes=2), now.replace(hour=0, minute=0, second=0))
    repo.store_batch(series([10.0, 17.25, 12.0], DEVICE_A, start=start))
    repo.store_batch(series([30.0, 31.5], DEVICE_B, start=start))
    rows = repo.readings_after(DEVICE_A, None, 10)
    repo.save_detection("t", DEVICE_A, rows[-1][1], b"", [Scored(rows[1][0], 0.9, True)])
    expected = {
        "devicedata.sql": {DEVICE_A: "3", DEVICE_B: "2"},
        "devicemax.sql": {DEVICE_A: "17.25", DEVICE_B: "31.5"},
        "daymax.sql": {DEVICE_A: "17.25", DEVICE_B: "31.5"},
        "deviceanomalies.sql": {DEVICE_A: "1", DEVICE_B: "0"},
    }
    for script, answer in expected.items():
        rows_out = psql(postgresql_url, SQL / "postgresql" / script)
        assert {r[0]: r[1] for r in rows_out} == answer, script
    other_day = (start + timedelta(days=3)).day
    assert psql(postgresql_url, SQL / "postgresql" / "daymax.sql", f"day={other_day}") == []
    year = f"year={start.year - 1}"
    assert psql(postgresql_url, SQL / "postgresql" / "daymax.sql", year) == []
    repo.close()
