"""The command line: parse, set up logging, call one library function."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
import sys
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any

import typer

from weatherpipe import __version__
from weatherpipe.config import Settings, load_settings
from weatherpipe.errors import ConfigError, WeatherpipeError

app = typer.Typer(
    help="weatherpipe: IoT temperature readings from sensors to SQL, with anomaly detection.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
db_app = typer.Typer(help="Database schema.", no_args_is_help=True)
bus_app = typer.Typer(help="Message bus topic and subscription.", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(bus_app, name="bus")
dead_app = typer.Typer(
    help="Messages that were not readings: list and replay.", no_args_is_help=True
)
keys_app = typer.Typer(help="Per-device signing keys.", no_args_is_help=True)
app.add_typer(dead_app, name="dead-letters")
app.add_typer(keys_app, name="keys")

# Options that override a setting; each one's variable is named in its help.
DatabaseUrl = Annotated[str | None, typer.Option(help="[env: WEATHERPIPE_DATABASE_URL]")]
BusUrl = Annotated[str | None, typer.Option(help="[env: WEATHERPIPE_BUS_URL]")]
Topic = Annotated[str | None, typer.Option(help="[env: WEATHERPIPE_TOPIC]")]
Subscription = Annotated[str | None, typer.Option(help="[env: WEATHERPIPE_SUBSCRIPTION]")]
Detector = Annotated[str | None, typer.Option(help="Detector name. [env: WEATHERPIPE_DETECTOR]")]
Port = Annotated[int | None, typer.Option(help="API port. [env: WEATHERPIPE_API_PORT]")]
Host = Annotated[str | None, typer.Option(help="API address. [env: WEATHERPIPE_API_HOST]")]
Devices = Annotated[int, typer.Option(min=1, max=100_000, help="How many simulated devices.")]
Rate = Annotated[float, typer.Option(min=0.001, max=100.0, help="Readings per second per device.")]
Seed = Annotated[int, typer.Option(help="Random seed of weather and anomalies.")]
AnomalyRate = Annotated[
    float, typer.Option(min=0.0, help="Injected anomalies per device per hour (0: none).")
]


def _settings(**overrides: Any) -> Settings:
    settings = load_settings(**overrides)
    _logging(settings)
    return settings


def _logging(settings: Settings) -> None:
    handler = logging.StreamHandler(sys.stderr)
    if settings.log_json:
        from weatherpipe.logjson import JsonFormatter

        # The command (sensors, ingest, ...) tags each record: stages often share one log.
        command = next((arg for arg in sys.argv[1:] if not arg.startswith("-")), None)
        handler.setFormatter(JsonFormatter(stage=command))
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logging.basicConfig(level=settings.log_level, handlers=[handler], force=True)
    logging.getLogger("alembic").setLevel(
        max(logging.WARNING, logging.getLevelName(settings.log_level))
    )


def _status_line(status: Any) -> None:
    line = (
        f"{status.readings_per_second:7.1f} readings/s | stored {status.stored:,} | "
        f"anomalies {status.anomalies:,} | dead letters {status.dead_letters:,}"
    )
    if sys.stderr.isatty():
        sys.stderr.write("\r" + line + "   ")
    else:
        sys.stderr.write(line + "\n")
    sys.stderr.flush()


@app.command()
def up(
    port: Port = None,
    host: Host = None,
    database_url: DatabaseUrl = None,
    bus_url: BusUrl = None,
    detector: Detector = None,
    devices: Devices = 3,
    rate: Rate = 1.0,
    seed: Seed = 0,
    anomaly_rate: AnomalyRate = 4.0,
    duration: Annotated[float | None, typer.Option(help="Stop after this many seconds.")] = None,
    processes: Annotated[
        bool,
        typer.Option(
            "--processes",
            help="Run each stage as a child process, restarted with backoff if it dies "
            "(needs nats://, mqtt:// or pubsub://).",
        ),
    ] = False,
) -> None:
    """Run sensors, ingest, detection and the API in one process (Ctrl-C stops it)."""
    from weatherpipe.runner import run_pipeline

    settings = _settings(
        api_port=port, api_host=host, database_url=database_url, bus_url=bus_url, detector=detector
    )
    if processes:
        _up_processes(settings, devices, rate, seed, anomaly_rate)
        return
    typer.echo(
        f"weatherpipe {__version__}: {devices} sensors → {settings.bus_url} → "
        f"{settings.database_url}",
        err=True,
    )
    typer.echo(
        f"API and dashboard on http://{settings.api_host}:{settings.api_port}/ (Ctrl-C to stop)",
        err=True,
    )
    asyncio.run(
        run_pipeline(
            settings,
            devices=devices,
            rate=rate,
            seed=seed,
            anomaly_rate=anomaly_rate,
            duration=duration,
            on_status=_status_line,
        )
    )
    typer.echo("\nstopped", err=True)


def _up_processes(
    settings: Settings, devices: int, rate: float, seed: int, anomaly_rate: float
) -> None:
    from weatherpipe.compose import fleet_names
    from weatherpipe.supervisor import check_bus, run_supervised

    check_bus(settings)
    typer.echo(
        f"weatherpipe {__version__}: sensors, ingest, detect and api as child processes over "
        f"{settings.bus_url}; API on http://{settings.api_host}:{settings.api_port}/ "
        "(Ctrl-C to stop)",
        err=True,
    )
    sensor_args = [
        f"--devices={devices}",
        f"--rate={rate}",
        f"--seed={seed}",
        f"--anomaly-rate={anomaly_rate}",
    ]
    asyncio.run(run_supervised(settings, sensor_args, names=fleet_names(devices, seed)))
    typer.echo("stopped", err=True)


@app.command()
def sensors(
    bus_url: BusUrl = None,
    topic: Topic = None,
    devices: Devices = 3,
    rate: Rate = 1.0,
    duration: Annotated[float | None, typer.Option(help="Stop after this many seconds.")] = None,
    seed: Seed = 0,
    anomaly_rate: AnomalyRate = 4.0,
    backfill: Annotated[
        str | None,
        typer.Option(
            help="Write this much past data (e.g. 6h, 30d) as fast as possible, then stop."
        ),
    ] = None,
    to_db: Annotated[
        bool,
        typer.Option(help="With --backfill: write straight to the database instead of the bus."),
    ] = False,
    truth_file: Annotated[
        Path | None,
        typer.Option(help="Append the injected anomalies (ground truth) here as JSON lines."),
    ] = None,
    database_url: DatabaseUrl = None,
) -> None:
    """Simulate temperature sensors publishing readings to the bus."""
    from weatherpipe.runner import SimulateOptions, run_backfill, run_sensors

    settings = _settings(bus_url=bus_url, topic=topic, database_url=database_url)
    options = SimulateOptions(
        devices=devices, rate=rate, seed=seed, anomaly_rate=anomaly_rate, truth_file=truth_file
    )
    if backfill:
        span = _parse_span(backfill)
        end = datetime.now(UTC).replace(microsecond=0)
        stats = asyncio.run(run_backfill(settings, options, end - span, end, to_db=to_db))
    else:
        stats = asyncio.run(run_sensors(settings, options, duration))
    typer.echo(
        f"published {stats.published:,} readings, spooled {stats.spooled:,}, "
        f"{stats.ticks:,} ticks of {devices} devices",
        err=True,
    )


def _parse_span(text: str) -> timedelta:
    units = {"s": 1, "m": 60, "h": 3600, "d": 86400}
    try:
        value, unit = float(text[:-1]), text[-1]
        return timedelta(seconds=value * units[unit])
    except (ValueError, KeyError):
        raise typer.BadParameter(f"{text!r}: use a number and s, m, h or d, e.g. 30d") from None


@app.command()
def ingest(
    database_url: DatabaseUrl = None,
    bus_url: BusUrl = None,
    topic: Topic = None,
    subscription: Subscription = None,
    batch_size: Annotated[
        int | None, typer.Option(help="Most readings per batch. [env: WEATHERPIPE_BATCH_SIZE]")
    ] = None,
    metrics_port: Annotated[
        int | None,
        typer.Option(min=1, max=65535, help="Serve Prometheus metrics on this port (at /metrics)."),
    ] = None,
) -> None:
    """Pull readings from the bus and store them (SIGTERM finishes the batch in hand)."""
    from weatherpipe.runner import run_ingest

    settings = _settings(
        database_url=database_url,
        bus_url=bus_url,
        topic=topic,
        subscription=subscription,
        batch_size=batch_size,
    )
    stats = asyncio.run(run_ingest(settings, metrics_port=metrics_port))
    typer.echo(
        f"stored {stats.stored:,}, duplicates {stats.duplicates:,}, dead letters {stats.dead:,}",
        err=True,
    )


@app.command()
def detect(database_url: DatabaseUrl = None, detector: Detector = None) -> None:
    """Flag anomalies in newly stored readings, continuously."""
    from weatherpipe.runner import run_detect

    asyncio.run(run_detect(_settings(database_url=database_url, detector=detector)))


@app.command()
def api(
    port: Port = None, host: Host = None, database_url: DatabaseUrl = None, bus_url: BusUrl = None
) -> None:
    """Serve the web API and dashboard."""
    from weatherpipe.runner import run_api

    run_api(_settings(api_port=port, api_host=host, database_url=database_url, bus_url=bus_url))


@app.command()
def query(
    name: Annotated[str, typer.Argument(help="devicedata, devicemax, daymax or deviceanomalies")],
    day: Annotated[int | None, typer.Option(min=1, max=31)] = None,
    month: Annotated[int | None, typer.Option(min=1, max=12)] = None,
    year: Annotated[int | None, typer.Option(min=1970, max=9999)] = None,
    minutes: Annotated[int, typer.Option(min=1, help="deviceanomalies look-back")] = 30,
    sql: Annotated[bool, typer.Option("--sql", help="Print the SQL script instead.")] = False,
    dialect: Annotated[
        str, typer.Option(help="With --sql: mysql (the mysql client) or postgresql (psql).")
    ] = "mysql",
    database_url: DatabaseUrl = None,
) -> None:
    """Run one of the four original analyses and print JSON lines."""
    from weatherpipe.compose import open_repository
    from weatherpipe.storage.analyses import ANALYSES

    if name not in ANALYSES:
        raise typer.BadParameter(f"unknown analysis {name!r}; known: {', '.join(ANALYSES)}")
    if sql:
        if dialect not in ("mysql", "postgresql"):
            raise typer.BadParameter("--dialect is mysql or postgresql")
        analysis = ANALYSES[name]
        pg = dialect == "postgresql"
        typer.echo(analysis.postgresql_script() if pg else analysis.mysql_script(), nl=False)
        return
    if name == "daymax" and (day is None or month is None):
        raise typer.BadParameter("daymax needs --day and --month")
    repo = open_repository(_settings(database_url=database_url))
    since = datetime.now(UTC) - timedelta(minutes=minutes)
    for row in repo.analysis(name, day=day, month=month, year=year, since=since):
        typer.echo(json.dumps(row, default=str))


@db_app.command("upgrade")
def db_upgrade(database_url: DatabaseUrl = None) -> None:
    """Create or migrate the schema to the latest version (safe to repeat)."""
    from weatherpipe.compose import open_repository

    open_repository(_settings(database_url=database_url), migrate=True).close()
    typer.echo("database schema is up to date", err=True)


@bus_app.command("setup")
def bus_setup(
    bus_url: BusUrl = None, topic: Topic = None, subscription: Subscription = None
) -> None:
    """Create the topic/stream and the subscription/consumer (safe to repeat)."""
    from weatherpipe.compose import open_bus

    settings = _settings(bus_url=bus_url, topic=topic, subscription=subscription)

    async def setup() -> None:
        async with open_bus(settings) as bus:
            await bus.setup()

    asyncio.run(setup())
    typer.echo(
        f"{settings.bus_url}: topic {settings.topic!r} and subscription "
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
) -> None:
    """Stored readings, consumer lag, last reading per device, dead letters, detector position."""
    from weatherpipe.compose import open_repository
    from weatherpipe.status import gather

    settings = _settings(
        database_url=database_url, bus_url=bus_url, topic=topic, subscription=subscription
    )
    repo = open_repository(settings)
    try:
        state = asyncio.run(gather(settings, repo))
    finally:
        repo.close()
    if as_json:
        typer.echo(json.dumps(dataclasses.asdict(state), default=str))
        return
    lag = f"{state.lag:,}" if state.lag is not None else f"unknown ({state.lag_note})"
    typer.echo(f"stored        {state.stored:,} readings, {state.anomalies:,} flagged anomalous")
    typer.echo(f"consumer lag  {lag} on {settings.bus_url} {settings.subscription!r}")
    typer.echo(
        f"dead letters  {state.dead_letters:,} ({state.dead_letters_pending:,} not replayed)"
    )
    typer.echo(f"devices       {len(state.devices)}")
    for d in state.devices:
        last = f"{d.last_ts:%Y-%m-%d %H:%M:%S}Z {d.last_temperature:.2f} °C" if d.last_ts else "-"
        typer.echo(f"  {d.device_id}  {d.name or '':14} {d.count:>10,}  last {last}")
    for p in state.detectors:
        typer.echo(
            f"detector      {p['detector']} {p['device_id']} at {p['last_ts']:%Y-%m-%d %H:%M:%S}Z"
        )


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

    repo = open_repository(_settings(database_url=database_url))
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
    settings = _settings(database_url=database_url, bus_url=bus_url, topic=topic)
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
    typer.echo(f"replayed {stats.replayed:,} dead letters to {settings.bus_url}{missing}", err=True)


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


@app.command()
def evaluate(
    data_dir: Annotated[
        Path, typer.Argument(exists=True, file_okay=False, help="CSV files in NAB's layout.")
    ],
    windows: Annotated[
        Path, typer.Option(exists=True, dir_okay=False, help="Anomaly windows JSON.")
    ],
    detector: Annotated[str, typer.Option(help="Detector name.")] = "default",
    out: Annotated[
        Path | None, typer.Option(help="Write each file's scores and flags here.")
    ] = None,
    per_file: Annotated[bool, typer.Option("--per-file", help="Print a per-file table.")] = False,
) -> None:
    """Score a detector on labeled series with the NAB rules and event-level F1."""
    from weatherpipe.detect.evaluate import evaluate_corpus, format_report

    report = evaluate_corpus(data_dir, windows, detector, out)
    typer.echo(format_report(report, per_file=per_file))


@app.command(
    context_settings={"allow_extra_args": True, "ignore_unknown_options": True},
    add_help_option=False,
)
def bench(ctx: typer.Context) -> None:
    """Run the benchmarks of the repository's benchmarks/ (a checkout only; --help for more)."""
    _benchmarks_main()(ctx.args)


def _benchmarks_main() -> Callable[[list[str]], None]:
    """`benchmarks.cli.main` from the checkout this package runs from (an editable install, or
    the repository root on sys.path); ConfigError when there is none, as after `pip install`."""
    checkout = Path(__file__).resolve().parents[2]
    if (checkout / "benchmarks" / "scenarios.py").is_file() and str(checkout) not in sys.path:
        sys.path.append(str(checkout))
    try:
        from benchmarks.cli import main
    except ImportError as exc:
        raise ConfigError(
            "bench: the benchmarks live in the repository's benchmarks/, not in the installed "
            "package; clone the repository and run `pip install -e '.[bench]'` there "
            f"({exc})"
        ) from None
    return main


@app.command()
def detectors() -> None:
    """List the anomaly detectors."""
    from weatherpipe.detect import DETECTORS

    for name, factory in DETECTORS.items():
        doc = (factory.__doc__ or "").strip().splitlines()
        typer.echo(f"{name:16} {doc[0] if doc else ''}")


@app.command()
def score(
    database_url: DatabaseUrl = None,
    detector: Detector = None,
) -> None:
    """Score this run's anomaly flags against the simulator's injected anomalies."""
    from weatherpipe.compose import open_repository
    from weatherpipe.detect.live import format_score, score_run

    settings = _settings(database_url=database_url)
    repo = open_repository(settings)
    try:
        typer.echo(format_score(score_run(repo, detector)))
    finally:
        repo.close()


@app.command()
def version() -> None:
    """Print the version."""
    typer.echo(__version__)


def main() -> None:
    """Console entry point: one line on stderr for our errors, exit status 2 for config."""
    try:
        app()
    except ConfigError as exc:
        typer.echo(f"weatherpipe: {exc}", err=True)
        raise SystemExit(2) from None
    except WeatherpipeError as exc:
        typer.echo(f"weatherpipe: {type(exc).__name__}: {exc}", err=True)
        raise SystemExit(1) from None
