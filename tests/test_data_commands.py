"""`weatherpipe prune` and `weatherpipe export` as a user runs them, on a SQLite file."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from typer.testing import CliRunner

from weatherpipe.cli import app
from weatherpipe.storage.repository import Repository
from weatherpipe.testing import DEVICE_A, series

NOW = datetime.now(UTC).replace(microsecond=0)


def test_prune_prints_per_table_what_it_deleted(sqlite_repo: Repository, sqlite_url: str) -> None:
    sqlite_repo.store_batch(series([1.0, 2.0, 3.0], DEVICE_A, start=NOW - timedelta(days=31)))
    sqlite_repo.store_batch(series([4.0], DEVICE_A, start=NOW - timedelta(minutes=1)))
    env = {"WEATHERPIPE_DATABASE_URL": sqlite_url}
    dry = CliRunner().invoke(app, ["prune", "--dry-run"], env=env)
    assert dry.exit_code == 0, dry.output
    assert "readings         would delete            3" in dry.output
    done = CliRunner().invoke(app, ["prune"], env=env)
    assert done.exit_code == 0, done.output
    assert "readings         deleted            3" in done.output
    assert "dead_letters     deleted            0" in done.output
    assert "prune: deleted 3 rows" in done.output
    assert len(sqlite_repo.readings_page(DEVICE_A)) == 1
