"""`weatherpipe alerts`: run the stage, send a test, read the delivery log, check the file."""

from __future__ import annotations

import asyncio
import json
from typing import Annotated, Any

import typer

from weatherpipe.cli.app import DatabaseUrl, app, configure

alerts_app = typer.Typer(
    help="Alert rules and their delivery (webhook, Slack, Alertmanager).",
    no_args_is_help=True,
    rich_markup_mode=None,
)
app.add_typer(alerts_app, name="alerts")

AlertsFile = Annotated[
    str | None,
    typer.Option("--file", help="The alerts file (TOML). [env: WEATHERPIPE_ALERTS_FILE]"),
]


@alerts_app.command("run")
def alerts_run(
    alerts_file: AlertsFile = None,
    database_url: DatabaseUrl = None,
    metrics_port: Annotated[
        int | None,
        typer.Option(min=1, max=65535, help="Serve Prometheus metrics on this port (at /metrics)."),
    ] = None,
) -> None:
    """Evaluate the rules and deliver notifications, continuously (SIGTERM stops it)."""
    from weatherpipe.runner import run_alerts

    settings = configure(alerts_file=alerts_file, database_url=database_url)
    asyncio.run(run_alerts(settings, metrics_port=metrics_port))


@alerts_app.command("test")
def alerts_test(
    receiver: Annotated[
        str | None, typer.Option(help="Only this receiver (default: every receiver).")
    ] = None,
    alerts_file: AlertsFile = None,
    database_url: DatabaseUrl = None,
) -> None:
    """Send a test notification now and print what each receiver answered (exit 1 if one failed)."""
    from weatherpipe.alerts.job import send_test
    from weatherpipe.compose import load_alerts_config, open_repository

    settings = configure(alerts_file=alerts_file, database_url=database_url)
    config = load_alerts_config(settings)
    repo = open_repository(settings)
    try:
        results = send_test(repo, config, receiver)
    finally:
        repo.close()
    for target, outcome in results:
        typer.echo(f"{target.name} ({target.type}): {outcome.describe()}")
    if not all(outcome.ok for _, outcome in results):
        raise typer.Exit(1)


@alerts_app.command("log")
def alerts_log(
    limit: Annotated[int, typer.Option(min=1, help="Show the newest this many.")] = 20,
    as_json: Annotated[bool, typer.Option("--json", help="JSON lines.")] = False,
    database_url: DatabaseUrl = None,
) -> None:
    """The delivery log: each notification, its state, and every attempt."""
    from weatherpipe.compose import open_repository

    repo = open_repository(configure(database_url=database_url), must_exist=True)
    try:
        rows = repo.delivery_log(limit)
    finally:
        repo.close()
    for row in rows:
        if as_json:
            typer.echo(json.dumps(row, default=str))
            continue
        typer.echo(_line(row))
        for a in row["attempt_log"]:
            answer = f"HTTP {a['http_status']}" if a["http_status"] is not None else "no answer"
            error = f" {a['error']}" if a["error"] else ""
            typer.echo(
                f"          #{a['attempt']} {a['at']:%Y-%m-%d %H:%M:%S}Z "
                f"{'ok' if a['ok'] else 'failed'} {answer} {a['seconds'] * 1000:.0f} ms{error}"
            )
    if not rows:
        typer.echo("no notifications yet", err=True)


def _line(row: dict[str, Any]) -> str:
    state = row["state"]
    if state == "pending" and row["attempts"]:
        state = f"pending, next try {row['next_attempt_at']:%H:%M:%S}Z"
    return (
        f"{row['id']:>8}  {row['created_at']:%Y-%m-%d %H:%M:%S}Z  {row['rule']} "
        f"{row['status']} -> {row['receiver']}: {state} after {row['attempts']} attempt(s)"
    )


@alerts_app.command("check")
def alerts_check(alerts_file: AlertsFile = None) -> None:
    """Check the alerts file and list its rules and receivers."""
    from weatherpipe.compose import load_alerts_config

    config = load_alerts_config(configure(alerts_file=alerts_file))
    for r in config.receivers:
        typer.echo(f"receiver  {r.name}: {r.type}")
    for rule in config.rules:
        scope = ", ".join(rule.devices) if rule.devices else "every device"
        to = ", ".join(t.name for t in config.receivers_of(rule))
        typer.echo(f"rule      {rule.name}: {rule.type} on {scope} -> {to}")
