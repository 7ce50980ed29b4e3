"""The stage commands: up, sensors, ingest, detect, api (each calls one runner function)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any

import typer

from weatherpipe import __version__
from weatherpipe.cli.app import (
    AnomalyRate,
    BusUrl,
    DatabaseUrl,
    Detector,
    Devices,
    FalseAlarms,
    Host,
    Port,
    Rate,
    Seed,
    Subscription,
    Topic,
    app,
    configure,
    require_shared_bus,
)
from weatherpipe.config import Settings
from weatherpipe.redact import mask_url


def _status_line(status: Any) -> str:
    return (
        f"{status.readings_per_second:7.1f} readings/s | stored {status.stored:,} | "
        f"anomalies {status.anomalies:,} | dead letters {status.dead_letters:,}"
    )


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
    from weatherpipe.cli.progress import live_panel
    from weatherpipe.runner import run_pipeline

    settings = configure(
        api_port=port, api_host=host, database_url=database_url, bus_url=bus_url, detector=detector
    )
    if processes:
        _up_processes(settings, devices, rate, seed, anomaly_rate)
        return

    last: list[str] = []  # the panel goes when it closes; its last line is printed again
    with live_panel(transient=True) as panel:
        # On a terminal the status line is the live panel, logs scroll above it; elsewhere
        # (a log file, a supervisor) each status is a line of its own.
        live = panel.console.is_terminal

        def banner() -> None:
            panel.console.print(
                f"weatherpipe {__version__}: {devices} sensors → {mask_url(settings.bus_url)} → "
                f"{mask_url(settings.database_url)}\n"
                f"API and dashboard on http://{settings.api_host}:{settings.api_port}/ "
                "(Ctrl-C to stop)",
                markup=False,
                soft_wrap=True,
            )

        def show(status: Any) -> None:
            if live:
                last[:] = [_status_line(status)]
                panel.update(last[0])
            else:
                panel.console.print(_status_line(status), markup=False, soft_wrap=True)

        asyncio.run(
            run_pipeline(
                settings,
                devices=devices,
                rate=rate,
                seed=seed,
                anomaly_rate=anomaly_rate,
                duration=duration,
                on_status=show,
                on_ready=banner,
            )
        )
    typer.echo("\n".join([*last, "stopped"]), err=True)


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

    settings = configure(bus_url=bus_url, topic=topic, database_url=database_url)
    if not (backfill and to_db):
        require_shared_bus(settings, "sensors")
    options = SimulateOptions(
        devices=devices, rate=rate, seed=seed, anomaly_rate=anomaly_rate, truth_file=truth_file
    )
    if backfill:
        from weatherpipe.cli.progress import progress

        span = _parse_span(backfill)
        end = datetime.now(UTC).replace(microsecond=0)
        total = devices * int(span.total_seconds() * rate)
        with progress("backfill", total=total, unit="readings") as bar:
            stats = asyncio.run(
                run_backfill(settings, options, end - span, end, to_db, on_progress=bar.advance)
            )
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

    settings = configure(
        database_url=database_url,
        bus_url=bus_url,
        topic=topic,
        subscription=subscription,
        batch_size=batch_size,
    )
    require_shared_bus(settings, "ingest")
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

    settings = configure(
        database_url=database_url, detector=detector, false_alarms_per_day=false_alarms_per_day
    )
    asyncio.run(run_detect(settings))


@app.command()
def api(
    port: Port = None, host: Host = None, database_url: DatabaseUrl = None, bus_url: BusUrl = None
) -> None:
    """Serve the web API and dashboard."""
    from weatherpipe.runner import run_api

    run_api(configure(api_port=port, api_host=host, database_url=database_url, bus_url=bus_url))
