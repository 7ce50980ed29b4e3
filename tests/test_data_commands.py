"""`weatherpipe prune` and `weatherpipe export` as a user runs them, on a SQLite file."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

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


def test_export_writes_csv_and_parquet_files(
    sqlite_repo: Repository, sqlite_url: str, tmp_path: Path
) -> None:
    import pyarrow.parquet as pq

    start = datetime(2026, 11, 3, tzinfo=UTC)
    sqlite_repo.store_batch(series([float(i) for i in range(50)], DEVICE_A, start=start))
    env = {"WEATHERPIPE_DATABASE_URL": sqlite_url}
    out = tmp_path / "a.csv"
    args = ["export", "-o", str(out), "--device-id", DEVICE_A, "--start", "2026-11-03T00:00:10Z"]
    done = CliRunner().invoke(app, [*args, "--end", "2026-11-03T00:00:20+00:00"], env=env)
    assert done.exit_code == 0, done.output
    lines = out.read_text().splitlines()
    assert len(lines) == 11
    assert lines[1].startswith(f"{DEVICE_A},,2026-11-03T00:00:10.000Z,10.0,")  # no name yet
    assert "exported 10 readings" in done.output
    parquet = tmp_path / "a.parquet"
    done = CliRunner().invoke(app, ["export", "--format", "parquet", "-o", str(parquet)], env=env)
    assert done.exit_code == 0, done.output
    assert pq.read_table(parquet).column("temperature").to_pylist() == [float(i) for i in range(50)]


def test_export_refuses_bad_options_with_one_line(sqlite_repo: Repository, sqlite_url: str) -> None:
    env = {"WEATHERPIPE_DATABASE_URL": sqlite_url}
    for args, message in [
        (["--format", "xlsx"], "--format must be csv or parquet"),
        (["--start", "yesterday"], "not an RFC 3339 time"),
        (["--start", "2026-11-04", "--end", "2026-11-03"], "--start must be before --end"),
        (["--device-id", "nobody"], "no device nobody"),
    ]:
        result = CliRunner().invoke(app, ["export", "-o", "-", *args], env=env)
        assert result.exit_code != 0
        assert message in str(result.exception) + result.output
