"""Commands that operate a deployment: schema, bus, status, analyses, dead letters, keys."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

import typer

from weatherpipe.cli.app import (
    BusUrl,
    DatabaseUrl,
    Devices,
    Seed,
    Subscription,
    Topic,
    app,
    bus_app,
    configure,
    db_app,
    dead_app,
    devices_app,
    keys_app,
    require_shared_bus,
)
from weatherpipe.errors import ConfigError
from weatherpipe.redact import mask_url


@devices_app.command("sensitivity")
def devices_sensitivity(
    device_id: Annotated[str, typer.Argument(help="The device's id.")],
    value: Annotated[
        float | None,
        typer.Argument(help="Expected false alarms per day for this device (> 0)."),
    ] = None,
    clear: Annotated[
        bool, typer.Option("--clear", help="Drop the device's own value: use the global one.")
    ] = False,
    database_url: DatabaseUrl = None,
) -> None:
    """Set or clear one device's sensitivity; the detection job applies it on its next pass
    (that device's detector starts afresh and warms up again)."""
    from weatherpipe.runner import open_repository

    if clear == (value is not None):
        raise ConfigError("devices sensitivity: give either VALUE or --clear")
    if value is not None and not 0 < value < float("inf"):
        raise ConfigError(f"devices sensitivity: VALUE must be a number > 0 (got {value})")
    repo = open_repository(configure(database_url=database_url))
    try:
        if not repo.set_sensitivity(device_id.lower(), value):
            raise ConfigError(f"devices sensitivity: no device {device_id}")
    finally:
        repo.close()
    what = "the global setting" if value is None else f"{value:g} false alarms a day"
    typer.echo(f"{device_id.lower()}: sensitivity {what}", err=True)


@app.command()
def query(
    name: Annotated[str, typer.Argument(help="devicedata, devicemax, daymax or deviceanomalies")],
    day: Annotated[int | None, typer.Option(min=1, max=31, help="daymax: day of month")] = None,
    month: Annotated[int | None, typer.Option(min=1, max=12, help="daymax: month")] = None,
    year: Annotated[
        int | None, typer.Option(min=1970, max=9999, help="daymax: only this year")
    ] = None,
    minutes: Annotated[
        int | None, typer.Option(min=1, help="deviceanomalies look-back [default: 30]")
    ] = None,
    sql: Annotated[
        bool, typer.Option("--sql", help="Print the SQL script, with these options set.")
    ] = False,
    dialect: Annotated[
        str, typer.Option(help="With --sql: mysql (the mysql client) or postgresql (psql).")
    ] = "mysql",
    database_url: DatabaseUrl = None,
) -> None:
    """Run one of the four original analyses and print JSON lines (°C to 0.01)."""
    from weatherpipe.compose import open_repository
    from weatherpipe.query import check_options, script_values
    from weatherpipe.storage.analyses import ANALYSES

    options = {"day": day, "month": month, "year": year, "minutes": minutes}
    check_options(name, options, script=sql)
    if sql:
        if dialect not in ("mysql", "postgresql"):
            raise typer.BadParameter("--dialect is mysql or postgresql")
        analysis, values = ANALYSES[name], script_values(options, dialect)
        pg = dialect == "postgresql"
        script = analysis.postgresql_script(values) if pg else analysis.mysql_script(values)
        typer.echo(script, nl=False)
        return
    repo = open_repository(configure(database_url=database_url), must_exist=True)
    since = datetime.now(UTC) - timedelta(minutes=minutes or 30)
    try:
        rows = repo.analysis(name, day=day, month=month, year=year, since=since)
    finally:
        repo.close()
    for row in rows:
        typer.echo(json.dumps(rounded(row), default=str))


def rounded(row: dict[str, Any]) -> dict[str, Any]:
    """Temperatures to 0.01 °C, as every other view shows them (no 42.160000000000004)."""
    return {k: round(v, 2) if isinstance(v, float) else v for k, v in row.items()}


@db_app.command("upgrade")
def db_upgrade(database_url: DatabaseUrl = None) -> None:
    """Create or migrate the schema to the latest version (safe to repeat)."""
    from weatherpipe.compose import open_repository

    open_repository(configure(database_url=database_url), migrate=True).close()
    typer.echo("database schema is up to date", err=True)


@bus_app.command("setup")
def bus_setup(
    bus_url: BusUrl = None, topic: Topic = None, subscription: Subscription = None
) -> None:
    """Create the topic/stream and the subscription/consumer (safe to repeat)."""
    from weatherpipe.compose import open_bus

    settings = configure(bus_url=bus_url, topic=topic, subscription=subscription)
    require_shared_bus(settings, "bus setup")

    async def setup() -> None:
        async with open_bus(settings) as bus:
            await bus.setup()

    asyncio.run(setup())
    typer.echo(
        f"{mask_url(settings.bus_url)}: topic {settings.topic!r} and subscription "
        f"{settings.subscription!r} are ready",
        err=True,
    )


@app.command()
def status(
    database_url: DatabaseUrl = None,
    bus_url: BusUrl = None,
    topic: Topic = None,
    subscription: Subscription = None,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object.")] = False,
    top: Annotated[
        int, typer.Option(min=0, help="Show this many devices, the ones silent longest.")
    ] = 10,
    show_all: Annotated[bool, typer.Option("--all", help="Show every device.")] = False,
    watch: Annotated[
        float | None,
        typer.Option(min=0.5, help="Redraw every this many seconds until Ctrl-C (a live panel)."),
    ] = None,
) -> None:
    """Stored readings, consumer lag, dead letters, devices (counts by state, then the ones
    silent longest), detector positions."""
    from weatherpipe.compose import open_repository
    from weatherpipe.status import gather, report_lines

    settings = configure(
        database_url=database_url, bus_url=bus_url, topic=topic, subscription=subscription
    )
    where = f"{mask_url(settings.bus_url)} {settings.subscription!r}"
    shown = 10**9 if show_all else top
    repo = open_repository(settings, must_exist=True)
    try:
        if watch is not None:
            _watch_status(settings, repo, where, shown, watch)
            return
        state = asyncio.run(gather(settings, repo))
    finally:
        repo.close()
    if as_json:
        typer.echo(json.dumps(dataclasses.asdict(state), default=str))
        return
    for line in report_lines(state, where, shown):
        typer.echo(line)


def _watch_status(settings: Any, repo: Any, where: str, top: int, seconds: float) -> None:
    """`status --watch`: the report in a live panel, redrawn until Ctrl-C; logs scroll above."""
    from rich.text import Text

    from weatherpipe.cli.progress import live_panel
    from weatherpipe.status import gather, report_lines

    async def loop(panel: Any) -> None:
        while True:
            state = await gather(settings, repo)
            stamp = f"{datetime.now(UTC):%H:%M:%S}Z, every {seconds:g} s (Ctrl-C to stop)"
            lines = [*report_lines(state, where, top), stamp]
            # One screen line per line: a wrapped line would make the panel jump.
            panel.update(Text("\n".join(lines), no_wrap=True, overflow="ellipsis"))
            await asyncio.sleep(seconds)

    with contextlib.suppress(KeyboardInterrupt), live_panel("reading the status ...") as panel:
        asyncio.run(loop(panel))


@dead_app.command("list")
def dead_letters_list(
    limit: Annotated[int, typer.Option(min=1, help="Show at most this many.")] = 50,
    show_all: Annotated[
        bool, typer.Option("--all", help="Include dead letters already replayed.")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="JSON lines.")] = False,
    database_url: DatabaseUrl = None,
) -> None:
    """List dead letters: id, time, reason and a safe preview of the bytes."""
    from weatherpipe.compose import open_repository
    from weatherpipe.deadletters import listing

    repo = open_repository(configure(database_url=database_url), must_exist=True)
    try:
        rows = listing(repo, limit, pending_only=not show_all)
    finally:
        repo.close()
    for row in rows:
        if as_json:
            typer.echo(json.dumps(row, default=str))
            continue
        replayed = (
            f" [replayed {row['replayed_at']:%Y-%m-%d %H:%M:%S}Z]" if row["replayed_at"] else ""
        )
        typer.echo(
            f"{row['id']:>8}  {row['received_at']:%Y-%m-%d %H:%M:%S}Z  {row['reason']}{replayed}\n"
            f"          {row['bytes']:,} bytes: {row['preview']}"
        )
    if not rows:
        typer.echo("no dead letters" + ("" if show_all else " waiting"), err=True)


@dead_app.command("replay")
def dead_letters_replay(
    ids: Annotated[list[int] | None, typer.Argument(help="Dead letter ids (see `list`).")] = None,
    replay_all: Annotated[
        bool, typer.Option("--all", help="Replay every dead letter not replayed yet.")
    ] = False,
    database_url: DatabaseUrl = None,
    bus_url: BusUrl = None,
    topic: Topic = None,
) -> None:
    """Publish dead letters to the bus again (after a fix, e.g. a key added); mark them replayed."""
    from weatherpipe.compose import open_bus, open_repository
    from weatherpipe.deadletters import replay

    if bool(ids) == replay_all:
        raise typer.BadParameter("name dead letter ids, or use --all (not both)")
    settings = configure(database_url=database_url, bus_url=bus_url, topic=topic)
    if not open_bus(settings).crosses_processes:
        raise ConfigError(
            "WEATHERPIPE_BUS_URL: replay needs the bus that ingest reads (memory:// lives "
            "inside one process)"
        )
    repo = open_repository(settings)

    async def run() -> Any:
        async with open_bus(settings) as bus:
            return await replay(bus, repo, ids or None)

    try:
        stats = asyncio.run(run())
    finally:
        repo.close()
    missing = f"; {stats.missing} not found or already replayed" if stats.missing else ""
    typer.echo(
        f"replayed {stats.replayed:,} dead letters to {mask_url(settings.bus_url)}{missing}",
        err=True,
    )


@keys_app.command("new")
def keys_new(
    devices: Devices = 3,
    seed: Seed = 0,
) -> None:
    """Print a key file (`DEVICE_ID KEY`, hex) with fresh keys for the simulated fleet."""
    from weatherpipe.sensors.profiles import fleet
    from weatherpipe.signing import key_file_lines

    typer.echo("# weatherpipe device keys: DEVICE_ID KEY (hex HMAC-SHA256 key); keep secret")
    for line in key_file_lines(d.device_id for d in fleet(devices, seed)):
        typer.echo(line)
