"""Commands about the stored data as a whole: prune (retention) and export."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Iterator
from typing import Annotated

import typer

from weatherpipe.cli.app import DatabaseUrl, app, configure


@app.command()
def prune(
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Count what would be deleted; delete nothing.")
    ] = False,
    every: Annotated[
        float | None,
        typer.Option(
            min=1.0,
            help="Keep running: a pass every this many seconds until Ctrl-C/SIGTERM "
            "(one per process; `weatherpipe up` prunes by itself every WEATHERPIPE_PRUNE_EVERY).",
        ),
    ] = None,
    database_url: DatabaseUrl = None,
) -> None:
    """Delete raw readings, minute rollups and dead letters older than their retention
    (WEATHERPIPE_RETENTION_DAYS, _ROLLUP_RETENTION_DAYS, _DEAD_LETTER_RETENTION_DAYS), in
    small batches; prints what it deleted per table. Daily rollups are kept."""
    from weatherpipe.compose import make_pruner, open_repository
    from weatherpipe.lifecycle import stop_on_signals

    settings = configure(database_url=database_url)
    repo = open_repository(settings, must_exist=True)
    try:
        if every is not None and not dry_run:
            pruner = make_pruner(settings, repo)
            asyncio.run(pruner.run(stop_on_signals(), every))
            return
        with _progress("pruning", "rows") as advance:
            pruner = make_pruner(settings, repo, on_batch=lambda _table, rows: advance(rows))
            report = asyncio.run(pruner.prune(dry_run=dry_run))
    finally:
        repo.close()
    for line in report.lines():
        typer.echo(line)
    typer.echo(report.summary(), err=True)


@contextlib.contextmanager
def _progress(description: str, unit: str) -> Iterator[Callable[[int], None]]:
    """Counts as work goes on; the command prints its own summary at the end."""
    yield lambda _count: None
