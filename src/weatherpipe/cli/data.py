"""Commands about the stored data as a whole: prune (retention) and export."""

from __future__ import annotations

import asyncio
import contextlib
import sys
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, BinaryIO

import typer

from weatherpipe.cli.app import DatabaseUrl, app, configure
from weatherpipe.errors import ConfigError

if TYPE_CHECKING:
    from weatherpipe.retention import Pruner


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
    from weatherpipe.cli.progress import progress
    from weatherpipe.compose import make_pruner, open_repository

    settings = configure(database_url=database_url)
    repo = open_repository(settings, must_exist=True)
    try:
        if every is not None and not dry_run:
            asyncio.run(_prune_forever(make_pruner(settings, repo), every))
            return
        with progress("counting" if dry_run else "pruning", unit="rows") as bar:

            def on_batch(table: str, rows: int) -> None:
                bar.describe(f"{'counting' if dry_run else 'pruning'} {table}")
                bar.advance(rows)

            pruner = make_pruner(settings, repo, on_batch=on_batch)
            report = asyncio.run(pruner.prune(dry_run=dry_run))
    finally:
        repo.close()
    for line in report.lines():
        typer.echo(line)
    typer.echo(report.summary(), err=True)


async def _prune_forever(pruner: Pruner, every: float) -> None:
    from weatherpipe.lifecycle import stop_on_signals

    await pruner.run(stop_on_signals(), every)


@app.command()
def export(
    out: Annotated[Path, typer.Option("--output", "-o", help="File to write ('-': stdout).")],
    format_: Annotated[
        str, typer.Option("--format", help="csv or parquet (parquet needs the export extra).")
    ] = "csv",
    device_id: Annotated[
        str | None, typer.Option(help="Only this device (default: every device).")
    ] = None,
    start: Annotated[
        str | None, typer.Option(help="From this time, inclusive (RFC 3339; no offset: UTC).")
    ] = None,
    end: Annotated[str | None, typer.Option(help="Until this time, exclusive (RFC 3339).")] = None,
    database_url: DatabaseUrl = None,
) -> None:
    """Write stored readings as CSV or Parquet, in (device_id, ts) order, a chunk at a time
    (flat memory at any size); the same file as GET /api/v1/readings/export."""
    from weatherpipe import export as exporting
    from weatherpipe.cli.progress import progress
    from weatherpipe.compose import open_repository

    if format_ not in ("csv", "parquet"):
        raise ConfigError(f"export: --format must be csv or parquet (got {format_!r})")
    since, until = _utc("--start", start), _utc("--end", end)
    if since is not None and until is not None and since >= until:
        raise ConfigError("export: --start must be before --end")
    settings = configure(database_url=database_url)
    repo = open_repository(settings, must_exist=True)
    try:
        device = device_id.lower() if device_id else None
        if device is not None and device not in repo.device_ids():
            raise ConfigError(f"export: no device {device_id}")
        with progress(f"exporting {format_}", unit="rows") as bar:

            def counted() -> Iterator[list[tuple[Any, ...]]]:
                for chunk in repo.export_chunks(device, since, until):
                    bar.advance(len(chunk))
                    yield chunk

            pieces = exporting.encode(counted(), format_)  # type: ignore[arg-type]
            written = _write(pieces, out)
            rows = int(bar.completed)
    finally:
        repo.close()
    where = "stdout" if str(out) == "-" else str(out)
    typer.echo(f"exported {rows:,} readings to {where} ({written / 2**20:,.1f} MiB)", err=True)


def _utc(option: str, text: str | None) -> datetime | None:
    """An option's RFC 3339 time as aware UTC (a time without an offset is taken as UTC)."""
    if text is None:
        return None
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise ConfigError(f"export: {option} {text!r} is not an RFC 3339 time") from None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _write(pieces: Iterable[bytes], out: Path) -> int:
    """Write the pieces to `out` (stdout for '-'), as they come; the bytes written."""
    written = 0
    with contextlib.ExitStack() as stack:
        if str(out) == "-":
            sink: BinaryIO = sys.stdout.buffer
        else:
            sink = stack.enter_context(out.open("wb"))
        for piece in pieces:
            sink.write(piece)
            written += len(piece)
        sink.flush()
    return written
