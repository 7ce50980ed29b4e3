"""The CLI's live panel and progress bars: log lines scroll above them, whole, never into them."""

from __future__ import annotations

import io
import logging
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from rich.console import Console

from weatherpipe.cli.progress import ConsoleLogHandler, live_panel, logs_through, progress

# A control sequence: cursor movement, line erasure, colours, show/hide cursor.
CONTROL = re.compile(r"\x1b\[([0-9;?]*)([A-Za-z])|\r|\n|[^\x1b\r\n]+")


def terminal(buffer: io.StringIO) -> Console:
    return Console(file=buffer, force_terminal=True, width=100, color_system=None, highlight=False)


def screen_lines(raw: str) -> list[str]:
    """What a terminal (with endless scrollback) shows after `raw`: rows of text, with
    carriage returns, cursor-up and erase-line applied as a terminal applies them."""
    rows: list[str] = [""]
    row = col = 0
    for match in CONTROL.finditer(raw):
        token, (args, command) = match.group(0), match.group(1, 2)
        if token == "\n":
            row, col = row + 1, 0
            rows.extend([""] * (row + 1 - len(rows)))
        elif token == "\r":
            col = 0
        elif command == "A":
            row = max(0, row - int(args or 1))
        elif command == "K":
            rows[row] = ""
        elif command is None:
            line = rows[row].ljust(col)
            rows[row] = line[:col] + token + line[col + len(token) :]
            col += len(token)
    return [line.rstrip() for line in rows]


@pytest.fixture
def plain_logging() -> Iterator[logging.Logger]:
    """The root logger with one stderr StreamHandler and a known format, as the CLI sets it."""
    root = logging.getLogger()
    saved, level = root.handlers[:], root.level
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter("LOG %(levelname)s %(message)s"))
    root.handlers = [handler]
    root.setLevel(logging.INFO)
    try:
        yield logging.getLogger("weatherpipe.test")
    finally:
        root.handlers = saved
        root.setLevel(level)


def test_log_lines_scroll_above_the_live_panel_whole(plain_logging: logging.Logger) -> None:
    buffer = io.StringIO()
    with live_panel("stored 0 | anomalies 0", console=terminal(buffer)) as panel:
        for n in range(1, 6):
            plain_logging.info("batch %d committed", n)
            panel.update(f"stored {n * 100} | anomalies {n}")
    lines = screen_lines(buffer.getvalue())
    logged = [line for line in lines if "LOG" in line]
    # Each log line on a line of its own: nothing of the panel before or after it.
    assert logged == [f"LOG INFO batch {n} committed" for n in range(1, 6)]
    panel_lines = [line for line in lines if "stored" in line]
    # The panel is drawn once, below the last log line, in its final state.
    assert panel_lines == ["stored 500 | anomalies 5"]
    assert lines.index(panel_lines[0]) > lines.index("LOG INFO batch 5 committed")


def test_logging_is_restored_after_the_panel(plain_logging: logging.Logger) -> None:
    root = logging.getLogger()
    before = root.handlers[:]
    with live_panel("x", console=terminal(io.StringIO())):
        # pytest's capture handlers stay; the CLI's stderr handler is swapped for the console's.
        assert sum(isinstance(h, ConsoleLogHandler) for h in root.handlers) == 1
        assert not any(type(h) is logging.StreamHandler for h in root.handlers)
    assert root.handlers == before


def test_log_lines_keep_the_cli_formatter(plain_logging: logging.Logger) -> None:
    buffer = io.StringIO()
    console = Console(file=buffer, width=40, color_system=None)
    with logs_through(console):
        # Brackets would be rich markup; a long line must not be wrapped into two.
        plain_logging.warning("[bold]not markup[/bold] " + "x" * 60)
    assert buffer.getvalue() == "LOG WARNING [bold]not markup[/bold] " + "x" * 60 + "\n"


def test_progress_bar_shows_count_rate_and_eta_with_logs_above(
    plain_logging: logging.Logger,
) -> None:
    buffer = io.StringIO()
    with progress("pruning", total=1000, unit="rows", console=terminal(buffer)) as bar:
        for n in range(4):
            bar.advance(250)
            plain_logging.info("deleted batch %d", n)
    assert bar.completed == 1000
    lines = screen_lines(buffer.getvalue())
    assert [line for line in lines if "LOG" in line] == [
        f"LOG INFO deleted batch {n}" for n in range(4)
    ]
    final = [line for line in lines if line.startswith("pruning")][-1]
    assert "1000/1000" in final
    assert "rows/s" in final
    assert re.search(r"rows/s \d:\d\d:\d\d eta \d:\d\d:\d\d", final), final


def test_off_a_terminal_the_panel_prints_once_after_the_logs(
    plain_logging: logging.Logger,
) -> None:
    buffer = io.StringIO()
    console = Console(file=buffer, width=100, color_system=None)
    with live_panel("starting", console=console) as panel:
        for n in range(3):
            plain_logging.info("line %d", n)
            panel.update(f"state {n}")
    assert buffer.getvalue() == "LOG INFO line 0\nLOG INFO line 1\nLOG INFO line 2\nstate 2\n"


def test_a_bar_without_total_takes_one_later(plain_logging: logging.Logger) -> None:
    buffer = io.StringIO()
    with progress("exporting", unit="rows", console=terminal(buffer)) as bar:
        bar.advance(10)
        assert bar.total is None
        bar.total = 20
        bar.advance(10)
    assert [line for line in screen_lines(buffer.getvalue()) if "exporting" in line][-1].find(
        "20/20"
    ) > 0


def test_backfill_shows_a_progress_bar_that_reaches_its_total(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from weatherpipe.cli import app

    url = f"sqlite:///{tmp_path / 'weather.db'}"
    result = CliRunner().invoke(
        app,
        ["sensors", "--backfill", "10m", "--to-db", "--devices", "2", "--database-url", url],
    )
    assert result.exit_code == 0, result.output
    assert "wrote 1,200 readings of 2 devices" in result.output
    bar = [line for line in result.output.splitlines() if line.startswith("backfill")]
    assert bar and "1200/1200" in bar[-1] and "readings/s" in bar[-1]
