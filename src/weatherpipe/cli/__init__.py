"""The command line: parse, set up logging, call one library function.

`app.py` holds the Typer app and the shared options; the commands live in `stages.py`
(up, sensors, ingest, detect, api), `operate.py` (db, bus, status, query, dead-letters, keys,
devices sensitivity), `devices.py` (the registry), `data.py` (prune, export), `alerts.py`
(alerts run, test, log, check) and `tools.py` (evaluate, detectors, score, bench, version).
"""

from __future__ import annotations

import os

import typer

# isort: off
# Registration order is the order `weatherpipe --help` lists the commands in.
from weatherpipe.cli import stages, operate, devices, data, alerts, tools

# isort: on
from weatherpipe.cli.app import DEBUG, REDACT, app
from weatherpipe.errors import ConfigError, WeatherpipeError
from weatherpipe.redact import url_password

__all__ = ["alerts", "app", "data", "devices", "main", "operate", "stages", "tools"]


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
        if DEBUG[0]:
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
