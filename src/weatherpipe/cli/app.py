"""The Typer app, its command groups, the options shared by commands, settings and logging."""

from __future__ import annotations

import logging
import os
import sys
from typing import Annotated, Any

import typer

from weatherpipe.config import Settings, load_settings
from weatherpipe.errors import ConfigError
from weatherpipe.redact import RedactingFormatter, Redactor, mask_url, secrets_of

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
DEBUG = [os.environ.get(DEBUG_VARIABLE, "").lower() in {"1", "true", "yes", "on"}]


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
        DEBUG[0] = True


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


def configure(**overrides: Any) -> Settings:
    """The settings with these overrides; secrets registered for masking, logging set up."""
    settings = load_settings(**overrides)
    REDACT.add(*secrets_of(settings))
    setup_logging(settings)
    return settings


def setup_logging(settings: Settings) -> None:
    """Log to stderr as the settings say (text or JSON), every line masked."""
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


def require_shared_bus(settings: Settings, command: str) -> None:
    """Refuse a bus no other process can reach: a stage on its own would talk to nobody."""
    from weatherpipe.compose import open_bus

    if not open_bus(settings).crosses_processes:
        raise ConfigError(
            f"WEATHERPIPE_BUS_URL: {mask_url(settings.bus_url)} only works inside "
            f"`weatherpipe up`; `{command}` on its own needs nats://, mqtt:// or pubsub://"
        )
