"""WEATHERPIPE_MIGRATE=false: stages check the schema instead of upgrading it; `db upgrade`
still upgrades (the compose stack's setup job relies on both)."""

from __future__ import annotations

import subprocess
import sys

import pytest

from weatherpipe.compose import open_repository
from weatherpipe.config import load_settings
from weatherpipe.errors import StorageError
from weatherpipe.storage.engine import downgrade, upgrade


def test_a_stage_that_does_not_migrate_refuses_an_empty_database(database_url: str) -> None:
    settings = load_settings(database_url=database_url, migrate=False)
    with pytest.raises(StorageError, match=r"no schema.*weatherpipe db upgrade"):
        open_repository(settings)
    repo = open_repository(load_settings(database_url=database_url))  # migrate defaults to true
    repo.close()
    open_repository(settings).close()  # now current: accepted


def test_a_stage_that_does_not_migrate_refuses_an_old_schema(sqlite_url: str) -> None:
    repo = open_repository(load_settings(database_url=sqlite_url))
    downgrade(repo.engine, "base")
    with pytest.raises(StorageError, match="this weatherpipe needs"):
        open_repository(load_settings(database_url=sqlite_url, migrate=False))
    upgrade(repo.engine)
    repo.close()


def test_db_upgrade_migrates_even_with_migrate_off(sqlite_url: str) -> None:
    env = {"PATH": "/usr/bin:/bin", "WEATHERPIPE_MIGRATE": "false"}
    env["WEATHERPIPE_DATABASE_URL"] = sqlite_url
    status = [sys.executable, "-m", "weatherpipe", "status"]
    before = subprocess.run(status, env=env, capture_output=True, text=True, timeout=60)
    assert before.returncode in (1, 2) and "weatherpipe db upgrade" in before.stderr
    upgraded = subprocess.run(
        [sys.executable, "-m", "weatherpipe", "db", "upgrade"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert upgraded.returncode == 0, upgraded.stderr
    after = subprocess.run(status, env=env, capture_output=True, text=True, timeout=60)
    assert after.returncode == 0, after.stderr
