"""The command line: parse, set up logging, call one library function."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
import os
import sys
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any

import typer

from weatherpipe import __version__
from weatherpipe.config import Settings, load_settings
from weatherpipe.errors import ConfigError, WeatherpipeError
from weatherpipe.redact import RedactingFormatter, Redactor, mask_url, secrets_of, url_password

app = typer.Typer(
    help="weatherpipe: IoT temperature readings from sensors to SQL, with anomaly detection.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    # Plain help: rich markup would take "[env: WEATHERPIPE_...]" for a style tag and drop it.
    rich_markup_mode=None,
)
# Every line this process prints or logs goes through it: configured passwords and the token
# become ***, and so does the password of any URL.
REDACT = Redactor()
DEBUG_VARIABLE = "WEATHERPIPE_DEBUG"
_debug = [os.environ.get(DEBUG_VARIABLE, "").lower() in {"1", "true", "yes", "on"}]


@app.callback()
def _global_options(
    debug: Annotated[
        bool,
        typer.Option(
            "--debug",
            help="Show the full traceback of a failure instead of one line. "
            f"[env: {DEBUG_VARIABLE}]",
        ),
    ] = False,
) -> None:
    if debug:
        _debug[0] = True

db_app = typer.Typer(help="Database schema.", no_args_is_help=True, rich_markup_mode=None)
bus_app = typer.Typer(
    help="Message bus topic and subscription.", no_args_is_help=True, rich_markup_mode=None
)
app.add_typer(db_app, name="db")
app.add_typer(bus_app, name="bus")
dead_app = typer.Typer(
    help="Messages that were not readings: list and replay.",
    no_args_is_help=True,
    rich_markup_mode=None,
)
keys_app = typer.Typer(help="Per-device signing keys.", no_args_is_help=True, rich_markup_mode=None)
app.add_typer(dead_app, name="dead-letters")
app.add_typer(keys_app, name="keys")
devices_app = typer.Typer(help="Devices in the registry.", no_args_is_help=True)
app.add_typer(devices_app, name="devices")

# Options that override a setting; each one's variable is named in its help.
DatabaseUrl = Annotated[str | None, typer.Option(help="[env: WEATHERPIPE_DATABASE_URL]")]
BusUrl = Annotated[str | None, typer.Option(help="[env: WEATHERPIPE_BUS_URL]")]
Topic = Annotated[str | None, typer.Option(help="[env: WEATHERPIPE_TOPIC]")]
Subscription = Annotated[str | None, typer.Option(help="[env: WEATHERPIPE_SUBSCRIPTION]")]
Detector = Annotated[str | None, typer.Option(help="Detector name. [env: WEATHERPIPE_DETECTOR]")]
FalseAlarms = Annotated[
    float | None,
    typer.Option(
        help="Sensitivity: expected false alarms per device per day. "
        "[env: WEATHERPIPE_FALSE_ALARMS_PER_DAY]"
    ),
]
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
    REDACT.add(*secrets_of(settings))
    _logging(settings)
    return settings


def _logging(settings: Settings) -> None:
    handler = logging.StreamHandler(sys.stderr)
    if settings.log_json:
        from weatherpipe.logjson import JsonFormatter

        # The command (sensors, ingest, ...) tags each record: stages often share one log.
        command = next((arg for arg in sys.argv[1:] if not arg.startswith("-")), None)
        formatter: logging.Formatter = JsonFormatter(stage=command)
    else:
        formatter = logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s")
    handler.setFormatter(RedactingFormatter(formatter, REDACT))
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

    def banner() -> None:
        typer.echo(
            f"weatherpipe {__version__}: {devices} sensors → {mask_url(settings.bus_url)} → "
            f"{mask_url(settings.database_url)}",
            err=True,
        )
        typer.echo(
            f"API and dashboard on http://{settings.api_host}:{settings.api_port}/ "
            "(Ctrl-C to stop)",
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
            on_ready=banner,
        )
    )
    typer.echo("\nstopped", err=True)


def _up_processes(
    settings: Settings, devices: int, rate: float, seed: int, anomaly_rate: float
) -> None:
    from weatherpipe.compose import fleet_names
    from weatherpipe.supervisor import check_bus, run_supervised

    check_bus(settings)

    def banner() -> None:
        typer.echo(
            f"weatherpipe {__version__}: sensors, ingest, detect and api as child processes over "
            f"{mask_url(settings.bus_url)}; API on http://{settings.api_host}:"
            f"{settings.api_port}/ (Ctrl-C to stop)",
            err=True,
        )

    sensor_args = [
        f"--devices={devices}",
        f"--rate={rate}",
        f"--seed={seed}",
        f"--anomaly-rate={anomaly_rate}",
    ]
    asyncio.run(
        run_supervised(settings, sensor_args, names=fleet_names(devices, seed), on_ready=banner)
    )
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
    if not (backfill and to_db):
        _shared_bus(settings, "sensors")
    options = SimulateOptions(
        devices=devices, rate=rate, seed=seed, anomaly_rate=anomaly_rate, truth_file=truth_file
    )
    if backfill:
        span = _parse_span(backfill)
        end = datetime.now(UTC).replace(microsecond=0)
        stats = asyncio.run(run_backfill(settings, options, end - span, end, to_db=to_db))
    else:
        stats = asyncio.run(run_sensors(settings, options, duration))
    if backfill and to_db:
        typer.echo(f"wrote {stats.ticks * devices:,} readings of {devices} devices", err=True)
        return
    typer.echo(
        f"published {stats.published:,} readings, spooled {stats.spooled:,}, "
        f"{stats.ticks:,} ticks of {devices} devices",
        err=True,
    )


def _shared_bus(settings: Settings, command: str) -> None:
    """Refuse a bus no other process can reach: a stage on its own would talk to nobody."""
    from weatherpipe.compose import open_bus

    if not open_bus(settings).crosses_processes:
        raise ConfigError(
            f"WEATHERPIPE_BUS_URL: {mask_url(settings.bus_url)} only works inside "
            f"`weatherpipe up`; `{command}` on its own needs nats://, mqtt:// or pubsub://"
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
    _shared_bus(settings, "ingest")
    stats = asyncio.run(run_ingest(settings, metrics_port=metrics_port))
    typer.echo(
        f"stored {stats.stored:,}, duplicates {stats.duplicates:,}, dead letters {stats.dead:,}",
        err=True,
    )


@app.command()
def detect(
    database_url: DatabaseUrl = None,
    detector: Detector = None,
    false_alarms_per_day: FalseAlarms = None,
) -> None:
    """Flag anomalies in newly stored readings, continuously."""
    from weatherpipe.runner import run_detect

    settings = _settings(
        database_url=database_url, detector=detector, false_alarms_per_day=false_alarms_per_day
    )
    asyncio.run(run_detect(settings))


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
    repo = open_repository(_settings(database_url=database_url))
    try:
        if not repo.set_sensitivity(device_id.lower(), value):
            raise ConfigError(f"devices sensitivity: no device {device_id}")
    finally:
        repo.close()
    what = "the global setting" if value is None else f"{value:g} false alarms a day"
    typer.echo(f"{device_id.lower()}: sensitivity {what}", err=True)


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
    day: Annotated[int | None, typer.Option(min=1, max=31, help="daymax: day of month")] = None,
    month: Annotated[int | None, typer.Option(min=1, max=12, help="daymax: month")] = None,
    year: Annotated[
        int | None, typer.Option(min=1970, max=9999, help="daymax: only this year")
    ] = None,
    minutes: Annotated[
        int | None, typer.Option(min=1, help="deviceanomalies look-back [default: 30]")
    ] = None,
    sql: Annotated[
        bool, typer.Option("--sql", help="Print the MySQL script, with these options set.")
    ] = False,
    database_url: DatabaseUrl = None,
) -> None:
    """Run one of the four original analyses and print JSON lines (°C to 0.01)."""
    from weatherpipe.compose import open_repository
    from weatherpipe.query import check_options, script_values
    from weatherpipe.storage.analyses import ANALYSES

    options = {"day": day, "month": month, "year": year, "minutes": minutes}
    check_options(name, options, script=sql)
    if sql:
        typer.echo(ANALYSES[name].mysql_script(script_values(options)), nl=False)
        return
    repo = open_repository(_settings(database_url=database_url), must_exist=True)
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

    open_repository(_settings(database_url=database_url), migrate=True).close()
    typer.echo("database schema is up to date", err=True)


@bus_app.command("setup")
def bus_setup(
    bus_url: BusUrl = None, topic: Topic = None, subscription: Subscription = None
) -> None:
    """Create the topic/stream and the subscription/consumer (safe to repeat)."""
    from weatherpipe.compose import open_bus

    settings = _settings(bus_url=bus_url, topic=topic, subscription=subscription)
    _shared_bus(settings, "bus setup")

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
) -> None:
    """Stored readings, consumer lag, last reading per device, dead letters, detector position."""
    from weatherpipe.compose import open_repository
    from weatherpipe.status import gather

    settings = _settings(
        database_url=database_url, bus_url=bus_url, topic=topic, subscription=subscription
    )
    repo = open_repository(settings, must_exist=True)
    try:
        state = asyncio.run(gather(settings, repo))
    finally:
        repo.close()
    if as_json:
        typer.echo(json.dumps(dataclasses.asdict(state), default=str))
        return
    lag = f"{state.lag:,}" if state.lag is not None else f"unknown ({state.lag_note})"
    typer.echo(f"stored        {state.stored:,} readings, {state.anomalies:,} flagged anomalous")
    typer.echo(f"consumer lag  {lag} on {mask_url(settings.bus_url)} {settings.subscription!r}")
    typer.echo(
        f"dead letters  {state.dead_letters:,} ({state.dead_letters_pending:,} not replayed)"
    )
    typer.echo(f"devices       {len(state.devices)}")
    for d in state.devices:
        last = f"{d.last_ts:%Y-%m-%d %H:%M:%S}Z {d.last_temperature:.2f} °C" if d.last_ts else "-"
        typer.echo(
            f"  {d.device_id}  {d.name or '':14} {d.count:>10,}  last {last}  "
            f"detection {d.detection.replace('_', ' ')}"
        )
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

    repo = open_repository(_settings(database_url=database_url), must_exist=True)
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
    nab: Annotated[bool, typer.Option("--nab", help="Also print NAB's three scores.")] = False,
    false_alarms_per_day: Annotated[
        float | None,
        typer.Option(
            min=0.0, help="Sensitivity: expected false alarms per device-day (default: detector's)."
        ),
    ] = None,
) -> None:
    """Score a detector on labeled series: event precision/recall/F1, recall per kind, false
    alarms per device-day of normal time, and NAB's scores with --nab."""
    from weatherpipe.detect.evaluate import evaluate_corpus, format_report

    if not any(data_dir.rglob("*.csv")):
        raise NothingToScore(f"nothing to score: no CSV files under {data_dir}")
    report = evaluate_corpus(data_dir, windows, detector, out, false_alarms_per_day)
    _require_events(report.events.counts, f"in {data_dir} against {windows}")
    typer.echo(format_report(report, per_file=per_file, nab=nab))


class NothingToScore(WeatherpipeError):
    """No labeled window and no flag: any F1 printed would be made up."""


def _require_events(counts: Any, where: str) -> None:
    if counts.true_positives + counts.false_negatives + counts.false_positives == 0:
        raise NothingToScore(f"nothing to score: no labeled anomaly and no flag {where}")


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
    repo = open_repository(settings, must_exist=True)
    try:
        result = score_run(repo, detector)
        _require_events(
            result.overall, "yet (run the simulator with anomalies, and detection, for longer)"
        )
        typer.echo(format_score(result))
    finally:
        repo.close()


@app.command()
def version() -> None:
    """Print the version."""
    typer.echo(__version__)


def main() -> None:
    """Console entry point: every failure is one line on stderr (the traceback with --debug);
    exit status 2 for a bad setting, 1 for anything else."""
    for name in ("WEATHERPIPE_API_TOKEN", "WEATHERPIPE_DATABASE_URL", "WEATHERPIPE_BUS_URL"):
        value = os.environ.get(name, "")
        REDACT.add(url_password(value) if "://" in value else value)
    try:
        app()
    except (KeyboardInterrupt, SystemExit):
        raise
    except BaseException as exc:
        if _debug[0]:
            raise
        raise SystemExit(_fail(exc)) from None


def _fail(exc: BaseException) -> int:
    """Print the one line for `exc`; the exit status."""
    if isinstance(exc, WeatherpipeError):
        text = str(exc)
    else:
        text = f"unexpected {type(exc).__name__}: {exc} (run with --debug for the traceback)"
    line = REDACT(" ".join(text.split()))
    typer.echo(f"weatherpipe: {line}", err=True)
    return 2 if isinstance(exc, ConfigError) else 1
