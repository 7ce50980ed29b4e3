"""`weatherpipe bench` runs the repository's benchmarks, and says so when there are none."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from weatherpipe import cli


def test_bench_runs_the_checkouts_benchmarks() -> None:
    listed = CliRunner().invoke(cli.app, ["bench", "--list"])
    assert listed.exit_code == 0, listed.output
    assert "ingest-drain" in listed.output and "api" in listed.output


def test_bench_without_the_repository_says_so_in_one_line_with_status_2(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    # As after `pip install weatherpipe`: the package sits in site-packages, no checkout beside.
    installed = tmp_path / "lib" / "site-packages" / "weatherpipe" / "cli" / "tools.py"
    monkeypatch.setattr(cli.tools, "__file__", str(installed))
    monkeypatch.setattr(
        sys, "path", [p for p in sys.path if not (Path(p or ".") / "benchmarks").is_dir()]
    )
    for name in [m for m in sys.modules if m.split(".")[0] == "benchmarks"]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "argv", ["weatherpipe", "bench", "--list"])
    with pytest.raises(SystemExit) as stopped:
        cli.main()
    assert stopped.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "not in the installed package" in err
