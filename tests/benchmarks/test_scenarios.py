"""Every `weatherpipe bench` scenario runs end to end on tiny sizes (figures are not checked:
timing asserts on a shared machine would only test the neighbours)."""

from __future__ import annotations

import json
import math
import uuid

import pytest
from benchmarks.base import BenchOptions, markdown_table
from benchmarks.scenarios import scenarios
from sqlalchemy import create_engine, text
from typer.testing import CliRunner

from tests.conftest import MARIADB_ROOT, require
from weatherpipe.cli import app

# Scratch databases of this test run carry their own tag (other sessions may be benchmarking).
TAG = f"t{uuid.uuid4().hex[:6]}"
TINY = BenchOptions(quick=True, repeats=1, backlog=300, devices=10, seconds=4.0, tag=TAG)


@pytest.fixture(autouse=True)
def _servers() -> None:
    require("MariaDB", "127.0.0.1", 3306)
    require("NATS", "127.0.0.1", 4222)


def bench_databases() -> set[str]:
    engine = create_engine(MARIADB_ROOT)
    with engine.connect() as conn:
        names = {row[0] for row in conn.execute(text(f"SHOW DATABASES LIKE 'wp_bench_{TAG}_%'"))}
    engine.dispose()
    return names


@pytest.mark.parametrize("name", list(scenarios()))
def test_each_scenario_runs_on_tiny_sizes_and_cleans_up(name: str) -> None:
    result = scenarios()[name](TINY)
    assert result.scenario == name
    assert result.value is not None and math.isfinite(result.value)
    assert all(math.isfinite(r) and r > 0 for r in result.ratios.values())
    assert name in markdown_table([result])
    assert bench_databases() == set(), "a scratch database was left behind"


def test_bench_command_lists_scenarios_and_prints_json() -> None:
    runner = CliRunner()
    listed = runner.invoke(app, ["bench", "--list"])
    assert listed.exit_code == 0
    assert "ingest-drain" in listed.output and "memory" in listed.output
    ran = runner.invoke(app, ["bench", "detect-db", "--quick", "--repeats", "1", "--json"])
    assert ran.exit_code == 0, ran.output
    [result] = json.loads(ran.stdout)
    assert result["scenario"] == "detect-db" and result["value"] > 0


def test_an_unknown_scenario_is_refused() -> None:
    result = CliRunner().invoke(app, ["bench", "warp-speed"])
    assert result.exit_code != 0
    assert "unknown scenario" in result.output
