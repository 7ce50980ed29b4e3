"""Commands about detection and measurement: evaluate, detectors, score, bench, version."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer

from weatherpipe import __version__
from weatherpipe.cli.app import (
    DatabaseUrl,
    Detector,
    app,
    configure,
)
from weatherpipe.errors import ConfigError, WeatherpipeError


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
    from weatherpipe.cli.progress import progress
    from weatherpipe.detect.evaluate import evaluate_corpus, format_report

    if not any(data_dir.rglob("*.csv")):
        raise NothingToScore(f"nothing to score: no CSV files under {data_dir}")
    with progress(f"evaluate {detector}", unit="files") as bar:

        def on_file(done: int, total: int) -> None:
            bar.total = total
            bar.advance(done - bar.completed)

        report = evaluate_corpus(data_dir, windows, detector, out, false_alarms_per_day, on_file)
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
    checkout = Path(__file__).resolve().parents[3]
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

    settings = configure(database_url=database_url)
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
