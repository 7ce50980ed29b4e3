"""What long commands show while they run: progress bars with rate and ETA, and a live panel
that log lines scroll above (rich, which Typer installs).

Both draw on one rich Console (stderr by default, so stdout stays the command's answer) and
route the process's log records through that console while they are open: rich then prints
each log line above the live area and redraws the area below it, so a line never lands in the
middle of a bar or panel. Not on a terminal, nothing is redrawn: log lines go out as they come
and a bar or panel is printed once, when it closes.

    with progress("pruning readings", total=n, unit="rows") as bar:
        for batch in batches:
            bar.advance(len(batch))

    with live_panel() as panel:
        while running:
            panel.update(render_status())
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator

from rich.console import Console, RenderableType
from rich.live import Live
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    Task,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.text import Text

__all__ = [
    "Bar",
    "ConsoleLogHandler",
    "Panel",
    "live_panel",
    "logs_through",
    "progress",
    "stderr_console",
]


def stderr_console() -> Console:
    """The console long commands draw on: stderr, no markup or highlighting of our text."""
    return Console(stderr=True, highlight=False)


class ConsoleLogHandler(logging.Handler):
    """Prints log records through a rich Console, so they scroll above its live area.

    The text is the formatter's, printed as it is (no markup, no highlighting, no wrapping
    into columns), so a redacted line stays redacted and a JSON line stays one line.
    """

    def __init__(self, console: Console, level: int = logging.NOTSET) -> None:
        super().__init__(level)
        self.console = console

    def emit(self, record: logging.LogRecord) -> None:
        try:
            line = self.format(record)
            self.console.print(
                Text(line), markup=False, highlight=False, soft_wrap=True, crop=False
            )
        except Exception:  # a broken console must not take the command down with it
            self.handleError(record)


@contextlib.contextmanager
def logs_through(console: Console) -> Iterator[None]:
    """While open, the root logger's stream handlers (stderr, as the CLI sets it up) print
    through `console` instead, in their places, with their formatters and levels (the CLI's
    redaction stays in place); restored on exit. Other handlers (files, test capture) are left
    alone. With no stream handler, warnings go through `console` (as logging's last resort
    would go to stderr)."""
    root = logging.getLogger()
    swaps: list[tuple[logging.Handler | None, logging.Handler]] = []
    for handler in root.handlers[:]:
        if _writes_to_terminal_stream(handler):
            swaps.append((handler, _console_twin(console, handler)))
    if not swaps:
        swaps.append((None, ConsoleLogHandler(console, logging.WARNING)))
    for original, twin in swaps:
        _swap(root, original, twin)
    try:
        yield
    finally:
        for original, twin in swaps:
            _swap(root, twin, original)


def _console_twin(console: Console, old: logging.Handler) -> logging.Handler:
    twin = ConsoleLogHandler(console, old.level)
    if old.formatter is not None:
        twin.setFormatter(old.formatter)
    return twin


def _swap(logger: logging.Logger, old: logging.Handler | None, new: logging.Handler | None) -> None:
    """Put `new` where `old` is in the logger's handlers (appended / removed for None)."""
    handlers = logger.handlers[:]
    if old in handlers:
        at = handlers.index(old)
        handlers[at : at + 1] = [new] if new is not None else []
    elif new is not None:
        handlers.append(new)
    logger.handlers = handlers


def _writes_to_terminal_stream(handler: logging.Handler) -> bool:
    """A plain StreamHandler, as the CLI's setup_logging makes (file handlers and pytest's
    capture are subclasses and stay)."""
    return type(handler) is logging.StreamHandler


@contextlib.contextmanager
def _ends_with_newline(console: Console) -> Iterator[None]:
    """Off a terminal, rich prints a live area's last state without a newline after it."""
    try:
        yield
    finally:
        if not console.is_terminal:
            console.line()


class RateColumn(ProgressColumn):
    """Completed units per second, e.g. `12,345 rows/s` (rich's speed, in the task's unit)."""

    def render(self, task: Task) -> Text:
        speed = task.finished_speed or task.speed
        unit = task.fields.get("unit", "items")
        if speed is None:
            return Text(f"- {unit}/s", style="progress.data.speed")
        return Text(f"{speed:,.0f} {unit}/s", style="progress.data.speed")


class Bar:
    """One progress bar: `advance` by what was done; `total` may be set once it is known."""

    def __init__(self, progress: Progress, task: TaskID) -> None:
        self._progress = progress
        self._task = task

    def advance(self, amount: float = 1) -> None:
        self._progress.advance(self._task, amount)

    @property
    def completed(self) -> float:
        return self._progress.tasks[self._task].completed

    @property
    def total(self) -> float | None:
        return self._progress.tasks[self._task].total

    @total.setter
    def total(self, value: float | None) -> None:
        self._progress.update(self._task, total=value)

    def describe(self, description: str) -> None:
        self._progress.update(self._task, description=description)


@contextlib.contextmanager
def progress(
    description: str,
    total: float | None = None,
    unit: str = "items",
    console: Console | None = None,
) -> Iterator[Bar]:
    """A progress bar with count, rate and ETA (a pulsing bar while `total` is None); log
    lines scroll above it. Left on screen when done, with the final count and elapsed time."""
    console = console or stderr_console()
    # Narrow enough for 80 columns: `backfill ━━━ 1200/86400 41,302 readings/s 0:00:01 eta 0:00:02`.
    columns = (
        TextColumn("{task.description}"),
        BarColumn(bar_width=20),
        MofNCompleteColumn(),
        RateColumn(),
        TimeElapsedColumn(),
        TextColumn("eta"),
        TimeRemainingColumn(),
    )
    with (
        _ends_with_newline(console),
        Progress(*columns, console=console, refresh_per_second=4) as bar_set,
        logs_through(console),
    ):
        task = bar_set.add_task(description, total=total, unit=unit)
        try:
            yield Bar(bar_set, task)
        except BaseException:
            # A command that fails says so in one line: no half-done bar is left above it.
            bar_set.update(task, visible=False)
            raise


class Panel:
    """The live area of `live_panel`: `update` replaces what it shows."""

    def __init__(self, live: Live) -> None:
        self._live = live

    def update(self, renderable: RenderableType) -> None:
        self._live.update(renderable, refresh=True)

    @property
    def console(self) -> Console:
        return self._live.console


@contextlib.contextmanager
def live_panel(
    initial: RenderableType = "", console: Console | None = None, transient: bool = False
) -> Iterator[Panel]:
    """A live area at the bottom of the terminal that log lines scroll above. With
    `transient`, it is erased on exit; otherwise its last state stays on screen."""
    console = console or stderr_console()
    live = Live(
        initial,
        console=console,
        refresh_per_second=4,
        transient=transient,
        redirect_stdout=False,
        redirect_stderr=False,
    )
    ending = _ends_with_newline(console) if not transient else contextlib.nullcontext()
    with ending, live, logs_through(console):
        yield Panel(live)
