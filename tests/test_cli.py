"""The command line and its docs: every command has help, every setting a description,
and a bad value stops the program with one line naming the variable."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from typer.main import get_command
from typer.testing import CliRunner

from weatherpipe.cli import app
from weatherpipe.config import Settings

ROOT = Path(__file__).resolve().parents[1]


def commands() -> list[list[str]]:
    root = get_command(app)
    found = []
    for name, command in root.commands.items():  # type: ignore[attr-defined]
        subcommands = getattr(command, "commands", None)
        if subcommands:
            found += [[name, sub] for sub in subcommands]
        else:
            found.append([name])
    return found


@pytest.mark.parametrize("command", commands(), ids=" ".join)
def test_every_command_has_help(command: list[str]) -> None:
    result = CliRunner().invoke(app, [*command, "--help"])
    assert result.exit_code == 0
    assert len(result.output.strip()) > 40


@pytest.mark.parametrize("name", list(Settings.model_fields))
def test_every_setting_is_described_and_documented(name: str) -> None:
    assert Settings.model_fields[name].description
    readme = (ROOT / "README.md").read_text()
    documented = (
        f"WEATHERPIPE_{name.upper()}" in readme or f"_{name.upper().split('_', 1)[-1]}" in readme
    )
    assert documented or name in {"cors_origins", "device_keys", "spool_path"}


def run_cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "weatherpipe", *args],
        capture_output=True,
        text=True,
        env={"PATH": "/usr/bin:/bin", **(env or {})},
        timeout=60,
        check=False,
    )


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("WEATHERPIPE_BATCH_SIZE", "zero"),
        ("WEATHERPIPE_BATCH_SIZE", "0"),
        ("WEATHERPIPE_BUS_URL", "kafka://x"),
        ("WEATHERPIPE_DATABASE_URL", "oracle://x"),
        ("WEATHERPIPE_LOG_LEVEL", "LOUD"),
    ],
)
def test_a_bad_setting_stops_with_one_line_naming_the_variable(variable: str, value: str) -> None:
    result = run_cli("db", "upgrade", env={variable: value})
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"weatherpipe: {variable}:")


def test_query_prints_the_checked_in_sql_scripts() -> None:
    for name in ("devicedata", "devicemax", "daymax", "deviceanomalies"):
        result = CliRunner().invoke(app, ["query", name, "--sql"])
        assert result.output == (ROOT / "sql" / f"{name}.sql").read_text()
        result = CliRunner().invoke(app, ["query", name, "--sql", "--dialect", "postgresql"])
        assert result.output == (ROOT / "sql" / "postgresql" / f"{name}.sql").read_text()


def test_query_answers_from_the_database(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/w.db"
    assert CliRunner().invoke(app, ["db", "upgrade", "--database-url", url]).exit_code == 0
    result = CliRunner().invoke(app, ["query", "devicedata", "--database-url", url])
    assert result.exit_code == 0 and result.stdout == ""
    bad = CliRunner().invoke(app, ["query", "daymax", "--database-url", url])
    assert bad.exit_code != 0
