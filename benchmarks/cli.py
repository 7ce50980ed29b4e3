"""`weatherpipe bench` (or `python -m benchmarks`): run scenarios and print their figures."""

from __future__ import annotations

import dataclasses
import json
import logging
import sys
from collections.abc import Sequence
from typing import Annotated

import typer

from benchmarks.base import BenchOptions, markdown_table
from benchmarks.scenarios import scenarios

app = typer.Typer(add_completion=False, pretty_exceptions_enable=False)


@app.command()
def bench(
    scenario: Annotated[
        str | None, typer.Argument(help="One scenario (default: all); see --list.")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of text.")] = False,
    quick: Annotated[bool, typer.Option(help="Small sizes: a smoke run, not the figures.")] = False,
    repeats: Annotated[int, typer.Option(min=1, help="Rounds per scenario (median).")] = 3,
    list_: Annotated[bool, typer.Option("--list", help="List the scenarios.")] = False,
    nats_url: Annotated[str, typer.Option(help="NATS server for the bus scenarios.")] = (
        "nats://127.0.0.1:4222"
    ),
    mariadb_url: Annotated[
        str, typer.Option(help="MariaDB server URL (no database: each run makes its own).")
    ] = "mysql+pymysql://root@127.0.0.1:3306",
    postgresql_url: Annotated[
        str, typer.Option(help="PostgreSQL server URL (no database: each run makes its own).")
    ] = "postgresql+psycopg://postgres@127.0.0.1:5432",
    database: Annotated[
        list[str] | None,
        typer.Option(help="api-load: sqlite, mariadb or postgresql (repeat; default all three)."),
    ] = None,
    seconds: Annotated[
        float | None, typer.Option(min=1, help="api-load: seconds of each wrk run.")
    ] = None,
    devices: Annotated[
        int | None, typer.Option(min=1, help="api-load: devices of the fleet data set.")
    ] = None,
) -> None:
    """Measure throughput and latency, each against a baseline from the same run."""
    known = scenarios()
    if list_:
        for name, function in known.items():
            summary = (function.__doc__ or "").strip().splitlines() or [""]
            typer.echo(f"{name:16} {summary[0]}")
        return
    if scenario is not None and scenario not in known:
        raise typer.BadParameter(f"unknown scenario {scenario!r}; known: {', '.join(known)}")
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr, force=True)
    options = BenchOptions(
        quick=quick,
        repeats=repeats,
        nats_url=nats_url,
        mariadb_url=mariadb_url,
        postgresql_url=postgresql_url,
        seconds=seconds,
        devices=devices,
    )
    if database:
        options = dataclasses.replace(options, databases=tuple(database))
    results = []
    for name in [scenario] if scenario else list(known):
        typer.echo(f"running {name} ...", err=True)
        result = known[name](options)
        results.append(result)
        if not as_json:
            typer.echo(markdown_table([result]).splitlines()[-1])
            if "markdown" in result.details:
                typer.echo("\n" + result.details["markdown"])
    if as_json:
        typer.echo(json.dumps([r.as_dict() for r in results], indent=2, default=str))
    else:
        typer.echo("\n" + markdown_table(results), nl=False)


def main(args: Sequence[str] | None = None, prog_name: str = "weatherpipe bench") -> None:
    app(args=list(args) if args is not None else None, prog_name=prog_name)
